/**
 * The end-of-round check: with every fault off and the writers stopped, wait until, all at once,
 * each of the three indices (films, persons, genres) equals the documents computed independently
 * from Postgres (test/helpers/expectedDocuments.ts, expectedPersonsGenres.ts: missing, extra,
 * stale), Redis holds nothing stranded (redisState.ts), no document is dead-lettered, and no index
 * is left in bulk-load mode (refresh on). Then look again
 * a few seconds later, so a late stale write or a lease that comes back is caught too.
 *
 * What can go wrong (false alarms the deadline must absorb): a kill -9'd worker's claim returns
 * only after its 15 s heartbeat lapses and a reaper runs; a dead reader's lock blocks others for up
 * to its 30 s lease; a Redis restarted empty triggers a full reload. 90 s covers all of them.
 */
import type { Client } from '@elastic/elasticsearch';
import { memberOf } from '../src/kinds/kinds.js';
import { indexDrifts } from '../test/helpers/convergence.js';
import { inSync, type Drift } from '../test/helpers/expectedDocuments.js';
import type { Rig } from './rig.js';
import { inspectRedis, strandedProblems, type RedisState } from './redisState.js';
import { sleep } from '../src/util/sleep.js';

const CONFIRM_MS = 3_000;
const PROGRESS_MS = 10_000;

export interface Observation {
  /** All three indices at once, by queue member (a film id, persons/<id>, genres/<id>). */
  drift: Drift<unknown> | null;
  documents: number;
  redis: RedisState | null;
  stranded: string[];
  settings: string[];
  /** Indices of an unfinished reindex (or a syncer's old index) not behind their alias. */
  leftovers: string[];
  /** What each index name is (alias and the index behind it, or a concrete index), for reports. */
  indices: string[];
  errors: string[];
}

export interface QuiescenceResult {
  ok: boolean;
  ms: number;
  last: Observation;
}

export async function awaitQuiescence(
  rig: Rig,
  livePids: () => Set<number>,
  deadlineMs: number,
  signal?: AbortSignal,
  /** Called every PROGRESS_MS with what is still not quiet. */
  progress?: (waitedMs: number, still: string) => void,
): Promise<QuiescenceResult> {
  const started = Date.now();
  let reported = started;
  let last = await observe(rig, livePids());
  while (Date.now() - started < deadlineMs && !signal?.aborted) {
    if (progress && Date.now() - reported >= PROGRESS_MS) {
      reported = Date.now();
      progress(reported - started, unquiet(last));
    }
    if (clean(last)) {
      await sleep(CONFIRM_MS, signal);
      last = await observe(rig, livePids());
      if (clean(last)) return { ok: true, ms: Date.now() - started - CONFIRM_MS, last };
    }
    await sleep(1_000, signal);
    last = await observe(rig, livePids());
  }
  return { ok: false, ms: Date.now() - started, last };
}

const clean = (o: Observation) =>
  o.errors.length === 0 &&
  o.drift !== null &&
  inSync(o.drift) &&
  o.stranded.length === 0 &&
  o.settings.length === 0 &&
  o.leftovers.length === 0;

/** One line: what keeps `o` from being quiet. */
export function unquiet(o: Observation): string {
  const d = o.drift;
  return [
    d
      ? `missing ${d.missing.length} extra ${d.extra.length} stale ${d.stale.length}`
      : 'no drift read',
    ...o.stranded.slice(0, 3),
    ...o.settings,
    ...o.leftovers.map((l) => `left over: ${l}`),
    ...o.errors,
  ].join('; ');
}

export async function observe(rig: Rig, live: Set<number>): Promise<Observation> {
  const { sandbox } = rig;
  const o: Observation = {
    drift: null,
    documents: 0,
    redis: null,
    stranded: [],
    settings: [],
    leftovers: [],
    indices: [],
    errors: [],
  };
  const note = (what: string) => (err: unknown) => {
    o.errors.push(`${what}: ${(err as Error).message}`);
    return null;
  };
  const { config } = sandbox;
  const names = [config.index, config.personsIndex, config.genresIndex];
  const [drifts, redis, settings, indices, leftovers] = await Promise.all([
    indexDrifts(sandbox.pg, sandbox.es, config).catch(note('oracle')),
    inspectRedis(rig.redis, config.redisPrefix).catch(note('redis')),
    Promise.all(
      [config.index, config.personsIndex, config.genresIndex].map((index) =>
        indexSettingsProblems(sandbox.es, index),
      ),
    )
      .then((lists) => lists.flat())
      .catch(note('settings')),
    Promise.all(names.map((name) => describeIndex(sandbox.es, name))),
    Promise.all(names.map((name) => leftoverIndices(sandbox.es, name)))
      .then((lists) => lists.flat())
      .catch(note('leftovers')),
  ]);
  if (drifts) {
    const drift: Drift<unknown> = { missing: [], extra: [], stale: [] };
    for (const { kind, drift: d } of drifts) {
      drift.missing.push(...d.missing.map((id) => memberOf(kind, id)));
      drift.extra.push(...d.extra.map((id) => memberOf(kind, id)));
      drift.stale.push(...d.stale.map((s) => ({ ...s, id: memberOf(kind, s.id) })));
    }
    o.drift = drift;
    o.documents = drifts.find((d) => d.kind === 'films')?.expected ?? 0;
  }
  o.redis = redis;
  if (redis) o.stranded = strandedProblems(redis, live);
  o.settings = settings ?? [];
  o.leftovers = leftovers ?? [];
  o.indices = indices;
  return o;
}

/** `movies: alias of movies_v1 (green, 2000 docs, 14 fields)`, or a concrete index, or missing. */
async function describeIndex(es: Client, name: string): Promise<string> {
  try {
    const alias = await es.indices.existsAlias({ name });
    const found = await es.indices.get({ index: name, ignore_unavailable: true });
    const parts = await Promise.all(
      Object.entries(found).map(async ([index, body]) => {
        const [stats] = await es.cat.indices({ index, format: 'json', h: 'health,docs.count' });
        const fields = Object.keys(body.mappings?.properties ?? {}).length;
        return `${index} (${stats?.health ?? '?'}, ${stats?.['docs.count'] ?? '?'} docs, ${fields} fields)`;
      }),
    );
    if (parts.length === 0) return `${name}: missing`;
    return `${name}: ${alias ? 'alias of' : 'a concrete index:'} ${parts.join(', ')}`;
  } catch (err) {
    return `${name}: could not tell (${(err as Error).message})`;
  }
}

/**
 * The indices named as this alias's own (`<alias>_<suffix>`, a reindex's `<alias>-reindex-<stamp>`)
 * that it does not point at: a reindex stopped or killed leaves one, which its own cleanup or the
 * syncers' index look must remove within seconds of its lease lapsing.
 */
async function leftoverIndices(es: Client, alias: string): Promise<string[]> {
  const found = await es.indices.get({
    index: [`${alias}_*`, `${alias}-reindex-*`],
    allow_no_indices: true,
    ignore_unavailable: true,
    expand_wildcards: 'open',
  });
  const behind = (await es.indices.existsAlias({ name: alias }))
    ? new Set(Object.keys(await es.indices.getAlias({ name: alias })))
    : new Set<string>();
  return Object.keys(found).filter((index) => !behind.has(index));
}

/** Bulk-load mode left on: refresh off (nothing new becomes searchable) or settings to restore. */
async function indexSettingsProblems(es: Client, index: string): Promise<string[]> {
  const problems: string[] = [];
  for (const [name, body] of Object.entries(await es.indices.getSettings({ index }))) {
    const refresh = body.settings?.index?.refresh_interval;
    if (String(refresh) === '-1') problems.push(`${name}: refresh_interval -1 (bulk-load mode)`);
  }
  for (const [name, body] of Object.entries(await es.indices.getMapping({ index }))) {
    const meta = body.mappings._meta ?? {};
    for (const key of Object.keys(meta).filter((k) => k.includes('bulk_load')))
      problems.push(
        `${name}: _meta.${key} = ${JSON.stringify(meta[key])} (settings never restored)`,
      );
  }
  return problems;
}
