/**
 * Per-table watermarks of the poller (the seed's "time of the last record selected", made exact).
 *
 * A watermark is the Postgres snapshot a finished pass started from: every transaction below xmin
 * had ended, those listed in xip were still running, and none at or above xmax had ended (some may
 * have begun: xmax is one past the newest that ended, not the next id given out). The next
 * pass re-reads the rows of exactly the transactions that snapshot could not see, so a long
 * transaction that commits late is read when it commits, however far time has moved on. `at` (the
 * snapshot's wall-clock time) is what people see as the table's lag.
 *
 * `epoch` marks the state as ours: if Redis restarts empty or is flushed, the epoch is gone and the
 * syncer runs a full catch-up instead of resuming from nothing.
 */
import { Lease, type HeldLease } from './lease.js';
import type { RedisStore } from './redisStore.js';

export const WATERMARK_TABLES = [
  'film_work',
  'genre',
  'person',
  'genre_film_work',
  'person_film_work',
  'film_tombstone',
  'person_tombstone',
  'genre_tombstone',
  'truncation',
] as const;

const FULL_LOAD_LEASE_MS = 10_000;

export type WatermarkTable = (typeof WATERMARK_TABLES)[number];

export interface Snapshot {
  xmin: string;
  xmax: string;
  xip: string[];
  at: string;
  /**
   * The version base in force when it was taken (migrations/0008_version_base.sql): xmax plus
   * base is how far the versions of this deployment had gone (src/capture/rewind.ts). Absent in
   * snapshots recorded before 0.3.
   */
  base?: string;
  /** The server's system identifier and timeline then (src/capture/rewind.ts); absent before 0.3. */
  system?: string;
  timeline?: string;
  /**
   * When the server started, and its latest checkpoint: the first id it would give out, and when
   * it began (src/capture/rewind.ts; times in seconds since 1970). Absent before 0.3.
   */
  started?: string;
  checkpointNextXid?: string;
  checkpointAt?: string;
  /**
   * The object ids of the database, of the catalog's tables and of the capture's triggers on them
   * then (src/capture/rewind.ts); absent in snapshots of earlier builds.
   */
  relations?: string;
}

export class Watermarks {
  constructor(
    private readonly store: RedisStore,
    private readonly fullLoadLeaseMs = FULL_LOAD_LEASE_MS,
  ) {}

  private key(table: WatermarkTable): string {
    return this.store.key('watermark', table);
  }

  /** The Redis keys of these watermarks, for scripts that set them with other state. */
  keysOf(tables: readonly WatermarkTable[] | 'all'): string[] {
    return (tables === 'all' ? WATERMARK_TABLES : tables).map((t) => this.key(t));
  }

  async get(table: WatermarkTable): Promise<Snapshot | null> {
    const raw = await this.store.redis.get(this.key(table));
    return raw === null ? null : (JSON.parse(raw) as Snapshot);
  }

  async getAll(): Promise<Map<WatermarkTable, Snapshot | null>> {
    const raw = await this.store.redis.mget(...WATERMARK_TABLES.map((t) => this.key(t)));
    return new Map(
      WATERMARK_TABLES.map((table, i) => {
        const value = raw[i];
        return [table, value ? (JSON.parse(value) as Snapshot) : null];
      }),
    );
  }

  /**
   * Set watermarks if the epoch is still `epoch` and the server has not restarted since `run`
   * (`serverRun()`); false when the state was reset or may have gone back meanwhile.
   */
  async advance(
    epoch: string,
    tables: readonly WatermarkTable[] | 'all',
    snapshot: Snapshot,
    run: string,
  ): Promise<boolean> {
    const done = await this.store.run(
      'advanceWatermarks',
      [this.epochKey, ...this.keysOf(tables)],
      [epoch, JSON.stringify(snapshot), run],
    );
    return Number(done) === 1;
  }

  /**
   * Drop the epoch and every watermark: the next pass loads every index under a new epoch and sets
   * them anew (resuming that load if it is interrupted), and work begun under the old epoch (a
   * pass, a load of another syncer) can no longer record its progress. For a database that went
   * back in time (src/capture/rewind.ts): what was recorded belongs to a history it has lost.
   */
  async forget(): Promise<void> {
    await this.store.redis.del(this.epochKey, ...this.keysOf('all'));
  }

  /** The run_id of the server holding the state (RedisStore.serverRun). */
  serverRun(): Promise<string> {
    return this.store.serverRun(this.epochKey);
  }

  get epochKey(): string {
    return this.store.key('epoch');
  }

  async epoch(): Promise<string | null> {
    return this.store.redis.get(this.epochKey);
  }

  /** Claim a new epoch if none exists; returns the epoch in force (ours or another syncer's). */
  async ensureEpoch(candidate: string): Promise<{ epoch: string; created: boolean }> {
    const created = (await this.store.redis.set(this.epochKey, candidate, 'NX')) === 'OK';
    return { epoch: created ? candidate : ((await this.epoch()) ?? candidate), created };
  }

  /**
   * One full load at a time across syncers: a short lease that the loader refreshes, so a loader
   * that dies holds the others back for at most its TTL. Token-checked: a loader paused past its
   * lease neither extends nor deletes the next loader's. Returns the held lease, or null when
   * another syncer holds it.
   */
  guardFullLoad(owner: string, onLost?: (reason: string) => void): Promise<HeldLease | null> {
    return new Lease(this.store, this.store.key('full-load'), this.fullLoadLeaseMs).tryAcquire(
      owner,
      onLost,
    );
  }
}
