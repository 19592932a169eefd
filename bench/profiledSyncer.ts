/**
 * The syncer process of a bench phase: the test suite's spawned `src/cli/start.ts`, tuned as the
 * environment says, with the profile hook preloaded (timers only); or, with `--compiled`, the
 * program a container runs (`node dist/cli/start.js`, no loader, no hook, so no profile). Knows
 * its peak resident memory, how much Redis grew while it ran, and, after it stopped, its profile.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../src/config.js';
import type { Sandbox } from '../test/helpers/isolation.js';
import { spawnSyncer } from '../test/helpers/syncerProcess.js';
import { readProfile, summariseProfile, type ProfileSummary } from './profile.js';

const HOOK = new URL('./profileHook.ts', import.meta.url).href;
/** A full load of 100,000 films logs far more than anyone reads when it fails. */
const TAIL = 20_000;

export interface SyncerRun {
  /** Peak RSS in MB, and where the time went. */
  peakRssMb: number;
  /** Redis `used_memory` at its highest while the syncer ran, above what it was at the spawn. */
  redisPeakMb: number;
  profile: ProfileSummary | null;
  exitCode: number | string | null;
}

export interface ProfiledSyncer {
  pid: number;
  spawnedAt: number;
  /** Resolves with the time (ms, performance.now()) the syncer logged 'syncer started'. */
  started: Promise<number>;
  /** SIGTERM, wait for the exit; peak memory and profile. */
  stop(): Promise<SyncerRun>;
}

/**
 * The child gets only the sandbox's variables, not this process's environment: pass on the tuning
 * the bench reports it measured (`ETL_BULK_SIZE=1000 npm run bench`).
 */
function tuning(config: Config): Record<string, string> {
  return {
    ETL_SIZE_LIMIT: String(config.sizeLimit),
    ETL_BULK_SIZE: String(config.bulkSize),
    ETL_SLEEP_MS: String(config.sleepMs),
    ETL_POLL_INTERVAL_MS: String(config.pollIntervalMs),
    ETL_WORKERS: String(config.workers),
    ETL_REFRESH_MS: String(config.refreshMs),
  };
}

let compiled = false;
let cpuProfileDir: string | null = null;

/** Every syncer the bench spawns from now on is the compiled program (`npm run build` first). */
export function runCompiledSyncer(): void {
  compiled = true;
}

/**
 * Every syncer the bench spawns from now on writes a V8 CPU profile into `dir` when it exits
 * (open it in Chrome's DevTools or speedscope): where the syncer's own CPU goes.
 */
export function writeCpuProfiles(dir: string): void {
  cpuProfileDir = dir;
}

/** Redis's own count of the memory it uses (INFO memory, used_memory), in bytes. */
async function redisUsedMemory(sandbox: Sandbox): Promise<number> {
  const info = await sandbox.redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
}

export function spawnProfiledSyncer(sandbox: Sandbox, label: string): ProfiledSyncer {
  const dir = mkdtempSync(join(tmpdir(), `bench-${label}-`));
  const profileFile = join(dir, 'profile.json');
  let redisBase = NaN;
  let redisPeak = NaN;
  void redisUsedMemory(sandbox).then((bytes) => (redisBase = redisPeak = bytes));
  // A directory per phase and node's own names, one file per thread: under the TypeScript loader
  // the syncer has a second thread (the loader's), and one fixed name had it overwrite the main
  // thread's profile. The main thread's name carries thread id 0 (CPU.<date>.<time>.<pid>.0.*).
  const nodeArgs = cpuProfileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfileDir, label)}`]
    : [];
  const syncer = spawnSyncer(
    sandbox,
    { ...tuning(sandbox.config), BENCH_PROFILE_FILE: profileFile },
    compiled
      ? { outputTail: TAIL, compiled, nodeArgs }
      : { preload: [HOOK], outputTail: TAIL, nodeArgs },
  );
  // VmHWM is gone with the process: read it often enough that the last reading is near the end.
  const sampler = setInterval(() => {
    syncer.peakRssMb();
    void redisUsedMemory(sandbox)
      .then((bytes) => (redisPeak = Math.max(redisPeak, bytes)))
      .catch(() => undefined);
  }, 500);
  syncer.child.once('exit', () => clearInterval(sampler));
  const peakRssMb = () => {
    const mb = syncer.peakRssMb();
    return Number.isNaN(mb) ? 0 : Math.round(mb * 10) / 10;
  };

  let stopping: Promise<SyncerRun> | null = null;
  const stop = async (): Promise<SyncerRun> => {
    const mb = peakRssMb();
    const exitCode = await syncer.stop();
    const raw = readProfile(profileFile);
    rmSync(dir, { recursive: true, force: true });
    return {
      peakRssMb: mb,
      redisPeakMb: Math.round(((redisPeak - redisBase) / 1_048_576) * 10) / 10,
      profile: raw ? summariseProfile(raw, sandbox.config.workers) : null,
      exitCode,
    };
  };
  sandbox.onCleanup(async () => {
    await (stopping ??= stop());
  });
  return {
    pid: syncer.child.pid ?? 0,
    spawnedAt: syncer.spawnedAt,
    started: syncer.started,
    stop: () => (stopping ??= stop()),
  };
}
