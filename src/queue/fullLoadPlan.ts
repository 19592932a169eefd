/**
 * Where a full load stands, kept in Redis beside the watermarks, so that a full load interrupted
 * at any point (kill -9, a stop, a lost lease) resumes where it stopped instead of starting over,
 * whichever syncer picks it up.
 *
 *  - `full-load:plan`: what the load covers (kinds, the watermark tables it will set), the
 *    snapshot it started from, the epoch it belongs to, and its document estimate;
 *  - `full-load:cursor`: per step (`queue:<kind>`, `sweep:<kind>`) the key of the last page it
 *    finished, or `done`; and `queued`, the documents queued so far.
 *
 * A step records its cursor only after its page is in the queue: a crash in between queues that
 * page again (the queue holds each document once), never skips it. The snapshot is the one taken
 * when the load began, so resuming later still sets the watermarks to a snapshot older than
 * every row the load read (rows read later are only newer). A plan of another epoch (Redis was
 * reset) is never resumed.
 */
import type { KindName } from '../kinds/documentKind.js';
import type { RedisStore } from './redisStore.js';
import type { Snapshot, WatermarkTable } from './watermarks.js';

export interface PlanState {
  epoch: string;
  snapshot: Snapshot;
  kinds: KindName[];
  tables: WatermarkTable[] | 'all';
  /** Documents to load, as estimated when it began. */
  total: number;
  began: string;
}

export type StepCursor = unknown[] | 'done' | undefined;

export class FullLoadPlans {
  constructor(private readonly store: RedisStore) {}

  private get planKey(): string {
    return this.store.key('full-load', 'plan');
  }

  private get cursorKey(): string {
    return this.store.key('full-load', 'cursor');
  }

  async current(): Promise<PlanState | null> {
    const raw = await this.store.redis.get(this.planKey);
    return raw === null ? null : (JSON.parse(raw) as PlanState);
  }

  /** A new plan replaces any old one, cursors and all. */
  async begin(plan: PlanState): Promise<void> {
    failed(
      await this.store.redis
        .multi()
        .del(this.cursorKey)
        .set(this.planKey, JSON.stringify(plan))
        .exec(),
    );
  }

  async cursor(step: string): Promise<StepCursor> {
    const raw = await this.store.redis.hget(this.cursorKey, step);
    return raw === null ? undefined : (JSON.parse(raw) as unknown[] | 'done');
  }

  /** A page of `step` is in the queue: record its last key and what it queued. */
  async advance(step: string, last: unknown[] | 'done', queued: number): Promise<void> {
    failed(
      await this.store.redis
        .multi()
        .hset(this.cursorKey, step, JSON.stringify(last))
        .hincrby(this.cursorKey, 'queued', queued)
        .exec(),
    );
  }

  async queued(): Promise<number> {
    return Number((await this.store.redis.hget(this.cursorKey, 'queued')) ?? 0);
  }

  async finish(): Promise<void> {
    await this.store.redis.del(this.planKey, this.cursorKey);
  }
}

/** A transaction's command that failed at run time is in its results, not thrown: throw it. */
function failed(results: [Error | null, unknown][] | null): void {
  if (results === null) throw new Error('redis transaction discarded');
  for (const [err] of results) if (err) throw err;
}
