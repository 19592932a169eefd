/**
 * `npm run reindex`: rebuild the index behind the ES_INDEX alias with no downtime (see
 * src/load/reindexer.ts). Safe while syncers run; they keep the new index current during the load.
 */
import { loadConfigOrExit } from '../config.js';
import { Postgres } from '../db/postgres.js';
import { createLogger } from '../logger.js';
import { createElasticsearchClient } from '../load/elasticsearchClient.js';
import { reindex } from '../load/reindexer.js';
import { ReindexTarget } from '../load/reindexTarget.js';
import { ReadLock } from '../queue/readLock.js';
import { RedisStore } from '../queue/redisStore.js';

const config = loadConfigOrExit();
const log = createLogger(config.logLevel);
const db = new Postgres(config.databaseUrl, log, 2);
const store = new RedisStore(config.redisUrl, config.redisPrefix, log);
const es = createElasticsearchClient(config.elasticsearch);
try {
  const result = await reindex({
    es,
    db,
    lock: new ReadLock(store, 'reindex', log),
    target: new ReindexTarget(store, es, log),
    alias: config.index,
    sizeLimit: config.sizeLimit,
    bulkSize: config.bulkSize,
    sleepMs: config.sleepMs,
    log,
  });
  log.info({ ...result }, 'reindex done');
} catch (err) {
  log.fatal(
    { err: (err as Error).message },
    'reindex failed; the alias still points at the old index',
  );
  process.exitCode = 1;
} finally {
  await Promise.allSettled([db.end(), store.close(), es.close()]);
}
