/**
 * Searchable sooner: an explicit refresh of an index after live batches land in it, at most one
 * every ETL_REFRESH_MS, instead of waiting up to the index's refresh_interval (1 s) for the next
 * scheduled one. Commit -> searchable is then about commit -> acknowledged plus this gap.
 *
 * What it must not do is slow down bulk work: every refresh writes a small segment that merging
 * pays for later, about 25 ms of Elasticsearch CPU each on a small index (measured: ten a second
 * into one index took a quarter of a core). So the indexer asks for one only after a batch that
 * emptied the queue (a claim smaller than ETL_SIZE_LIMIT: it is keeping up with live changes),
 * never while the index is in bulk-load mode (refresh off for a full load, whoever's), and none
 * while documents land faster than BUSY_DOCS_PER_SECOND: in such a stream the extra refreshes
 * cost Elasticsearch the CPU it needs for the writes (at 500 edits/s they tripled the lag), and
 * the index's own 1 s refresh_interval, which then finds plenty to publish, serves instead.
 * During a backlog, catch-up or full load, the index's own refresh_interval applies as before.
 *
 * A failed refresh is only a later search: logged at debug, never retried, never thrown.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Logger } from '../logger.js';

/** How long an answer to "is the index in bulk-load mode?" is trusted. */
const RELAXED_TTL_MS = 1_000;

/** Documents a second into one index above which explicit refreshes stop (see above). */
export const BUSY_DOCS_PER_SECOND = 200;

/** Documents landed in the last second, from what each batch reported. */
export class LandingRate {
  private readonly landed: { at: number; docs: number }[] = [];
  private total = 0;

  add(now: number, docs: number): void {
    this.landed.push({ at: now, docs });
    this.total += docs;
    this.trim(now);
  }

  perSecond(now: number): number {
    this.trim(now);
    return this.total;
  }

  private trim(now: number): void {
    for (let first = this.landed[0]; first && first.at <= now - 1_000; first = this.landed[0]) {
      this.total -= first.docs;
      this.landed.shift();
    }
  }
}

export class LiveRefresh {
  private lastAt = -Infinity;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private relaxed: { value: boolean; at: number } = { value: false, at: -Infinity };
  private stopped = false;
  private readonly rate = new LandingRate();

  constructor(
    private readonly es: Client,
    /** The alias (or index) searches read. */
    private readonly index: string,
    private readonly gapMs: number,
    /** Whether some syncer holds the index in bulk-load mode (src/load/bulkLoadMode.ts). */
    private readonly inBulkLoadMode: () => Promise<boolean>,
    private readonly log: Logger,
  ) {}

  /**
   * `docs` documents just landed; when `live` (the batch emptied the queue), refresh now or as
   * soon as the gap allows. Never waits.
   */
  landed(docs: number, live: boolean): void {
    if (docs === 0) return;
    const now = performance.now();
    this.rate.add(now, docs);
    if (!live || this.gapMs <= 0 || this.stopped || this.timer) return;
    if (this.rate.perSecond(now) > BUSY_DOCS_PER_SECOND) return;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    const wait = Math.max(0, this.lastAt + this.gapMs - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.refresh();
    }, wait);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async refresh(): Promise<void> {
    // One at a time: a refresh that takes longer than the gap must not pile up behind itself.
    if (this.inFlight) {
      await this.inFlight;
      this.schedule();
      return;
    }
    this.lastAt = performance.now();
    this.inFlight = (async () => {
      try {
        if (await this.relaxedNow()) return;
        await this.es.indices.refresh({ index: this.index }, { requestTimeout: 5_000 });
      } catch (err) {
        this.log.debug({ index: this.index, err: (err as Error).message }, 'refresh failed');
      }
    })();
    await this.inFlight;
    this.inFlight = null;
  }

  private async relaxedNow(): Promise<boolean> {
    if (performance.now() - this.relaxed.at < RELAXED_TTL_MS) return this.relaxed.value;
    const value = await this.inBulkLoadMode();
    this.relaxed = { value, at: performance.now() };
    return value;
  }
}
