/**
 * One round: draw and print its plan, run the workload and the faults for the round's length,
 * then stop every fault, stop the workload, bring the syncers back to the base count, and wait for
 * quiescence (quiescence.ts). Any broken guarantee is a finding, and a round with findings prints
 * the failure report (report.ts) with the seed and the plan, so it can be replayed.
 *
 * What can go wrong: work from this round leaking into the next (the injector's and the fleet's
 * timers are all cleared by heal(), the writers are awaited), and an abort (Ctrl-C) mid-round,
 * which ends the round early with faults healed and no verdict.
 */
import type pg from 'pg';
import type { Logger } from '../src/logger.js';
import { sleep } from '../src/util/sleep.js';
import { describeDrift, inSync } from '../test/helpers/expectedDocuments.js';
import { formatFault } from './faultCatalog.js';
import { FaultInjector, type FaultCounts } from './faultInjector.js';
import type { Findings, Finding, Note } from './findings.js';
import type { Fleet } from './fleet.js';
import { awaitQuiescence, type Observation } from './quiescence.js';
import { formatFailure, traceIds } from './report.js';
import type { Rig } from './rig.js';
import { drawRound, formatPlan, type PlanOptions, type RoundPlan } from './schedule.js';
import { Workload, type WorkloadStats } from './workload.js';
import { ReindexRuns, type ReindexStats } from './reindexRuns.js';
import { EXPECTED, sabotage, type SabotageKind } from './sabotage.js';

export interface RoundContext {
  seed: number;
  syncers: number;
  roundSeconds: number;
  settleMs: number;
  only?: PlanOptions['only'];
  films?: number;
  /** The checkout whose commands run (this one by default). */
  syncerRoot?: string;
  /** Break something on purpose after the faults; the round must then fail (sabotage.ts). */
  sabotage?: SabotageKind;
  rig: Rig;
  fleet: Fleet;
  findings: Findings;
  writers: pg.Pool;
  logDir: string;
  log: Logger;
  signal: AbortSignal;
  /** Where failure reports go (stderr by default). */
  print: (text: string) => void;
}

export interface RoundResult {
  round: number;
  ok: boolean;
  aborted: boolean;
  plan: RoundPlan;
  findings: Finding[];
  notes: Note[];
  /** From the end of the faults to quiescence. */
  settleMs: number;
  documents: number;
  workload: WorkloadStats;
  reindexes: ReindexStats;
  faults: FaultCounts;
  report: string | null;
}

export async function runRound(ctx: RoundContext, round: number): Promise<RoundResult> {
  const { rig, fleet, findings, log, signal } = ctx;
  const plan = drawRound(ctx.seed, round, { roundSeconds: ctx.roundSeconds, only: ctx.only });
  const [, faults = '', workloadLine = '', mixLine = ''] = formatPlan(plan).split('\n');
  log.info(
    {
      seed: ctx.seed,
      round,
      faults: faults.trim(),
      workload: workloadLine.trim(),
      mix: mixLine.trim(),
    },
    'round plan',
  );
  findings.restart();
  fleet.start(); // back to the base count (heal() starts only what is needed to converge)
  const started = Date.now();
  const injector = new FaultInjector(rig, fleet, findings, log);
  const workload = new Workload(ctx.writers, plan, log);
  const reindexes = new ReindexRuns(rig, findings, ctx.logDir, log, round, ctx.syncerRoot);
  workload.start();
  reindexes.start(plan.reindexes);
  injector.schedule(plan.faults);
  await sleep(plan.roundMs, signal);

  findings.note('round over: faults off, writers stopping');
  await injector.heal();
  await workload.stop();
  await fleet.heal();
  await injector.heal();
  const faultsOff = Date.now();
  await reindexes.stop();
  let observation: Observation | null = null;
  let documents = 0;
  let repair: (() => Promise<void>) | null = null;
  if (!signal.aborted && (await fleet.waitStarted(60_000))) {
    findings.note('syncers up: waiting for quiescence');
    const wait = () =>
      awaitQuiescence(
        rig,
        () => fleet.livePids(),
        ctx.settleMs,
        signal,
        (waited, still) => log.info({ round, waited_ms: waited, still }, 'not quiet yet'),
      );
    let q = await wait();
    if (ctx.sabotage && q.ok) {
      // Only once all is quiet: the syncers must have no reason left to touch what is broken.
      repair = await sabotage(rig, ctx.sabotage);
      findings.note(`sabotage ${ctx.sabotage}: expecting a ${EXPECTED[ctx.sabotage]} finding`);
      q = await wait();
    }
    observation = q.last;
    documents = q.last.documents;
    if (!q.ok && !aborted(signal)) verdict(findings, q.last, ctx.settleMs);
  }
  const settleMs = Date.now() - faultsOff;
  const ok = findings.findings.length === 0;
  if (ctx.sabotage) {
    const caught = findings.findings.some((f) => f.kind === EXPECTED[ctx.sabotage ?? 'drop-doc']);
    log.warn(
      { round, sabotage: ctx.sabotage, caught },
      caught ? 'sabotage caught' : 'SABOTAGE MISSED: the oracle is blind to it',
    );
  }
  await repair?.().catch((err: unknown) =>
    log.warn({ err: (err as Error).message }, 'could not undo the sabotage'),
  );
  const result: RoundResult = {
    round,
    ok,
    aborted: signal.aborted,
    plan,
    findings: [...findings.findings],
    notes: [...findings.notes],
    settleMs,
    documents,
    workload: workload.stats,
    reindexes: reindexes.stats,
    faults: injector.counts,
    report: null,
  };
  if (!ok) {
    const drift = observation?.drift;
    const ids = drift ? [...drift.missing, ...drift.extra, ...drift.stale.map((s) => s.id)] : [];
    const traces = await traceIds(rig.redis, rig.sandbox.config.redisPrefix, ids.slice(0, 8)).catch(
      (err: unknown) => [`  (could not trace: ${(err as Error).message})`],
    );
    result.report = formatFailure({
      seed: ctx.seed,
      round,
      roundSeconds: ctx.roundSeconds,
      syncers: ctx.syncers,
      only: ctx.only,
      films: ctx.films,
      plan: formatPlan(plan),
      findings: result.findings,
      notes: result.notes,
      observation,
      traces,
      syncerTails: fleet.history.filter((h) => h.running || h.spawnedAt >= started),
      logDir: ctx.logDir,
    });
    ctx.print(result.report);
  }
  log.info(
    {
      round,
      ok,
      settle_ms: settleMs,
      films: documents,
      transactions: workload.stats.transactions,
      rows: workload.stats.rows,
      findings: result.findings.map((f) => f.kind),
      faults: plan.faults.map(formatFault).length,
    },
    ok ? 'round converged' : 'round failed',
  );
  return result;
}

/** Turn what the last observation still showed into findings. */
function verdict(findings: Findings, o: Observation, settleMs: number): void {
  const within = `within ${Math.round(settleMs / 1000)} s of the faults ending`;
  if (o.errors.length > 0)
    findings.add('no-convergence', `could not observe ${within}`, o.errors.join('\n'));
  if (o.drift && !inSync(o.drift))
    findings.add('no-convergence', `index differs from Postgres ${within}`, describeDrift(o.drift));
  const dead = o.redis ? Object.keys(o.redis.deadLetters) : [];
  const stranded = o.stranded.filter((s) => !/dead letters/.test(s));
  if (stranded.length > 0)
    findings.add('stranded-state', `Redis not clean ${within}`, stranded.join('\n'));
  if (dead.length > 0)
    findings.add(
      'dead-letters',
      `${dead.length} films dead-lettered`,
      Object.values(o.redis?.deadLetters ?? {})
        .slice(0, 5)
        .join('\n'),
    );
  if (o.settings.length > 0)
    findings.add('index-settings', `index left in bulk-load mode ${within}`, o.settings.join('\n'));
  if (o.leftovers.length > 0)
    findings.add('leftover-index', `indices no alias points at ${within}`, o.leftovers.join('\n'));
}

/** A call, not a property read: it changes while we await, which narrowing cannot see. */
const aborted = (signal: AbortSignal) => signal.aborted;
