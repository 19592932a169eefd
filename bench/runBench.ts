/**
 * `npm run bench [-- --films N] [--phases ceiling,full,live,fanout,catchup,beside,writer]
 *  [--out FILE] [--rates 50,500] [--live-seconds 20] [--beside-rate 50] [--writer-seconds 10]
 *  [--writer-repeats 3] [--compiled] [--cpu-prof DIR]`
 *
 * `--compiled` builds the program (`npm run build`) and runs the syncer as a container does,
 * `node dist/cli/start.js`: the memory it reports is then production's, but there is no profile
 * of where the time went (that hook needs the TypeScript sources). `--cpu-prof DIR` has every
 * syncer the bench spawns write V8 CPU profiles there, compiled or not: `<phase>/CPU.*.cpuprofile`,
 * one per thread (the main thread's has thread id 0: `CPU.<date>.<time>.<pid>.0.<seq>`).
 *
 * Measures, in one run against the services of .env / the environment, in a sandbox of its own:
 * full load vs a plain `_bulk` ceiling, the extract query alone, live latency at steady write
 * rates, a genre fan-out, catch-up after downtime, a full load by two syncers beside a stream of
 * edits against one beside none, the triggers' cost to writers, and the syncer's
 * peak memory per phase. Prints a table and writes the report to bench-results/<timestamp>.json.
 * The syncer runs with the configuration of the environment (ETL_BULK_SIZE, ...).
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Sandbox } from '../test/helpers/isolation.js';
import { ROOT } from '../test/helpers/runCli.js';
import { DEFAULTS, PHASES, runBenchmark, type Phase } from './benchmark.js';
import { writeCpuProfiles } from './profiledSyncer.js';
import { formatReport, writeReport } from './report.js';
import { onStopSignals } from '../src/cli/stopSignals.js';

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

function whole(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min)
    fail(`--${name} must be a whole number >= ${min}, got ${value}`);
  return n;
}

const { values } = parseArgs({
  options: {
    films: { type: 'string' },
    phases: { type: 'string' },
    out: { type: 'string' },
    rates: { type: 'string' },
    'live-seconds': { type: 'string' },
    'catch-up-changes': { type: 'string' },
    'beside-rate': { type: 'string' },
    'writer-seconds': { type: 'string' },
    'writer-repeats': { type: 'string' },
    compiled: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'npm run bench -- [--films 100000]\n' +
      '  [--phases ceiling,full,live,fanout,catchup,beside,writer]\n' +
      '  [--out bench-results/<timestamp>.json] [--rates 50,500] [--live-seconds 20]\n' +
      '  [--catch-up-changes N] [--beside-rate 50] [--writer-seconds 10] [--writer-repeats 3]\n' +
      '  [--compiled] [--cpu-prof DIR]\n',
  );
  process.exit(0);
}
const phases = (values.phases?.split(',') ?? [...DEFAULTS.phases]).map((p) => p.trim());
const unknown = phases.filter((p) => !(PHASES as readonly string[]).includes(p));
if (unknown.length > 0) fail(`unknown phase(s) ${unknown.join(', ')}; known: ${PHASES.join(', ')}`);
const rates = (values.rates?.split(',') ?? DEFAULTS.rates.map(String)).map((r) =>
  whole('rates', r.trim(), 0),
);
const catchUp = values['catch-up-changes'];

const out =
  values.out ??
  join(ROOT, 'bench-results', `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
const started = Date.now();
const progress = (line: string) =>
  process.stderr.write(
    `[bench ${((Date.now() - started) / 1_000).toFixed(0).padStart(4)} s] ${line}\n`,
  );

if (values.compiled) {
  progress('building the program: npm run build');
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) fail(`npm run build failed (${build.status ?? build.signal})`);
}

if (values['cpu-prof']) writeCpuProfiles(resolve(values['cpu-prof']));

let sandbox: Sandbox | null = null;
onStopSignals(
  () => {
    if (!sandbox) process.exit(130);
    progress('interrupted: removing the sandbox (Ctrl-C again to leave it behind)');
    void sandbox.cleanup().finally(() => process.exit(130));
  },
  () => process.exit(130),
);

try {
  const report = await runBenchmark({
    films: whole('films', values.films, DEFAULTS.films, 10),
    phases: phases as Phase[],
    rates,
    liveSeconds: whole('live-seconds', values['live-seconds'], DEFAULTS.liveSeconds),
    ...(catchUp === undefined ? {} : { catchUpChanges: whole('catch-up-changes', catchUp, 0) }),
    besideRate: whole('beside-rate', values['beside-rate'], DEFAULTS.besideRate),
    writerSeconds: whole('writer-seconds', values['writer-seconds'], DEFAULTS.writerSeconds),
    writerRepeats: whole('writer-repeats', values['writer-repeats'], DEFAULTS.writerRepeats),
    progress,
    compiled: values.compiled,
    onSandbox: (sb) => (sandbox = sb),
  });
  writeReport(report, out);
  process.stdout.write(formatReport(report));
  process.stdout.write(`report: ${out}\n`);
} catch (err) {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
}
