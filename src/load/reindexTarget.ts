/**
 * While `npm run reindex` builds a new index, every syncer writes each batch to it as well as to
 * the alias, so the new index misses no change made during the load. The new index's name sits in
 * Redis under `reindex-target`; syncers look it up at most once a second.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Logger } from '../logger.js';
import type { RedisStore } from '../queue/redisStore.js';
import { BulkWriter } from './bulkWriter.js';

export class ReindexTarget {
  private cached: { name: string | null; at: number } = { name: null, at: 0 };
  private writer: BulkWriter | null = null;

  constructor(
    private readonly store: RedisStore,
    private readonly es: Client,
    private readonly log: Logger,
    private readonly cacheMs = 1_000,
  ) {}

  get key(): string {
    return this.store.key('reindex-target');
  }

  async set(index: string): Promise<void> {
    await this.store.redis.set(this.key, index);
  }

  async clear(): Promise<void> {
    await this.store.redis.del(this.key);
  }

  /** The writer for the index being built, or null when no reindex runs. */
  async mirror(): Promise<BulkWriter | null> {
    if (Date.now() - this.cached.at >= this.cacheMs) {
      this.cached = { name: await this.store.redis.get(this.key), at: Date.now() };
    }
    const name = this.cached.name;
    if (name === null) return (this.writer = null);
    if (this.writer?.targetName !== name) {
      this.writer = new BulkWriter(this.es, { name, isAlias: false }, this.log, {
        maxDelayMs: 2_000,
      });
    }
    return this.writer;
  }
}
