/**
 * Indices to load again whole. An index created again while the state in Redis goes on (someone
 * deleted it, or Elasticsearch lost its data) holds none of its documents, and the watermarks only
 * bring the changes from now on: every document of its kind must be queued again.
 *
 * A request stays in Redis (`full-load:reload`, kind -> request id) until a full load that began
 * after it, and covered its kind, finishes: the load records the ids it serves, and its finish
 * removes only those (fullLoadFinish.lua). An index deleted again while a load runs gets a new id,
 * which that load does not remove, so the kind is loaded once more. A syncer that dies meanwhile
 * leaves the request for the next one.
 */
import { randomUUID } from 'node:crypto';
import type { KindName } from '../kinds/documentKind.js';
import type { RedisStore } from './redisStore.js';

export class ReloadRequests {
  constructor(private readonly store: RedisStore) {}

  get key(): string {
    return this.store.key('full-load', 'reload');
  }

  /** This kind's index is new: load every document of the kind again. */
  async request(kind: KindName): Promise<void> {
    await this.store.redis.hset(this.key, kind, randomUUID());
    // Lost in a failover, the index would stay partial for good: nothing asks again.
    await this.store.confirm(this.key);
  }

  /** The requests not yet served: kind -> request id. */
  pending(): Promise<Record<string, string>> {
    return this.store.redis.hgetall(this.key);
  }
}
