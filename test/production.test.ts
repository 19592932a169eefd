/**
 * The syncer as production runs it: compiled by `npm run build` and started with plain
 * `node dist/cli/start.js` (no npm, no tsx), the command of the image and of the README's systemd
 * unit. A supervisor (Docker's PID 1, systemd) signals only the main pid: that pid must be the
 * syncer itself, stop cleanly within its bound, and leave nothing in flight.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DocumentQueue } from '../src/queue/documentQueue.js';
import { RedisStore } from '../src/queue/redisStore.js';
import { seedCatalog } from './helpers/catalog.js';
import { eventually, waitForConvergence } from './helpers/convergence.js';
import { createSandbox, type Sandbox } from './helpers/isolation.js';
import { ROOT } from './helpers/runCli.js';
import { testLog } from './helpers/syncerHarness.js';
import { PRODUCTION_NODE_OPTIONS } from './helpers/syncerProcess.js';

/** The syncer's own stop bound is the batch in flight's 10 s grace plus closing; this is above. */
const STOP_BOUND_MS = 20_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; `node` is this very executable. */
function run(args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 180_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Pids whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid ...; comm may hold spaces and parentheses: split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) found.push(Number(entry));
  }
  return found;
}

interface Production {
  child: ChildProcess;
  pid: number;
  output: () => string;
  messages: () => string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

describe('production: node dist/cli/start.js under a supervisor', { timeout: 600_000 }, () => {
  const app = join(ROOT, '.test-build', randomBytes(6).toString('hex'));
  const started: Production[] = [];
  let sandbox: Sandbox;
  let store: RedisStore;
  let queue: DocumentQueue;

  /** Exactly the production command, `node dist/cli/start.js`, in the app directory. */
  function startProduction(env: Record<string, string> = {}): Production {
    const child = spawn(process.execPath, ['dist/cli/start.js'], {
      cwd: app,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        LOG_LEVEL: 'info',
        NODE_OPTIONS: PRODUCTION_NODE_OPTIONS,
        ...sandbox.env,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
    assert.ok(child.pid !== undefined, 'the syncer started');
    const production: Production = {
      child,
      pid: child.pid,
      output: () => output,
      messages: () =>
        output
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => (JSON.parse(line) as { msg?: string }).msg ?? ''),
      exited,
    };
    started.push(production);
    return production;
  }

  /** SIGTERM to the main pid only, as a supervisor sends it; the exit and how long it took. */
  async function terminate(syncer: Production): Promise<{ code: number | null; ms: number }> {
    const signalled = Date.now();
    process.kill(syncer.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      syncer.exited,
      new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), STOP_BOUND_MS * 2))),
    ]);
    clearTimeout(timer);
    const ms = Date.now() - signalled;
    if (result === null) throw new Error(`no exit ${ms} ms after SIGTERM:\n${syncer.output()}`);
    if (result.code !== 0)
      process.stderr.write(
        `syncer exited with ${result.code ?? result.signal}:\n${syncer.output()}`,
      );
    return { code: result.code, ms };
  }

  async function keysMatching(pattern: string): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await sandbox.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    return keys;
  }

  /** Nothing in flight: no claims hash (Redis drops empty ones), no claim or processing keys. */
  async function assertNothingInFlight(): Promise<void> {
    const prefix = sandbox.config.redisPrefix;
    assert.equal(await sandbox.redis.exists(`${prefix}claims`), 0, 'the claims hash is empty');
    assert.deepEqual(await keysMatching(`${prefix}processing:*`), [], 'no processing lists');
    assert.deepEqual(await keysMatching(`${prefix}claim:*`), [], 'no claim keys');
  }

  before(async () => {
    // The build, into a directory under the repository so node_modules resolves as in the image;
    // the migrations next to dist/, as the image lays them out.
    mkdirSync(app, { recursive: true });
    const tsc = await run(
      [
        join(ROOT, 'node_modules/typescript/bin/tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        join(app, 'dist'),
      ],
      { cwd: ROOT },
    );
    assert.equal(tsc.code, 0, `tsc failed:\n${tsc.stdout}${tsc.stderr}`);
    const assets = await run(['scripts/copy-assets.js', join(app, 'dist')], { cwd: ROOT });
    assert.equal(assets.code, 0, `copy-assets failed:\n${assets.stdout}${assets.stderr}`);
    cpSync(join(ROOT, 'migrations'), join(app, 'migrations'), { recursive: true });

    sandbox = await createSandbox('production');
    const migrated = await run(['dist/cli/migrate.js'], { cwd: app, env: sandbox.env });
    assert.equal(migrated.code, 0, `migrate failed:\n${migrated.stdout}${migrated.stderr}`);
    assert.match(migrated.stdout, /migrations applied/);
    await seedCatalog(sandbox.pg, 5_000, 10, 500);
    store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
    queue = new DocumentQueue(store);
  });

  after(async () => {
    for (const syncer of started) {
      if (syncer.child.exitCode === null && syncer.child.signalCode === null) {
        syncer.child.kill('SIGKILL');
        await syncer.exited;
      }
    }
    await store.close();
    await sandbox.cleanup();
    rmSync(app, { recursive: true, force: true });
    const builds = join(ROOT, '.test-build');
    if (existsSync(builds) && readdirSync(builds).length === 0) rmSync(builds, { recursive: true });
  });

  it('gives node the same V8 settings in the image, the systemd unit and these tests', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    assert.ok(
      dockerfile.includes(`ENV NODE_OPTIONS="${PRODUCTION_NODE_OPTIONS}"`),
      'the Dockerfile sets NODE_OPTIONS',
    );
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    assert.ok(
      readme.includes(`Environment="NODE_OPTIONS=${PRODUCTION_NODE_OPTIONS}"`),
      "the README's systemd unit sets NODE_OPTIONS",
    );
  });

  it('SIGTERM to the main pid mid full load: exit 0 within the bound, nothing in flight', async () => {
    // One worker and small bulks: loading is slower than queueing, so a backlog builds up.
    const syncer = startProduction({
      ETL_SIZE_LIMIT: '100',
      ETL_BULK_SIZE: '10',
      ETL_WORKERS: '1',
    });
    await eventually(
      async () => (await queue.history(1)).length > 0 && (await queue.depth()) > 500,
      60_000,
      'full load under way',
    );
    // The main pid is the syncer itself: nothing between it and the supervisor, no children.
    const cmdline = readFileSync(`/proc/${syncer.pid}/cmdline`, 'utf8').split('\0');
    assert.deepEqual(cmdline.slice(1, -1), ['dist/cli/start.js']);
    assert.deepEqual(childrenOf(syncer.pid), [], 'the syncer runs no child process');

    const { code, ms } = await terminate(syncer);
    assert.equal(code, 0);
    assert.ok(ms < STOP_BOUND_MS, `exited ${ms} ms after SIGTERM`);
    const messages = syncer.messages();
    assert.ok(messages.includes('signal received'), 'logged the signal');
    assert.ok(messages.includes('stopped'), 'logged that it stopped');
    await assertNothingInFlight();
    assert.ok((await queue.depth()) > 0, 'it stopped mid load: work is left for the next start');
    // A first start on a fresh install is no cause for alarm: its new indices are filled by the
    // full load such a start runs anyway. (Only the indices' lines: a busy machine may make a
    // bulk retry or a lease warning on any start.)
    assert.ok(messages.includes('index is new: the first full load fills it'), 'said so');
    const warnings = syncer
      .output()
      .split('\n')
      .filter((line) => /^\{"level":[4-6]0,/.test(line) && line.includes('"component":"index"'));
    assert.deepEqual(warnings, [], 'a first start warns of nothing about its indices');
    console.log(`# SIGTERM to the main pid: exit 0 in ${ms} ms`);
  });

  it('the next start resumes and converges, and stops the same way', async () => {
    const syncer = startProduction({ ETL_SIZE_LIMIT: '100', ETL_BULK_SIZE: '100' });
    await eventually(
      async () => (await queue.depth()) === 0 && (await queue.inFlight()).length === 0,
      120_000,
      'the resumed queue drained',
    );
    await waitForConvergence(sandbox, 120_000);
    const { code, ms } = await terminate(syncer);
    assert.equal(code, 0);
    assert.ok(ms < STOP_BOUND_MS, `exited ${ms} ms after SIGTERM`);
    assert.ok(syncer.messages().includes('stopped'), 'logged that it stopped');
    await assertNothingInFlight();
  });

  it('with the most indexers, idle, writes nothing but its log lines (no runtime warnings)', async () => {
    const syncer = startProduction({ ETL_WORKERS: '16' });
    await waitForConvergence(sandbox, 120_000);
    // Idle: every indexer waits for work, each with its own listener on the stop signal.
    await eventually(
      () => syncer.messages().includes('syncer started'),
      30_000,
      'the syncer started',
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const { code } = await terminate(syncer);
    assert.equal(code, 0);
    const stray = syncer
      .output()
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('{'));
    assert.deepEqual(stray, []);
  });
});
