/**
 * A round's whole schedule, drawn up front from (campaign seed, round number): the faults with
 * their start times and durations, the workload's mix and its timed events (long transactions,
 * TRUNCATEs). Printed at the start of the round and again on failure; `--seed N --round K`
 * draws exactly the same plan again.
 *
 * What is and is not replayable: the plan is bit-exact for a given version of this tool (adding a
 * fault kind or changing a weight changes what every seed draws). Its execution is not: real processes,
 * real networks and real Postgres locks shift every action by milliseconds, and the writers'
 * statements interleave differently. A failure that depends on a narrow window may need a few
 * replays (or neighbouring seeds) to show again.
 */
import { drawFault, formatFault, type FaultEvent, type FaultKind } from './faultCatalog.js';
import { Rng } from './prng.js';

export const OP_KINDS = [
  'film-update', // one film: title/description/rating, with or without touching `modified`
  'film-insert', // a new film with a genre and people (some as producer)
  'film-delete', // a film and, by cascade, its links
  'person-rename',
  'person-insert', // a new person linked to a few films
  'person-delete', // cascades to the person's links
  'genre-rename',
  'genre-insert',
  'genre-delete', // cascades to the genre's links
  'link-add',
  'link-remove',
  'link-move', // UPDATE ... SET film_work_id: the old film loses the link
  'role-change', // actor <-> producer and the like: in and out of the document
  'bulk-update', // one statement over 101-400 films ("many" notification)
  'bulk-insert', // 101-200 films in one statement, with genre links
  'bulk-delete', // 101-250 links, or 101-150 films, in one statement
  'bulk-rename', // 101-200 persons renamed in one statement (a large fan-out)
  'multi', // several of the small writes in one committed transaction
  'rollback', // several writes, bulk ones too, then ROLLBACK: must never reach the index
] as const;

export type OpKind = (typeof OP_KINDS)[number];

const BASE_WEIGHTS: Record<OpKind, number> = {
  'film-update': 10,
  'film-insert': 5,
  'film-delete': 3,
  'person-rename': 4,
  'person-insert': 2,
  'person-delete': 1.5,
  'genre-rename': 1,
  'genre-insert': 0.5,
  'genre-delete': 0.3,
  'link-add': 5,
  'link-remove': 4,
  'link-move': 2,
  'role-change': 2,
  'bulk-update': 0.6,
  'bulk-insert': 0.3,
  'bulk-delete': 0.3,
  'bulk-rename': 0.2,
  multi: 2,
  rollback: 2,
};

export interface WorkloadMix {
  writers: number;
  /** Pause after each write, per writer. */
  pauseMs: number;
  weights: Record<OpKind, number>;
}

export interface LongTransaction {
  atMs: number;
  holdMs: number;
  outcome: 'commit' | 'rollback';
}

export interface Truncation {
  atMs: number;
  table: 'person_film_work' | 'genre_film_work';
  /** 0: re-linked in the TRUNCATE's own transaction; else a separate one this much later. */
  relinkAfterMs: number;
}

/** `npm run reindex` run beside the writers and the faults, as an operator would. */
export interface ReindexRun {
  atMs: number;
  /** One index (`--index`), or all three one after another. */
  index: 'all' | 'films' | 'persons' | 'genres';
  /** Stopped partway: SIGTERM (it withdraws and cleans up) or SIGKILL (the syncers clean up). */
  interrupt: { signal: 'SIGTERM' | 'SIGKILL'; afterMs: number } | null;
}

export interface RoundPlan {
  seed: number;
  round: number;
  roundMs: number;
  faults: FaultEvent[];
  mix: WorkloadMix;
  longTransactions: LongTransaction[];
  truncations: Truncation[];
  reindexes: ReindexRun[];
}

export interface PlanOptions {
  roundSeconds: number;
  /** Restrict the fault kinds (for focused campaigns); all when absent. */
  only?: readonly FaultKind[];
}

export function drawRound(seed: number, round: number, options: PlanOptions): RoundPlan {
  const rng = Rng.of('chaos', seed, 'round', round);
  const roundMs = options.roundSeconds * 1000;
  // Faults start in the first 85% of the round, so most also end inside it.
  const latest = Math.max(1000, Math.floor(roundMs * 0.85));
  const count = Math.max(2, Math.round((roundMs / 6000) * rng.between(0.7, 1.4)));
  const faults = Array.from({ length: count }, () =>
    drawFault(rng, rng.int(500, latest), options.only),
  ).sort((a, b) => a.atMs - b.atMs);

  const weights = Object.fromEntries(
    OP_KINDS.map((k) => [k, Math.round(BASE_WEIGHTS[k] * rng.between(0.2, 2, 0.1) * 100) / 100]),
  ) as Record<OpKind, number>;
  const mix: WorkloadMix = { writers: rng.int(2, 4), pauseMs: rng.int(0, 40), weights };

  const longTransactions = Array.from({ length: rng.int(0, 2) }, () => ({
    atMs: rng.int(0, latest),
    holdMs: rng.int(3_000, Math.max(4_000, roundMs)),
    outcome: rng.chance(0.8) ? ('commit' as const) : ('rollback' as const),
  })).sort((a, b) => a.atMs - b.atMs);
  const truncations: Truncation[] = rng.chance(0.35)
    ? [
        {
          atMs: rng.int(1_000, latest),
          table: rng.pick(['person_film_work', 'genre_film_work'] as const),
          relinkAfterMs: rng.chance(0.4) ? 0 : rng.int(200, 5_000),
        },
      ]
    : [];
  return {
    seed,
    round,
    roundMs,
    faults,
    mix,
    longTransactions,
    truncations,
    reindexes: drawReindexes(seed, round, latest),
  };
}

/**
 * From a stream of its own, so adding reindexes left every seed's faults and workload as they
 * were drawn before.
 */
function drawReindexes(seed: number, round: number, latest: number): ReindexRun[] {
  const rng = Rng.of('chaos', seed, 'round', round, 'reindex');
  if (!rng.chance(0.4)) return [];
  const index = rng.pick(['all', 'films', 'films', 'persons', 'genres'] as const);
  const stop = rng.next();
  const afterMs = rng.int(200, 8_000);
  const interrupt =
    stop < 0.6
      ? null
      : { signal: stop < 0.85 ? ('SIGTERM' as const) : ('SIGKILL' as const), afterMs };
  return [{ atMs: rng.int(500, latest), index, interrupt }];
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** One line per section, compact enough to paste into a bug report. */
export function formatPlan(plan: RoundPlan): string {
  const mix = Object.entries(plan.mix.weights)
    .map(([k, w]) => `${k}:${w}`)
    .join(' ');
  const longs = plan.longTransactions.map(
    (t) => `long-tx@${s(t.atMs)}[hold=${s(t.holdMs)} ${t.outcome}]`,
  );
  const truncs = plan.truncations.map(
    (t) =>
      `truncate@${s(t.atMs)}[${t.table} relink=${t.relinkAfterMs === 0 ? 'same-tx' : s(t.relinkAfterMs)}]`,
  );
  const reindexes = plan.reindexes.map(
    (r) =>
      `reindex@${s(r.atMs)}[${r.index}${r.interrupt ? ` ${r.interrupt.signal}+${s(r.interrupt.afterMs)}` : ''}]`,
  );
  return [
    `round ${plan.round} of seed ${plan.seed}, ${s(plan.roundMs)}`,
    `  faults:   ${plan.faults.map(formatFault).join(' ') || '-'}`,
    `  workload: writers=${plan.mix.writers} pause=${plan.mix.pauseMs}ms ${[...longs, ...truncs, ...reindexes].join(' ')}`,
    `  mix:      ${mix}`,
  ].join('\n');
}
