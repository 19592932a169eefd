/**
 * One round trip to each service, with a timeout, so a wrong URL or a stopped server is a clear
 * message at start-up rather than a hang.
 */
import { createRedisClient } from '../queue/redisClient.js';
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
  } finally {
    redis.disconnect();
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
