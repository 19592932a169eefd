/**
 * A realistic catalog for demos, tests and benchmarks: films with Russian and English titles,
 * genres, and about three persons per film linked roughly ten times per film, with a long tail of
 * prolific persons. Deterministic: the same size gives the same catalog on every machine.
 */
import type { Postgres } from '../db/postgres.js';
import * as sql from '../sql/seed.js';
import { DESCRIPTION_PHRASES, FIRST_NAMES, GENRES, LAST_NAMES, TITLE_WORDS } from './vocabulary.js';

export interface SeedReport {
  films: number;
  persons: number;
  genres: number;
  ms: number;
  /** Whether the capture triggers were skipped (superuser) and announced with one notification. */
  triggersSkipped: boolean;
  /** Whether empty link tables had their indexes built after the load instead of during it. */
  indexesDeferred: boolean;
}

const SEEDED_TABLES = ['genre', 'person', 'film_work', 'genre_film_work', 'person_film_work'];

/**
 * One transaction: a seed that fails leaves nothing behind, and a running syncer sees the whole
 * catalog at once. Two optional speed-ups, each skipped (with the same result, only slower) when the
 * role may not use it: no per-row triggers or foreign-key checks (rows carry etl_txid themselves and
 * the generator sends the notification the triggers would have), and indexes of empty link tables
 * built once after the load.
 */
export async function generateCatalog(db: Postgres, films: number): Promise<SeedReport> {
  const started = performance.now();
  const persons = Math.max(10, films * 3);
  const steps = await db.transaction(async (tx) => {
    const triggersSkipped = await tx.attempt(() => tx.query(sql.skipTriggers));
    const indexesDeferred = await tx.attempt(async () => {
      await tx.query(sql.deferLinkIndexes);
      await tx.query(sql.dropDeferred);
    });
    await tx.query(sql.seedGenres, [GENRES]);
    await tx.query(sql.seedPersons, [persons, FIRST_NAMES, LAST_NAMES]);
    await tx.query(sql.seedFilms, [films, TITLE_WORDS, DESCRIPTION_PHRASES]);
    await tx.query(sql.seedGenreLinks, [films, GENRES.length]);
    await tx.query(sql.seedPersonLinks, [films, persons]);
    if (indexesDeferred) await tx.query(sql.rebuildDeferred);
    if (triggersSkipped) await tx.query(sql.notifyTables, [SEEDED_TABLES]);
    await tx.query(sql.analyzeCatalog);
    return { triggersSkipped, indexesDeferred };
  });
  return {
    films,
    persons,
    genres: GENRES.length,
    ms: performance.now() - started,
    ...steps,
  };
}
