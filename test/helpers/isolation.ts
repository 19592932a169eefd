/**
 * Each test gets its own database, Redis prefix and index, so tests never see each other's data.
 * Set KEEP_TEST_DATA=1 to leave them behind for inspection after a failure. The bench uses the same
 * sandbox, so it can run beside the test suite or a real syncer.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import pg from 'pg';
import { splitUrls, type Config } from '../../src/config.js';
import { createElasticsearchClient } from '../../src/load/elasticsearchClient.js';
import { baseConfig } from './env.js';

export interface Sandbox {
  name: string;
  config: Config;
  /** The environment to hand a child process (the syncer under test). */
  env: Record<string, string>;
  pg: pg.Pool;
  redis: Redis;
  es: Client;
  /** Another empty database beside the sandbox's own, dropped with it; returns its URL. */
  createDatabase(suffix: string): Promise<string>;
  /**
   * Every Redis key under the prefix and every index of the sandbox removed, the databases left
   * as they are: a syncer started now begins as on a new deployment. Nothing may run on them.
   */
  emptyRedisAndIndices(): Promise<void>;
  /** Runs at cleanup before anything is removed: stop what still uses the sandbox. */
  onCleanup(fn: () => Promise<void>): void;
  /** Removes everything; later calls do nothing (an interrupted bench and its own end both call it). */
  cleanup(): Promise<void>;
}

export interface SandboxOptions {
  /** Connections in `pg`: the bench's live phase has more edits in flight than a test. */
  poolSize?: number;
  /** Another Elasticsearch (a cluster a test started): ELASTICSEARCH_URL for the syncer. */
  elasticsearchUrl?: string;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function asAdmin(base: Config, sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: withDatabase(base.databaseUrl, 'postgres') });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** What a child needs to reach Elasticsearch as this process does, credentials included. */
function elasticsearchEnv(es: Config['elasticsearch']): Record<string, string> {
  return {
    ELASTICSEARCH_URL: es.url,
    ...(es.apiKey ? { ELASTICSEARCH_API_KEY: es.apiKey } : {}),
    ...(es.username ? { ELASTICSEARCH_USERNAME: es.username } : {}),
    ...(es.password ? { ELASTICSEARCH_PASSWORD: es.password } : {}),
    ...(es.caCertPath ? { ELASTICSEARCH_CA_CERT: es.caCertPath } : {}),
  };
}

export async function createSandbox(label: string, options: SandboxOptions = {}): Promise<Sandbox> {
  const base = baseConfig();
  const name = `t_${label.replace(/[^a-z0-9]/g, '_')}_${randomBytes(4).toString('hex')}`;
  await asAdmin(base, `CREATE DATABASE ${name}`);
  const databases = [name];
  const config: Config = {
    ...base,
    elasticsearch: {
      ...base.elasticsearch,
      url: options.elasticsearchUrl ?? base.elasticsearch.url,
    },
    databaseUrl: withDatabase(base.databaseUrl, name),
    listenUrl: withDatabase(base.databaseUrl, name),
    redisPrefix: `test:${name}:`,
    index: name.replace(/_/g, '-'),
    personsIndex: `${name.replace(/_/g, '-')}-persons`,
    genresIndex: `${name.replace(/_/g, '-')}-genres`,
  };
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: options.poolSize ?? 4 });
  const redis = new Redis(config.redisUrl, { lazyConnect: false });
  // The test's own client talks to the first node alone: a test may stop the others.
  const es = createElasticsearchClient({
    ...config.elasticsearch,
    url: splitUrls(config.elasticsearch.url)[0] ?? config.elasticsearch.url,
  });
  const env: Record<string, string> = {
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: config.redisUrl,
    ...elasticsearchEnv(config.elasticsearch),
    ES_INDEX: config.index,
    ES_PERSONS_INDEX: config.personsIndex,
    ES_GENRES_INDEX: config.genresIndex,
    REDIS_PREFIX: config.redisPrefix,
    METRICS_PORT: '0',
  };
  const hooks: (() => Promise<void>)[] = [];
  let cleaned = false;
  const emptyRedisAndIndices = async () => {
    const keys = await redis.keys(`${config.redisPrefix}*`);
    // In slices: spreading very many keys into one call overflows the stack.
    for (let i = 0; i < keys.length; i += 1_000) await redis.del(...keys.slice(i, i + 1_000));
    // Wildcard deletes are refused (action.destructive_requires_name): name each index. The
    // persons and genres indices share the films index's name as a prefix.
    const indices = await es.indices.get({
      index: `${config.index}*`,
      allow_no_indices: true,
      expand_wildcards: 'all',
    });
    const names = Object.keys(indices);
    if (names.length > 0) await es.indices.delete({ index: names });
  };

  return {
    name,
    config,
    env,
    pg: pool,
    redis,
    es,
    async createDatabase(suffix) {
      const database = `${name}_${suffix}`;
      await asAdmin(base, `CREATE DATABASE ${database}`);
      databases.push(database);
      return withDatabase(base.databaseUrl, database);
    },
    emptyRedisAndIndices,
    onCleanup(fn) {
      hooks.push(fn);
    },
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      // A child that fails to stop must not keep the rest from being removed.
      for (const hook of hooks) await hook().catch(() => undefined);
      await pool.end();
      if (process.env.KEEP_TEST_DATA) {
        redis.disconnect();
        await es.close();
        return;
      }
      await emptyRedisAndIndices();
      redis.disconnect();
      await es.close();
      for (const database of databases)
        await asAdmin(base, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    },
  };
}
