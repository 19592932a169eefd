/**
 * Full load: the real syncer (spawned `src/cli/start.ts`, no state in Redis, an index that does not
 * exist yet) from spawn until every film is searchable, the queue and claims are empty, and a
 * sample of documents matches what the catalog says now.
 */
import type { Sandbox } from '../test/helpers/isolation.js';
import { countDocuments, waitForIndex } from './convergence.js';
import { cpuMeter } from './cpu.js';
import { watchNoise } from './environment.js';
import { spawnProfiledSyncer } from './profiledSyncer.js';
import type { FullLoadResult } from './results.js';
import { spotCheck } from './spotCheck.js';

export async function measureFullLoad(
  sb: Sandbox,
  progress: (line: string) => void,
): Promise<FullLoadResult> {
  const [row] = (
    await sb.pg.query<{ n: number }>('SELECT count(*)::int AS n FROM content.film_work')
  ).rows;
  const films = row?.n ?? 0;
  const { result, tests } = await watchNoise(async () => {
    const meter = cpuMeter();
    const syncer = spawnProfiledSyncer(sb, 'full-load');
    const startedAt = await syncer.started;
    const doneAt = await waitForIndex(sb, films, {
      what: 'full load',
      timeoutMs: Math.max(120_000, films * 10),
      intervalMs: 250,
      progress,
    });
    const cpu = meter.stop(syncer.pid);
    const seconds = (doneAt - syncer.spawnedAt) / 1_000;
    const check = await spotCheck(sb, 100);
    if (check.mismatched.length > 0) {
      throw new Error(
        `full load: ${check.mismatched.length}/${check.checked} sampled documents differ from the ` +
          `catalog (e.g. ${check.mismatched.slice(0, 3).join(', ')}); ${await countDocuments(sb)} indexed`,
      );
    }
    const run = await syncer.stop();
    // Every index the load filled: each film brings about three persons' documents too.
    let documents = 0;
    for (const index of [sb.config.index, sb.config.personsIndex, sb.config.genresIndex])
      documents += (await sb.es.count({ index })).count;
    return {
      films,
      documents,
      seconds,
      filmsPerSecond: films / seconds,
      documentsPerSecond: documents / seconds,
      spotChecked: check.checked,
      startupSeconds: (startedAt - syncer.spawnedAt) / 1_000,
      peakRssMb: run.peakRssMb,
      redisPeakMb: run.redisPeakMb,
      profile: run.profile,
      cpu,
    };
  });
  return { ...result, concurrentTests: tests };
}
