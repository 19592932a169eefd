/**
 * `reindex()` run in the test's process against a sandbox, with the services' clients it needs,
 * for tests that change what the CLI cannot: the definition reindexed into, the clock.
 */
import type { Config } from '../../src/config.js';
import { Postgres } from '../../src/db/postgres.js';
import type { DocumentKind } from '../../src/kinds/documentKind.js';
import { createElasticsearchClient } from '../../src/load/elasticsearchClient.js';
import { ReindexTarget } from '../../src/load/reindexTarget.js';
import type { ReindexDeps } from '../../src/load/reindexer.js';
import { DeadLetters } from '../../src/queue/deadLetters.js';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { ReadLock } from '../../src/queue/readLock.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { ReloadRequests } from '../../src/queue/reloadRequests.js';
import { testLog } from './syncerHarness.js';

export interface InProcessReindex {
  /** What `reindex()` needs to rebuild the index of `kind` (by its own name) into its definition. */
  deps(kind: DocumentKind): ReindexDeps;
  close(): Promise<void>;
}

export function inProcessReindex(config: Config): InProcessReindex {
  const log = testLog();
  const db = new Postgres(config.databaseUrl, log, 2);
  const store = new RedisStore(config.redisUrl, config.redisPrefix, log);
  const es = createElasticsearchClient(config.elasticsearch);
  return {
    deps: (kind) => ({
      kind,
      es,
      db,
      lock: new ReadLock(store, 'reindex', log),
      target: new ReindexTarget(store, es, log, kind.name),
      queue: new DocumentQueue(store),
      deadLetters: new DeadLetters(store),
      reloads: new ReloadRequests(store),
      alias: kind.indexName(config),
      sizeLimit: config.sizeLimit,
      bulkSize: config.bulkSize,
      sleepMs: 0,
      log,
      noticeMs: 0,
      settleMs: 0,
    }),
    close: async () => {
      await Promise.allSettled([db.end(), store.close(), es.close()]);
    },
  };
}
