/**
 * `npm run reindex`: rebuild each index behind its alias with no downtime (see
 * src/load/reindexer.ts), one after another; `-- --index films|persons|genres` rebuilds one. Safe
 * while syncers run; they keep the new index current during the load.
 *
 * SIGINT/SIGTERM stop it: before the alias swap, it withdraws its target from the syncers, waits
 * until none can still be mirroring (a few seconds) and deletes its index; after the swap, it
 * finishes. A second signal exits at once; what is left then (and after a SIGKILL) is removed by
 * the next reindex or syncer start. Exit status 0 when every alias was swapped, 1 otherwise (the
 * indices not yet rebuilt are left as they were), 2 for a bad option.
 */
import { loadConfigOrExit } from '../config.js';
import { Postgres } from '../db/postgres.js';
import type { DocumentKind } from '../kinds/documentKind.js';
import { KINDS, KIND_NAMES, kindNamed } from '../kinds/kinds.js';
import { createLogger, type Logger } from '../logger.js';
import { createElasticsearchClient } from '../load/elasticsearchClient.js';
import { reindex } from '../load/reindexer.js';
import { ReindexTarget } from '../load/reindexTarget.js';
import { DeadLetters } from '../queue/deadLetters.js';
import { DocumentQueue } from '../queue/documentQueue.js';
import { ReadLock } from '../queue/readLock.js';
import { RedisStore } from '../queue/redisStore.js';
import { ReloadRequests } from '../queue/reloadRequests.js';
import { parseOptionsOrExit } from './options.js';
import { onStopSignals } from './stopSignals.js';

/** The first signal aborts the returned signal; a second (not the first relayed) exits. */
function stopOnSignals(log: Logger): AbortSignal {
  const stop = new AbortController();
  onStopSignals(
    (name) => {
      log.warn(
        { signal: name },
        'stopping: withdrawing the new index from the syncers, then deleting it',
      );
      stop.abort(new Error(`interrupted by ${name}`));
    },
    (name) => {
      log.warn(
        { signal: name },
        'exiting without cleaning up; the next reindex or syncer start removes what is left',
      );
      process.exit(1);
    },
  );
  return stop.signal;
}

const values = parseOptionsOrExit('reindex', { index: { type: 'string' } });
let kinds: readonly DocumentKind[] = KINDS;
if (values.index !== undefined) {
  const kind = kindNamed(values.index);
  if (!kind) {
    process.stderr.write(`reindex: --index must be one of ${KIND_NAMES.join(', ')}\n`);
    process.exit(2);
  }
  kinds = [kind];
}
const config = loadConfigOrExit();
const log = createLogger(config.logLevel);
const db = new Postgres(config.databaseUrl, log.child({ component: 'postgres' }), 2);
const store = new RedisStore(
  config.redisUrl,
  config.redisPrefix,
  log.child({ component: 'redis' }),
);
const es = createElasticsearchClient(config.elasticsearch);
const signal = stopOnSignals(log);
try {
  for (const kind of kinds) {
    signal.throwIfAborted();
    const result = await reindex({
      kind,
      es,
      db,
      lock: new ReadLock(store, 'reindex', log.child({ component: 'read-lock' })),
      target: new ReindexTarget(store, es, log.child({ component: 'reindex-target' }), kind.name),
      queue: new DocumentQueue(store),
      deadLetters: new DeadLetters(store),
      reloads: new ReloadRequests(store),
      alias: kind.indexName(config),
      sizeLimit: config.sizeLimit,
      bulkSize: config.bulkSize,
      sleepMs: config.sleepMs,
      log: log.child({ component: 'reindex', index: kind.name }),
      signal,
    });
    log.info({ index: kind.name, ...result }, 'reindex done');
  }
} catch (err) {
  log.fatal(
    { err: (err as Error).message },
    signal.aborted
      ? 'reindex interrupted; the alias still points at the old index'
      : 'reindex failed; the alias still points at the old index',
  );
  process.exitCode = 1;
} finally {
  await Promise.allSettled([db.end(), store.close(), es.close()]);
}
