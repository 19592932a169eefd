/**
 * `npm run bench:instructions [-- --films N] [--repeats 3]`: what the change capture costs a
 * writer, counted in CPU instructions instead of seconds.
 *
 * Throughput (`npm run bench -- --phases writer`) scatters from run to run by more than the
 * differences worth measuring; instruction counts repeat to within a few per cent. This runs a
 * PostgreSQL cluster of its own (a temporary directory, a free port) under
 * `valgrind --tool=callgrind`, loads the generated catalog with every migration, and runs the
 * writers' bench transaction (bench/writerOverhead.ts) from one pgbench client with a fixed random
 * seed, with the triggers on (the doorbell held awake: no NOTIFY, the syncer's steady state under
 * edits) and off (`DISABLE TRIGGER USER`), alternated. Each count is the backend's instructions for
 * `long` transactions minus those for `short` ones, which cancels the connection's start; a
 * `VACUUM` before each run keeps the dead rows of earlier runs from adding to later ones.
 *
 * Needs valgrind, pgbench and the PostgreSQL server binaries (`pg_config --bindir`). As root it
 * runs the server as the `postgres` user (the server refuses root). Takes a few minutes: the
 * server runs some fifty times slower under valgrind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { migrate } from '../src/db/migrator.js';
import { MIGRATIONS, testLog } from '../test/helpers/syncerHarness.js';
import { freePort } from '../test/helpers/freePort.js';
import { generateInto } from './catalog.js';
import { which } from './environment.js';
import { median } from './results.js';
import { EDIT, TABLES, psql, run } from './writerOverhead.js';

const { values } = parseArgs({
  options: {
    films: { type: 'string', default: '100000' },
    repeats: { type: 'string', default: '3' },
    short: { type: 'string', default: '50' },
    long: { type: 'string', default: '250' },
  },
});
const films = Number(values.films);
const repeats = Number(values.repeats);
const short = Number(values.short);
const long = Number(values.long);
const say = (line: string) => process.stderr.write(`[instructions] ${line}\n`);
function fail(message: string): never {
  say(message);
  process.exit(2);
}
if (![films, repeats, short, long].every(Number.isInteger) || films < 20 || long <= short)
  fail('--films (20 or more), --repeats, --short and --long take whole numbers, long > short');

const missing = ['valgrind', 'pgbench', 'pg_config'].filter((tool) => !which(tool));
if (missing.length > 0) fail(`needs ${missing.join(', ')} on the PATH`);
const bin = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();

// The server refuses to run as root: then it runs as the postgres user, in a directory it owns.
const asRoot = process.getuid?.() === 0;
const owner = asRoot ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })) : -1;
const serverCommand = (command: string, args: string[]): [string, string[]] =>
  asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];

const dir = mkdtempSync(join(tmpdir(), 'bench-instructions-'));
const data = join(dir, 'data');
const profiles = join(dir, 'callgrind');
mkdirSync(profiles);
if (asRoot) for (const path of [dir, profiles]) chownSync(path, owner, -1);
const port = await freePort();
const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
const serverOptions = [
  ...['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'],
  ...['-c', `unix_socket_directories=${dir}`, '-c', 'autovacuum=off'],
];

let server: ChildProcess | null = null;

/** The server, plain or under callgrind (every backend it forks writes its own profile). */
async function startServer(counted: boolean): Promise<void> {
  const postgres = join(bin, 'postgres');
  const [command, args] = counted
    ? serverCommand('valgrind', [
        '--tool=callgrind',
        '--trace-children=yes',
        `--callgrind-out-file=${join(profiles, 'backend.%p')}`,
        postgres,
        ...serverOptions,
      ])
    : serverCommand(postgres, serverOptions);
  let output = '';
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  server = child;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited:\n${output.slice(-2_000)}`);
    try {
      await run('pg_isready', ['-q', '-h', '127.0.0.1', '-p', String(port)]);
      return;
    } catch {
      if (Date.now() > deadline)
        throw new Error(`postgres did not start:\n${output.slice(-2_000)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

async function stopServer(): Promise<void> {
  const child = server;
  server = null;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // By pg_ctl (a fast shutdown): runuser does not pass a signal on to the server.
  const [pgCtl, args] = serverCommand(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast']);
  await run(pgCtl, args);
  await exited;
}

/** The instructions of the largest profile written since `before` (the pgbench backend's). */
function newestBackend(before: Set<string>): number {
  let best = { size: -1, total: 0 };
  for (const name of readdirSync(profiles)) {
    if (before.has(name)) continue;
    const text = readFileSync(join(profiles, name), 'utf8');
    const total = /^totals:\s+(\d+)/m.exec(text)?.[1] ?? /^summary:\s+(\d+)/m.exec(text)?.[1];
    if (total && text.length > best.size) best = { size: text.length, total: Number(total) };
  }
  if (best.size < 0) throw new Error('no callgrind profile was written for the pgbench run');
  return best.total;
}

async function instructions(db: string, transactions: number, script: string): Promise<number> {
  const before = new Set(readdirSync(profiles));
  await run('pgbench', [
    ...['-n', '-c', '1', '-t', String(transactions), '--random-seed=7'],
    ...['-D', `films=${films}`, '-D', `persons=${films * 3}`, '-f', script, db],
  ]);
  // The backend writes its profile as it exits, a moment after pgbench closes the connection.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  return newestBackend(before);
}

try {
  const [initdb, initArgs] = serverCommand(join(bin, 'initdb'), [
    ...['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'],
  ]);
  await run(initdb, initArgs);
  await startServer(false);
  say(`a cluster of its own on port ${port}; loading ${films} films`);
  await migrate(url, MIGRATIONS, testLog());
  await generateInto(url, films);
  await psql(url, 'VACUUM ANALYZE');
  // Awake: writers read the doorbell and stay quiet, as under a steady stream of edits.
  await psql(url, "UPDATE etl.doorbell SET listening_until = 'infinity', awake_until = 'infinity'");
  await stopServer();
  await startServer(true);
  const script = join(dir, 'edit.sql');
  writeFileSync(script, EDIT);
  if (asRoot) chownSync(script, owner, -1);
  // Once before counting: the first run after the start reads every page it touches into shared
  // buffers, which counts some 4 % more instructions than the runs after it.
  await instructions(url, long, script);
  const counts: Record<'off' | 'on', number[]> = { off: [], on: [] };
  for (let r = 0; r < repeats; r++) {
    for (const condition of r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
      const verb = condition === 'on' ? 'ENABLE' : 'DISABLE';
      await psql(url, TABLES.map((t) => `ALTER TABLE content.${t} ${verb} TRIGGER USER;`).join(''));
      await psql(
        url,
        `VACUUM ${TABLES.map((t) => `content.${t}`).join(', ')}, etl.film_tombstone, etl.person_tombstone`,
      );
      const a = await instructions(url, short, script);
      const b = await instructions(url, long, script);
      const perTransaction = (b - a) / (long - short);
      counts[condition].push(perTransaction);
      say(`triggers ${condition}: ${(perTransaction / 1e6).toFixed(3)} million instructions`);
    }
  }
  const off = median(counts.off);
  const on = median(counts.on);
  process.stdout.write(
    `writer transaction (${EDIT.split('\n').filter((l) => /^(UPDATE|INSERT|DELETE)/.test(l)).length} statements), one client, ${films} films, ${long} - ${short} transactions, median of ${repeats}:\n` +
      `  without triggers  ${(off / 1e6).toFixed(3)} million instructions per transaction\n` +
      `  with triggers     ${(on / 1e6).toFixed(3)} million (+${(((on - off) / off) * 100).toFixed(1)} %; ` +
      `a CPU-bound writer keeps at most ${(off / on).toFixed(2)} of its throughput)\n`,
  );
} finally {
  await stopServer().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
