/**
 * What a person reads: the failure report of a round (seed, round, the replay command, the plan,
 * the findings, the drift by id with where each drifted film stands in Redis, the Redis state,
 * the round's timeline and the last log lines of its syncers), and the campaign summary.
 *
 * What can go wrong: a report that hides the one id needed to debug, so every list is cut at a
 * fixed length but says how long it was, and the syncers' full logs stay on disk (the log dir).
 */
import type { Redis } from 'ioredis';
import type { Drift } from '../test/helpers/expectedDocuments.js';
import { at, type Finding, type Note } from './findings.js';
import type { Observation } from './quiescence.js';
import type { SyncerHandle } from './syncerHandle.js';

const first = (items: string[], n: number) =>
  items.length > n
    ? `${items.slice(0, n).join(', ')} … (${items.length} in all)`
    : items.join(', ');

/** Everything that shapes a round's plan or its starting point, as command-line options. */
export function replayCommand(o: {
  seed: number;
  round: number;
  roundSeconds: number;
  syncers: number;
  only?: readonly string[] | undefined;
  films?: number | undefined;
}) {
  return (
    `npm run chaos -- --seed ${o.seed} --round ${o.round} --round-seconds ${o.roundSeconds}` +
    ` --syncers ${o.syncers}${o.only ? ` --only ${o.only.join(',')}` : ''}` +
    (o.films !== undefined && o.films !== 2_000 ? ` --films ${o.films}` : '')
  );
}

/** The fields of a stale document that differ from the expected one. */
export function staleFields(expectedDoc: unknown, actualDoc: unknown): string {
  const expected = expectedDoc as Record<string, unknown>;
  const actual = actualDoc as Record<string, unknown>;
  return Object.keys(expected)
    .filter((k) => JSON.stringify(expected[k]) !== JSON.stringify(actual[k]))
    .map((k) => `${k}: expected ${JSON.stringify(expected[k])} got ${JSON.stringify(actual[k])}`)
    .join('; ');
}

export function describeDriftById(drift: Drift<unknown>): string[] {
  const lines = [
    `missing ${drift.missing.length}: ${first(drift.missing, 10)}`,
    `extra   ${drift.extra.length}: ${first(drift.extra, 10)}`,
    `stale   ${drift.stale.length}: ${first(
      drift.stale.map((s) => s.id),
      10,
    )}`,
  ];
  for (const s of drift.stale.slice(0, 3))
    lines.push(`  ${s.id} ${staleFields(s.expected, s.actual)}`);
  return lines;
}

/** Where each id stands in Redis: queued, claimed, dead-lettered, how often acknowledged. */
export async function traceIds(redis: Redis, prefix: string, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const history = await redis.lrange(`${prefix}history`, 0, -1);
  const lists: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    lists.push(...keys.filter((k) => /:(processing|claim):/.test(k)));
  } while (cursor !== '0');
  const out: string[] = [];
  for (const id of ids) {
    const acked = history.filter((h) => h.includes(id));
    const claimedIn: string[] = [];
    for (const key of lists) {
      if ((await redis.type(key)) === 'list' && (await redis.lpos(key, id)) !== null)
        claimedIn.push(key.slice(prefix.length));
    }
    out.push(
      `  ${id}: queued=${(await redis.lpos(`${prefix}queue`, id)) !== null}` +
        ` claimed=[${claimedIn.join(' ')}] dead=${(await redis.hexists(`${prefix}dead-letters`, id)) === 1}` +
        ` acked=${acked.length}${acked[0] ? ` (last ${acked[0]})` : ''}`,
    );
  }
  return out;
}

export interface FailureContext {
  seed: number;
  round: number;
  roundSeconds: number;
  syncers: number;
  only?: readonly string[] | undefined;
  films?: number | undefined;
  plan: string;
  findings: Finding[];
  notes: Note[];
  observation: Observation | null;
  traces: string[];
  syncerTails: SyncerHandle[];
  logDir: string;
}

export function formatFailure(c: FailureContext): string {
  const o = c.observation;
  const lines = [
    '',
    `=== CHAOS FAILURE: seed ${c.seed}, round ${c.round} ===`,
    `replay: ${replayCommand(c)}`,
    c.plan,
    'findings:',
    ...c.findings.map(
      (f) =>
        `  [${f.kind}] at ${at(f.atMs)}: ${f.summary}${f.detail ? `\n    ${f.detail.split('\n').join('\n    ')}` : ''}`,
    ),
  ];
  if (o?.drift)
    lines.push('drift (index vs Postgres):', ...describeDriftById(o.drift).map((l) => `  ${l}`));
  if (c.traces.length > 0) lines.push('drifted ids in Redis:', ...c.traces);
  if (o?.stranded.length) lines.push('stranded in Redis:', ...o.stranded.map((s) => `  ${s}`));
  if (o?.settings.length) lines.push('index settings:', ...o.settings.map((s) => `  ${s}`));
  if (o?.indices.length) lines.push('indices:', ...o.indices.map((s) => `  ${s}`));
  if (o?.errors.length) lines.push('errors while observing:', ...o.errors.map((s) => `  ${s}`));
  if (o?.redis) {
    const r = o.redis;
    lines.push(
      `redis: ${r.keys} keys, queue ${r.queue}, queued ${r.queued}, claims ${Object.keys(r.claims).length}, ` +
        `lists ${r.lists.length}, leases ${r.leases.map((l) => `${l.key}(pid ${l.holderPid}, ttl ${l.ttlMs})`).join(' ') || '-'}, ` +
        `workers ${r.workers.map((w) => w.pid).join(' ') || '-'}`,
    );
  }
  lines.push('timeline:', ...c.notes.map((n) => `  ${at(n.atMs).padStart(7)} ${n.text}`));
  for (const handle of c.syncerTails) {
    const status = handle.exit ? `exited ${handle.exit.code ?? handle.exit.signal}` : 'running';
    lines.push(`--- ${handle.name} (pid ${handle.pid}, ${status}), last lines:`);
    lines.push(...handle.lastLines(20).map((l) => `  ${l}`));
  }
  lines.push(`full syncer logs: ${c.logDir}`, `replay: ${replayCommand(c)}`, '');
  return lines.join('\n');
}
