/**
 * `npm run status` (`-- --json` for machines): what the syncers are doing, read from Redis, with
 * the queue and the dead letters broken down by index.
 */
import { loadConfigOrExit } from '../config.js';
import { createStderrLogger } from '../logger.js';
import { DeadLetters } from '../queue/deadLetters.js';
import { DocumentQueue } from '../queue/documentQueue.js';
import { ReadLock } from '../queue/readLock.js';
import { RedisStore } from '../queue/redisStore.js';
import { readStatus, type StatusReport } from '../queue/statusReport.js';
import { Watermarks } from '../queue/watermarks.js';
import { WorkerRegistry } from '../queue/workerRegistry.js';
import { parseOptionsOrExit } from './options.js';

const values = parseOptionsOrExit('status', { json: { type: 'boolean', default: false } });
const config = loadConfigOrExit();
const log = createStderrLogger('warn');
const store = new RedisStore(config.redisUrl, config.redisPrefix, log);
try {
  const report = await readStatus({
    store,
    queue: new DocumentQueue(store),
    lock: new ReadLock(store, 'status', log),
    registry: new WorkerRegistry(store),
    watermarks: new Watermarks(store),
    deadLetters: new DeadLetters(store),
  });
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : render(report));
} catch (err) {
  process.stderr.write(`status: cannot read state from Redis: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await store.close();
}

function age(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 120_000) return `${(ms / 1_000).toFixed(1)}s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map(
      (r) =>
        '  ' +
        r
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd(),
    )
    .join('\n');
}

function perIndex(counts: Record<string, number>, exact: boolean): string {
  const parts = Object.entries(counts).map(([index, n]) => `${index} ${exact ? '' : '~'}${n}`);
  return parts.join(', ');
}

function render(r: StatusReport): string {
  const lines = [
    `queue        ${r.queue.depth} documents waiting (${perIndex(r.queue.byIndex, r.queue.exact)})`,
    `in flight    ${r.inFlight.length === 0 ? 'none' : r.inFlight.map((c) => `${c.documents} documents by ${c.worker} for ${age(c.ageMs)}`).join('; ')}`,
    `read lock    ${r.readLock ? `held by ${r.readLock.holder} for ${age(r.readLock.heldMs)}` : 'free'}`,
    `capturing    ${r.capture ? `${r.capture.holder} for ${age(r.capture.heldMs)}` : 'nobody (a syncer takes over within seconds)'}`,
    `dead letters ${r.deadLetters} (${perIndex(r.deadLettersByIndex, true)})`,
    `last batch   ${r.lastBatch ? `${r.lastBatch.at} (${r.lastBatch.id})` : 'none yet'}`,
    `full load    ${r.fullLoad ? `${r.fullLoad.queued} of ~${r.fullLoad.total} documents queued (${r.fullLoad.indices.join(', ')}), began ${r.fullLoad.began}` : 'none under way'}`,
    `last error   ${r.lastError ? `${r.lastError.at} ${r.lastError.component}: ${r.lastError.message}` : 'none'}`,
    '',
    'workers',
    r.workers.length === 0
      ? '  none running'
      : table([
          ['worker', 'state', 'for', 'alive'],
          ...r.workers.map((w) => [w.id, w.state, age(w.forMs), w.alive ? 'yes' : 'NO']),
        ]),
    '',
    'watermarks',
    table([
      ['table', 'as of', 'behind'],
      ...r.watermarks.map((w) => [w.table, w.at ?? 'none (full load pending)', age(w.lagMs)]),
    ]),
  ];
  return `${lines.join('\n')}\n`;
}
