/**
 * The syncer as users run it: `src/cli/start.ts` in its own process, with the profile hook
 * preloaded (timers only). Knows when it has started, its peak resident memory (VmHWM from /proc)
 * and, after it stopped, its profile.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readProfile, summariseProfile, type ProfileSummary } from './profile.js';
import { ROOT, type BenchSandbox } from './sandbox.js';

const HOOK = pathToFileURL(fileURLToPath(new URL('./profileHook.ts', import.meta.url))).href;
const TAIL = 20_000;

export interface SyncerRun {
  /** Peak RSS in MB, profile of where the time went, and the last lines it logged. */
  peakRssMb: number;
  profile: ProfileSummary | null;
  exitCode: number | string | null;
}

export interface SpawnedSyncer {
  pid: number;
  spawnedAt: number;
  /** Resolves with the time (ms, performance.now()) the syncer logged 'syncer started'. */
  started: Promise<number>;
  peakRssMb(): number;
  output(): string;
  /** SIGTERM, wait for the exit; peak memory and profile. */
  stop(): Promise<SyncerRun>;
}

export function spawnSyncer(sandbox: BenchSandbox, label: string): SpawnedSyncer {
  const dir = mkdtempSync(join(tmpdir(), `bench-${label}-`));
  const profileFile = join(dir, 'profile.json');
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', HOOK, 'src/cli/start.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...sandbox.env,
      BENCH_PROFILE_FILE: profileFile,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let startedAt: number | null = null;
  let resolveStarted: (at: number) => void = () => undefined;
  let rejectStarted: (err: Error) => void = () => undefined;
  const started = new Promise<number>((resolve, reject) => {
    resolveStarted = resolve;
    rejectStarted = reject;
  });
  started.catch(() => undefined);
  const onData = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-TAIL);
    if (startedAt === null && output.includes('"msg":"syncer started"')) {
      startedAt = performance.now();
      resolveStarted(startedAt);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let peak = 0;
  const peakRssMb = () => {
    try {
      const status = readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      if (kb) peak = Math.max(peak, Number(kb) / 1024);
    } catch {
      // exited: keep the last reading
    }
    return Math.round(peak * 10) / 10;
  };
  const sampler = setInterval(peakRssMb, 500);
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  void exited.then(([code, signal]) => {
    clearInterval(sampler);
    if (startedAt === null)
      rejectStarted(
        new Error(`syncer exited (${code ?? signal}) before it started:\n${output.slice(-3_000)}`),
      );
  });

  let stopping: Promise<SyncerRun> | null = null;
  const stop = async (): Promise<SyncerRun> => {
    peakRssMb();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const [code, signal] = await exited;
    const raw = readProfile(profileFile);
    rmSync(dir, { recursive: true, force: true });
    if (code !== 0) process.stderr.write(`syncer ${label} exited with ${code ?? signal}\n`);
    return {
      peakRssMb: peakRssMb(),
      profile: raw ? summariseProfile(raw, sandbox.config.workers) : null,
      exitCode: code ?? signal,
    };
  };
  sandbox.onCleanup(async () => {
    await (stopping ??= stop());
  });
  return {
    pid: child.pid ?? 0,
    spawnedAt,
    started,
    peakRssMb,
    output: () => output,
    stop: () => (stopping ??= stop()),
  };
}
