/**
 * The Redis side of the syncer: one connection, every key under REDIS_PREFIX, and the Lua scripts
 * that make each multi-key step atomic. Other classes (queue, lock, watermarks, workers, dead
 * letters) take a RedisStore and never build key names themselves.
 *
 * Keys that one script touches together must live in one hash slot on Redis Cluster: give the
 * prefix a hash tag there (REDIS_PREFIX={movies_etl}:).
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { RetryDelays } from '../util/backoff.js';

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');

const SCRIPTS = {
  enqueue: lua('enqueue'),
  claim: lua('claim'),
  ack: lua('ack'),
  release: lua('release'),
  redrive: lua('redrive'),
  lockRelease: lua('lockRelease'),
  lockRefresh: lua('lockRefresh'),
  advanceWatermarks: lua('advanceWatermarks'),
  fullLoadAdvance: lua('fullLoadAdvance'),
  fullLoadFinish: lua('fullLoadFinish'),
} as const;

const COMMAND_TIMEOUT_MS = 5_000;

export type ScriptName = keyof typeof SCRIPTS;

export class RedisStore {
  readonly redis: Redis;
  private readonly shas = new Map<ScriptName, string>();

  constructor(
    url: string,
    readonly prefix: string,
    private readonly log: Logger,
  ) {
    const reconnects = new RetryDelays({ initialMs: 100, maxMs: 5_000 });
    this.redis = new Redis(url, {
      // Commands wait (queued) while Redis reconnects instead of failing after 20 tries, but
      // never longer than commandTimeout: a command queued while Redis is away would otherwise
      // wait forever, and so would whoever awaits it (a stopping syncer included). The loops
      // above treat the timeout like any failure: back off and try again.
      maxRetriesPerRequest: null,
      commandTimeout: COMMAND_TIMEOUT_MS,
      // ioredis counts attempts from 1 after every loss of the connection.
      retryStrategy: (attempt) => {
        if (attempt === 1) reconnects.reset();
        return reconnects.next();
      },
    });
    this.redis.on('error', (err: Error) =>
      this.log.warn({ err: err.message }, 'redis connection error'),
    );
  }

  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  /** Run a Lua script by SHA, loading it on first use and after Redis lost its script cache. */
  async run(script: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
    let sha = this.shas.get(script);
    if (sha === undefined) {
      sha = (await this.redis.script('LOAD', SCRIPTS[script])) as string;
      this.shas.set(script, sha);
    }
    try {
      return await this.redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
      this.shas.delete(script);
      return this.run(script, keys, args);
    }
  }

  /** QUIT when Redis answers; with Redis away, drop the connection rather than wait. */
  async close(): Promise<void> {
    if (this.redis.status !== 'ready') {
      this.redis.disconnect();
      return;
    }
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
