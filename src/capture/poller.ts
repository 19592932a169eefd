/**
 * The polling fallback and catch-up: per table, the rows written since that table's watermark,
 * ETL_SIZE_LIMIT at a time, resolved to films and queued; only then does the watermark advance.
 * It runs at start, after every listener reconnect, every ETL_POLL_INTERVAL_MS, and whenever a
 * statement was too big to list its keys in a notification.
 *
 * Without watermarks (first start, or Redis came back empty) it runs a full load instead: every
 * film is queued and documents of films that no longer exist are swept, and the watermarks are set
 * to the snapshot taken before the load began. A TRUNCATE (no row-level trace) does the same.
 *
 * Several pollers (several syncers) may run at once: passes are idempotent, and a pass that writes
 * an older watermark over a newer one only makes the next pass re-read a little more.
 */
import { randomUUID } from 'node:crypto';
import { keysetPages, readPage } from '../db/keysetPages.js';
import type { Postgres } from '../db/postgres.js';
import type { Logger } from '../logger.js';
import type { FilmQueue } from '../queue/filmQueue.js';
import type { ReadLock } from '../queue/readLock.js';
import type { Snapshot, WatermarkTable, Watermarks } from '../queue/watermarks.js';
import * as sql from '../sql/queries.js';
import { sleep } from '../util/sleep.js';
import type { FilmResolver } from './resolver.js';

/** Tables polled row by row, in this order; what each row yields. */
const POLLED: {
  table: Exclude<WatermarkTable, 'truncation'>;
  yields: 'films' | 'person' | 'genre';
}[] = [
  { table: 'film_work', yields: 'films' },
  { table: 'genre', yields: 'genre' },
  { table: 'person', yields: 'person' },
  { table: 'genre_film_work', yields: 'films' },
  { table: 'person_film_work', yields: 'films' },
  { table: 'film_tombstone', yields: 'films' },
];

/** Where the orphan sweep finds the ids of the documents in the index. */
export interface IndexedIds {
  pages(pageSize: number): AsyncGenerator<string[]>;
}

export interface PassResult {
  kind: 'incremental' | 'full' | 'skipped';
  queued: number;
  rows: number;
}

export interface PollerDeps {
  db: Postgres;
  lock: ReadLock;
  queue: FilmQueue;
  watermarks: Watermarks;
  resolver: FilmResolver;
  indexed: IndexedIds;
  log: Logger;
  sizeLimit: number;
  sleepMs: number;
  owner: string;
  /** Transactions the live path has queued already: their rows are not queued again. */
  handled?: { has(txid: string): boolean; forgetBelow(xmin: string): void };
  /** A full load began, with about this many films to load. */
  onFullLoad?: (films: number) => void | Promise<void>;
  /** Every film of that full load is queued (not yet indexed). */
  onFullLoadQueued?: () => void;
}

export class Poller {
  private passes = 0;
  /** Rows passed over because the live path had queued their transaction (for tests, metrics). */
  skipped = 0;

  constructor(private readonly deps: PollerDeps) {}

  async pass(signal?: AbortSignal): Promise<PassResult> {
    const { watermarks, log } = this.deps;
    const epoch = await watermarks.epoch();
    const marks = await watermarks.getAll();
    const missing = [...marks.entries()]
      .filter(([, mark]) => mark === null)
      .map(([table]) => table);
    if (epoch === null || missing.length > 0) {
      log.info({ missing_watermarks: missing, epoch }, 'no complete watermark: full load');
      return this.fullLoad(signal);
    }
    const snapshot = await this.snapshot();
    const truncation = marks.get('truncation');
    if (truncation) {
      const truncated = await this.read('truncations', () =>
        this.deps.db.query(sql.truncationsSince, [
          truncation.xmin,
          truncation.xmax,
          truncation.xip,
        ]),
      );
      if (truncated.length > 0) {
        log.info({ tables: truncated.map((t) => t.table_name) }, 'table truncated: full load');
        return this.fullLoad(signal);
      }
    }

    let queued = 0;
    let rows = 0;
    for (const { table, yields } of POLLED) {
      const mark = marks.get(table);
      if (!mark) continue;
      const counted = await this.pollTable(table, yields, mark, signal);
      if (signal?.aborted) return { kind: 'incremental', queued: queued + counted.queued, rows };
      queued += counted.queued;
      rows += counted.rows;
      if (!(await watermarks.advance(epoch, [table], snapshot))) {
        log.warn('redis state was reset during a pass; the next pass runs a full load');
        return { kind: 'incremental', queued, rows };
      }
    }
    await watermarks.advance(epoch, ['truncation'], snapshot);
    this.deps.handled?.forgetBelow(snapshot.xmin);
    if (++this.passes % 100 === 1) await this.pruneTombstones();
    if (rows > 0) log.debug({ rows, queued }, 'poll pass found changes');
    return { kind: 'incremental', queued, rows };
  }

  private async pollTable(
    table: Exclude<WatermarkTable, 'truncation'>,
    yields: 'films' | 'person' | 'genre',
    mark: Snapshot,
    signal?: AbortSignal,
  ): Promise<{ queued: number; rows: number }> {
    const { db, queue, resolver, sizeLimit, sleepMs } = this.deps;
    const query = sql.changedRowsByTable[table];
    let queued = 0;
    let rows = 0;
    const pages = keysetPages({
      pageSize: sizeLimit,
      read: (after: unknown[] | undefined) =>
        this.read(`poll ${table}`, () =>
          readPage(db, query, [mark.xmin, mark.xmax, mark.xip, sizeLimit], after),
        ),
      keyOf: (row) => [row.txid, row.key],
      pause: () => sleep(sleepMs, signal),
      signal,
    });
    for await (const page of pages) {
      rows += page.length;
      const handled = this.deps.handled;
      const fresh = handled ? page.filter((r) => !handled.has(r.txid)) : page;
      this.skipped += page.length - fresh.length;
      const ids = [...new Set(fresh.map((r) => r.out))];
      if (ids.length === 0) continue;
      if (yields === 'films') queued += await queue.enqueue(ids);
      else {
        for await (const films of resolver.filmsOf(yields, ids))
          queued += await queue.enqueue(films);
      }
    }
    return { queued, rows };
  }

  /** Queue every film and sweep documents of films that are gone; then set every watermark. */
  async fullLoad(signal?: AbortSignal): Promise<PassResult> {
    const { db, queue, watermarks, log, sizeLimit, sleepMs, onFullLoad } = this.deps;
    // One full load at a time across syncers; the others keep serving the live path.
    const guard = await watermarks.guardFullLoad(this.deps.owner, (reason) =>
      log.warn({ reason }, 'full-load lease lost; another syncer may start a full load too'),
    );
    if (!guard) {
      log.debug('another syncer is running the full load');
      return { kind: 'skipped', queued: 0, rows: 0 };
    }
    try {
      const { epoch } = await watermarks.ensureEpoch(randomUUID());
      const snapshot = await this.snapshot();
      // The planner's estimate is instant; below 100,000 films (or never analysed) count exactly.
      const [{ count: estimate } = { count: 0 }] = await this.read('count films', () =>
        db.query(sql.estimateFilms),
      );
      const total =
        estimate >= 100_000
          ? estimate
          : ((await this.read('count films', () => db.query(sql.countFilms)))[0]?.count ?? 0);
      log.info({ films: total }, 'full load: queueing every film');
      await onFullLoad?.(total);
      let queued = 0;
      let rows = 0;
      const pages = keysetPages({
        pageSize: sizeLimit,
        read: (after: unknown[] | undefined) =>
          this.read('full load', () => readPage(db, sql.filmIdPages, [sizeLimit], after)),
        keyOf: (row) => [row.id],
        pause: () => sleep(sleepMs, signal),
        signal,
      });
      for await (const page of pages) {
        rows += page.length;
        queued += await queue.enqueue(page.map((r) => r.id));
      }
      if (signal?.aborted) return { kind: 'full', queued, rows };
      queued += await this.sweepOrphans(signal);
      if (signal?.aborted) return { kind: 'full', queued, rows };
      const complete = await watermarks.advance(epoch, 'all', snapshot);
      log.info({ films: rows, queued, complete }, 'full load queued');
      this.deps.onFullLoadQueued?.();
      return { kind: 'full', queued, rows };
    } finally {
      await guard.release();
    }
  }

  /** Documents whose film no longer exists (deleted while nobody kept track) are queued for deletion. */
  private async sweepOrphans(signal?: AbortSignal): Promise<number> {
    const { db, queue, indexed, sizeLimit } = this.deps;
    let queued = 0;
    for await (const ids of indexed.pages(sizeLimit)) {
      if (signal?.aborted) break;
      const existing = await this.read('orphan sweep', () => db.query(sql.existingFilmIds, [ids]));
      const present = new Set(existing.map((r) => r.id));
      const orphans = ids.filter((id) => !present.has(id));
      if (orphans.length > 0) queued += await queue.enqueue(orphans);
    }
    if (queued > 0) this.deps.log.info({ orphans: queued }, 'documents of deleted films queued');
    return queued;
  }

  private async pruneTombstones(): Promise<void> {
    const mark = await this.deps.watermarks.get('film_tombstone');
    if (!mark) return;
    await this.read('prune tombstones', () => this.deps.db.query(sql.pruneTombstones, [mark.xmin]));
  }

  private async snapshot(): Promise<Snapshot> {
    const [row] = await this.read('snapshot', () => this.deps.db.query(sql.currentSnapshot));
    if (!row) throw new Error('current_snapshot returned no row');
    return { xmin: row.xmin, xmax: row.xmax, xip: row.xip, at: row.at.toISOString() };
  }

  private read<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.deps.lock.withLock(what, fn);
  }
}
