/**
 * `npm run bench`, the function: one sandbox (database, Redis prefix, index), a catalog of N films,
 * then each phase in turn, each with a syncer process of its own, and the sandbox removed at the
 * end whatever happened. Phases that need a loaded index (live, fan-out, catch-up) run the full
 * load first even when it was not asked for.
 */
import { cpus } from 'node:os';
import { createSandbox, type Sandbox } from '../test/helpers/isolation.js';
import { migrateSandbox } from '../test/helpers/syncerHarness.js';
import { measureBulkCeiling } from './bulkCeiling.js';
import { filmsInRandomOrder, seedBenchCatalog } from './catalog.js';
import { measureCatchUp } from './catchUp.js';
import { concurrentTests, machineInfo } from './environment.js';
import { measureExtraction } from './extraction.js';
import { measureFanOut } from './fanOut.js';
import { measureFullLoad } from './fullLoad.js';
import { fullLoadCpuPerDocument, loadLimit } from './loadLimit.js';
import { measureLiveLatency } from './liveLatency.js';
import { measureLoadBesideEdits } from './loadBesideEdits.js';
import type { BenchReport } from './results.js';
import { runCompiledSyncer } from './profiledSyncer.js';
import { measureWriterOverhead } from './writerOverhead.js';

export const PHASES = ['ceiling', 'full', 'live', 'fanout', 'catchup', 'beside', 'writer'] as const;
export type Phase = (typeof PHASES)[number];

export interface BenchOptions {
  films: number;
  phases: Phase[];
  /** Edits per second of each live phase, and how long each lasts. */
  rates: number[];
  liveSeconds: number;
  /** Films changed while the syncer is down (default: every film). */
  catchUpChanges?: number;
  /** Edits per second beside the second full load of the `beside` phase. */
  besideRate: number;
  writerSeconds: number;
  writerRepeats: number;
  /** Films in each writer-overhead database (default: min(films, 20,000)). */
  writerFilms?: number;
  progress?: (line: string) => void;
  /** Spawn the compiled program (`node dist/cli/start.js`) instead of the profiled sources. */
  compiled?: boolean;
  /** Hands out the sandbox as soon as it exists (the CLI removes it on Ctrl-C). */
  onSandbox?: (sandbox: Sandbox) => void;
}

export const DEFAULTS: Omit<BenchOptions, 'phases'> & { phases: readonly Phase[] } = {
  films: 100_000,
  phases: PHASES,
  rates: [50, 500],
  liveSeconds: 20,
  besideRate: 50,
  writerSeconds: 10,
  writerRepeats: 3,
};

export async function runBenchmark(options: BenchOptions): Promise<BenchReport> {
  const progress = options.progress ?? (() => undefined);
  const wants = (phase: Phase) => options.phases.includes(phase);
  const startedAt = new Date().toISOString();
  // Six connections, as the README's numbers were measured with: the live phase's edits wait for
  // one, so the pool size is part of what that phase measures.
  if (options.compiled) runCompiledSyncer();
  const sb = await createSandbox('bench', { poolSize: 6 });
  options.onSandbox?.(sb);
  // An idle connection the server drops costs that connection, not the whole run.
  sb.pg.on('error', () => undefined);
  const warnings: string[] = [];
  try {
    await migrateSandbox(sb);
    progress(`sandbox ${sb.name}; seeding ${options.films} films`);
    const catalog = await seedBenchCatalog(sb, options.films);
    const report: BenchReport = {
      startedAt,
      finishedAt: '',
      machine: await machineInfo(sb),
      options: { ...options, progress: undefined, onSandbox: undefined },
      syncerConfig: {
        sizeLimit: sb.config.sizeLimit,
        bulkSize: sb.config.bulkSize,
        sleepMs: sb.config.sleepMs,
        pollIntervalMs: sb.config.pollIntervalMs,
        workers: sb.config.workers,
        refreshMs: sb.config.refreshMs,
      },
      setup: {
        films: catalog.films,
        seedSeconds: catalog.seedSeconds,
        fanOutFilms: catalog.fanOut.films,
      },
      memory: {},
      redisMemory: {},
      program: options.compiled ? 'node dist/cli/start.js' : 'tsx src/cli/start.ts (profiled)',
      warnings,
    };
    progress(`seeded in ${catalog.seedSeconds.toFixed(1)} s`);

    if (wants('ceiling')) {
      progress('extraction ceiling');
      const tests = concurrentTests();
      const { extraction, documents } = await measureExtraction(sb, sb.config.bulkSize);
      progress(`bulk ceiling (${documents.length} documents of every index)`);
      const bulk = await measureBulkCeiling(sb, documents, progress);
      report.ceiling = { extraction, bulk, concurrentTests: Math.max(tests, concurrentTests()) };
    }
    const needsIndex = wants('live') || wants('fanout') || wants('catchup') || wants('beside');
    if (wants('full') || needsIndex) {
      progress('full load (syncer)');
      report.fullLoad = await measureFullLoad(sb, progress);
      report.memory['full load'] = report.fullLoad.peakRssMb;
      report.redisMemory['full load'] = report.fullLoad.redisPeakMb;
      if (report.ceiling) {
        report.fullLoadRatio =
          report.fullLoad.documentsPerSecond / report.ceiling.bulk.docsPerSecond;
        const loaded = report.fullLoad.documentsPerSecond;
        const limit = loadLimit(report.ceiling, cpus().length);
        const shape = report.ceiling.bulk.syncerShape;
        const atShape = shape
          ? loadLimit(report.ceiling, cpus().length, {
              docsPerSecond: shape.trial.docsPerSecond,
              cpu: shape.cpu,
            })
          : null;
        if (limit)
          report.loadLimit = {
            ...limit,
            ratio: loaded / limit.docsPerSecond,
            fullLoadCpuMs: fullLoadCpuPerDocument(report.fullLoad, cpus().length),
            ...(atShape && {
              syncerShape: {
                bulkCpuMs: atShape.bulkCpuMs,
                docsPerSecond: atShape.docsPerSecond,
                ratio: loaded / atShape.docsPerSecond,
              },
            }),
          };
      }
    }
    if (wants('live')) {
      const films = await filmsInRandomOrder(sb, options.films);
      let used = 0;
      report.live = [];
      for (const rate of options.rates) {
        progress(`live latency at ${rate} edits/s for ${options.liveSeconds} s`);
        const share = films.slice(used, used + Math.round(rate * options.liveSeconds));
        used += share.length;
        const live = await measureLiveLatency(sb, share, rate, options.liveSeconds);
        report.live.push(live);
        report.memory[`live ${rate}/s`] = live.peakRssMb;
        report.redisMemory[`live ${rate}/s`] = live.redisPeakMb;
      }
    }
    if (wants('fanout')) {
      progress(`fan-out: renaming a genre of ${catalog.fanOut.films} films`);
      report.fanOut = await measureFanOut(
        sb,
        catalog.fanOut.genreId,
        catalog.fanOut.films,
        progress,
      );
      report.memory['fan-out'] = report.fanOut.peakRssMb;
      report.redisMemory['fan-out'] = report.fanOut.redisPeakMb;
    }
    if (wants('catchup')) {
      const changes = Math.min(options.catchUpChanges ?? options.films, options.films);
      progress(`catch-up: ${changes} changes while the syncer is down`);
      report.catchUp = await measureCatchUp(sb, changes, progress);
      report.memory['catch-up'] = report.catchUp.peakRssMb;
      report.redisMemory['catch-up'] = report.catchUp.redisPeakMb;
    }
    if (wants('beside')) {
      progress(`full load beside ${options.besideRate} edits/s, by one syncer and by two`);
      report.loadBesideEdits = await measureLoadBesideEdits(sb, options.besideRate, progress);
    }
    if (wants('writer')) {
      progress('writer overhead (pgbench, triggers on vs off)');
      report.writerOverhead = await measureWriterOverhead(sb, {
        films: options.writerFilms ?? Math.min(options.films, 20_000),
        seconds: options.writerSeconds,
        repeats: options.writerRepeats,
      });
    }

    const noisy = [
      ['full load', report.fullLoad?.concurrentTests],
      ['ceiling', report.ceiling?.concurrentTests],
      ...(report.live ?? []).map((l) => [`live ${l.rate}/s`, l.concurrentTests] as const),
      ['fan-out', report.fanOut?.concurrentTests],
      ['catch-up', report.catchUp?.concurrentTests],
      ['writer overhead', report.writerOverhead?.concurrentTests],
    ].filter(([, tests]) => typeof tests === 'number' && tests > 0);
    if (noisy.length > 0) {
      warnings.push(
        `a test suite ran during ${noisy.map(([phase]) => phase).join(', ')}: those timings are noisy; ` +
          're-run when `ps aux | grep -c "node --import tsx --test"` shows none',
      );
    }
    const shares: [string, { other: number } | null | undefined][] = [
      ['full load', report.fullLoad?.cpu],
      ['bulk ceiling', report.ceiling?.bulk.cpu],
      ...(report.live ?? []).map((l) => [`live ${l.rate}/s`, l.cpu] as [string, typeof l.cpu]),
      ['fan-out', report.fanOut?.cpu],
      ['catch-up', report.catchUp?.cpu],
    ];
    const busy = shares.filter(([, cpu]) => cpu && cpu.other > 10);
    if (busy.length > 0) {
      warnings.push(
        `other processes used the CPU during ${busy
          .map(([phase, cpu]) => `${phase} (${cpu?.other ?? 0}% of all cores)`)
          .join(', ')}: those timings are noisy`,
      );
    }
    for (const live of report.live ?? []) {
      if (live.achievedRate < live.rate * 0.9)
        warnings.push(
          `live ${live.rate}/s: the writer only reached ${live.achievedRate.toFixed(0)}/s`,
        );
    }
    report.finishedAt = new Date().toISOString();
    return report;
  } finally {
    progress('removing the sandbox');
    await sb.cleanup();
  }
}
