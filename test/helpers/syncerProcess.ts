/**
 * The syncer as users run it: `src/cli/start.ts` in its own process, so tests can signal it, kill
 * it, and read its peak memory from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { ROOT } from './runCli.js';
import type { Sandbox } from './isolation.js';

export interface SyncerProcess {
  child: ChildProcess;
  output: () => string;
  /** Peak resident memory so far, in MB (VmHWM). */
  peakRssMb: () => number;
  /** SIGTERM, and the exit code (or the signal that ended the process). */
  stop: () => Promise<number | string | null>;
}

export function spawnSyncer(sandbox: Sandbox, env: Record<string, string> = {}): SyncerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/start.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      LOG_LEVEL: 'info',
      ...sandbox.env,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return {
    child,
    output: () => output,
    peakRssMb: () => {
      const status = readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      return kb ? Number(kb) / 1024 : NaN;
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
