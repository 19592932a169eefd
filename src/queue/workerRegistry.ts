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
    const info: WorkerInfo = {
      id: workerId,
      state,
      since: new Date().toISOString(),
      host: hostname(),
      pid: process.pid,
    };
    await this.store.redis
      .multi()
      .hset(this.hashKey, workerId, JSON.stringify(info))
      .set(this.aliveKey(workerId), '1', 'PX', this.heartbeatTtlMs)
      .exec();
  }

  async heartbeat(workerId: string): Promise<void> {
    await this.store.redis.set(this.aliveKey(workerId), '1', 'PX', this.heartbeatTtlMs);
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
   */
  async reapDead(queue: DocumentQueue): Promise<{ workers: string[]; ids: number }> {
    const reaped = new Set<string>();
    let ids = 0;
    for (const claim of await queue.inFlight()) {
      const back = await queue.release(
        { id: claim.claimId, key: claim.key },
        this.aliveKey(claim.workerId),
      );
      if (back < 0) continue; // alive
      ids += back;
      reaped.add(claim.workerId);
    }
    for (const worker of await this.list()) {
      if (worker.alive) continue;
      await this.store.redis.hdel(this.hashKey, worker.id);
      reaped.add(worker.id);
    }
    return { workers: [...reaped], ids };
  }
}
