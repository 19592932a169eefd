/**
 * The syncer process of a bench phase: the test suite's spawned `src/cli/start.ts`, tuned as the
 * environment says, with the profile hook preloaded (timers only). Knows its peak resident memory
 * and, after it stopped, its profile.
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
  };
}

export function spawnProfiledSyncer(sandbox: Sandbox, label: string): ProfiledSyncer {
  const dir = mkdtempSync(join(tmpdir(), `bench-${label}-`));
  const profileFile = join(dir, 'profile.json');
  const syncer = spawnSyncer(
    sandbox,
    { ...tuning(sandbox.config), BENCH_PROFILE_FILE: profileFile },
    { preload: [HOOK], outputTail: TAIL },
  );
  // VmHWM is gone with the process: read it often enough that the last reading is near the end.
  const sampler = setInterval(syncer.peakRssMb, 500);
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
