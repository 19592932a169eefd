/**
 * Where a full load stands, kept in Redis beside the watermarks, so that a full load interrupted
 * at any point (kill -9, a stop, a lost lease) resumes where it stopped instead of starting over,
 * whichever syncer picks it up.
 *
 *  - `full-load:plan`: what the load covers (kinds, the watermark tables it will set), the
 *    snapshot it started from, the epoch it belongs to, its document estimate, and its id;
 *  - `full-load:cursor`: `plan`, the id of the plan it belongs to; per step (`queue:<kind>`,
 *    `sweep:<kind>`) the key of the last page it finished, or `done`; and `queued`, the
 *    documents queued so far.
 *
 * A step records its cursor only after its page is in the queue: a crash in between queues that
 * page again (the queue holds each document once), never skips it. The snapshot is the one taken
 * when the load began, so resuming later still sets the watermarks to a snapshot older than
 * every row the load read (rows read later are only newer). A plan of another epoch (Redis was
 * reset) is never resumed.
 *
 * A loader works on one plan (PlanRun) and every write it makes names that plan: a loader that
 * outlived its plan (Redis restarted empty under it, its lease lapsed and a newer plan replaced
 * it) can neither move another plan's cursor (pages it queued before the restart are gone, and a
 * loader resuming from its place would skip them) nor set the watermarks or delete the plan in
 * force. It learns so (`superseded`) and stops. The same holds for a loader whose Redis restarted
 * with its data (persistence): the plan is still there, but the cursor and the queue are as they
 * were when last saved, so every write also names the server run the loader began in
 * (RedisStore.serverRun) and is refused on another; the next pass resumes from the saved cursor.
 */
import type { KindName } from '../kinds/documentKind.js';
import type { RedisStore } from './redisStore.js';
import type { Snapshot, WatermarkTable } from './watermarks.js';

export interface PlanState {
  /** Absent in plans written before 0.2: those are never resumed. */
  id?: string;
  epoch: string;
  snapshot: Snapshot;
  kinds: KindName[];
  tables: WatermarkTable[] | 'all';
  /** Documents to load, as estimated when it began. */
  total: number;
  began: string;
  /** Claims in flight when it began: its orphan sweep waits for them (absent before 0.3). */
  earlierClaims?: string[];
  /**
   * The reload requests pending when it began, of its kinds (src/queue/reloadRequests.ts): its
   * finish removes them. Absent before 0.4.
   */
  reloads?: Record<string, string>;
  /**
   * The index each kind's documents go to, by Elasticsearch's uuid, when it began: its finish
   * records them as filled (src/queue/reloadRequests.ts). Absent in earlier versions' plans.
   */
  indices?: Record<string, string>;
}

export type StepCursor = unknown[] | 'done' | undefined;

export class FullLoadPlans {
  constructor(private readonly store: RedisStore) {}

  get planKey(): string {
    return this.store.key('full-load', 'plan');
  }

  private get cursorKey(): string {
    return this.store.key('full-load', 'cursor');
  }

  async current(): Promise<PlanState | null> {
    const raw = await this.store.redis.get(this.planKey);
    return raw === null ? null : (JSON.parse(raw) as PlanState);
  }

  /**
   * A new plan replaces any old one, cursors and all; returns the loader's handle on it. `run`:
   * the server's run_id, read before anything the loader relies on (see the header). On a
   * server restarted since, nothing is written and the handle is superseded from the start.
   */
  async begin(plan: PlanState & { id: string }, run: string): Promise<PlanRun> {
    const begun = await this.store.run(
      'fullLoadBegin',
      [this.planKey, this.cursorKey],
      [plan.id, JSON.stringify(plan), run],
    );
    const handle = this.resume(plan, run);
    if (Number(begun) !== 1) handle.supersede();
    return handle;
  }

  /** The loader's handle on a plan already in Redis (an interrupted load it picks up). */
  resume(plan: PlanState & { id: string }, run: string): PlanRun {
    return new PlanRun(this.store, plan, run, this.planKey, this.cursorKey);
  }

  /** Where `step` of the plan in force stands, whichever plan that is (for status and tests). */
  async cursor(step: string): Promise<StepCursor> {
    return parseCursor(await this.store.redis.hget(this.cursorKey, step));
  }

  /**
   * Drop the plan `id` and its cursor if it is still the one in force; whether it was. Only for a
   * plan no pass needs (src/capture/poller.ts): whoever needs a load again begins a new plan.
   */
  async discard(id: string): Promise<boolean> {
    return (
      Number(await this.store.run('fullLoadDiscard', [this.planKey, this.cursorKey], [id])) === 1
    );
  }

  /** Documents the plan in force queued so far. */
  async queued(): Promise<number> {
    return Number((await this.store.redis.hget(this.cursorKey, 'queued')) ?? 0);
  }
}

/** One loader's work on one plan: every read and write checks that the plan is still in force. */
export class PlanRun {
  private readonly stop = new AbortController();

  constructor(
    private readonly store: RedisStore,
    readonly plan: PlanState & { id: string },
    /** The server's run_id when the loader began: its writes are refused on another. */
    private readonly serverRun: string,
    private readonly planKey: string,
    private readonly cursorKey: string,
  ) {}

  /** Aborts once the plan is found no longer in force: the loader stops walking. */
  get superseded(): AbortSignal {
    return this.stop.signal;
  }

  /** Stop the loader: its plan is not the one in force. */
  supersede(): void {
    this.stop.abort();
  }

  /** Where `step` stands; undefined (and superseded) when another plan is in force. */
  async cursor(step: string): Promise<StepCursor> {
    const [owner, raw] = await this.store.redis.hmget(this.cursorKey, 'plan', step);
    if (owner !== this.plan.id) {
      this.stop.abort();
      return undefined;
    }
    return parseCursor(raw ?? null);
  }

  /** A page of `step` is in the queue: record its last key and what it queued. */
  async advance(step: string, last: unknown[] | 'done', queued: number): Promise<void> {
    const kept = await this.store.run(
      'fullLoadAdvance',
      [this.cursorKey],
      [this.plan.id, step, JSON.stringify(last), queued, this.serverRun],
    );
    if (Number(kept) !== 1) this.stop.abort();
  }

  /**
   * Every step is done: set the plan's watermarks to its snapshot, remove the reload requests it
   * served and record the indices it filled (`reloads`: ReloadRequests' keys) and drop the plan,
   * in one step, if the epoch, the plan and the server's run are still the ones it began with.
   * False (and superseded) otherwise.
   */
  async finish(
    epochKey: string,
    reloads: { key: string; loadedKey: string },
    watermarkKeys: string[],
  ): Promise<boolean> {
    const done = await this.store.run(
      'fullLoadFinish',
      [epochKey, this.planKey, this.cursorKey, reloads.key, reloads.loadedKey, ...watermarkKeys],
      [
        this.plan.epoch,
        this.plan.id,
        JSON.stringify(this.plan.snapshot),
        this.serverRun,
        JSON.stringify(this.plan.reloads ?? {}),
        JSON.stringify(this.plan.indices ?? {}),
      ],
    );
    if (Number(done) !== 1) this.stop.abort();
    return Number(done) === 1;
  }
}

function parseCursor(raw: string | null): StepCursor {
  return raw === null ? undefined : (JSON.parse(raw) as unknown[] | 'done');
}
