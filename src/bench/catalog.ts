/**
 * The bench catalog (untimed): the project's deterministic generator at N films, plus one genre
 * linked to about 10% of them for the fan-out phase, then VACUUM ANALYZE so the planner sees a
 * settled catalog, as it would in production.
 */
import { generateCatalog } from '../seed/catalogGenerator.js';
import { unhurriedPostgres, type BenchSandbox } from './sandbox.js';

export const FAN_OUT_GENRE = 'Бенчмарк';

export interface BenchCatalog {
  films: number;
  seedSeconds: number;
  fanOut: { genreId: string; films: number };
}

export async function seedBenchCatalog(sb: BenchSandbox, films: number): Promise<BenchCatalog> {
  const started = performance.now();
  const db = unhurriedPostgres(sb.config.databaseUrl);
  try {
    await generateCatalog(db, films);
  } finally {
    await db.end();
  }
  const genre = await sb.pool.query<{ id: string }>(
    `INSERT INTO content.genre (id, name, description)
     VALUES (md5('bench-fan-out-genre')::uuid, $1, 'fan-out phase of npm run bench')
     RETURNING id`,
    [FAN_OUT_GENRE],
  );
  const genreId = genre.rows[0]?.id ?? '';
  // Every tenth film by a hash of its id: spread over the catalog, deterministic.
  const links = await sb.pool.query(
    `INSERT INTO content.genre_film_work (id, genre_id, film_work_id, created)
     SELECT md5('bench-fan-out-' || id)::uuid, $1, id, now()
       FROM content.film_work
      WHERE ('x' || left(md5(id::text), 8))::bit(32)::bigint % 10 = 0`,
    [genreId],
  );
  await sb.pool.query('VACUUM ANALYZE');
  return {
    films,
    seedSeconds: (performance.now() - started) / 1_000,
    fanOut: { genreId, films: links.rowCount ?? 0 },
  };
}

/** Film ids in a random but repeatable order, with their titles (for the live edits). */
export async function filmsInRandomOrder(
  sb: BenchSandbox,
  limit: number,
): Promise<{ id: string; title: string }[]> {
  const result = await sb.pool.query<{ id: string; title: string }>(
    `SELECT id, title FROM content.film_work ORDER BY md5(id::text || 'live') LIMIT $1`,
    [limit],
  );
  return result.rows;
}
