/**
 * `npm run chaos -- --seed N --minutes M`: a randomized fault campaign against real syncer
 * processes (see chaos/campaign.ts for what a campaign does, chaos/schedule.ts for what a seed
 * fixes). Prints the seed first; every failure prints it again with the round's plan and the
 * command that replays it (`--round K`). Exit status: 0 when every round converged, 1 when one
 * did not, 2 for bad arguments, 130 when interrupted.
 *
 * Ctrl-C (or SIGTERM) ends the round in progress, heals the faults and tears everything down; a
 * second one kills -9 what the campaign started and exits at once. Either way Elasticsearch gets
 * its SIGCONT.
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createLogger } from '../src/logger.js';
import { runCampaign, type CampaignSummary } from './campaign.js';
import { FAULT_KINDS, type FaultKind } from './faultCatalog.js';
import { MAX_SYNCERS } from './fleet.js';
import { SABOTAGE_KINDS, type SabotageKind } from './sabotage.js';
import { onStopSignals } from '../src/cli/stopSignals.js';

const USAGE = `usage: npm run chaos -- [--seed N] [--minutes M] [--round-seconds S] [--syncers 1-3]
       [--round K] [--rounds N] [--keep-going] [--settle-seconds S] [--films N]
       [--es-freeze auto|proxy] [--only kind,kind] [--keep-logs] [--log-level info]
       [--sabotage ${SABOTAGE_KINDS.join('|')}] [--syncer-root DIR]
fault kinds: ${FAULT_KINDS.join(', ')}`;

function fail(message: string): never {
  process.stderr.write(`chaos: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function whole(
  value: string | undefined,
  name: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    fail(`--${name} must be a whole number in [${min}, ${max}]`);
  return n;
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      seed: { type: 'string' },
      minutes: { type: 'string' },
      'round-seconds': { type: 'string' },
      syncers: { type: 'string' },
      round: { type: 'string' },
      rounds: { type: 'string' },
      'keep-going': { type: 'boolean' },
      'settle-seconds': { type: 'string' },
      films: { type: 'string' },
      'es-freeze': { type: 'string' },
      only: { type: 'string' },
      'keep-logs': { type: 'boolean' },
      'log-level': { type: 'string' },
      sabotage: { type: 'string' },
      'syncer-root': { type: 'string' },
      help: { type: 'boolean' },
    },
  }).values;
} catch (err) {
  fail((err as Error).message);
}
if (parsed.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const only = parsed.only?.split(',').map((k) => k.trim()) as FaultKind[] | undefined;
for (const kind of only ?? []) if (!FAULT_KINDS.includes(kind)) fail(`unknown fault kind ${kind}`);
const esFreeze = parsed['es-freeze'] ?? 'auto';
if (esFreeze !== 'auto' && esFreeze !== 'proxy') fail('--es-freeze must be auto or proxy');
const sabotage = parsed.sabotage as SabotageKind | undefined;
if (sabotage && !SABOTAGE_KINDS.includes(sabotage)) fail(`unknown sabotage ${sabotage}`);
const syncerRoot = parsed['syncer-root'];
const seed = whole(parsed.seed, 'seed', 0, 2 ** 32 - 1) ?? randomInt(1, 2 ** 31);
const round = whole(parsed.round, 'round', 1, 1_000_000);
const rounds = whole(parsed.rounds, 'rounds', 1, 1_000_000);
const settleSeconds = whole(parsed['settle-seconds'], 'settle-seconds', 10, 3_600);
const films = whole(parsed.films, 'films', 100, 200_000);
const level = (parsed['log-level'] ?? 'info') as 'info';
const log = createLogger(level);

const controller = new AbortController();
onStopSignals(
  (signal) => {
    log.warn({ signal }, 'interrupted: healing faults and cleaning up (again to kill at once)');
    controller.abort();
  },
  () => process.exit(130), // the campaign's exit handler kills what it started
);

process.stderr.write(`chaos: seed ${seed}\n`);
const summary = await runCampaign({
  seed,
  minutes: whole(parsed.minutes, 'minutes', 1, 10_000) ?? 5,
  roundSeconds: whole(parsed['round-seconds'], 'round-seconds', 5, 3_600) ?? 40,
  syncers: whole(parsed.syncers, 'syncers', 1, MAX_SYNCERS) ?? 2,
  ...(round === undefined ? {} : { round }),
  ...(rounds === undefined ? {} : { rounds }),
  ...(settleSeconds === undefined ? {} : { settleSeconds }),
  ...(films === undefined ? {} : { films }),
  ...(only ? { only } : {}),
  ...(sabotage ? { sabotage } : {}),
  ...(syncerRoot ? { syncerRoot } : {}),
  keepGoing: parsed['keep-going'] ?? false,
  keepLogs: parsed['keep-logs'] ?? false,
  esFreeze,
  log,
  signal: controller.signal,
});
process.stderr.write(formatSummary(summary));
process.exit(summary.aborted ? 130 : summary.failed.length > 0 ? 1 : 0);

function formatSummary(s: CampaignSummary): string {
  const faults = Object.entries(s.faults)
    .filter(([, c]) => c.done + c.skipped > 0)
    .map(([k, c]) => `${k} ${c.done}${c.skipped ? ` (+${c.skipped} skipped)` : ''}`)
    .join(', ');
  const w = s.workload;
  const noise =
    Object.entries(w.noise)
      .map(([code, n]) => `${code}×${n}`)
      .join(' ') || 'none';
  return [
    '',
    `=== chaos summary: seed ${s.seed} ===`,
    `rounds:   ${s.rounds} (${s.failed.length} failed${s.failed.length ? `: ${s.failed.map((f) => `${f.round} [${f.kinds.join(' ')}]`).join(', ')}` : ''})${s.aborted ? ', interrupted' : ''}`,
    `faults:   ${faults || 'none'} (Elasticsearch freeze by ${s.esFreeze})`,
    `syncers:  ${s.syncers.spawned} started, ${s.syncers.kill9} killed -9, ${s.syncers.sigterm} SIGTERM, ${s.syncers.startFailures} failed to start`,
    `workload: ${w.transactions} transactions, ${w.rows} rows written (${w.rolledBackRows} rolled back), ${w.longCommitted + w.longRolledBack} long transactions, ${w.truncations} truncates`,
    `          ${Object.entries(w.byKind)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
    `reindex:  ${s.reindexes.runs} run: ${s.reindexes.swapped} swapped, ${s.reindexes.failed} failed, ${s.reindexes.interrupted} stopped by SIGTERM, ${s.reindexes.killed} killed -9`,
    `noise:    ${noise} (writers' own errors: deadlocks, lock timeouts, duplicates)`,
    `settle:   median ${(s.settleMs.median / 1000).toFixed(1)} s, max ${(s.settleMs.max / 1000).toFixed(1)} s after the faults ended`,
    `time:     ${(s.elapsedMs / 60_000).toFixed(1)} min${s.failed.length ? `; syncer logs in ${s.logDir}` : ''}`,
    '',
  ].join('\n');
}
