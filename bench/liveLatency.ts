/**
 * Live latency under a steady write load: `rate` edits per second (open loop: edit i is due at
 * start + i/rate, whatever the earlier ones did), each a one-statement transaction that gives one
 * film a title with a unique token. Films are distinct, so every edit has one document to watch.
 *
 *  - commit -> searchable: a reader polls search every 50 ms for the pending titles (one `terms`
 *    query on title.raw for all of them, a batched `_count`), so the reader itself adds no load
 *    per edit; resolution is the poll interval plus the search's own time.
 *  - commit -> acknowledged: the syncer's acknowledgement of the film, which it records (with a
 *    timestamp) in its Redis history right after Elasticsearch acknowledged the bulk item; read
 *    from Redis every 200 ms, without touching Elasticsearch (a realtime GET poll would force
 *    internal refreshes and change what is measured).
 */
import { randomBytes } from 'node:crypto';
import { sleep } from '../src/util/sleep.js';
import type { Sandbox } from '../test/helpers/isolation.js';
import { waitForIdle } from './convergence.js';
import { cpuMeter } from './cpu.js';
import { watchNoise } from './environment.js';
import { spawnProfiledSyncer } from './profiledSyncer.js';
import { percentiles, type LiveResult } from './results.js';

interface Edit {
  id: string;
  title: string;
  issuedAt: number;
  committedAt?: number;
  searchableAt?: number;
  ackedAt?: number;
}

const GRACE_MS = 15_000;

export async function measureLiveLatency(
  sb: Sandbox,
  films: { id: string; title: string }[],
  rate: number,
  seconds: number,
): Promise<LiveResult> {
  const tag = randomBytes(3).toString('hex');
  const planned = Math.min(films.length, Math.round(rate * seconds));
  const edits: Edit[] = films.slice(0, planned).map((film, i) => ({
    id: film.id,
    title: `${film.title.replace(/ zq\w+$/, '')} zq${tag}r${rate}n${i}`,
    issuedAt: 0,
  }));
  const { result, tests } = await watchNoise(async () => {
    const syncer = spawnProfiledSyncer(sb, `live-${rate}`);
    const startedAt = await syncer.started;
    await waitForIdle(sb, 'syncer idle before the live phase');
    const meter = cpuMeter(syncer.pid);
    const state = { writing: true };
    const startedWriting = Date.now();
    let stoppedWriting = startedWriting;
    const deadline = () => !state.writing && Date.now() - stoppedWriting > GRACE_MS;
    const done = () => edits.every((e) => e.searchableAt !== undefined && e.ackedAt !== undefined);
    const writer = (async () => {
      const inFlight: Promise<unknown>[] = [];
      for (const [i, edit] of edits.entries()) {
        const due = startedWriting + (i * 1_000) / rate;
        if (due > Date.now()) await sleep(due - Date.now());
        edit.issuedAt = Date.now();
        inFlight.push(
          sb.pg
            .query('UPDATE content.film_work SET title = $2 WHERE id = $1', [edit.id, edit.title])
            .then(() => (edit.committedAt = Date.now())),
        );
      }
      await Promise.all(inFlight);
      stoppedWriting = Date.now();
      state.writing = false;
    })();
    const searcher = (async () => {
      while ((state.writing || !done()) && !deadline()) {
        // Committed and not yet seen, oldest first (a search returns at most 10,000 hits). Edits
        // still queued in the pool stay out of the query, so a backlog does not inflate it.
        const pending = edits
          .filter((e) => e.committedAt !== undefined && e.searchableAt === undefined)
          .slice(0, 5_000);
        if (pending.length > 0) {
          const response = await sb.es.search({
            index: sb.config.index,
            size: pending.length,
            _source: false,
            query: { terms: { 'title.raw': pending.map((e) => e.title) } },
          });
          const now = Date.now();
          const seen = new Set(response.hits.hits.map((hit) => hit._id));
          for (const edit of pending) if (seen.has(edit.id)) edit.searchableAt = now;
        }
        await sleep(50);
      }
    })();
    const acker = (async () => {
      const byId = new Map(edits.map((e) => [e.id, e]));
      // The history is newest first: read only what was pushed since the last look (the entry
      // that was on top then marks where the new ones end).
      let seenTop: string | undefined;
      while ((state.writing || !done()) && !deadline()) {
        let fresh: string[] = [];
        for (let depth = 500; depth <= 10_000; depth *= 4) {
          const history = await sb.redis.lrange(`${sb.config.redisPrefix}history`, 0, depth - 1);
          const end = seenTop === undefined ? -1 : history.indexOf(seenTop);
          fresh = end >= 0 ? history.slice(0, end) : history;
          if (end >= 0 || history.length < depth) break;
        }
        seenTop = fresh[0] ?? seenTop;
        for (const raw of fresh) {
          const entry = JSON.parse(raw) as { id: string; at: string };
          const edit = byId.get(entry.id);
          const at = Date.parse(entry.at);
          if (!edit || edit.issuedAt === 0 || at < edit.issuedAt) continue;
          if (edit.ackedAt === undefined || at < edit.ackedAt) edit.ackedAt = at;
        }
        await sleep(200);
      }
    })();
    await Promise.all([writer, searcher, acker]);
    const cpu = meter.stop(syncer.pid);
    const writeSeconds = Math.max(0.001, (stoppedWriting - startedWriting) / 1_000);
    const run = await syncer.stop();
    const committed = edits.filter((e) => e.committedAt !== undefined);
    const since = (e: Edit, at: number | undefined) =>
      at === undefined ? [] : [Math.max(0, at - (e.committedAt ?? e.issuedAt))];
    return {
      rate,
      seconds: planned / rate,
      edits: committed.length,
      achievedRate: committed.length / writeSeconds,
      indexedPerEdit: (run.profile?.films ?? NaN) / committed.length,
      searchable: percentiles(
        committed.flatMap((e) => since(e, e.searchableAt)),
        committed.filter((e) => e.searchableAt === undefined).length,
      ),
      acknowledged: percentiles(
        committed.flatMap((e) => since(e, e.ackedAt)),
        committed.filter((e) => e.ackedAt === undefined).length,
      ),
      commit: percentiles(committed.map((e) => (e.committedAt ?? 0) - e.issuedAt)),
      startupSeconds: (startedAt - syncer.spawnedAt) / 1_000,
      peakRssMb: run.peakRssMb,
      redisPeakMb: run.redisPeakMb,
      profile: run.profile,
      cpu,
    };
  });
  return { ...result, concurrentTests: tests };
}
