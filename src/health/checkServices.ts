/**
 * One round trip to each service, with a timeout, so a wrong URL or a stopped server is a clear
 * message at start-up rather than a hang.
 */
import { Cluster } from 'ioredis';
import { createRedisClient, type RedisClient } from '../queue/redisClient.js';
import pg from 'pg';
import { redactUrl, type Config } from '../config.js';
import { describeError } from '../errors.js';
import { createElasticsearchClient } from '../load/elasticsearchClient.js';

const TIMEOUT_MS = 5_000;

export async function checkServices(config: Config): Promise<string[]> {
  const results = await Promise.allSettled([
    checkPostgres(config),
    checkRedis(config),
    checkEs(config),
  ]);
  return results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
}

async function checkPostgres(config: Config): Promise<void> {
  const client = new pg.Client({
    connectionString: config.databaseUrl,
    connectionTimeoutMillis: TIMEOUT_MS,
  });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    throw new Error(
      `PostgreSQL at ${redactUrl(config.databaseUrl)} is not reachable: ${(err as Error).message}`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function checkRedis(config: Config): Promise<void> {
  const redis = createRedisClient(
    config.redisUrl,
    {
      lazyConnect: true,
      connectTimeout: TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    },
    { retryStrategy: () => null },
  );
  // Without a listener ioredis reports the refused connection as an unhandled error event too.
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(
      `Redis at ${redactUrl(config.redisUrl)} is not reachable: ${(err as Error).message}`,
    );
  }
  try {
    // A database the server does not have (`/99` of 16): ioredis says so once and goes on in
    // database 0, where the syncer then kept its state beside whatever else lives there.
    const wanted = redis instanceof Cluster ? 0 : (redis.options.db ?? 0);
    const selected = await selectedDatabase(redis);
    if (selected !== null && selected !== wanted)
      throw new Error(
        `Redis at ${redactUrl(config.redisUrl)} did not select database ${wanted} (it has ` +
          `fewer?): the connection stayed in database ${selected}`,
      );
  } finally {
    redis.disconnect();
  }
}

/** The database this connection uses, from CLIENT INFO (Redis 6.2+); null where it cannot tell. */
async function selectedDatabase(redis: RedisClient): Promise<number | null> {
  try {
    const info = String(await redis.call('CLIENT', 'INFO'));
    const db = /(?:^|\s)db=(\d+)/.exec(info)?.[1];
    return db === undefined ? null : Number(db);
  } catch {
    return null; // an older server, or the command renamed away: nothing to compare
  }
}

async function checkEs(config: Config): Promise<void> {
  const es = createElasticsearchClient(config.elasticsearch);
  try {
    await es.cluster.health({ timeout: '5s' }, { requestTimeout: TIMEOUT_MS });
  } catch (err) {
    throw new Error(
      `Elasticsearch at ${redactUrl(config.elasticsearch.url)} is not reachable: ${describeError(err)}`,
    );
  } finally {
    await es.close();
  }
}
