/**
 * Catch-up: with the syncer down (it stopped on SIGTERM after the previous phase), `changes` films
 * get a new title token, in statements of CHUNK films; then a fresh syncer starts and the clock
 * runs from its spawn until search finds the token on every changed film and the queue and claims
 * are empty.
 */
import { randomBytes } from 'node:crypto';
import type { Sandbox } from '../test/helpers/isolation.js';
import { waitForIndex } from './convergence.js';
import { cpuMeter } from './cpu.js';
import { watchNoise } from './environment.js';
import { spawnProfiledSyncer } from './profiledSyncer.js';
import type { CatchUpResult } from './results.js';
import { spotCheck } from './spotCheck.js';

const CHUNK = 5_000;

export async function measureCatchUp(
  sb: Sandbox,
  changes: number,
  progress: (line: string) => void,
): Promise<CatchUpResult> {
  const token = `cu${randomBytes(4).toString('hex')}`;
  const writeStarted = performance.now();
  let cursor = '00000000-0000-0000-0000-000000000000';
  let changed = 0;
  const sample: string[] = [];
  while (changed < changes) {
    const result = await sb.pg.query<{ id: string }>(
      `WITH chunk AS (
         SELECT id FROM content.film_work WHERE id > $1 ORDER BY id LIMIT $2
       )
       UPDATE content.film_work f SET title = f.title || ' ' || $3
         FROM chunk WHERE f.id = chunk.id
       RETURNING f.id::text AS id`,
      [cursor, Math.min(CHUNK, changes - changed), token],
    );
    if (result.rows.length === 0) break;
    changed += result.rows.length;
    const ids = result.rows.map((r) => r.id).sort();
    cursor = ids.at(-1) ?? cursor;
    sample.push(...ids.slice(0, 5));
  }
  const writeSeconds = (performance.now() - writeStarted) / 1_000;
  progress(
    `catch-up: ${changed} films changed with the syncer down in ${writeSeconds.toFixed(1)} s`,
  );

  const { result, tests } = await watchNoise(async () => {
    const meter = cpuMeter();
    const syncer = spawnProfiledSyncer(sb, 'catch-up');
    const startedAt = await syncer.started;
    const doneAt = await waitForIndex(sb, changed, {
      what: 'catch-up',
      query: { match: { title: token } },
      timeoutMs: Math.max(120_000, changed * 10),
      intervalMs: 250,
      progress,
    });
    const cpu = meter.stop(syncer.pid);
    const seconds = (doneAt - syncer.spawnedAt) / 1_000;
    const check = await spotCheck(sb, 0, sample.slice(0, 100));
    if (check.mismatched.length > 0)
      throw new Error(
        `catch-up: ${check.mismatched.length}/${check.checked} sampled documents differ`,
      );
    const run = await syncer.stop();
    return {
      changes: changed,
      writeSeconds,
      seconds,
      filmsPerSecond: changed / seconds,
      startupSeconds: (startedAt - syncer.spawnedAt) / 1_000,
      peakRssMb: run.peakRssMb,
      redisPeakMb: run.redisPeakMb,
      profile: run.profile,
      cpu,
    };
  });
  return { ...result, concurrentTests: tests };
}
