/**
 * The polling fallback and catch-up: per table, the rows written since that table's watermark,
 * ETL_SIZE_LIMIT at a time, fanned out to the documents they touch in every index and queued
 * (src/capture/fanOut.ts); only then does the watermark advance.
 * It runs at start, after every listener reconnect, every ETL_POLL_INTERVAL_MS, and whenever a
 * statement was too big to list its keys in a notification.
 *
 * Without watermarks (first start, or Redis came back empty) it runs a full load instead: every
 * document of every kind is queued, documents whose row no longer exists are swept, and the
 * watermarks are set to the snapshot taken before the load began. A TRUNCATE (no row-level trace)
 * does the same. When only some watermarks are missing (an upgrade added a kind and its tables),
 * only the kinds that read those tables are loaded, and only those watermarks are set: the others
 * go on from where they were, so nothing between them and the load's snapshot is skipped.
 *
 * A walk over every document (a full load, or a kind reloaded after a huge statement) queues a
 * page only while the queue holds fewer than fullLoadQueueBound() documents, so Redis holds a
 * constant amount however big the catalog; a full load records its cursor after every page
 * (src/queue/fullLoadPlan.ts) and an interrupted one resumes there.
 *
 * Several pollers (several syncers) may run at once: passes are idempotent, and a pass that writes
 * an older watermark over a newer one only makes the next pass re-read a little more.
 */
import { randomUUID } from 'node:crypto';
import { keysetPages, readPage } from '../db/keysetPages.js';
import type { Postgres, QueryError } from '../db/postgres.js';
import type { Logger } from '../logger.js';
import type { DocumentKind } from '../kinds/documentKind.js';
import { memberOf } from '../kinds/kinds.js';
import { letteredIds, type DeadLetters } from '../queue/deadLetters.js';
import type { DocumentQueue } from '../queue/documentQueue.js';
import type { FullLoadPlans, PlanRun, PlanState } from '../queue/fullLoadPlan.js';
import type { ReadLock } from '../queue/readLock.js';
import type { ReloadRequests } from '../queue/reloadRequests.js';
import type { Snapshot, WatermarkTable, Watermarks } from '../queue/watermarks.js';
import * as sql from '../sql/queries.js';
import { allSettled } from '../util/allSettled.js';
import { sleep } from '../util/sleep.js';
import { isCanonicalUuid } from '../util/uuid.js';
import type { FanOut } from './fanOut.js';
import type { HandledTransactions } from './handledTransactions.js';
import type { PassSighting } from './pollCadence.js';
import { rewindOf, type Rewind } from './rewind.js';

/**
 * Past this many changed rows of one table in one pass (rows it resolves itself, not those the
 * live path queued), resolving each page (a film's people, a person's films) costs more than
 * reloading the kinds it fans out to: every person sits in many films' pages, so a 100,000-film
 * UPDATE would queue each person again and again as indexers take them. Then every document of
 * those kinds is queued once instead, once every table is read up to the pass's snapshot (so each
 * is read at or after the change), and before the watermarks move.
 */
const RESOLVE_AT_MOST_ROWS = 10_000;
/**
 * Side passes of a load at most this often, whatever ETL_POLL_INTERVAL_MS: each takes a turn at
 * the read lock per table from the load (one per edit made another syncer's load more than twice
 * as slow, see LOAD_RESOLVE_GAP_MS).
 */
const SIDE_PASS_GAP_MS = 1_000;

/**
 * How many documents may wait in the queue before a walk over every document pauses: enough to
 * keep every indexer busy (a page is read in milliseconds, a bulk of ETL_BULK_SIZE takes far
 * longer), small enough that Redis memory does not depend on the catalog (about 134 bytes per
 * queued document: 0.7 MB at the default ETL_SIZE_LIMIT, against 1.3 GB for 10M films queued whole).
 */
export function fullLoadQueueBound(sizeLimit: number): number {
  return 25 * sizeLimit;
}

/** At most this many pages of ids per turn of the read lock, for a walk whose queue runs short. */
const PAGES_PER_TURN = 5;

/**
 * Ids per page when the orphan sweep walks an index. Each search costs Elasticsearch a few
 * milliseconds whatever its size: pages of ETL_SIZE_LIMIT (200) cost it three times the CPU of
 * these (3.2 s against 1.1 s for 150,000 documents). Postgres still sees at most ETL_SIZE_LIMIT
 * ids per query: a page is looked up in slices.
 */
export const SWEEP_PAGE_SIZE = 5_000;

/** How often an incremental pass looks for a full-load plan left behind (dropUnneededPlan). */
const PLAN_CHECK_MS = 10_000;

/** How often a paused walk looks at the queue again. */
const ROOM_CHECK_MS = 100;

/** Tables polled row by row, in this order. */
const POLLED = Object.keys(sql.changedRowsByTable) as sql.PolledTable[];

const TOMBSTONE_TABLES = ['film_tombstone', 'person_tombstone', 'genre_tombstone'] as const;
const isTombstoneTable = (table: string): boolean =>
  (TOMBSTONE_TABLES as readonly string[]).includes(table);
const INSUFFICIENT_PRIVILEGE = '42501';

/**
 * The tombstone tables whose watermark is not past the newest tombstone pruned (`pruned`, from
 * etl.tombstone_horizon): a pruned one may be a deletion this deployment never read. Every
 * transaction below a watermark's xmin was read; a pruning by this deployment removes only those
 * below its oldest tombstone watermark's, so it never trips this itself. A horizon at or past
 * the server's counter belongs to another history (a dump restored elsewhere, which the rewind
 * check loads again anyway) and is ignored.
 */
function tombstonesPrunedUnread(
  marks: ReadonlyMap<WatermarkTable, Snapshot | null>,
  pruned: string,
  now: Snapshot,
): string[] {
  const horizon = BigInt(pruned);
  if (horizon === 0n || horizon >= BigInt(now.xmax)) return [];
  return TOMBSTONE_TABLES.filter((table) => {
    const mark = marks.get(table);
    return mark !== null && mark !== undefined && BigInt(mark.xmin) <= horizon;
  });
}

/** Where the orphan sweep finds the ids of the documents in an index. */
export interface IndexedIds {
  /** Ids in order, a page at a time; after `from` (an id) when resuming a walk. */
  pages(pageSize: number, from?: string): AsyncGenerator<string[]>;
  /** Make every write acknowledged so far visible to pages(). */
  refresh(): Promise<void>;
  /** Delete documents by exact id, unversioned (ids no row can have). */
  remove(ids: string[]): Promise<void>;
  /** Elasticsearch's uuid of the index written to now; null when there is none. */
  uuid(): Promise<string | null>;
}

/** A kind as the poller loads it: its definition and the documents its index holds. */
export interface LoadedKind {
  kind: DocumentKind;
  indexed: IndexedIds;
}

export interface PassResult {
  kind: 'incremental' | 'full' | 'skipped';
  queued: number;
  rows: number;
  /** An incremental pass that ran to its end: what it saw, for the poll cadence. */
  sighting?: PassSighting;
}

export interface PollerDeps {
  db: Postgres;
  lock: ReadLock;
  queue: DocumentQueue;
  watermarks: Watermarks;
  fanOut: FanOut;
  kinds: readonly LoadedKind[];
  log: Logger;
  sizeLimit: number;
  /** Ids per Elasticsearch page of the orphan sweep (SWEEP_PAGE_SIZE). */
  sweepPageSize?: number;
  sleepMs: number;
  owner: string;
  /** Transactions the live path has queued already: their rows are not queued again. */
  handled?: Pick<HandledTransactions, 'has' | 'forgetBelow' | 'forgetAll'>;
  /**
   * When this process first learned of each change, for the latency metric. While writers stay
   * quiet (the doorbell, src/capture/doorbell.ts) a pass is where live changes are first seen.
   */
  clock?: { heard(members: Iterable<string>): void };
  /** Where a full load stands (src/queue/fullLoadPlan.ts): without it, a load cannot resume. */
  plans: FullLoadPlans;
  /** Documents with a dead letter, which the orphan sweep looks at too (sweepOrphans). */
  deadLetters?: Pick<DeadLetters, 'ofKind'>;
  /** Indices created again, to load whole (src/queue/reloadRequests.ts). */
  reloads: Pick<ReloadRequests, 'key' | 'loadedKey' | 'pending'>;
  /**
   * How often a full load reads what changed since it began (ETL_POLL_INTERVAL_MS): see
   * `sidePasses`. None without it.
   */
  sidePassEveryMs?: number;
  /** Called while a walk waits for the queue to drain (the live path queues what it heard). */
  whileWaiting?: () => Promise<void>;
  /** A full load of these kinds began, with about this many documents to load. */
  onFullLoad?: (documents: number, kinds: readonly DocumentKind[]) => void | Promise<void>;
  /** Every document of that full load is queued (not yet indexed). */
  onFullLoadQueued?: () => void;
  /**
   * Redis restarted since the last pass (maybe from an older save: reload requests may be gone).
   * Awaited before the pass reads anything else; it must not throw, and should be bounded.
   */
  onRedisRestarted?: () => Promise<void>;
}

export class Poller {
  private passes = 0;
  /** When a pass last looked for a full-load plan that no pass needs (dropUnneededPlan). */
  private planCheckedAt = -Infinity;
  /** The Redis server's run_id at the last pass's start (RedisStore.serverRun). */
  private serverRun: string | null = null;

  /** See `servesLive`. */
  private incremental = true;
  /** Pruning was refused for want of a privilege, and said so once. */
  private pruneRefused = false;
  /** How far this process's side passes of a full load have read, per table (sidePasses). */
  private sideFrom: { plan: string | null; from: Map<sql.PolledTable, Snapshot> } | null = null;

  constructor(private readonly deps: PollerDeps) {}

  /**
   * Whether this syncer's poll passes read the changes as they come. Not from the moment a pass
   * turns into a full load (its own, or one that finds another syncer's under way and returns)
   * until an incremental pass ends: a load can take an hour, and the live path must then queue
   * what it hears itself instead of leaving it to "the next pass" (src/capture/changeCapture.ts).
   */
  get servesLive(): boolean {
    return this.incremental;
  }

  async pass(signal?: AbortSignal): Promise<PassResult> {
    const { watermarks, log } = this.deps;
    // First, before anything read from Redis is relied on: the run it was read in.
    const run = await watermarks.serverRun();
    if (run !== this.serverRun) {
      // Redis restarted (or failed over) since the last pass, maybe with older data: transactions
      // the live path queued before may be gone from the queue, and the watermarks from before
      // them. Read them again rather than skip them. (The first pass of a process forgets only
      // what it heard while starting.)
      if (this.serverRun !== null && run !== '') {
        log.warn('redis restarted since the last pass: reading again what the live path queued');
        // Awaited: a load this pass begins then serves what the look asks for again.
        await this.deps.onRedisRestarted?.();
      }
      this.deps.handled?.forgetAll();
      this.serverRun = run;
    }
    const epoch = await watermarks.epoch();
    const marks = await watermarks.getAll();
    const missing = [...marks.entries()]
      .filter(([, mark]) => mark === null)
      .map(([table]) => table);
    if (epoch === null || missing.includes('truncation')) {
      log.info({ missing_watermarks: missing, epoch }, 'no complete watermark: full load');
      return this.load(signal);
    }
    if (missing.length > 0) {
      const kinds = this.deps.kinds.filter((loaded) =>
        missing.some((table) => table in loaded.kind.touchedBy),
      );
      log.info(
        { missing_watermarks: missing, indices: kinds.map((k) => k.kind.name) },
        'watermarks missing: full load of the indices that read those tables',
      );
      return this.load(signal, { kinds, tables: missing });
    }
    const reload = await this.kindsToReload();
    if (reload.length > 0) {
      // Debug: while another syncer runs that load, every pass here comes back this way. The load
      // itself says at info which indices it queues.
      log.debug(
        { indices: reload.map((k) => k.kind.name) },
        'indices created again: full load of those (the watermarks go on)',
      );
      return this.load(signal, { kinds: reload, tables: [] });
    }
    const { snapshot, awake, pruned } = await this.snapshotNow();
    // Before any watermark is relied on: ahead of the server, they would skip its rows.
    const rewind = rewindOf(snapshot, marks.values());
    if (rewind && (await this.recoverFromRewind(rewind, snapshot))) return this.load(signal);
    const truncation = marks.get('truncation');
    if (truncation) {
      const truncated = await this.truncatedSince(truncation);
      if (truncated.length > 0) {
        log.info({ tables: truncated.map((t) => t.table_name) }, 'table truncated: full load');
        return this.load(signal, undefined, true);
      }
    }
    const unread = tombstonesPrunedUnread(marks, pruned, snapshot);
    if (unread.length > 0) return this.reloadAfterPrune(unread, pruned, signal);
    // Checked again once the tombstones are read, before their watermarks move: another
    // deployment's prune between the check above and the read (a catch-up pass reads the other
    // tables for a while first) took tombstones this pass then never saw. The prune records its
    // horizon in the statement that deletes, so a read after the tombstones' sees it.
    const prunedMeanwhile = async (): Promise<{ unread: string[]; pruned: string }> => {
      const [horizon] = await this.read('tombstone horizon', () =>
        this.deps.db.query(sql.tombstoneHorizon),
      );
      const now = horizon?.pruned ?? '0';
      return {
        unread: now === pruned ? [] : tombstonesPrunedUnread(marks, now, snapshot),
        pruned: now,
      };
    };

    let queued = 0;
    let rows = 0;
    // Watermarks of tables read in one page move together at the end (one Redis call for most
    // passes, which run back to back while changes keep coming); a table that took several pages
    // moves at once, so a long catch-up keeps what it did if it is interrupted.
    const read: WatermarkTable[] = ['truncation'];
    const reset = () => {
      log.warn(
        'redis state was reset or restarted during a pass; the next pass reads again from what ' +
          'it kept (a full load when that is nothing)',
      );
      return { kind: 'incremental' as const, queued, rows };
    };
    // Kinds to walk whole (a statement over too many rows to resolve), and the tables that asked:
    // walked once every table is read up to the snapshot. Walked in the middle, the rows of the
    // tables after it (the walk's side passes start at this snapshot) waited for its end.
    const toWalk = new Set<DocumentKind>();
    const walkedFor: { table: sql.PolledTable; rows: number }[] = [];
    for (const table of POLLED) {
      const mark = marks.get(table);
      if (!mark) continue;
      const counted = await this.pollTable(table, mark, snapshot, signal);
      if (signal?.aborted) return { kind: 'incremental', queued: queued + counted.queued, rows };
      queued += counted.queued;
      rows += counted.rows;
      for (const kind of counted.reload) toWalk.add(kind);
      // Its watermark moves once the walk has queued what its rows reach.
      if (counted.reload.size > 0) walkedFor.push({ table, rows: counted.rows });
      else if (counted.rows < this.deps.sizeLimit) read.push(table);
      else {
        if (isTombstoneTable(table)) {
          const meanwhile = await prunedMeanwhile();
          if (meanwhile.unread.length > 0)
            return this.reloadAfterPrune(meanwhile.unread, meanwhile.pruned, signal);
        }
        if (!(await watermarks.advance(epoch, [table], snapshot, run))) return reset();
      }
    }
    if (toWalk.size > 0) {
      queued += await this.walkAfterManyRows(toWalk, walkedFor, snapshot, signal);
      if (signal?.aborted) return { kind: 'incremental', queued, rows };
      read.push(...walkedFor.map((w) => w.table));
    }
    if (read.some(isTombstoneTable)) {
      const meanwhile = await prunedMeanwhile();
      if (meanwhile.unread.length > 0)
        return this.reloadAfterPrune(meanwhile.unread, meanwhile.pruned, signal);
    }
    if (!(await watermarks.advance(epoch, read, snapshot, run))) return reset();
    this.deps.handled?.forgetBelow(snapshot.xmin);
    if (++this.passes % 100 === 1) await this.pruneTombstones();
    if (performance.now() - this.planCheckedAt >= PLAN_CHECK_MS) await this.dropUnneededPlan();
    if (rows > 0) log.debug({ rows, queued }, 'poll pass found changes');
    this.incremental = true;
    return {
      kind: 'incremental',
      queued,
      rows,
      sighting: { rows, xmin: snapshot.xmin, awake },
    };
  }

  /**
   * Tombstones this deployment had not read were pruned (by another deployment on this database,
   * while this one was stopped or during this pass): forget the watermarks and load, whose sweep
   * finds the deletions.
   */
  private async reloadAfterPrune(
    unread: string[],
    pruned: string,
    signal?: AbortSignal,
  ): Promise<PassResult> {
    this.deps.log.warn(
      { tables: unread, pruned_up_to: pruned },
      'tombstones this deployment had not read were pruned (by another deployment on this ' +
        'database, while this one was stopped or reading?): full load, whose sweep finds the ' +
        'deletions',
    );
    // As after a rewind: the load runs under a new epoch, and, interrupted, is resumed as a
    // load with no watermark (the marks kept would trip this check again, nothing else).
    await this.deps.watermarks.forget();
    return this.load(signal);
  }

  private async pollTable(
    table: sql.PolledTable,
    mark: Snapshot,
    /** This pass's: its rows are read up to it, and the watermark moves to it. */
    upTo: Snapshot,
    signal?: AbortSignal,
    /** False in a load's side pass: the load walks whole indices already. */
    { walk = true }: { walk?: boolean } = {},
  ): Promise<{ queued: number; rows: number; reload: Set<DocumentKind> }> {
    const { db, fanOut, sizeLimit, sleepMs } = this.deps;
    const query = sql.changedRowsByTable[table];
    let queued = 0;
    let rows = 0;
    const pages = keysetPages({
      pageSize: sizeLimit,
      read: (after: unknown[] | undefined) =>
        this.read(`poll ${table}`, () =>
          readPage(
            db,
            query,
            [mark.xmin, mark.xmax, mark.xip, sizeLimit, upTo.xmax, upTo.xip],
            after,
          ),
        ),
      keyOf: (row) => [row.txid, row.key],
      pause: () => sleep(sleepMs, signal),
      signal,
    });
    // Kinds this table reaches through a resolution, once it changed too many rows for that.
    const reload = new Set<DocumentKind>();
    // Rows this pass resolves itself. Those the live path queued are passed over and do not count:
    // after a load or a walk beside steady edits they were thousands, and one statement of a few
    // rows after them turned the pass into a walk of whole indices (and the next, maybe, too).
    let resolving = 0;
    for await (const page of pages) {
      rows += page.length;
      const handled = this.deps.handled;
      const fresh = handled ? page.filter((r) => !handled.has(r.txid)) : page;
      if (fresh.length === 0) continue;
      resolving += fresh.length;
      const keys = { film: new Set<string>(), person: new Set<string>(), genre: new Set<string>() };
      for (const row of fresh) {
        if (row.film !== null) keys.film.add(row.film);
        if (row.person !== null) keys.person.add(row.person);
        if (row.genre !== null) keys.genre.add(row.genre);
      }
      const plan = fanOut.plan({ table, keys });
      this.deps.clock?.heard(plan.members);
      if (resolving > RESOLVE_AT_MOST_ROWS) {
        if (walk) for (const resolution of plan.resolutions) reload.add(resolution.kind);
        plan.resolutions = [];
      }
      queued += await fanOut.run(plan);
    }
    return { queued, rows, reload };
  }

  /**
   * Queue every document of `kinds`: what a pass does instead of resolving a statement over more
   * than RESOLVE_AT_MOST_ROWS rows (`tables`), once it has read every table up to its snapshot
   * (`upTo`). Resolves to how many it queued.
   */
  private async walkAfterManyRows(
    kinds: ReadonlySet<DocumentKind>,
    tables: readonly { table: sql.PolledTable; rows: number }[],
    upTo: Snapshot,
    signal?: AbortSignal,
  ): Promise<number> {
    const said = { tables, indices: [...kinds].map((k) => k.name) };
    // A walk of whole indices lasts as long as a full load, and this pass is the one the live
    // path would leave what it hears to: meanwhile it queues it, as during a load, instead.
    this.incremental = false;
    this.deps.log.info(
      said,
      'many rows changed: queueing every document of the indices they fan out to',
    );
    // What committed since this pass's snapshot is the next pass's, which comes after the walk:
    // read beside it, as beside a full load (sidePasses). Edits the live path hears meanwhile it
    // queues itself, but those made before it knew (while the rows were resolved, and writers
    // that saw the syncer awake sent nothing) were left to that next pass.
    const walked = new AbortController();
    const side = this.sidePasses(
      { what: 'walk after many rows changed', since: upTo, fromWatermarks: false, key: null },
      AbortSignal.any([walked.signal, ...(signal ? [signal] : [])]),
    );
    let queued = 0;
    try {
      for (const kind of kinds) queued += (await this.queueEvery(kind, signal)).queued;
    } finally {
      walked.abort();
      await side;
    }
    if (!signal?.aborted)
      this.deps.log.info(
        said,
        'many rows changed: every document of the indices they fan out to is queued instead',
      );
    return queued;
  }

  /**
   * Every document of one kind, ETL_SIZE_LIMIT ids per read, each page only once the queue has
   * room: how many read, how many new. `resume` starts after a key and hears of every page queued.
   */
  private async queueEvery(
    kind: DocumentKind,
    signal?: AbortSignal,
    resume: { from?: unknown[]; onPage?: (last: unknown[], queued: number) => Promise<void> } = {},
  ): Promise<{ read: number; queued: number }> {
    const { db, queue, sizeLimit, sleepMs } = this.deps;
    let queued = 0;
    let read = 0;
    const bound = fullLoadQueueBound(sizeLimit);
    const pages = keysetPages({
      pageSize: sizeLimit,
      read: async (after: unknown[] | undefined) => {
        const depth = await this.room(signal);
        // A page of ids takes a millisecond and is what keeps the indexers busy: the walk goes
        // ahead of their document queries, and while the queue is short it reads several pages
        // (each at most ETL_SIZE_LIMIT rows) in one turn of the lock. One page per turn, behind
        // every indexer, fell behind as soon as there were four of them.
        const turn = Math.max(1, Math.min(PAGES_PER_TURN, Math.floor((bound - depth) / sizeLimit)));
        return this.read(
          `queue every ${kind.noun}`,
          async () => {
            const rows: { id: string }[] = [];
            let from = after;
            for (let n = 0; n < turn; n++) {
              const page = await readPage(db, kind.ids, [sizeLimit], from);
              rows.push(...page);
              const last = page.at(-1);
              if (page.length < sizeLimit || !last) break;
              from = [last.id];
            }
            return rows;
          },
          { first: true },
        );
      },
      keyOf: (row) => [row.id],
      pause: () => sleep(sleepMs, signal),
      signal,
      from: resume.from,
    });
    for await (const page of pages) {
      read += page.length;
      const added = await queue.enqueue(page.map((r) => memberOf(kind.name, r.id)));
      queued += added;
      const last = page.at(-1);
      if (last) await resume.onPage?.([last.id], added);
    }
    return { read, queued };
  }

  /**
   * Wait while the queue holds a bound's worth of documents (until it is half empty); resolves to
   * how many documents it holds then.
   */
  private async room(signal?: AbortSignal): Promise<number> {
    const { queue, sizeLimit, whileWaiting } = this.deps;
    const bound = fullLoadQueueBound(sizeLimit);
    // What the live path heard meanwhile goes in now, ahead of the next page: while this load
    // runs, no pass reads it (see servesLive).
    await whileWaiting?.();
    let depth = await queue.depth();
    if (depth < bound) return depth;
    do {
      await whileWaiting?.();
      await sleep(ROOM_CHECK_MS, signal);
      depth = await queue.depth();
    } while (!signal?.aborted && depth >= bound / 2);
    return depth;
  }

  /**
   * The database went back in time (src/capture/rewind.ts): raise the version base if needed,
   * then, when the watermarks belong to a lost history, drop them with the epoch; resolves to
   * whether every index must be loaded again. Each step may be repeated: interrupted, the next
   * pass finds what is left.
   */
  private async recoverFromRewind(
    rewind: Rewind,
    now: Snapshot,
    { forget = true }: { forget?: boolean } = {},
  ): Promise<boolean> {
    const { db, log, watermarks } = this.deps;
    log.error(
      {
        behind_by: rewind.behindBy.toString(),
        lost_in_crash: rewind.lostInCrash,
        other_history: rewind.otherHistory,
        other_tables: rewind.otherTables,
        server_xmax: now.xmax,
        server: now.system,
        timeline: now.timeline,
        relations: now.relations,
        version_base: now.base,
        raise_base_to: rewind.raiseBaseTo?.toString() ?? null,
      },
      rewind.reload
        ? 'the database went back in time, or is another server or history than the indices ' +
            'were synced from (restored from a backup, a standby promoted, moved by dump and ' +
            'restore, restored in place with pg_restore, the catalog tables or their capture ' +
            'triggers made anew by hand or by an upgrade (migration 0012 makes two anew: one ' +
            'load more, expected), or a crash that lost the last transactions it had ' +
            "reported ended): versions are raised past the indices' and every index is loaded " +
            'again'
        : "the version base is below what the indices were written with: raised past the indices'",
    );
    if (rewind.raiseBaseTo !== null) {
      const target = rewind.raiseBaseTo.toString();
      const raised = await this.read('raise version base', () =>
        db.query(sql.raiseVersionBase, [target]).catch((err: unknown) => {
          throw new Error(
            `cannot raise etl.version_base to ${target} (${(err as Error).message}): ` +
              "grant UPDATE on it to the syncer's role (README, Security); until then every " +
              'write is refused as stale',
          );
        }),
      );
      if (raised.length === 0) throw new Error('etl.version_base has no row: run npm run migrate');
    }
    if (!rewind.reload) return false;
    // Transactions heard before: their ids may be used again by the new history.
    this.deps.handled?.forgetAll();
    // Not when a load is being planned: it runs under the epoch just ensured, and a watermark
    // left from the lost history is found by the first pass after it.
    if (forget) await watermarks.forget();
    return true;
  }

  /** A pass that turns into a full load: see `servesLive`. */
  private load(...args: Parameters<Poller['fullLoad']>): Promise<PassResult> {
    this.incremental = false;
    return this.fullLoad(...args);
  }

  /**
   * Queue every document of `scope.kinds` (all kinds by default) and sweep those whose row is
   * gone; then set the watermarks of `scope.tables` (all by default) to the snapshot taken first.
   * A load that was interrupted resumes where it stopped. `fresh` (after a TRUNCATE): only one
   * begun after the truncation, i.e. the load it called for; an older plan's snapshot still holds
   * the removed rows, and its load starts over.
   */
  async fullLoad(
    signal?: AbortSignal,
    scope: { kinds: readonly LoadedKind[]; tables: readonly WatermarkTable[] | 'all' } = {
      kinds: this.deps.kinds,
      tables: 'all',
    },
    fresh = false,
  ): Promise<PassResult> {
    const { watermarks, log, onFullLoad, plans } = this.deps;
    // One full load at a time across syncers; the others keep serving the live path.
    const guard = await watermarks.guardFullLoad(this.deps.owner, (reason) =>
      log.warn({ reason }, 'full-load lease: could not refresh it, or lost it'),
    );
    if (!guard) {
      log.debug('another syncer is running the full load');
      return { kind: 'skipped', queued: 0, rows: 0 };
    }
    try {
      if (!(await this.stillNeeded(scope, fresh))) {
        log.info(
          { indices: scope.kinds.map((k) => k.kind.name), truncation: fresh },
          'full load not needed any more: another syncer served its reason',
        );
        return { kind: 'skipped', queued: 0, rows: 0 };
      }
      const serverRun = await watermarks.serverRun();
      const { epoch } = await watermarks.ensureEpoch(randomUUID());
      const { plan, run } = await this.plan(epoch, scope, fresh, serverRun);
      // The walk stops when asked to, when the lease is lost (another syncer may be loading by
      // now), or when the plan is found replaced (Redis restarted empty under it, say): the
      // load in force finishes the work, and this one must not touch its state.
      const walk = AbortSignal.any([guard.lostSignal, run.superseded, ...(signal ? [signal] : [])]);
      // A function, not a field read: it changes while we await, which narrowing cannot see.
      const halted = () => walk.aborted;
      const stopped = (queued: number, rows: number): PassResult => {
        if (!signal?.aborted)
          log.warn(
            { lease_lost: guard.lost, plan_replaced: run.superseded.aborted, queued },
            'full load stopped: its lease was lost, a newer plan replaced it, or redis restarted',
          );
        return { kind: signal?.aborted ? 'full' : 'skipped', queued, rows };
      };
      // Not begun at all (Redis restarted since its run was read, see FullLoadPlans.begin): no
      // progress to show, no index to relax for a load.
      if (halted()) return stopped(0, 0);
      const kinds = this.deps.kinds.filter((loaded) => plan.kinds.includes(loaded.kind.name));
      const before = await plans.queued();
      await onFullLoad?.(
        Math.max(0, plan.total - before),
        kinds.map((k) => k.kind),
      );
      // The sweep walks each index beside the walk that queues every document, not after it: it
      // has nothing to do with what the load queues (rows that exist), and the indexers are busy
      // meanwhile. Run after it, the sweep of a first load walked the whole index just filled
      // while the machine idled: a fifth of the load's time (50,000 films).
      // A failing sweep does not stop the queueing: one that Elasticsearch refuses (a search
      // rejected under the load's own writes) must not hold up loading every index. A failing
      // walk (Postgres away) stops the sweep, which may otherwise wait long for earlier writes.
      // Either failure is thrown once both have ended; the next pass resumes from the cursors.
      const tally = { queued: 0, rows: 0 };
      const walkFailed = new AbortController();
      const walked = new AbortController();
      const side = this.sidePasses(
        {
          what: 'full load',
          since: plan.snapshot,
          fromWatermarks: true,
          key: plan.id === undefined ? null : `${plan.id}/${serverRun}`,
        },
        AbortSignal.any([walk, walked.signal]),
      );
      try {
        await allSettled([
          this.queueSteps(kinds, run, walk, tally).catch((err: unknown) => {
            walkFailed.abort();
            throw err;
          }),
          this.sweepSteps(kinds, plan, run, AbortSignal.any([walk, walkFailed.signal]), tally),
        ]);
      } finally {
        walked.abort();
        await side;
      }
      const { queued, rows } = tally;
      if (halted()) return stopped(queued, rows);
      // Watermarks and plan change together, and only while the epoch and the plan are still
      // the ones this load began in.
      const complete = await run.finish(
        watermarks.epochKey,
        this.deps.reloads,
        watermarks.keysOf(plan.tables),
      );
      // Resumed: `read` counts this run's part only, `resumed_after` what earlier runs queued.
      log.info({ read: rows, queued, resumed_after: before, complete }, 'full load queued');
      if (!complete) return stopped(queued, rows);
      this.deps.onFullLoadQueued?.();
      return { kind: 'full', queued, rows };
    } finally {
      await guard.release();
    }
  }

  /**
   * While a load walks, what changed since it began (since the watermarks, for tables that have
   * them) is read every `sidePassEveryMs`, from when the walk starts, and queued: edits the live
   * path did not hear (made while this syncer was down, or during a listener outage; a statement
   * too big to list its keys; a writer that saw the syncer awake just before the load) would
   * otherwise wait for the load's end, an hour on a large catalog. Nothing here moves a watermark:
   * the first pass after the load reads the same changes again, as it always did, so a side pass
   * that fails or is cut short loses nothing (it is logged and tried again). Transactions the live
   * path queued are passed over, as in any pass; so are resolutions of more than
   * RESOLVE_AT_MOST_ROWS rows, which a pass would turn into a walk of whole indices: they wait for
   * the load's end, as before. The same beside a pass's walk of whole indices after a statement
   * over very many rows (pollTable), from that pass's snapshot. Never throws.
   */
  private async sidePasses(
    beside: {
      /** What the walk is, for the log. */
      what: string;
      /** Where to read from: the load's plan snapshot, or the pass's own. */
      since: Snapshot;
      /** Read from the watermarks where there are any (a load; a pass is past them already). */
      fromWatermarks: boolean;
      /** Keeps the progress across runs of the same walk in this process (see below); or null. */
      key: string | null;
    },
    signal: AbortSignal,
  ): Promise<void> {
    if (!this.deps.sidePassEveryMs) return;
    const every = Math.max(this.deps.sidePassEveryMs, SIDE_PASS_GAP_MS);
    const { log, watermarks } = this.deps;
    const { what, since, fromWatermarks, key } = beside;
    // Where the side passes of a load's plan got to, kept across its runs in this process: a walk
    // that failed and resumed (a Postgres blip) goes on from there instead of reading every change
    // since the plan began once more. Another process, a restart, or a Redis that restarted (what
    // they queued may be gone with it) starts from the plan.
    const kept = this.sideFrom;
    const from =
      kept && key !== null && kept.plan === key ? kept.from : new Map<sql.PolledTable, Snapshot>();
    if (key !== null) this.sideFrom = { plan: key, from };
    // A function, not a field read: the signal changes while we await, which narrowing cannot see.
    const stopped = () => signal.aborted;
    while (!stopped()) {
      try {
        if (from.size === 0) {
          const marks = fromWatermarks ? await watermarks.getAll() : null;
          for (const table of POLLED) from.set(table, marks?.get(table) ?? since);
        }
        const upTo = await this.snapshot();
        let rows = 0;
        let queued = 0;
        for (const table of POLLED) {
          const mark = from.get(table) ?? since;
          const counted = await this.pollTable(table, mark, upTo, signal, { walk: false });
          if (stopped()) break;
          from.set(table, upTo);
          rows += counted.rows;
          queued += counted.queued;
        }
        if (queued > 0) log.info({ rows, queued }, `${what}: changes made since queued beside it`);
      } catch (err) {
        if (!stopped())
          log.warn(
            { err: (err as Error).message },
            `${what}: could not read the changes made since it began; the pass after it will`,
          );
      }
      await sleep(every, signal);
    }
  }

  /** The plan's queueing steps, each from its cursor; returns early once `signal` aborts. */
  private async queueSteps(
    kinds: readonly LoadedKind[],
    run: PlanRun,
    signal: AbortSignal,
    tally: { queued: number; rows: number },
  ): Promise<void> {
    // A function, not a field read: the signal changes while we await, which narrowing cannot see.
    const aborted = () => signal.aborted;
    for (const { kind } of kinds) {
      const step = `queue:${kind.name}`;
      const from = await run.cursor(step);
      if (aborted()) return;
      if (from === 'done') continue;
      const every = await this.queueEvery(kind, signal, {
        from,
        onPage: (last, added) => run.advance(step, last, added),
      });
      tally.queued += every.queued;
      tally.rows += every.read;
      this.deps.log.debug({ index: kind.name, from, ...every }, 'full load: every document queued');
      if (aborted()) return;
      await run.advance(step, 'done', 0);
    }
  }

  /** The plan's sweep steps, each from its cursor; returns early once `signal` aborts. */
  private async sweepSteps(
    kinds: readonly LoadedKind[],
    plan: PlanState,
    run: PlanRun,
    signal: AbortSignal,
    tally: { queued: number },
  ): Promise<void> {
    const aborted = () => signal.aborted;
    let settled = false;
    for (const loaded of kinds) {
      const step = `sweep:${loaded.kind.name}`;
      try {
        const from = await run.cursor(step);
        if (aborted()) return;
        if (from === 'done') continue;
        if (!settled) {
          await this.settleEarlierWrites(plan.earlierClaims ?? [], signal);
          settled = true;
        }
        if (aborted()) return;
        await loaded.indexed.refresh();
        // Added after the await, not with +=: the queueing walk adds to the tally meanwhile.
        const orphans = await this.sweepOrphans(loaded, signal, {
          from: typeof from?.[0] === 'string' ? from[0] : undefined,
          onPage: (last, added) => run.advance(step, [last], added),
        });
        tally.queued += orphans;
        if (aborted()) return;
        await run.advance(step, 'done', 0);
      } catch (err) {
        // Said now: the pass fails only once the queueing walk beside it has ended, maybe long
        // after.
        this.deps.log.warn(
          { index: loaded.kind.name, err: (err as Error).message },
          'orphan sweep failed; the load goes on, and the next pass resumes the sweep',
        );
        throw err;
      }
    }
  }

  /**
   * Under the full-load lease: whether the reason the pass found for this load still holds. The
   * pass read it before taking the lease, and another syncer's load may have finished in between
   * (it moves the watermarks and removes the reload requests it served before it lets the lease
   * go). Without this, two syncers that saw the same TRUNCATE could each load the whole catalog.
   * Reads what a new pass would, so answering "not needed" is never unsafe: the next pass decides
   * again from the same state.
   */
  private async stillNeeded(
    scope: { kinds: readonly LoadedKind[]; tables: readonly WatermarkTable[] | 'all' },
    truncation: boolean,
  ): Promise<boolean> {
    const { watermarks } = this.deps;
    if ((await watermarks.epoch()) === null) return true;
    const marks = await watermarks.getAll();
    // Missing watermarks (a first load, one interrupted, state lost) are a reason until set.
    const tables = scope.tables === 'all' ? [...marks.keys()] : scope.tables;
    if (tables.some((table) => marks.get(table) === null)) return true;
    if (truncation) {
      const mark = marks.get('truncation');
      if (!mark) return true;
      return (await this.truncatedSince(mark)).length > 0;
    }
    // A reload (no watermark to set): while one of its indices still has a request pending.
    if (scope.tables !== 'all' && scope.tables.length === 0) {
      const pending = await this.kindsToReload();
      return scope.kinds.some((loaded) => pending.includes(loaded));
    }
    return false;
  }

  /** The plan in force: the interrupted one when it covers `scope`, else a new one. */
  private async plan(
    epoch: string,
    scope: { kinds: readonly LoadedKind[]; tables: readonly WatermarkTable[] | 'all' },
    fresh: boolean,
    serverRun: string,
  ): Promise<{ plan: PlanState; run: PlanRun }> {
    const { plans, log } = this.deps;
    const old = await plans.current();
    // The plan may be all that is left of a history the database has lost (Redis kept it, or
    // came back with it, but no watermark): its load wrote versions the new history's reads are
    // below, which must be raised past first, or every write of the load that replaces it is
    // refused as stale and the lost history's documents stay.
    const rewind = old ? rewindOf(await this.snapshot(), [old.snapshot]) : null;
    if (rewind) await this.recoverFromRewind(rewind, await this.snapshot(), { forget: false });
    if (
      old?.id !== undefined &&
      old.epoch === epoch &&
      covers(old, scope) &&
      // After a TRUNCATE, only a plan begun after it (the interrupted load it called for): an
      // older one's snapshot still holds the removed rows.
      (!fresh || (await this.truncatedSince(old.snapshot)).length === 0) &&
      // Never a plan of a timeline the database has lost (src/capture/rewind.ts): its snapshot,
      // ahead of the server, would become the watermarks.
      !rewind?.reload
    ) {
      log.info(
        { began: old.began, queued: await plans.queued(), indices: old.kinds },
        'full load: resuming where it stopped',
      );
      return { plan: old, run: plans.resume({ ...old, id: old.id }, serverRun) };
    }
    const snapshot = await this.snapshot();
    const counts = new Map<string, number>();
    for (const { kind } of scope.kinds) counts.set(kind.name, await this.count(kind));
    const plan = {
      id: randomUUID(),
      epoch,
      snapshot,
      kinds: scope.kinds.map((k) => k.kind.name),
      tables: scope.tables === 'all' ? 'all' : [...scope.tables],
      total: [...counts.values()].reduce((a, b) => a + b, 0),
      began: new Date().toISOString(),
      // After the snapshot: a claim taken later reads what the load reads (see the sweep).
      earlierClaims: (await this.deps.queue.inFlight()).map((c) => c.claimId),
      // Before any page is queued: the walk comes after each request, so it serves it.
      reloads: await this.pendingReloads(scope.kinds),
      // Before any page is queued too: an index created later was not filled by this load.
      indices: await this.indicesToFill(scope.kinds),
    } satisfies PlanState;
    const run = await plans.begin(plan, serverRun);
    if (!run.superseded.aborted)
      log.info(Object.fromEntries(counts), 'full load: queueing every document');
    return { plan, run };
  }

  /**
   * kind -> the uuid of the index its documents go to now (src/queue/reloadRequests.ts). One that
   * cannot be read is left out: the load goes on, and an index born empty that it filled is then
   * loaded once more (IndexWatch finds no load on record for it), never missed.
   */
  private async indicesToFill(kinds: readonly LoadedKind[]): Promise<Record<string, string>> {
    const indices: Record<string, string> = {};
    for (const { kind, indexed } of kinds) {
      try {
        const uuid = await indexed.uuid();
        if (uuid !== null) indices[kind.name] = uuid;
      } catch (err) {
        this.deps.log.warn(
          { index: kind.name, err: (err as Error).message },
          'full load: could not read which index it fills; that index may be loaded once more',
        );
      }
    }
    return indices;
  }

  /** The kinds whose index was created again and not yet loaded whole since. */
  private async kindsToReload(): Promise<LoadedKind[]> {
    const pending = await this.deps.reloads.pending();
    return this.deps.kinds.filter((loaded) => loaded.kind.name in pending);
  }

  /** The pending reload requests of these kinds: kind -> request id. */
  private async pendingReloads(kinds: readonly LoadedKind[]): Promise<Record<string, string>> {
    const pending = await this.deps.reloads.pending();
    return Object.fromEntries(
      Object.entries(pending).filter(([name]) => kinds.some((k) => k.kind.name === name)),
    );
  }

  /** The planner's estimate when it is big (instant on any size); below 100,000 an exact count. */
  private async count(kind: DocumentKind): Promise<number> {
    const { db } = this.deps;
    const [{ count: estimate } = { count: 0 }] = await this.read(`count ${kind.name}`, () =>
      db.query(kind.estimate),
    );
    if (estimate >= 100_000) return estimate;
    const [row] = await this.read(`count ${kind.name}`, () => db.query(kind.count));
    return row?.count ?? 0;
  }

  /** Documents whose row no longer exists (deleted while nobody kept track) are queued for deletion. */
  /**
   * The sweep finds the documents of rows that left no tombstone (a TRUNCATE, a Redis that lost
   * them) by walking the index. A write that read such a row before it went, and reaches
   * Elasticsearch after the walk went by, would leave its document for good: so wait until every
   * claim that was in flight when the plan began has ended (written, given back, or returned by a
   * reaper), as any of them may have read before the load's snapshot; claims taken later read
   * what the load reads, and are not waited for (one stuck on an Elasticsearch outage would hold
   * the sweep for nothing). Then each index is refreshed before its walk, so what was just
   * written is seen.
   * Left open: after Redis lost everything, claims from before are not in it to wait for.
   */
  private async settleEarlierWrites(claimIds: string[], signal: AbortSignal): Promise<void> {
    const { queue, log, sleepMs } = this.deps;
    const earlier = new Set(claimIds);
    if (earlier.size === 0) return;
    let logged = false;
    while (!signal.aborted) {
      const still = (await queue.inFlight()).filter((c) => earlier.has(c.claimId));
      if (still.length === 0) return;
      if (!logged) {
        log.info({ claims: still.length }, 'full load: waiting for writes begun before it');
        logged = true;
      }
      await this.deps.whileWaiting?.();
      await sleep(Math.max(50, sleepMs), signal);
    }
  }

  private async sweepOrphans(
    { kind, indexed }: LoadedKind,
    signal?: AbortSignal,
    resume: {
      from?: string | undefined;
      onPage?: (last: string, queued: number) => Promise<void>;
    } = {},
  ): Promise<number> {
    const { queue, sizeLimit } = this.deps;
    let queued = 0;
    const pageSize = this.deps.sweepPageSize ?? SWEEP_PAGE_SIZE;
    pages: for await (const page of indexed.pages(pageSize, resume.from)) {
      if (signal?.aborted) break;
      // An id no row can have (not a uuid as Postgres writes it) is not looked up (the cast
      // would fail the query, and the sweep with it, for good): its document goes at once.
      const strays = page.filter((id) => !isCanonicalUuid(id));
      if (strays.length > 0) {
        await indexed.remove(strays);
        this.deps.log.warn(
          { index: kind.name, ids: strays.slice(0, 10), count: strays.length },
          'deleted documents whose id no row can have',
        );
      }
      // The cursor moves slice by slice: a sweep stopped within a page resumes after the last
      // slice it finished, and reads the rest of that page again.
      for (let at = 0; at < page.length; at += sizeLimit) {
        // The whole walk: another page would be one more search of up to 5,000 ids for nothing.
        if (signal?.aborted) break pages;
        const slice = page.slice(at, at + sizeLimit);
        const orphans = await this.rowless(kind, slice.filter(isCanonicalUuid));
        // Within the load's bound, as the walk beside it: after a TRUNCATE every document is an
        // orphan, and a sweep that queued them as fast as it found them would hold the whole
        // index in Redis (and stall everything once Redis refuses writes at its maxmemory).
        if (orphans.length > 0) await this.room(signal);
        const added = orphans.length > 0 ? await queue.enqueue(orphans) : 0;
        queued += added;
        const last = slice.at(-1);
        if (last !== undefined) await resume.onPage?.(last, added);
      }
    }
    // Documents with a dead letter whose row is gone: the index does not hold one it refused, so
    // the walk above never meets it, and after a TRUNCATE (no tombstone) nothing else reads it
    // again; its letter stayed for good. Queued, each is read as a deletion, whose
    // acknowledgement clears the letter. Within the load's bound too: after a guard that raised
    // for every document, letters can be as many as documents.
    if (this.deps.deadLetters && !signal?.aborted) {
      const ids = letteredIds(await this.deps.deadLetters.ofKind(kind.name));
      for (let at = 0; at < ids.length && !signal?.aborted; at += sizeLimit) {
        const slice = ids.slice(at, at + sizeLimit).filter(isCanonicalUuid);
        const gone = await this.rowless(kind, slice);
        if (gone.length === 0) continue;
        await this.room(signal);
        queued += await queue.enqueue(gone);
      }
    }
    if (queued > 0)
      this.deps.log.info({ index: kind.name, orphans: queued }, 'documents of deleted rows queued');
    return queued;
  }

  /** The queue members of those of `ids` (uuids) whose row does not exist. */
  private async rowless(kind: DocumentKind, ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const existing = await this.read(`orphan sweep ${kind.name}`, () =>
      this.deps.db.query(kind.existing, [ids]),
    );
    const present = new Set(existing.map((r) => r.id));
    return ids.filter((id) => !present.has(id)).map((id) => memberOf(kind.name, id));
  }

  /**
   * A plan that no pass will resume: one begun on what turned out to be stale news (two syncers
   * saw the same TRUNCATE; one loaded and moved the watermarks past it while the other began a
   * fresh plan, which then failed), left in Redis for good: `status` showed a load under way, and
   * a later load would have resumed its old cursor. Called only at the end of an incremental pass,
   * which found every watermark set, no TRUNCATE and no index to reload: whatever plan is in
   * Redis then serves nothing. Dropped under the full-load lease (not while another syncer runs
   * it), and only if still the plan read. Dropping a plan is always safe: a pass that needs a load
   * begins a new one (the reload requests and watermarks say so, not the plan).
   */
  private async dropUnneededPlan(): Promise<void> {
    const { plans, watermarks, log, owner } = this.deps;
    this.planCheckedAt = performance.now();
    const plan = await plans.current();
    if (!plan?.id) return;
    const guard = await watermarks.guardFullLoad(owner, () => undefined);
    if (!guard) return; // another syncer runs a load: maybe this plan
    try {
      if (await plans.discard(plan.id))
        log.info(
          { plan: plan.id, began: plan.began, indices: plan.kinds },
          'dropped a full-load plan that no pass needs any more (its load was done by another)',
        );
    } finally {
      await guard.release();
    }
  }

  private async pruneTombstones(): Promise<void> {
    const marks = await Promise.all(TOMBSTONE_TABLES.map((t) => this.deps.watermarks.get(t)));
    if (marks.some((mark) => mark === null)) return;
    const oldest = marks
      .map((mark) => BigInt(mark?.xmin ?? 0))
      .reduce((a, b) => (b < a ? b : a))
      .toString();
    try {
      await this.read('prune tombstones', () => this.deps.db.query(sql.pruneTombstones, [oldest]));
    } catch (err) {
      // A role upgraded without the new grant (README, Security): tombstones are kept, which
      // costs disk, not an edit. Anything else fails the pass as before.
      if ((err as QueryError).code !== INSUFFICIENT_PRIVILEGE) throw err;
      if (this.pruneRefused) return;
      this.pruneRefused = true;
      this.deps.log.warn(
        { err: (err as Error).message },
        'cannot prune old tombstones (are DELETE on etl.*_tombstone and UPDATE on ' +
          'etl.tombstone_horizon granted to this role?): they are kept',
      );
    }
  }

  /** The tables truncated by transactions `since` could not see (committed after it). */
  private truncatedSince(since: Snapshot): Promise<{ table_name: string }[]> {
    return this.read('truncations', () =>
      this.deps.db.query(sql.truncationsSince, [since.xmin, since.xmax, since.xip]),
    );
  }

  private async snapshot(): Promise<Snapshot> {
    return (await this.snapshotNow()).snapshot;
  }

  /** The snapshot a pass starts from, and whether the doorbell's awake window was open then. */
  private async snapshotNow(): Promise<{ snapshot: Snapshot; awake: boolean; pruned: string }> {
    const [row] = await this.read('snapshot', () => this.deps.db.query(sql.currentSnapshot));
    if (!row) throw new Error('current_snapshot returned no row');
    // No pass on a catalog that captures nothing: a `pg_restore --clean` drops the triggers
    // first and makes them last, after the rows. A pass meanwhile would see the tables made anew
    // (rewind.ts) and load a catalog half restored, and the load that follows the last change
    // would wait for that one to end. So the passes fail until the triggers are back, and then
    // one load runs, on the whole catalog.
    if (row.uncaptured !== null)
      throw new Error(
        `content.{${row.uncaptured}} lacks the change capture's triggers (some or all): a ` +
          'restore under way, or the migrations not applied (npm run migrate)',
      );
    // A tombstone horizon at or past the counter is another history's (a dump of another
    // cluster, a backup restored): one of this history is below it, being taken from watermarks.
    // Dropped as soon as any pass or load sees it: kept, it read as a pruning of this history
    // once writers took the counter past it, and every index was loaded again for nothing.
    // Without UPDATE on it (README, Security) it stays, and the pruning's warning says why.
    let pruned = row.pruned;
    if (pruned !== '0' && BigInt(pruned) >= BigInt(row.xmax)) {
      await this.read('drop another history tombstone horizon', () =>
        this.deps.db.query(sql.dropForeignHorizon).catch(() => []),
      );
      pruned = '0';
    }
    return {
      snapshot: {
        xmin: row.xmin,
        xmax: row.xmax,
        xip: row.xip,
        at: row.at.toISOString(),
        base: row.base,
        system: row.system,
        timeline: row.timeline,
        started: row.started,
        checkpointNextXid: row.checkpoint_next_xid,
        checkpointAt: row.checkpoint_at,
        relations: row.relations,
      },
      awake: row.awake,
      pruned,
    };
  }

  private read<T>(what: string, fn: () => Promise<T>, options?: { first?: boolean }): Promise<T> {
    return this.deps.lock.withLock(what, fn, options);
  }
}

/** Whether an interrupted plan loads at least what `scope` asks for. */
function covers(
  plan: PlanState,
  scope: { kinds: readonly LoadedKind[]; tables: readonly WatermarkTable[] | 'all' },
): boolean {
  const kinds = scope.kinds.every((k) => plan.kinds.includes(k.kind.name));
  if (plan.tables === 'all') return kinds;
  const tables = plan.tables;
  return kinds && scope.tables !== 'all' && scope.tables.every((t) => tables.includes(t));
}
