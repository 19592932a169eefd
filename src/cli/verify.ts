/**
 * `npm run verify`: compare Postgres and the index (ids and content hashes) and report missing,
 * extra and stale documents. `-- --repair` queues those films, so a running syncer fixes them;
 * `-- --json` for machines. Exit status 0 when in step, 3 when drift was found.
 */
import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '../config.js';
import { Postgres } from '../db/postgres.js';
import { createLogger } from '../logger.js';
import { createElasticsearchClient } from '../load/elasticsearchClient.js';
import { IndexedFilmIds } from '../load/indexedIds.js';
import { FilmQueue } from '../queue/filmQueue.js';
import { ReadLock } from '../queue/readLock.js';
import { RedisStore } from '../queue/redisStore.js';
import { checkDrift } from '../verify/driftCheck.js';

const { values } = parseArgs({
  options: {
    repair: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const config = loadConfigOrExit();
const log = createLogger('warn', false);
const db = new Postgres(config.databaseUrl, log, 2);
const store = new RedisStore(config.redisUrl, config.redisPrefix, log);
const es = createElasticsearchClient(config.elasticsearch);
try {
  const target = { name: config.index, isAlias: false };
  const report = await checkDrift({
    db,
    lock: new ReadLock(store, 'verify', log),
    es,
    index: config.index,
    indexed: new IndexedFilmIds(es, target),
    pageSize: config.sizeLimit,
  });
  const drift = [...report.missing, ...report.extra, ...report.stale];
  let queued = 0;
  if (values.repair && drift.length > 0) queued = await new FilmQueue(store).enqueue(drift);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ...report, queued }, null, 2)}\n`);
  } else {
    const sample = (ids: string[]) =>
      ids.length ? ` (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''})` : '';
    process.stdout.write(
      `films in postgres    ${report.films}\n` +
        `documents in index   ${report.documents}\n` +
        `missing              ${report.missing.length}${sample(report.missing)}\n` +
        `extra                ${report.extra.length}${sample(report.extra)}\n` +
        `stale                ${report.stale.length}${sample(report.stale)}\n` +
        (drift.length === 0
          ? 'in step\n'
          : values.repair
            ? `${queued} films queued for the syncer to fix\n`
            : 'run with -- --repair to queue them for the syncer\n'),
    );
  }
  process.exitCode = drift.length === 0 ? 0 : 3;
} catch (err) {
  process.stderr.write(`verify: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await Promise.allSettled([db.end(), store.close(), es.close()]);
}
