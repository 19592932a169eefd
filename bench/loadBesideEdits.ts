/**
 * A full load beside live edits: what a stream of edits costs a full load, and what a deployment's
 * second syncer hearing them adds. Three times from the same start (the indices deleted, the
 * sandbox's Redis keys gone, the catalog as the earlier phases left it): one syncer with no edits,
 * one syncer while `rate` film edits a second commit, and two syncers while they do. Each edit is
 * its own transaction giving a film a new rating, which reaches the film's document and, resolved
 * through Postgres, its people's (a prolific person's document lists a thousand films or more: the
 * edits bring real work of their own). The clock runs from the spawn until all three indices hold
 * every document, which happens when the load ends (bulk-load mode keeps refresh off until then).
 *
 * Both syncers hear every edit; one captures (src/capture/captureLease.ts), and it is the one that
 * loads. When both captured, the other resolved and queued every edit again, its reads of Postgres
 * taking turns with the load's at the single read lock: 0.49 of one syncer's speed with no edits,
 * against 0.71-0.81 with one capturing. Resolved one edit at a time, 50 edits/s made a 30,000-film
 * load 2.4 times slower still (src/capture/changeCapture.ts, LOAD_RESOLVE_GAP_MS).
 */
import { eventually } from '../test/helpers/convergence.js';
import type { Sandbox } from '../test/helpers/isolation.js';
import { waitForIdle } from './convergence.js';
import { spawnProfiledSyncer } from './profiledSyncer.js';
import type { LoadBesideEditsResult, LoadBesideEditsRun } from './results.js';

const EDIT = `UPDATE content.film_work SET rating = round((random() * 10)::numeric, 1)::float
  WHERE id = $1`;

function indices(sb: Sandbox): string[] {
  return [sb.config.index, sb.config.personsIndex, sb.config.genresIndex];
}

async function documentCounts(sb: Sandbox): Promise<number[]> {
  return Promise.all(
    indices(sb).map((index) =>
      sb.es.count({ index }).then(
        (r) => r.count,
        () => 0,
      ),
    ),
  );
}

/** Edits at `rate` a second (open loop) until `stop` aborts; returns how many committed. */
async function edit(sb: Sandbox, films: string[], rate: number, stop: AbortSignal) {
  const started = performance.now();
  // A function, not a field read: it changes while we await, which narrowing cannot see.
  const stopped = () => stop.aborted;
  let edits = 0;
  while (rate > 0 && !stopped()) {
    const wait = started + (edits * 1_000) / rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (stopped()) break;
    await sb.pg.query(EDIT, [films[edits % films.length]]);
    edits++;
  }
  return edits;
}

async function loadOnce(
  sb: Sandbox,
  expected: number[],
  films: string[],
  run: { syncers: number; rate: number },
  progress: (line: string) => void,
): Promise<Omit<LoadBesideEditsRun, 'ratio'>> {
  const { syncers: count, rate } = run;
  await sb.emptyRedisAndIndices();
  const syncers = Array.from({ length: count }, (_, i) => spawnProfiledSyncer(sb, `beside-${i}`));
  const spawnedAt = Math.min(...syncers.map((s) => s.spawnedAt));
  const stop = new AbortController();
  const editing = edit(sb, films, rate, stop.signal);
  try {
    const total = expected.reduce((a, b) => a + b, 0);
    await eventually(
      async () => (await documentCounts(sb)).every((n, i) => n >= (expected[i] ?? 0)),
      Math.max(120_000, total * 2),
      `full load by ${count} syncer(s) beside ${rate} edits/s`,
      {
        intervalMs: 250,
        progress,
        describe: async () => `${(await documentCounts(sb)).join('/')} of ${expected.join('/')}`,
      },
    );
    const seconds = (performance.now() - spawnedAt) / 1_000;
    stop.abort();
    const edits = await editing;
    // The edits made during the load reach the index too before the syncers stop.
    await waitForIdle(sb, `edits beside the load (${rate}/s)`);
    return {
      syncers: count,
      editsPerSecond: rate,
      edits,
      seconds,
      documentsPerSecond: total / seconds,
    };
  } finally {
    stop.abort();
    await editing.catch(() => undefined);
    for (const syncer of syncers) await syncer.stop();
  }
}

export async function measureLoadBesideEdits(
  sb: Sandbox,
  rate: number,
  progress: (line: string) => void,
): Promise<LoadBesideEditsResult> {
  const expected = await documentCounts(sb);
  const { rows } = await sb.pg.query<{ id: string }>(
    `SELECT id FROM content.film_work ORDER BY md5(id::text || 'beside') LIMIT 10000`,
  );
  const films = rows.map((r) => r.id);
  const runs: LoadBesideEditsRun[] = [];
  for (const run of [
    { syncers: 1, rate: 0 },
    { syncers: 1, rate },
    { syncers: 2, rate },
  ]) {
    const done = await loadOnce(sb, expected, films, run, progress);
    const ratio = (runs[0]?.seconds ?? done.seconds) / done.seconds;
    runs.push({ ...done, ratio });
    progress(
      `full load by ${run.syncers} beside ${run.rate} edits/s: ${done.seconds.toFixed(1)} s`,
    );
  }
  return { documents: expected, runs };
}
