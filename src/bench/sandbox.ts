/**
 * The bench's own corner of the services: a database (and extra ones on request), a Redis prefix
 * and an index name, all named `bench_<random>`, removed again by cleanup(). Nothing else is read
 * or written, so the bench can run beside the test suite or a real syncer.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Client } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import pg from 'pg';
import { parseConfig, readEnvironment, type Config } from '../config.js';
import { migrate } from '../db/migrator.js';
import { Postgres } from '../db/postgres.js';
import { createElasticsearchClient } from '../load/elasticsearchClient.js';
import { createLogger } from '../logger.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));

export const quietLog = () => createLogger('silent', false);

/**
 * The project's Postgres wrapper without its 15 s client-side query timeout: seeding 100,000 films
 * runs statements (seed_person_links) that take longer than that.
 */
export function unhurriedPostgres(url: string): Postgres {
  return new Postgres(url, quietLog(), 1, 0);
}

export interface BenchSandbox {
  name: string;
  config: Config;
  /** The environment of a syncer process pointed at this sandbox. */
  env: Record<string, string>;
  /** A plain pool for ad-hoc SQL (edits, checks). */
  pool: pg.Pool;
  redis: Redis;
  es: Client;
  /** A key of the syncer's Redis state (`queue`, `claims`, ...). */
  key(name: string): string;
  /** Another empty database, dropped at cleanup; returns its URL. */
  createDatabase(suffix: string): Promise<string>;
  /** Run at cleanup, before anything is dropped (stop children, close pools). */
  onCleanup(fn: () => Promise<void>): void;
  cleanup(): Promise<void>;
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function admin<T>(base: Config, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(base.databaseUrl, 'postgres') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export function baseConfig(): Config {
  const result = parseConfig(readEnvironment());
  if (!result.ok) throw new Error(`configuration is invalid: ${result.problems.join('; ')}`);
  return result.config;
}

export async function createBenchSandbox(): Promise<BenchSandbox> {
  const base = baseConfig();
  const name = `bench_${randomBytes(4).toString('hex')}`;
  const databases = [name];
  await admin(base, (c) => c.query(`CREATE DATABASE ${name}`));
  const config: Config = {
    ...base,
    databaseUrl: withDatabase(base.databaseUrl, name),
    listenUrl: withDatabase(base.databaseUrl, name),
    redisPrefix: `bench:${name}:`,
    index: name.replace(/_/g, '-'),
    logLevel: 'info',
    metricsPort: 0,
  };
  await migrate(config.databaseUrl, MIGRATIONS, quietLog());
  const es = config.elasticsearch;
  const env: Record<string, string> = {
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: config.redisUrl,
    ELASTICSEARCH_URL: es.url,
    ES_INDEX: config.index,
    REDIS_PREFIX: config.redisPrefix,
    ETL_SIZE_LIMIT: String(config.sizeLimit),
    ETL_BULK_SIZE: String(config.bulkSize),
    ETL_SLEEP_MS: String(config.sleepMs),
    ETL_POLL_INTERVAL_MS: String(config.pollIntervalMs),
    ETL_WORKERS: String(config.workers),
    LOG_LEVEL: 'info',
    METRICS_PORT: '0',
    ...(es.apiKey ? { ELASTICSEARCH_API_KEY: es.apiKey } : {}),
    ...(es.username ? { ELASTICSEARCH_USERNAME: es.username } : {}),
    ...(es.password ? { ELASTICSEARCH_PASSWORD: es.password } : {}),
    ...(es.caCertPath ? { ELASTICSEARCH_CA_CERT: es.caCertPath } : {}),
  };
  const hooks: (() => Promise<void>)[] = [];
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 6 });
  pool.on('error', () => undefined);
  const redis = new Redis(config.redisUrl);
  const client = createElasticsearchClient(config.elasticsearch);
  let cleaned = false;

  return {
    name,
    config,
    env,
    pool,
    redis,
    es: client,
    key: (part) => `${config.redisPrefix}${part}`,
    async createDatabase(suffix) {
      const database = `${name}_${suffix}`;
      await admin(base, (c) => c.query(`CREATE DATABASE ${database}`));
      databases.push(database);
      return withDatabase(base.databaseUrl, database);
    },
    onCleanup(fn) {
      hooks.push(fn);
    },
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      for (const hook of hooks) await hook().catch(() => undefined);
      await pool.end().catch(() => undefined);
      const keys = await redis.keys(`${config.redisPrefix}*`);
      for (let i = 0; i < keys.length; i += 1_000) await redis.del(...keys.slice(i, i + 1_000));
      redis.disconnect();
      // Wildcard deletes may be refused (action.destructive_requires_name): name each index.
      const indices = await client.indices.get({
        index: `${config.index}*`,
        allow_no_indices: true,
        expand_wildcards: 'all',
      });
      const names = Object.keys(indices);
      if (names.length > 0) await client.indices.delete({ index: names });
      await client.close();
      await admin(base, async (c) => {
        for (const database of databases)
          await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      });
    },
  };
}
