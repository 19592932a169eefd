/**
 * A campaign: one rig, a seeded catalog, the base syncers and a first full load (checked like a
 * round, as round 0), then rounds until the time is up (or only `--round K`, to replay one), and
 * a summary. Exported for test/chaos.test.ts, which runs a short fixed-seed campaign in-process.
 *
 * What can go wrong: leftovers after a crash or Ctrl-C. Everything is torn down in a finally;
 * an exit handler also kills -9 the syncers and the private Redis and sends SIGCONT to
 * Elasticsearch synchronously, for exits that skip the finally; and for a campaign killed -9,
 * the next campaign removes what its marker names (janitor.ts). Logs of the syncers stay in the
 * log dir when a round failed (it is removed when every round passed, unless keepLogs).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Logger } from '../src/logger.js';
import { seedCatalog } from '../test/helpers/catalog.js';
import type { FaultKind } from './faultCatalog.js';
import { emptyFaultCounts, type FaultCounts } from './faultInjector.js';
import { Findings } from './findings.js';
import { Fleet } from './fleet.js';
import { awaitQuiescence } from './quiescence.js';
import { createRig } from './rig.js';
import { runRound, type RoundResult } from './round.js';
import { emptyStats, type WorkloadStats } from './workload.js';
import { emptyReindexStats, type ReindexStats } from './reindexRuns.js';
import { removeMarker, sweepDeadCampaigns, writeMarker, type Marker } from './janitor.js';
import type { SabotageKind } from './sabotage.js';

export interface CampaignOptions {
  seed: number;
  minutes: number;
  roundSeconds: number;
  syncers: number;
  /** At most this many rounds (besides the time limit). */
  rounds?: number;
  /** Replay only this round. */
  round?: number;
  keepGoing?: boolean;
  settleSeconds?: number;
  films?: number;
  esFreeze?: 'auto' | 'proxy';
  only?: FaultKind[];
  keepLogs?: boolean;
  /** Break something after each round's faults: the rounds must fail (chaos/sabotage.ts). */
  sabotage?: SabotageKind;
  /** Run the syncers from another checkout (default: this one). */
  syncerRoot?: string;
  log: Logger;
  signal?: AbortSignal;
  print?: (text: string) => void;
}

export interface CampaignSummary {
  seed: number;
  rounds: number;
  failed: { round: number; kinds: string[]; report: string | null }[];
  faults: FaultCounts;
  workload: WorkloadStats;
  reindexes: ReindexStats;
  syncers: Fleet['counts'];
  settleMs: { max: number; median: number };
  elapsedMs: number;
  esFreeze: string;
  logDir: string;
  aborted: boolean;
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignSummary> {
  const { seed, log } = options;
  const began = Date.now();
  const signal = options.signal ?? new AbortController().signal;
  const print = options.print ?? ((text: string) => process.stderr.write(`${text}\n`));
  const root = join(tmpdir(), 'movies-etl-chaos');
  const logDir = join(root, `seed-${seed}-${began}`);
  await sweepDeadCampaigns(root, log);
  mkdirSync(logDir, { recursive: true });
  const rig = await createRig({ esFreeze: options.esFreeze ?? 'auto' });
  // What a later campaign must remove if this one dies without its finally (kill -9).
  const marker: Marker = {
    pid: process.pid,
    sandbox: rig.sandbox.name,
    index: rig.sandbox.config.index,
    redisPort: rig.redisServer.port,
    syncers: [],
  };
  writeMarker(logDir, marker);
  const findings = new Findings();
  const fleet = new Fleet(
    rig.syncerEnv,
    logDir,
    options.syncers,
    findings,
    log,
    options.syncerRoot,
  );
  fleet.onSpawn = (pid) => {
    marker.syncers = [...marker.syncers.slice(-49), pid];
    writeMarker(logDir, marker);
  };
  const emergency = () => {
    fleet.killAll();
    rig.freezer.cont();
    void rig.redisServer.kill();
  };
  process.on('exit', emergency);
  const writers = new pg.Pool({
    connectionString: rig.sandbox.config.databaseUrl,
    max: 12,
    application_name: 'chaos-writer',
    options: '-c lock_timeout=3000 -c statement_timeout=30000',
  });
  writers.on('error', () => undefined);
  const results: RoundResult[] = [];
  const summary: CampaignSummary = {
    seed,
    rounds: 0,
    failed: [],
    faults: emptyFaultCounts(),
    workload: emptyStats(),
    reindexes: emptyReindexStats(),
    syncers: fleet.counts,
    settleMs: { max: 0, median: 0 },
    elapsedMs: 0,
    esFreeze: rig.freezer.mode,
    logDir,
    aborted: false,
  };
  const ctx = {
    seed,
    syncers: options.syncers,
    roundSeconds: options.roundSeconds,
    settleMs: (options.settleSeconds ?? 90) * 1000,
    ...(options.only ? { only: options.only } : {}),
    ...(options.films ? { films: options.films } : {}),
    ...(options.syncerRoot ? { syncerRoot: options.syncerRoot } : {}),
    ...(options.sabotage ? { sabotage: options.sabotage } : {}),
    rig,
    fleet,
    findings,
    writers,
    logDir,
    log,
    signal,
    print,
  };
  try {
    log.info(
      {
        seed,
        log_dir: logDir,
        es_freeze: rig.freezer.mode,
        sandbox: rig.sandbox.name,
        ...(options.syncerRoot ? { syncer_root: options.syncerRoot } : {}),
      },
      'campaign starting',
    );
    await seedCatalog(rig.sandbox.pg, options.films ?? 2_000, 30, 600);
    if (!(await baseline(ctx, summary))) return summary;
    const deadline = began + options.minutes * 60_000;
    const rounds = options.round !== undefined ? [options.round] : null;
    for (let round = rounds?.[0] ?? 1; ; round++) {
      if (signal.aborted) break;
      if (rounds && round !== rounds[0]) break;
      if (!rounds && results.length > 0) {
        if (options.rounds !== undefined && results.length >= options.rounds) break;
        if (Date.now() + options.roundSeconds * 1000 > deadline) break;
      }
      const result = await runRound(ctx, round);
      results.push(result);
      accumulate(summary, result);
      if (result.ok || result.aborted) continue;
      if (!options.keepGoing) break;
      log.warn({ round }, 'keep going: killing the syncers, emptying Redis, reloading');
      await fleet.reset();
      await rig.redisServer.restartEmpty();
      if (!(await baseline(ctx, summary))) break;
    }
  } finally {
    summary.aborted = signal.aborted;
    findings.restart();
    await fleet.stopAll();
    const teardown = findings.findings.filter((f) => f.kind.startsWith('sigterm'));
    if (teardown.length > 0) {
      summary.failed.push({
        round: -1,
        kinds: teardown.map((f) => f.kind),
        report: teardown.map((f) => `${f.summary}\n${f.detail ?? ''}`).join('\n'),
      });
      print(
        `=== CHAOS FAILURE at teardown (seed ${seed}) ===\n${summary.failed.at(-1)?.report ?? ''}`,
      );
    }
    await writers.end().catch(() => undefined);
    await rig.close();
    removeMarker(logDir);
    process.off('exit', emergency);
    const settles = results.map((r) => r.settleMs).sort((a, b) => a - b);
    summary.settleMs = {
      max: settles.at(-1) ?? 0,
      median: settles[Math.floor(settles.length / 2)] ?? 0,
    };
    summary.elapsedMs = Date.now() - began;
    if (summary.failed.length === 0 && !options.keepLogs)
      rmSync(logDir, { recursive: true, force: true });
  }
  return summary;
}

/** The base syncers up and the first full load converged; a failure counts as round 0. */
async function baseline(
  ctx: Parameters<typeof runRound>[0],
  summary: CampaignSummary,
): Promise<boolean> {
  const { fleet, findings, rig, log } = ctx;
  findings.restart();
  fleet.start();
  const started = await fleet.waitStarted(120_000);
  const q = started
    ? await awaitQuiescence(rig, () => fleet.livePids(), 120_000, ctx.signal)
    : null;
  if (q?.ok) {
    log.info({ films: q.last.documents, ms: q.ms }, 'baseline converged');
    return true;
  }
  if (ctx.signal.aborted) return false;
  const tails = fleet.history.map((h) => `--- ${h.name}\n${h.lastLines(20).join('\n')}`).join('\n');
  const report = [
    `=== CHAOS FAILURE: seed ${ctx.seed}, baseline (first full load) ===`,
    ...findings.findings.map((f) => `[${f.kind}] ${f.summary}\n${f.detail ?? ''}`),
    q
      ? `stranded: ${q.last.stranded.join('; ')}\nsettings: ${q.last.settings.join('; ')}\nerrors: ${q.last.errors.join('; ')}`
      : '',
    q?.last.drift
      ? `drift: missing ${q.last.drift.missing.length}, extra ${q.last.drift.extra.length}, stale ${q.last.drift.stale.length}`
      : '',
    tails,
  ].join('\n');
  ctx.print(report);
  summary.failed.push({ round: 0, kinds: ['baseline'], report });
  return false;
}

function accumulate(summary: CampaignSummary, result: RoundResult): void {
  summary.rounds++;
  if (!result.ok)
    summary.failed.push({
      round: result.round,
      kinds: result.findings.map((f) => f.kind),
      report: result.report,
    });
  for (const [kind, c] of Object.entries(result.faults) as [
    FaultKind,
    { done: number; skipped: number },
  ][]) {
    summary.faults[kind].done += c.done;
    summary.faults[kind].skipped += c.skipped;
  }
  const w = summary.workload;
  const r = result.workload;
  w.transactions += r.transactions;
  w.rows += r.rows;
  w.rolledBackRows += r.rolledBackRows;
  w.longCommitted += r.longCommitted;
  w.longRolledBack += r.longRolledBack;
  w.truncations += r.truncations;
  for (const [k, n] of Object.entries(r.byKind))
    w.byKind[k as keyof typeof w.byKind] = (w.byKind[k as keyof typeof w.byKind] ?? 0) + n;
  for (const [k, n] of Object.entries(r.noise)) w.noise[k] = (w.noise[k] ?? 0) + n;
  for (const k of Object.keys(summary.reindexes) as (keyof ReindexStats)[])
    summary.reindexes[k] += result.reindexes[k];
}
