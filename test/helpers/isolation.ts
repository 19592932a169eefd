/**
 * Each test gets its own database, Redis prefix and index, so tests never see each other's data.
 * Set KEEP_TEST_DATA=1 to leave them behind for inspection after a failure.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Config } from '../../src/config.js';
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
  cleanup(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export async function createSandbox(label: string): Promise<Sandbox> {
  const base = baseConfig();
  const name = `t_${label.replace(/[^a-z0-9]/g, '_')}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: withDatabase(base.databaseUrl, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const config: Config = {
    ...base,
    databaseUrl: withDatabase(base.databaseUrl, name),
    listenUrl: withDatabase(base.databaseUrl, name),
    redisPrefix: `test:${name}:`,
    index: name.replace(/_/g, '-'),
    personsIndex: `${name.replace(/_/g, '-')}-persons`,
    genresIndex: `${name.replace(/_/g, '-')}-genres`,
  };
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 4 });
  const redis = new Redis(config.redisUrl, { lazyConnect: false });
  const es = createElasticsearchClient(config.elasticsearch);
  const env: Record<string, string> = {
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: config.redisUrl,
    ELASTICSEARCH_URL: config.elasticsearch.url,
    ES_INDEX: config.index,
    ES_PERSONS_INDEX: config.personsIndex,
    ES_GENRES_INDEX: config.genresIndex,
    REDIS_PREFIX: config.redisPrefix,
    METRICS_PORT: '0',
  };

  return {
    name,
    config,
    env,
    pg: pool,
    redis,
    es,
    async cleanup() {
      await pool.end();
      if (process.env.KEEP_TEST_DATA) {
        redis.disconnect();
        await es.close();
        return;
      }
      const keys = await redis.keys(`${config.redisPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      // Wildcard deletes are refused (action.destructive_requires_name): name each index.
      const indices = await es.indices.get({ index: `${config.index}*`, allow_no_indices: true });
      const names = Object.keys(indices);
      if (names.length > 0) await es.indices.delete({ index: names });
      await es.close();
      const dropper = new pg.Client({
        connectionString: withDatabase(base.databaseUrl, 'postgres'),
      });
      await dropper.connect();
      try {
        await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    },
  };
}
