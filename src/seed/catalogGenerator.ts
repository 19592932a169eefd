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
}

export async function generateCatalog(db: Postgres, films: number): Promise<SeedReport> {
  const started = performance.now();
  const persons = Math.max(10, films * 3);
  await db.query(sql.seedGenres, [GENRES]);
  await db.query(sql.seedPersons, [persons, FIRST_NAMES, LAST_NAMES]);
  await db.query(sql.seedFilms, [films, TITLE_WORDS, DESCRIPTION_PHRASES]);
  await db.query(sql.seedGenreLinks, [films, GENRES.length]);
  await db.query(sql.seedPersonLinks, [films, persons]);
  return { films, persons, genres: GENRES.length, ms: performance.now() - started };
}
