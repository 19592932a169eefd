/**
 * Who is doing what: every worker's state (reading, writing, idle ...) with since-when, and a
 * heartbeat key whose expiry marks the worker dead. Any syncer's reaper then gives the dead
 * worker's claim back to the queue.
 */
import { hostname } from 'node:os';
import type { DocumentQueue } from './documentQueue.js';
import type { RedisStore } from './redisStore.js';

export type WorkerState = 'starting' | 'idle' | 'reading' | 'writing';

export interface WorkerInfo {
  id: string;
  state: WorkerState;
  since: string;
  host: string;
  pid: number;
}

export class WorkerRegistry {
  constructor(
    private readonly store: RedisStore,
    private readonly heartbeatTtlMs = 15_000,
  ) {}

  private get hashKey(): string {
    return this.store.key('workers');
  }

  private aliveKey(workerId: string): string {
    return this.store.key('alive', workerId);
  }

  async setState(workerId: string, state: WorkerState): Promise<void> {
    await this.store.redis
      .multi()
      .hset(this.hashKey, workerId, this.info(workerId, state, Date.now()))
      .set(this.aliveKey(workerId), '1', 'PX', this.heartbeatTtlMs)
      .exec();
  }

  /**
   * The worker is alive. With `current`, its entry is written back if it is gone: a process
   * paused past the heartbeat's life (a stopped VM, a long GC) had its workers forgotten by
   * another syncer's reaper, and an idle worker writes no new state by itself, so `npm run
   * status` left it out for as long as it stayed idle. Never over a newer state (HSETNX).
   */
  async heartbeat(
    workerId: string,
    current?: { state: WorkerState; since: number },
  ): Promise<void> {
    const beat = this.store.redis
      .multi()
      .set(this.aliveKey(workerId), '1', 'PX', this.heartbeatTtlMs);
    if (current)
      beat.hsetnx(this.hashKey, workerId, this.info(workerId, current.state, current.since));
    await beat.exec();
  }

  private info(workerId: string, state: WorkerState, since: number): string {
    const info: WorkerInfo = {
      id: workerId,
      state,
      since: new Date(since).toISOString(),
      host: hostname(),
      pid: process.pid,
    };
    return JSON.stringify(info);
  }

  async remove(workerId: string): Promise<void> {
    await this.store.redis.multi().hdel(this.hashKey, workerId).del(this.aliveKey(workerId)).exec();
  }

  async list(): Promise<(WorkerInfo & { alive: boolean })[]> {
    const all = await this.store.redis.hgetall(this.hashKey);
    const infos = Object.values(all).map((raw) => JSON.parse(raw) as WorkerInfo);
    const alive = infos.length
      ? await this.store.redis.mget(...infos.map((w) => this.aliveKey(w.id)))
      : [];
    return infos.map((info, i) => ({ ...info, alive: alive[i] !== null }));
  }

  /**
   * Give back every claim whose worker's heartbeat lapsed (or never existed: a worker that died
   * between its claim and its first heartbeat), and forget dead workers. The liveness check and
   * the give-back are one atomic step (release.lua), so a worker that comes back keeps its claim.
   *
   * `heldHere` says which claim a worker of this process holds (null: none; undefined: not a
   * worker of this process). A claim of one of them that it does not hold is given back whatever
   * its heartbeat says: nobody will ever finish it, and the heartbeat would guard it for good.
   * That must not happen (a worker holds a claim's id from before it asks Redis for it), so this
   * is the net under the ways it still might, and each one is logged.
   */
  async reapDead(
    queue: DocumentQueue,
    heldHere: (workerId: string) => string | null | undefined = () => undefined,
  ): Promise<{ workers: string[]; ids: number; orphans: string[] }> {
    const reaped = new Set<string>();
    const orphans: string[] = [];
    let ids = 0;
    for (const claim of await queue.inFlight()) {
      const held = heldHere(claim.workerId);
      const orphan = held !== undefined && held !== claim.claimId;
      const back = await queue.release(
        { id: claim.claimId, key: claim.key },
        orphan ? undefined : this.aliveKey(claim.workerId),
      );
      if (back < 0) continue; // alive
      ids += back;
      // An orphan with nothing to give back was most likely acknowledged since it was listed
      // (its worker has moved on to the next claim): not worth an error.
      if (!orphan) reaped.add(claim.workerId);
      else if (back > 0) orphans.push(claim.claimId);
    }
    for (const worker of await this.list()) {
      if (worker.alive) continue;
      await this.store.redis.hdel(this.hashKey, worker.id);
      reaped.add(worker.id);
    }
    return { workers: [...reaped], ids, orphans };
  }
}
