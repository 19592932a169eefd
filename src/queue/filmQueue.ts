/**
 * The queue of film ids waiting to be indexed: the seed's LPUSH/RPOP list, made crash-safe.
 *
 *   enqueue ──LPUSH──▶ [queue] ──RPOP (claim)──▶ [processing:<worker>] ──ack──▶ [history]
 *                         ▲                              │
 *                         └──── release / reaper ────────┘
 *
 * A film waits at most once (the `queued` set); claimed ids stay in the worker's processing list
 * until Elasticsearch acknowledged them, and go back to the head of the queue if the worker gives
 * them up or dies (its heartbeat key expires).
 */
import { EventEmitter } from 'node:events';
import type { RedisStore } from './redisStore.js';

const HISTORY_CAP = 10_000;
const ENQUEUE_CHUNK = 1_000;

export interface Claim {
  workerId: string;
  ids: string[];
  claimedAt: number;
}

export class FilmQueue {
  /** Emits 'enqueued' when this process queued something, so its own workers wake at once. */
  readonly events = new EventEmitter();

  constructor(private readonly store: RedisStore) {}

  private get keys() {
    return {
      queue: this.store.key('queue'),
      queued: this.store.key('queued'),
      claims: this.store.key('claims'),
      history: this.store.key('history'),
    };
  }

  processingKey(workerId: string): string {
    return this.store.key('processing', workerId);
  }

  /** Returns how many ids were not already waiting. */
  async enqueue(ids: Iterable<string>): Promise<number> {
    const all = [...ids];
    let added = 0;
    for (let i = 0; i < all.length; i += ENQUEUE_CHUNK) {
      const chunk = all.slice(i, i + ENQUEUE_CHUNK);
      const { queue, queued } = this.keys;
      added += Number(await this.store.run('enqueue', [queue, queued], chunk));
    }
    if (added > 0) this.events.emit('enqueued', added);
    return added;
  }

  async claim(workerId: string, count: number): Promise<Claim | null> {
    const { queue, queued, claims } = this.keys;
    const now = Date.now();
    const ids = (await this.store.run(
      'claim',
      [queue, queued, this.processingKey(workerId), claims],
      [count, workerId, now],
    )) as string[];
    return ids.length > 0 ? { workerId, ids, claimedAt: now } : null;
  }

  /** The claim is done: Elasticsearch acknowledged every id (or it went to the dead letters). */
  async ack(claim: Claim, loaded: string[]): Promise<void> {
    const { claims, history } = this.keys;
    const at = new Date().toISOString();
    const entries = loaded.map((id) => JSON.stringify({ id, at }));
    await this.store.run(
      'ack',
      [this.processingKey(claim.workerId), claims, history],
      [claim.workerId, HISTORY_CAP, ...entries],
    );
  }

  /** Give a worker's claim back to the head of the queue; returns how many ids went back. */
  async release(workerId: string): Promise<number> {
    const { queue, queued, claims } = this.keys;
    return Number(
      await this.store.run(
        'release',
        [this.processingKey(workerId), queue, queued, claims],
        [workerId],
      ),
    );
  }

  async depth(): Promise<number> {
    return this.store.redis.llen(this.keys.queue);
  }

  /** Claims in flight: worker id -> claimed-at (ms) and size. */
  async inFlight(): Promise<{ workerId: string; since: number; size: number }[]> {
    const claims = await this.store.redis.hgetall(this.keys.claims);
    return Promise.all(
      Object.entries(claims).map(async ([workerId, since]) => ({
        workerId,
        since: Number(since),
        size: await this.store.redis.llen(this.processingKey(workerId)),
      })),
    );
  }

  async history(limit = 20): Promise<{ id: string; at: string }[]> {
    const raw = await this.store.redis.lrange(this.keys.history, 0, limit - 1);
    return raw.map((entry) => JSON.parse(entry) as { id: string; at: string });
  }
}
