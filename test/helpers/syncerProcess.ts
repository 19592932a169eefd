/**
 * The syncer as users run it: `src/cli/start.ts` in its own process, so tests can signal it, kill
 * it, and read its peak memory from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { ROOT } from './runCli.js';
import type { Sandbox } from './isolation.js';

/**
 * The V8 settings the image and the README's systemd unit give the compiled program (the
 * Dockerfile's NODE_OPTIONS; test/production.test.ts checks the two agree).
 */
export const PRODUCTION_NODE_OPTIONS = '--max-old-space-size=256 --max-semi-space-size=16';

export interface SyncerProcess {
  child: ChildProcess;
  /** performance.now() at the spawn. */
  spawnedAt: number;
  /** performance.now() when it logged `syncer started`; rejects if it exits before. */
  started: Promise<number>;
  output: () => string;
  /** Peak resident memory in MB (VmHWM); after the exit, the last reading (NaN if none). */
  peakRssMb: () => number;
  /** SIGTERM, and the exit code (or the signal that ended the process). */
  stop: () => Promise<number | string | null>;
}

export interface SpawnOptions {
  /** Modules loaded with `--import` after tsx, before the syncer (the bench's profiling hook). */
  preload?: string[];
  /** Keep only the last this many characters of output: a long bench phase logs without end. */
  outputTail?: number;
  /**
   * Run the compiled program as a container does (`node dist/cli/start.js`, after `npm run
   * build`, with the image's NODE_OPTIONS) instead of the TypeScript sources through tsx;
   * `preload` must then be JavaScript.
   */
  compiled?: boolean;
  /** Options for node itself, before the program (the bench's `--cpu-prof`). */
  nodeArgs?: string[];
}

export function spawnSyncer(
  sandbox: Sandbox,
  env: Record<string, string> = {},
  options: SpawnOptions = {},
): SyncerProcess {
  const preload = (options.preload ?? []).flatMap((module) => ['--import', module]);
  const spawnedAt = performance.now();
  const args = [
    ...(options.nodeArgs ?? []),
    ...(options.compiled
      ? [...preload, 'dist/cli/start.js']
      : ['--import', 'tsx', ...preload, 'src/cli/start.ts']),
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      LOG_LEVEL: 'info',
      ...(options.compiled ? { NODE_OPTIONS: PRODUCTION_NODE_OPTIONS } : {}),
      ...sandbox.env,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let resolveStarted: (at: number) => void = () => undefined;
  let rejectStarted: (err: Error) => void = () => undefined;
  let startedAt: number | null = null;
  const started = new Promise<number>((resolve, reject) => {
    resolveStarted = resolve;
    rejectStarted = reject;
  });
  // Most callers never wait for the start: an early exit must not be an unhandled rejection.
  started.catch(() => undefined);
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    if (options.outputTail !== undefined) output = output.slice(-options.outputTail);
    if (startedAt === null && output.includes('"msg":"syncer started"')) {
      startedAt = performance.now();
      resolveStarted(startedAt);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  child.once('exit', (code, signal) => {
    if (startedAt === null)
      rejectStarted(
        new Error(`syncer exited (${code ?? signal}) before it started:\n${output.slice(-3_000)}`),
      );
  });
  let peak = NaN;
  return {
    child,
    spawnedAt,
    started,
    output: () => output,
    peakRssMb: () => {
      // After the exit its pid may already belong to another process.
      if (child.exitCode !== null || child.signalCode !== null) return peak;
      try {
        const status = readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8');
        const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
        if (kb) peak = Number(kb) / 1024;
      } catch {
        // exited: /proc no longer has it, the last reading stands
      }
      return peak;
    },
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      if (child.signalCode !== null) return child.signalCode;
      child.kill('SIGTERM');
      const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
      if (code !== 0)
        process.stderr.write(`syncer exited with ${code ?? signal}:\n${output.slice(-3_000)}\n`);
      return code ?? signal;
    },
  };
}
