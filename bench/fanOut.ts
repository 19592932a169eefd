/**
 * Fan-out: rename the bench genre (linked to ~10% of the films) in one statement, and time until
 * search shows the new name on every one of those documents (`_count` of a term query on the
 * genres_names keyword, polled every 100 ms), and until it shows it on the first.
 */
import { randomBytes } from 'node:crypto';
import { eventually } from '../test/helpers/convergence.js';
import type { Sandbox } from '../test/helpers/isolation.js';
import { countDocuments, waitForIdle } from './convergence.js';
import { cpuMeter } from './cpu.js';
import { watchNoise } from './environment.js';
import { spawnProfiledSyncer } from './profiledSyncer.js';
import type { FanOutResult } from './results.js';

export async function measureFanOut(
  sb: Sandbox,
  genreId: string,
  films: number,
  progress: (line: string) => void,
): Promise<FanOutResult> {
  const name = `Бенчмарк ${randomBytes(3).toString('hex')}`;
  const query = { term: { genres_names: name } };
  const { result, tests } = await watchNoise(async () => {
    const syncer = spawnProfiledSyncer(sb, 'fan-out');
    const startedAt = await syncer.started;
    await waitForIdle(sb, 'syncer idle before the fan-out');
    const meter = cpuMeter(syncer.pid);
    await sb.pg.query('UPDATE content.genre SET name = $2 WHERE id = $1', [genreId, name]);
    const committed = performance.now();
    const seen: { first: number | null } = { first: null };
    const done = await eventually(
      async () => {
        const count = await countDocuments(sb, query);
        if (count > 0) seen.first ??= performance.now();
        return count === films;
      },
      Math.max(60_000, films * 20),
      'fan-out',
      {
        intervalMs: 100,
        progress,
        describe: async () => `${await countDocuments(sb, query)}/${films} show the new name`,
      },
    );
    const cpu = meter.stop(syncer.pid);
    const run = await syncer.stop();
    const seconds = (done - committed) / 1_000;
    return {
      films,
      seconds,
      firstVisibleSeconds: ((seen.first ?? done) - committed) / 1_000,
      filmsPerSecond: films / seconds,
      startupSeconds: (startedAt - syncer.spawnedAt) / 1_000,
      peakRssMb: run.peakRssMb,
      redisPeakMb: run.redisPeakMb,
      profile: run.profile,
      cpu,
    };
  });
  return { ...result, concurrentTests: tests };
}
