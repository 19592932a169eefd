/**
 * The bench catalog (untimed): the project's deterministic generator at N films, plus one genre
 * linked to about 10% of them for the fan-out phase, then VACUUM ANALYZE so the planner sees a
 * settled catalog, as it would in production.
 */
import { Postgres } from '../src/db/postgres.js';
import { generateCatalog } from '../src/seed/catalogGenerator.js';
import { insertGenre } from '../test/helpers/catalog.js';
import type { Sandbox } from '../test/helpers/isolation.js';
import { testLog } from '../test/helpers/syncerHarness.js';

export const FAN_OUT_GENRE = 'Бенчмарк';

export interface BenchCatalog {
  films: number;
  seedSeconds: number;
  fanOut: { genreId: string; films: number };
}

/**
 * The generator's catalog of `films` films in the database at `url`. Its connection has no
 * client-side query timeout: at 100,000 films seed_person_links runs longer than the usual 15 s.
 */
export async function generateInto(url: string, films: number): Promise<void> {
  const db = new Postgres(url, testLog(), 1, 0);
  try {
    await generateCatalog(db, films);
  } finally {
    await db.end();
  }
}

export async function seedBenchCatalog(sb: Sandbox, films: number): Promise<BenchCatalog> {
  const started = performance.now();
  await generateInto(sb.config.databaseUrl, films);
  const genreId = await insertGenre(sb.pg, FAN_OUT_GENRE);
  // Every tenth film by a hash of its id: spread over the catalog, deterministic.
  const links = await sb.pg.query(
    `INSERT INTO content.genre_film_work (id, genre_id, film_work_id, created)
     SELECT md5('bench-fan-out-' || id)::uuid, $1, id, now()
       FROM content.film_work
      WHERE ('x' || left(md5(id::text), 8))::bit(32)::bigint % 10 = 0`,
    [genreId],
  );
  await sb.pg.query('VACUUM ANALYZE');
  return {
    films,
    seedSeconds: (performance.now() - started) / 1_000,
    fanOut: { genreId, films: links.rowCount ?? 0 },
  };
}

/** Film ids in a random but repeatable order, with their titles (for the live edits). */
export async function filmsInRandomOrder(
  sb: Sandbox,
  limit: number,
): Promise<{ id: string; title: string }[]> {
  const result = await sb.pg.query<{ id: string; title: string }>(
    `SELECT id, title FROM content.film_work ORDER BY md5(id::text || 'live') LIMIT $1`,
    [limit],
  );
  return result.rows;
}
