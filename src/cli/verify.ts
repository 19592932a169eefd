/**
 * `npm run verify`: compare Postgres and each index (ids and content hashes) and report missing,
 * extra and stale documents. `-- --index films|persons|genres` checks one index (default: all
 * three); `-- --repair` queues what drifted, so a running syncer fixes it; `-- --json` for
 * machines; `-- --settle S` how many seconds to keep looking at what differed before calling it
 * drift (default 10; a live catalog always has a few edits not indexed yet). Exit status 0 when
 * in step, 3 when drift was found, 2 for a bad option.
 */
import { loadConfigOrExit } from '../config.js';
import { Postgres } from '../db/postgres.js';
import type { DocumentKind } from '../kinds/documentKind.js';
import { KINDS, KIND_NAMES, kindNamed, memberOf } from '../kinds/kinds.js';
import { createLogger } from '../logger.js';
import { createElasticsearchClient } from '../load/elasticsearchClient.js';
import { IndexedDocumentIds } from '../load/indexedIds.js';
import { DocumentQueue } from '../queue/documentQueue.js';
import { ReadLock } from '../queue/readLock.js';
import { RedisStore } from '../queue/redisStore.js';
import { checkDrift, type DriftReport } from '../verify/driftCheck.js';
import { parseOptionsOrExit } from './options.js';
import { isCanonicalUuid } from '../util/uuid.js';

const values = parseOptionsOrExit('verify', {
  repair: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  index: { type: 'string' },
  settle: { type: 'string', default: '10' },
});
const settleSeconds = Number(values.settle);
if (values.settle.trim() === '' || !Number.isFinite(settleSeconds) || settleSeconds < 0) {
  process.stderr.write(`verify: --settle must be a number of seconds, 0 or more\n`);
  process.exit(2);
}
let kinds: readonly DocumentKind[] = KINDS;
if (values.index !== undefined) {
  const kind = kindNamed(values.index);
  if (!kind) {
    process.stderr.write(`verify: --index must be one of ${KIND_NAMES.join(', ')}\n`);
    process.exit(2);
  }
  kinds = [kind];
}
const config = loadConfigOrExit();
const log = createLogger('warn', false);
const db = new Postgres(config.databaseUrl, log, 2);
const store = new RedisStore(config.redisUrl, config.redisPrefix, log);
const es = createElasticsearchClient(config.elasticsearch);
try {
  const lock = new ReadLock(store, 'verify', log);
  const reports = new Map<DocumentKind, DriftReport>();
  for (const kind of kinds) {
    const index = kind.indexName(config);
    reports.set(
      kind,
      await checkDrift({
        kind,
        db,
        lock,
        es,
        index,
        indexed: new IndexedDocumentIds(es, { name: index, isAlias: false }),
        pageSize: config.sizeLimit,
        settleMs: settleSeconds * 1_000,
      }),
    );
  }
  // Queue members (a film id as it is, persons/<id>, genres/<id>): what --repair queues.
  const members = (pick: (r: DriftReport) => string[]) =>
    [...reports].flatMap(([kind, report]) => pick(report).map((id) => memberOf(kind.name, id)));
  const missing = members((r) => r.missing);
  const extra = members((r) => r.extra);
  const stale = members((r) => r.stale);
  const drift = [...missing, ...extra, ...stale];
  // Documents under an id no row can have: no syncer would ever touch them, so repair deletes
  // them here; everything else goes to the syncer through the queue.
  const strays = [...reports].map(
    ([kind, report]) => [kind, report.extra.filter((id) => !isCanonicalUuid(id))] as const,
  );
  const deleted = strays.reduce((n, [, ids]) => n + ids.length, 0);
  let queued = 0;
  if (values.repair && drift.length > 0) {
    for (const [kind, ids] of strays)
      await new IndexedDocumentIds(es, { name: kind.indexName(config), isAlias: false }).remove(
        ids,
      );
    const stray = new Set(
      strays.flatMap(([kind, ids]) => ids.map((id) => memberOf(kind.name, id))),
    );
    queued = await new DocumentQueue(store).enqueue(drift.filter((m) => !stray.has(m)));
  }
  if (values.json) {
    const indices = Object.fromEntries(
      [...reports].map(([kind, report]) => [
        kind.name,
        { index: kind.indexName(config), ...report },
      ]),
    );
    process.stdout.write(
      `${JSON.stringify({ indices, missing, extra, stale, queued }, null, 2)}\n`,
    );
  } else {
    const sample = (ids: string[]) =>
      ids.length ? ` (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''})` : '';
    const pad = (label: string) => label.padEnd(21);
    for (const [kind, report] of reports) {
      process.stdout.write(
        `[${kind.indexName(config)}]\n` +
          `${pad(`${kind.name} in postgres`)}${report.rows}\n` +
          `${pad('documents in index')}${report.documents}\n` +
          `${pad('missing')}${report.missing.length}${sample(report.missing)}\n` +
          `${pad('extra')}${report.extra.length}${sample(report.extra)}\n` +
          `${pad('stale')}${report.stale.length}${sample(report.stale)}\n`,
      );
    }
    process.stdout.write(
      drift.length === 0
        ? 'in step\n'
        : values.repair
          ? `${queued} documents queued for the syncer to fix` +
            (deleted > 0 ? `; ${deleted} documents with an id no row can have deleted\n` : '\n')
          : `run with -- --repair to queue them for the syncer (each still differed after ${settleSeconds} s)\n`,
    );
  }
  process.exitCode = drift.length === 0 ? 0 : 3;
} catch (err) {
  process.stderr.write(`verify: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await Promise.allSettled([db.end(), store.close(), es.close()]);
}
