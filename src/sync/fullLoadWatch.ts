/**
 * What a full load changes while it runs, and puts back when it ends: the progress bar (or its log
 * lines), and bulk-load mode on each index it fills (src/load/bulkLoadMode.ts). Once every
 * document is queued and the queue holds at most `ETL_SIZE_LIMIT` of an index's (its backlog is
 * gone; what is left is a batch or two and live edits), that index gets its own settings back.
 * Not "queue and claims empty": live edits of any index keep a claim in flight nearly all the
 * time under steady traffic, and the index kept refresh off (nothing new searchable) and no
 * replicas until editors paused. The load's last few batches land with refresh on: no harm.
 *
 * Every TIDY_MS, whatever this process is doing, it also puts back what nobody else will:
 *  - settings relaxed by a syncer that is gone. A start does so too, but a syncer killed and
 *    restarted at once (a restart policy) finds its predecessor's lease still standing and must
 *    not touch them then; they are its to restore once that lease has lapsed;
 *  - settings this process relaxed for a load that another syncer finished (this one's walk was
 *    interrupted, the other resumed the plan): with no plan in force and the queue drained, the
 *    load is over, and this process is the only one that can put them back.
 */
import type { DocumentKind, KindName } from '../kinds/documentKind.js';
import type { Logger } from '../logger.js';
import type { BulkLoadMode } from '../load/bulkLoadMode.js';
import { LoadProgress } from '../metrics/loadProgress.js';
import type { DocumentQueue } from '../queue/documentQueue.js';

const DRAIN_CHECK_MS = 250;
/** Queue depth up to which an index's backlog is counted exactly (backlogs). */
const EXACT_UP_TO = 20_000;
/** How often the queue is counted per index while it holds more than the threshold. */
const KIND_CHECK_MS = 1_000;
/** Past a crashed owner's lease (bulkLoadMode.ts: 15 s), so its settings wait one more round. */
const TIDY_MS = 15_000;

export class FullLoadWatch {
  private progress: LoadProgress | null = null;
  private drainWatch: NodeJS.Timeout | null = null;
  private readonly tidyWatch: NodeJS.Timeout;
  private tidying = false;
  private stopped = false;
  /**
   * Every document of the load in progress is queued (queued() since began()): before that the
   * queue runs low whenever the indexers outpace the walk, which is not the load's end.
   */
  private allQueued = false;
  private readonly backlogGoneAt: number;

  constructor(
    private readonly queue: DocumentQueue,
    private readonly modes: ReadonlyMap<KindName, BulkLoadMode>,
    /**
     * Documents processed so far (indexed, deleted or stale) by every syncer: the load's
     * progress counts all of them, not only this process's share.
     */
    private readonly processed: () => number | Promise<number>,
    private readonly log: Logger,
    /** Whether a full load's plan is in force (src/queue/fullLoadPlan.ts), whoever runs it. */
    private readonly loadInForce: () => Promise<boolean>,
    options: {
      tidyMs?: number;
      /** The queue depth at or below which the load's backlog is gone (ETL_SIZE_LIMIT; 0: empty). */
      backlogGoneAt?: number;
    } = {},
  ) {
    this.backlogGoneAt = options.backlogGoneAt ?? 0;
    const tidyMs = options.tidyMs ?? TIDY_MS;
    this.tidyWatch = setInterval(() => {
      if (this.tidying) return;
      this.tidying = true;
      this.tidy()
        .catch((err: unknown) =>
          this.log.warn({ err: (err as Error).message }, 'bulk-load mode: tidy failed; retrying'),
        )
        .finally(() => (this.tidying = false));
    }, tidyMs);
    this.tidyWatch.unref();
  }

  /** See the header. */
  async tidy(): Promise<void> {
    for (const mode of this.modes.values()) await mode.restoreAbandoned();
    if (!this.relaxing || this.drainWatch) return; // not relaxed, or this load's own watch is on
    if ((await this.loadInForce()) || !(await this.drained())) return;
    this.log.info('bulk-load mode: the full load was finished elsewhere; restoring');
    for (const mode of this.modes.values()) if (mode.active) await mode.leave();
  }

  /** A full load of these kinds began, with about `documents` to load. */
  async began(documents: number, kinds: readonly DocumentKind[]): Promise<void> {
    // A pass that was under way when the syncer stopped may still get here: start nothing then
    // (a progress bar's timer would keep the stopped process alive).
    if (this.stopped) return;
    // The last load's drain check, should it still run, would end this one's mode mid-walk.
    if (this.drainWatch) clearInterval(this.drainWatch);
    this.drainWatch = null;
    this.allQueued = false;
    await this.showProgress(documents);
    // An index relaxed for the last load that this one does not fill: that load's drain check is
    // gone, and this load's would be the next to put it back, its live edits not searchable until
    // then (for good, should this load never drain). Put back now; its last batches land with
    // refresh on, no harm.
    const filling = new Set(kinds.map((kind) => kind.name));
    for (const [name, mode] of this.modes) {
      if (!mode.active || filling.has(name)) continue;
      await mode.leave().catch((err: unknown) => {
        this.log.warn(
          { index: name, err: (err as Error).message },
          'could not put back the settings of an index relaxed for the last load; this load ' +
            'puts them back when it ends',
        );
      });
    }
    for (const kind of kinds) {
      await this.modes
        .get(kind.name)
        ?.enter()
        .catch((err: unknown) => {
          this.log.warn(
            { index: kind.name, err: (err as Error).message },
            'could not relax the index for the full load',
          );
        });
    }
  }

  /** Every document of the load is queued: leave bulk-load mode once they are all indexed. */
  queued(): void {
    if (this.stopped) return;
    this.allQueued = true;
    if (this.drainWatch) clearInterval(this.drainWatch);
    let busy = false;
    let counted = 0;
    const check = async () => {
      // The whole queue first (one LLEN); per index at most once a second (it reads the queue).
      const all = await this.drained();
      if (!all && performance.now() - counted < KIND_CHECK_MS) return;
      const left = all ? null : await this.backlogs();
      if (!all) counted = performance.now();
      for (const [name, mode] of this.modes)
        if (mode.active && (left === null || left[name] <= this.backlogGoneAt)) await mode.leave();
      if (this.relaxing) return;
      if (this.drainWatch) clearInterval(this.drainWatch);
      this.drainWatch = null;
    };
    this.drainWatch = setInterval(() => {
      if (busy) return;
      busy = true;
      check()
        .catch((err: unknown) =>
          this.log.warn({ err: (err as Error).message }, 'bulk-load mode: check failed; retrying'),
        )
        .finally(() => (busy = false));
    }, DRAIN_CHECK_MS);
  }

  /** Stop watching; the indices this process relaxed, if any, are for `leave()` to restore. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.tidyWatch);
    if (this.drainWatch) clearInterval(this.drainWatch);
    this.drainWatch = null;
    this.progress?.stop();
  }

  /** Put back the settings of every index this process relaxed (on stop). */
  async leave(): Promise<void> {
    await Promise.allSettled(
      [...this.modes.values()].filter((mode) => mode.active).map((mode) => mode.leave()),
    );
  }

  get relaxing(): boolean {
    return [...this.modes.values()].some((mode) => mode.active);
  }

  /** See the header. */
  private async drained(): Promise<boolean> {
    return (await this.queue.depth()) <= this.backlogGoneAt;
  }

  /**
   * What the queue holds of each index. Not the whole queue alone: another syncer's load of
   * another index (one deleted meanwhile) kept it full, and this load's indices relaxed, their
   * edits searchable only once that load ended, hours on a large catalog. Counted member by
   * member up to EXACT_UP_TO (a load keeps its queue to 25 reads' worth: 5,000 by default), and
   * estimated from both ends past that.
   */
  private async backlogs(): Promise<Record<KindName, number>> {
    return (await this.queue.depthByKind(EXACT_UP_TO)).counts;
  }

  private async showProgress(documents: number): Promise<void> {
    this.progress?.stop();
    // Redis away: counted from the first number it gives (the progress shows less, nothing worse).
    let base: number | null = await Promise.resolve(this.processed()).catch(() => null);
    this.progress = new LoadProgress(
      'full load',
      documents,
      {
        done: async () => {
          const now = await this.processed();
          // Counted from again should the counter go back (Redis restarted empty mid-load).
          if (base === null || now < base) base = now;
          return now - base;
        },
        // Or the plan is gone: another syncer finished a load this one began.
        finished: async () =>
          (this.allQueued || !(await this.loadInForce())) && (await this.drained()),
      },
      this.log.child({ component: 'progress' }),
    );
    this.progress.start();
  }
}
