/**
 * The Redis side of the syncer: one connection, every key under REDIS_PREFIX, and the Lua scripts
 * that make each multi-key step atomic. Other classes (queue, lock, watermarks, workers, dead
 * letters) take a RedisStore and never build key names themselves.
 *
 * Keys that one script touches together must live in one hash slot on Redis Cluster: give the
 * prefix a hash tag there (REDIS_PREFIX={movies_etl}:).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from '../logger.js';
import { RetryDelays } from '../util/backoff.js';
import { createRedisClient, type RedisClient } from './redisClient.js';

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');

const SCRIPTS = {
  enqueue: lua('enqueue'),
  claim: lua('claim'),
  ack: lua('ack'),
  release: lua('release'),
  redrive: lua('redrive'),
  clearSuperseded: lua('clearSuperseded'),
  addLetters: lua('addLetters'),
  dueLetters: lua('dueLetters'),
  lockAcquire: lua('lockAcquire'),
  lockRelease: lua('lockRelease'),
  lockReleaseKnocked: lua('lockReleaseKnocked'),
  lockRefresh: lua('lockRefresh'),
  deploymentClaim: lua('deploymentClaim'),
  advanceWatermarks: lua('advanceWatermarks'),
  fullLoadBegin: lua('fullLoadBegin'),
  fullLoadAdvance: lua('fullLoadAdvance'),
  fullLoadFinish: lua('fullLoadFinish'),
  fullLoadDiscard: lua('fullLoadDiscard'),
  reloadBorn: lua('reloadBorn'),
  serverRun: lua('serverRun'),
} as const;

const COMMAND_TIMEOUT_MS = 5_000;
/** How long a write may wait for a replica to confirm it (WAIT), before it counts as failed. */
const CONFIRM_MS = 2_000;
/**
 * A connection that has had a command waiting this long with not a byte back is dropped and
 * made again. A host that died or was cut off without closing it leaves it silent, and the
 * kernel gives up on it only after about 15 minutes (never while a middlebox answers at the TCP
 * level): until then every command timed out on it, and behind Sentinel a new master went
 * unnoticed (a new connection asks the Sentinels again). Well above anything the server takes
 * to answer (WAIT's CONFIRM_MS, the scripts), so a slow Redis is not cut off for being slow.
 */
const SILENT_CONNECTION_MS = 2 * COMMAND_TIMEOUT_MS;
/** How long a count of the master's connected replicas is trusted. */
const REPLICA_CHECK_MS = 5_000;

export type ScriptName = keyof typeof SCRIPTS;

/**
 * A MULTI's results, as values. A command that failed at run time is in its results, not thrown
 * (ioredis): throw it, so that a transaction is never taken as done when part of it failed.
 */
export function transactionResults(results: [Error | null, unknown][] | null): unknown[] {
  if (results === null) throw new Error('redis transaction discarded');
  for (const [err] of results) if (err) throw err;
  return results.map(([, value]) => value);
}

/** Each script's SHA1, as EVALSHA names it: computed here, so no SCRIPT LOAD is needed. */
const SHAS = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, body]) => [
    name,
    createHash('sha1').update(body).digest('hex'),
  ]),
) as Record<ScriptName, string>;

export class RedisStore {
  readonly redis: RedisClient;

  constructor(
    url: string,
    readonly prefix: string,
    private readonly log: Logger,
  ) {
    const reconnects = new RetryDelays({ initialMs: 100, maxMs: 5_000 });
    this.redis = createRedisClient(
      url,
      {
        // Commands wait (queued) while Redis reconnects instead of failing after 20 tries, but
        // never longer than commandTimeout: a command queued while Redis is away would otherwise
        // wait forever, and so would whoever awaits it (a stopping syncer included). The loops
        // above treat the timeout like any failure: back off and try again.
        maxRetriesPerRequest: null,
        commandTimeout: COMMAND_TIMEOUT_MS,
        socketTimeout: SILENT_CONNECTION_MS,
        // ioredis counts attempts from 1 after every loss of the connection.
        retryStrategy: (attempt) => {
          if (attempt === 1) reconnects.reset();
          return reconnects.next();
        },
      },
      // Redis Cluster: reaching the cluster at all is retried the same way.
      { retryStrategy: () => reconnects.next() },
    );
    this.redis.on('error', (err: Error) =>
      this.log.warn({ err: err.message }, 'redis connection error'),
    );
    // A cluster reports each node's connection trouble apart from its own.
    this.redis.on('node error', (err: Error, node: string) =>
      this.log.warn({ err: err.message, node }, 'redis cluster node connection error'),
    );
  }

  private replicaCheck: { at: number; replicas: number } | null = null;

  /**
   * Writes that must survive a failover (documents queued, claims acknowledged, dead letters)
   * call this after they are done: when the master holding `key` has replicas, it waits until one
   * of them has every write this connection made so far (WAIT). Replication is asynchronous, and a
   * failover promotes a replica: a write that only the old master had is gone, and whoever made
   * it (a poller that went on to move its watermark, a live path that marked its transaction
   * handled) would never make it again. Throws when no replica confirms in time (a failover is
   * under way, or the old master lost its replicas): the caller treats it like any failed write
   * and tries again, on the new master once the client finds it.
   *
   * Without replicas (one plain server) it costs nothing: there is no failover to lose writes to.
   */
  async confirm(key: string): Promise<void> {
    if (!(await this.hasReplicas(key))) return;
    // One pipeline on the connection of the node that holds `key` (on Redis Cluster, the keyless
    // WAIT goes where the keyed command before it goes).
    const results = await this.redis.pipeline().exists(key).call('WAIT', 1, CONFIRM_MS).exec();
    const [err, acked] = results?.[1] ?? [new Error('no answer to WAIT'), 0];
    if (err) throw err;
    if (Number(acked) < 1) {
      this.replicaCheck = null;
      throw new Error(
        `no replica confirmed the write within ${CONFIRM_MS} ms (a failover under way?)`,
      );
    }
  }

  private async hasReplicas(key: string): Promise<boolean> {
    const now = Date.now();
    if (this.replicaCheck && now - this.replicaCheck.at < REPLICA_CHECK_MS)
      return this.replicaCheck.replicas > 0;
    const results = await this.redis.pipeline().exists(key).info('replication').exec();
    const info = results?.[1]?.[1];
    const replicas = Number(/^connected_slaves:(\d+)/m.exec(String(info))?.[1] ?? 0);
    this.replicaCheck = { at: now, replicas };
    return replicas > 0;
  }

  /**
   * The run_id of the server holding `key`: it changes with every restart. A server with
   * persistence (RDB save points, AOF) comes back from a crash with what it last saved, so the
   * epoch and the rest look untouched while writes made since are gone; what a process learned
   * from those writes (a transaction it queued, a full load's place) must then be forgotten, and
   * the scripts that act on such knowledge check the run they were given. '' where the server does
   * not say (some Redis-compatible servers), which turns those checks off.
   */
  async serverRun(key: string): Promise<string> {
    return String(await this.run('serverRun', [key], []));
  }

  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  /**
   * Run a Lua script by its SHA; where the server does not know it yet (first use, a restart, a
   * failover, or on Redis Cluster the node that owns the keys), EVAL it whole, which runs it
   * there and teaches it the script for next time.
   */
  async run(script: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(SHAS[script], keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
      return this.redis.eval(SCRIPTS[script], keys.length, ...keys, ...args);
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
