/**
 * The catalog of faults the campaign injects, with how often each is drawn and the ranges of its
 * parameters. Drawing happens here (from the round's Rng), acting on them in faultInjector.ts.
 *
 * Bounds that matter: an Elasticsearch freeze is SIGSTOP of a shared server, so it stays short
 * (at most 8 s); everything else is private to the campaign (its own Redis, its own proxies).
 */
import type { Rng } from './prng.js';

export const FAULT_KINDS = [
  'kill9', // kill -9 one syncer; a replacement starts after `ms`
  'sigterm', // SIGTERM one syncer (exit 0 expected); a replacement starts after `ms`
  'extra-syncer', // one more syncer (up to 3) for `ms`, then SIGTERM (exit 0 expected)
  'syncer-freeze', // SIGSTOP one syncer for `ms` (past its heartbeat and leases), then SIGCONT
  'es-freeze', // SIGSTOP Elasticsearch for `ms` (or the proxy holds requests)
  'es-cut', // the Elasticsearch proxy drops every connection for `ms`
  'es-429', // `fraction` of each bulk answered 429 for `ms`
  'es-5xx', // `fraction` of each bulk answered `status` (500/503) for `ms`
  'redis-refuse', // maxmemory 1 + noeviction for `ms` (writes answer OOM)
  'redis-restart', // kill -9 the private Redis, start it again empty after `ms`
  'redis-freeze', // SIGSTOP the private Redis for `ms`: commands time out, then run when it goes on
  'redis-rollback', // the private Redis saves, goes on for `ms`, then crashes and loads that save
  'pg-terminate', // pg_terminate_backend of the syncers' sessions (`target`)
  'pg-down', // both Postgres proxies refuse connections for `ms`
  'listen-halfopen', // the listener's proxy goes silent (half-open) for `ms`
  'index-deleted', // one index (films, persons or genres, by `pick`) deleted under the syncers
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultEvent {
  kind: FaultKind;
  /** Offset from the round's start. */
  atMs: number;
  /** Duration, down time or life time, by kind (0 for instant faults). */
  ms: number;
  /** Which running syncer (a fraction into the list of running ones, by slot). */
  pick?: number;
  fraction?: number;
  status?: number;
  target?: 'all' | 'pool' | 'listener';
}

const WEIGHTS: Record<FaultKind, number> = {
  kill9: 3,
  sigterm: 2,
  'extra-syncer': 2,
  'syncer-freeze': 2,
  'es-freeze': 1,
  'es-cut': 2,
  'es-429': 2,
  'es-5xx': 2,
  'redis-refuse': 2,
  'redis-restart': 1,
  'redis-freeze': 1.5,
  'redis-rollback': 1,
  'pg-terminate': 2,
  'pg-down': 1.5,
  'listen-halfopen': 2,
  'index-deleted': 1,
};

const secs = (rng: Rng, min: number, max: number) => Math.round(rng.between(min, max) * 1000);

/** One fault of a drawn kind, with its parameters. */
export function drawFault(rng: Rng, atMs: number, only?: readonly FaultKind[]): FaultEvent {
  const weights = only
    ? (Object.fromEntries(only.map((k) => [k, WEIGHTS[k]])) as Record<FaultKind, number>)
    : WEIGHTS;
  const kind = rng.weighted(weights);
  const pick = Math.round(rng.next() * 100) / 100;
  switch (kind) {
    case 'kill9':
    case 'sigterm':
      return { kind, atMs, ms: secs(rng, 0.5, 12), pick };
    case 'extra-syncer':
      return { kind, atMs, ms: secs(rng, 4, 25) };
    case 'syncer-freeze':
      return { kind, atMs, ms: secs(rng, 2, 35), pick };
    case 'es-freeze':
      return { kind, atMs, ms: secs(rng, 1, 8) };
    case 'es-cut':
      return { kind, atMs, ms: secs(rng, 2, 15) };
    case 'es-429':
      return { kind, atMs, ms: secs(rng, 3, 15), fraction: rng.between(0.1, 0.7, 0.05) };
    case 'es-5xx':
      return {
        kind,
        atMs,
        ms: secs(rng, 3, 15),
        fraction: rng.between(0.1, 0.7, 0.05),
        status: rng.pick([500, 503]),
      };
    case 'redis-refuse':
      return { kind, atMs, ms: secs(rng, 2, 10) };
    case 'redis-restart':
      return { kind, atMs, ms: secs(rng, 0, 5) };
    case 'redis-freeze':
      // Mostly past the syncer's 5 s command timeout: that is where a command's caller gives up
      // while Redis still runs the command later.
      return { kind, atMs, ms: secs(rng, 2, 12) };
    case 'redis-rollback':
      return { kind, atMs, ms: secs(rng, 1, 10) };
    case 'pg-terminate':
      return { kind, atMs, ms: 0, target: rng.pick(['all', 'pool', 'listener'] as const) };
    case 'pg-down':
      return { kind, atMs, ms: secs(rng, 2, 12) };
    case 'listen-halfopen':
      return { kind, atMs, ms: secs(rng, 3, 15) };
    case 'index-deleted':
      return { kind, atMs, ms: 0, pick };
  }
}

/** `kill9@3.2s[pick=.42 ms=4.0s]`: the compact form printed in a round's plan. */
export function formatFault(f: FaultEvent): string {
  const params = [
    f.pick === undefined ? null : `pick=${f.pick.toFixed(2)}`,
    f.ms > 0 ? `for=${(f.ms / 1000).toFixed(1)}s` : null,
    f.fraction === undefined ? null : `share=${f.fraction.toFixed(2)}`,
    f.status === undefined ? null : `status=${f.status}`,
    f.target === undefined ? null : `target=${f.target}`,
  ].filter((p) => p !== null);
  return `${f.kind}@${(f.atMs / 1000).toFixed(1)}s[${params.join(' ')}]`;
}
