/**
 * Waits until all three indices equal the documents computed from Postgres (films, persons,
 * genres: contract.md sections 2 and 2b), or fails with the drift of each.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Config } from '../../src/config.js';
import type { KindName } from '../../src/kinds/documentKind.js';
import type { Sandbox } from './isolation.js';
import { WATERMARK_TABLES } from '../../src/queue/watermarks.js';
import {
  compare,
  describeDrift,
  expectedDocuments,
  inSync,
  indexedDocuments,
  type Drift,
} from './expectedDocuments.js';
import {
  expectedGenreDocuments,
  expectedPersonDocuments,
  normaliseGenre,
  normalisePerson,
} from './expectedPersonsGenres.js';

export interface IndexDrift {
  kind: KindName;
  /** How many documents Postgres says the index should hold. */
  expected: number;
  drift: Drift<unknown>;
}

/** Each index compared with the oracle; an index that cannot be read counts as empty. */
export async function indexDrifts(
  db: pg.Pool,
  es: Client,
  config: Pick<Config, 'index' | 'personsIndex' | 'genresIndex'>,
): Promise<IndexDrift[]> {
  const empty = () => new Map();
  const [films, filmsIndexed, persons, personsIndexed, genres, genresIndexed] = await Promise.all([
    expectedDocuments(db),
    indexedDocuments(es, config.index).catch(empty),
    expectedPersonDocuments(db),
    indexedDocuments(es, config.personsIndex, normalisePerson).catch(empty),
    expectedGenreDocuments(db),
    indexedDocuments(es, config.genresIndex, normaliseGenre).catch(empty),
  ]);
  return [
    { kind: 'films', expected: films.size, drift: compare<unknown>(films, filmsIndexed) },
    { kind: 'persons', expected: persons.size, drift: compare<unknown>(persons, personsIndexed) },
    { kind: 'genres', expected: genres.size, drift: compare<unknown>(genres, genresIndexed) },
  ];
}

export function describeDrifts(drifts: IndexDrift[]): string {
  return drifts
    .filter((d) => !inSync(d.drift))
    .map((d) => `${d.kind}: ${describeDrift(d.drift)}`)
    .join('\n');
}

export async function waitForConvergence(
  sandbox: Sandbox,
  timeoutMs = 30_000,
): Promise<{ ms: number; documents: number }> {
  const started = Date.now();
  let drifts: IndexDrift[] | null = null;
  while (Date.now() - started < timeoutMs) {
    const looked = Date.now();
    drifts = await indexDrifts(sandbox.pg, sandbox.es, sandbox.config);
    if (drifts.every((d) => inSync(d.drift)))
      return { ms: Date.now() - started, documents: drifts[0]?.expected ?? 0 };
    // A look at 100,000 documents takes seconds of the same CPU the syncer needs: look again
    // after at least twice as long as the last look took, so the oracle never crowds it out.
    await delay(Math.max(200, 2 * (Date.now() - looked)));
  }
  throw new Error(
    `indices did not converge in ${timeoutMs} ms: ${drifts ? describeDrifts(drifts) : 'no read'}`,
  );
}

export interface EventuallyOptions {
  intervalMs?: number;
  /** The state so far, for the timeout's message and for `progress`. */
  describe?: () => Promise<string>;
  /** Called every 10 s with `what` and `describe()`: a long wait shows it is moving. */
  progress?: (line: string) => void;
}

/** Polls `check` until it returns true; returns performance.now() of the poll that saw it. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  what = 'condition',
  options: EventuallyOptions = {},
): Promise<number> {
  const started = performance.now();
  let lastReport = started;
  for (;;) {
    if (await check()) return performance.now();
    const now = performance.now();
    if (now - started > timeoutMs) {
      const detail = options.describe ? `: ${await options.describe()}` : '';
      throw new Error(`${what} not reached in ${timeoutMs} ms${detail}`);
    }
    if (options.progress && options.describe && now - lastReport >= 10_000) {
      lastReport = now;
      options.progress(`${what}: ${await options.describe()}`);
    }
    await delay(options.intervalMs ?? 100);
  }
}

/**
 * The syncer's first full load over: every watermark set. Its documents can all be searchable
 * before it ends (its orphan sweep, then the pass after it): a test that then takes a service
 * away, or expects an edit to go unread, must wait for this, not only for convergence.
 */
export async function waitForFullLoadDone(
  sandbox: Sandbox,
  redis: Pick<Redis, 'mget'> = sandbox.redis,
  timeoutMs = 30_000,
): Promise<void> {
  const keys = WATERMARK_TABLES.map((t) => `${sandbox.config.redisPrefix}watermark:${t}`);
  await eventually(
    async () => (await redis.mget(...keys)).every((v) => v !== null),
    timeoutMs,
    'the first full load over (every watermark set)',
  );
}
