/**
 * `npm run verify`: compare Postgres and each index (ids and content hashes) and report missing,
 * extra and stale documents. `-- --index films|persons|genres` checks one index (default: all
 * three); `-- --repair` has the syncer fix what drifted; `-- --json` for machines;
 * `-- --settle S` how many seconds to keep looking at what differed before calling it drift
 * (default 10; a live catalog always has a few edits not indexed yet); `-- --queue-at-most N`
 * how many documents of one index repair queues (default 10,000): an index further apart than
 * that is loaded again whole instead, which keeps Redis (and this command's memory) bounded
 * however far it drifted. Exit status 0 when in step, 3 when drift was found, 2 for a bad option.
 */
import { loadConfigOrExit } from '../config.js';
import { describeError, errorTypeOf } from '../errors.js';
import { Postgres } from '../db/postgres.js';
import type { DocumentKind } from '../kinds/documentKind.js';
import { KINDS, KIND_NAMES, kindNamed, memberOf } from '../kinds/kinds.js';
import { createStderrLogger } from '../logger.js';
import { createElasticsearchClient } from '../load/elasticsearchClient.js';
import { IndexedDocumentIds } from '../load/indexedIds.js';
import { DocumentQueue } from '../queue/documentQueue.js';
import { ReadLock } from '../queue/readLock.js';
import { RedisStore } from '../queue/redisStore.js';
import { ReloadRequests } from '../queue/reloadRequests.js';
import { checkDrift, type DriftReport } from '../verify/driftCheck.js';
import { parseOptionsOrExit } from './options.js';
import { isCanonicalUuid } from '../util/uuid.js';

const values = parseOptionsOrExit('verify', {
  repair: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  index: { type: 'string' },
  settle: { type: 'string', default: '10' },
  'queue-at-most': { type: 'string', default: '10000' },
});

/** A number option's value, or exit 2 naming it. */
function numberOption(name: string, text: string, integer: boolean): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0 || (integer && value % 1 !== 0)) {
    process.stderr.write(
      `verify: --${name} must be ${integer ? 'a whole number' : 'a number of seconds'}, 0 or more\n`,
    );
    process.exit(2);
  }
  return value;
}
const settleSeconds = numberOption('settle', values.settle, false);
const queueAtMost = numberOption('queue-at-most', values['queue-at-most'], true);
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
const log = createStderrLogger('warn');
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
        listAtMost: queueAtMost,
      }),
    );
  }
  const total = (r: DriftReport) => r.counts.missing + r.counts.extra + r.counts.stale;
  const drifted = [...reports.values()].reduce((n, r) => n + total(r), 0);
  // Queue members (a film id as it is, persons/<id>, genres/<id>): what --repair queues.
  const members = (pick: (r: DriftReport) => string[]) =>
    [...reports].flatMap(([kind, report]) => pick(report).map((id) => memberOf(kind.name, id)));
  const missing = members((r) => r.missing);
  const extra = members((r) => r.extra);
  const stale = members((r) => r.stale);
  // An index whose differences were not all listed is loaded again whole: its full load queues
  // every document a bounded page at a time, and its sweep deletes what no row backs.
  const reloads = [...reports].filter(([, r]) => !r.listed).map(([kind]) => kind);
  const listed = [...reports].filter(([, r]) => r.listed);
  let queued = 0;
  let deleted = 0;
  if (values.repair && drifted > 0) {
    const requests = new ReloadRequests(store);
    for (const kind of reloads) await requests.request(kind.name);
    // Documents under an id no row can have: no syncer would ever touch them, so repair deletes
    // them here; everything else goes to the syncer through the queue.
    const queue: string[] = [];
    for (const [kind, report] of listed) {
      const strays = report.extra.filter((id) => !isCanonicalUuid(id));
      await new IndexedDocumentIds(es, { name: kind.indexName(config), isAlias: false }).remove(
        strays,
      );
      deleted += strays.length;
      for (const id of [...report.missing, ...report.extra, ...report.stale])
        if (isCanonicalUuid(id)) queue.push(memberOf(kind.name, id));
    }
    queued = await new DocumentQueue(store).enqueue(queue);
  }
  if (values.json) {
    const indices = Object.fromEntries(
      [...reports].map(([kind, report]) => [
        kind.name,
        { index: kind.indexName(config), ...report },
      ]),
    );
    const reloaded = values.repair ? reloads.map((kind) => kind.name) : [];
    process.stdout.write(
      `${JSON.stringify({ indices, missing, extra, stale, queued, reloaded }, null, 2)}\n`,
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
          `${pad('missing')}${report.counts.missing}${sample(report.missing)}\n` +
          `${pad('extra')}${report.counts.extra}${sample(report.extra)}\n` +
          `${pad('stale')}${report.counts.stale}${sample(report.stale)}\n`,
      );
    }
    const reloading = reloads.map((kind) => kind.name).join(', ');
    const repaired = [
      `${queued} documents queued for the syncer to fix`,
      ...(deleted > 0 ? [`${deleted} documents with an id no row can have deleted`] : []),
      ...(reloads.length > 0
        ? [`${reloading}: over ${queueAtMost} apart, asked the syncer to load it again whole`]
        : []),
    ];
    process.stdout.write(
      drifted === 0
        ? 'in step\n'
        : values.repair
          ? `${repaired.join('; ')}\n`
          : `run with -- --repair to have the syncer fix them` +
            (reloads.length === 0 ? ` (each still differed after ${settleSeconds} s)\n` : '\n'),
    );
  }
  process.exitCode = drifted === 0 ? 0 : 3;
} catch (err) {
  // Before anything was synced, say what to run rather than what Elasticsearch or Postgres said.
  const hint =
    errorTypeOf(err) === 'index_not_found_exception'
      ? ' (no index yet: start the syncer first, `npm start`, which creates and loads it)'
      : (err as { code?: unknown }).code === '42P01'
        ? ' (did you run `npm run migrate`?)'
        : '';
  process.stderr.write(`verify: ${describeError(err)}${hint}\n`);
  process.exitCode = 1;
} finally {
  await Promise.allSettled([db.end(), store.close(), es.close()]);
}
