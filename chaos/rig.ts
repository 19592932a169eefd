/**
 * Everything one campaign runs against, private to it: a sandbox (own database, index name, Redis
 * prefix), its own redis-server (so "restart empty" and maxmemory never touch the shared Redis),
 * two TCP proxies in front of PostgreSQL (the syncers' pool and their listener, so the listener
 * alone can go half-open), and two HTTP proxies in front of Elasticsearch (EsFaultProxy for
 * cut-off and 429s, EsItemFaults behind it for 5xx items and holding requests).
 *
 *   syncer ──pool──▶ FaultProxy ─┐                 syncer ──▶ EsFaultProxy ──▶ EsItemFaults ──▶ ES
 *   syncer ─listen─▶ FaultProxy ─┴─▶ PostgreSQL     syncer ──▶ private redis-server
 *
 * The campaign's own reads (the oracle, the Redis inspection) go straight to the services, never
 * through a proxy. What can go wrong: close() must run even after a failed start (every step is
 * guarded), or a redis-server and a database are left behind; KEEP_TEST_DATA=1 keeps the data.
 */
import { Redis } from 'ioredis';
import { EsFaultProxy } from '../test/helpers/esFaultProxy.js';
import { EsItemFaults } from '../test/helpers/esItemFaults.js';
import { proxiedUrl, startFaultProxy, type FaultProxy } from '../test/helpers/faultProxy.js';
import { createSandbox, type Sandbox } from '../test/helpers/isolation.js';
import { startRedisServer, type RedisServer } from '../test/helpers/redisServer.js';
import { migrateSandbox } from '../test/helpers/syncerHarness.js';
import { EsFreezer, localElasticsearchPid } from './esFreeze.js';

export interface Rig {
  sandbox: Sandbox;
  redisServer: RedisServer;
  /** Inspection connection to the private Redis (never through a proxy). */
  redis: Redis;
  pgPool: FaultProxy;
  pgListen: FaultProxy;
  esFaults: EsFaultProxy;
  esItems: EsItemFaults;
  freezer: EsFreezer;
  /** The environment every syncer of the campaign gets. */
  syncerEnv: Record<string, string>;
  close(): Promise<void>;
}

export interface RigOptions {
  /** 'off': never SIGSTOP the (shared) Elasticsearch; hold requests in the proxy instead. */
  esFreeze: 'auto' | 'proxy';
}

export async function createRig(options: RigOptions): Promise<Rig> {
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch(() => undefined);
    closers.length = 0;
  };
  try {
    const sandbox = await createSandbox('chaos');
    closers.push(() => sandbox.cleanup());
    await migrateSandbox(sandbox);
    const redisServer = await startRedisServer();
    closers.push(() => redisServer.stop());
    const redis = new Redis(redisServer.url, {
      maxRetriesPerRequest: 2,
      retryStrategy: (attempt) => Math.min(1_000, 50 * attempt),
    });
    redis.on('error', () => undefined);
    closers.push(() => Promise.resolve(redis.disconnect()));
    const pgPool = await startFaultProxy(sandbox.config.databaseUrl);
    closers.push(() => pgPool.close());
    const pgListen = await startFaultProxy(sandbox.config.listenUrl);
    closers.push(() => pgListen.close());
    const esItems = await EsItemFaults.start(sandbox.config.elasticsearch.url);
    closers.push(() => esItems.close());
    const esFaults = await EsFaultProxy.start(esItems.url);
    closers.push(() => esFaults.close());
    const pid =
      options.esFreeze === 'auto' ? localElasticsearchPid(sandbox.config.elasticsearch.url) : null;
    const freezer = new EsFreezer(pid, esItems);
    closers.push(() => Promise.resolve(freezer.dispose()));
    const syncerEnv: Record<string, string> = {
      ...sandbox.env,
      DATABASE_URL: proxiedUrl(sandbox.config.databaseUrl, pgPool),
      DATABASE_LISTEN_URL: proxiedUrl(sandbox.config.listenUrl, pgListen),
      REDIS_URL: redisServer.url,
      ELASTICSEARCH_URL: esFaults.url,
      METRICS_PORT: '0',
      // Small batches: many claims in flight, many chances for a fault to land inside one.
      ETL_SIZE_LIMIT: '50',
      ETL_BULK_SIZE: '25',
      ETL_POLL_INTERVAL_MS: '1000',
      ETL_SLEEP_MS: '5',
      LOG_LEVEL: process.env.CHAOS_SYNCER_LOG_LEVEL ?? 'info',
    };
    return {
      sandbox,
      redisServer,
      redis,
      pgPool,
      pgListen,
      esFaults,
      esItems,
      freezer,
      syncerEnv,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
