/**
 * The big writes: single statements over more than 100 rows (the triggers then send one "many"
 * notification naming only the table, and the syncer must poll for the rows), and TRUNCATE of a
 * link table followed by re-linking every film.
 *
 * What can go wrong: a range drawn near the end of the id space holds fewer than 100 rows, so
 * ranges start in the first 70% of it. TRUNCATE takes an ACCESS EXCLUSIVE lock and queues behind
 * any open transaction on that table (a long one, say): it runs with a lock timeout, and a
 * timeout is workload noise. film_work is never truncated: that would empty the catalog.
 */
import type { Exec, OpContext } from './workloadOps.js';
import { drawUuid, range, rating, words } from './sqlPicks.js';

/** 101-400 films changed by one UPDATE. */
export function bulkUpdate({ q, rng }: OpContext): Promise<number> {
  const start = drawUuid(rng, 0.7);
  const limit = rng.int(101, 400);
  if (rng.chance(0.5)) {
    return q(`UPDATE content.film_work SET rating = $3 WHERE id IN ${range('film_work', 1, 2)}`, [
      start,
      limit,
      rating(rng),
    ]);
  }
  return q(
    `UPDATE content.film_work SET title = regexp_replace(title, ' ~[0-9]+$', '') || ' ~' || $3::text
      WHERE id IN ${range('film_work', 1, 2)}`,
    [start, limit, rng.int(1, 99_999)],
  );
}

/** 101-200 films in one INSERT, then each linked to a genre and an actor (two more statements). */
export async function bulkInsert({ q, rng }: OpContext): Promise<number> {
  const tag = `Bulk ${drawUuid(rng).slice(0, 8)}`;
  let rows = await q(
    `INSERT INTO content.film_work (id, title, description, rating, type)
     SELECT gen_random_uuid(), $1::text || ' ' || n, $2::text, (n % 100) / 10.0,
            CASE WHEN n % 3 = 0 THEN 'tv_show' ELSE 'movie' END
       FROM generate_series(1, $3::int) n`,
    [tag, words(rng, 6), rng.int(101, 200)],
  );
  rows += await q(
    `INSERT INTO content.genre_film_work (id, genre_id, film_work_id)
     SELECT gen_random_uuid(), g.id, f.id
       FROM content.film_work f
       CROSS JOIN LATERAL (SELECT id FROM content.genre WHERE id >= md5(f.id::text)::uuid
                            ORDER BY id LIMIT 1) g
      WHERE f.title LIKE $1::text || ' %'`,
    [tag],
  );
  rows += await q(
    `INSERT INTO content.person_film_work (id, person_id, film_work_id, role)
     SELECT gen_random_uuid(), p.id, f.id, 'actor'
       FROM content.film_work f
       CROSS JOIN LATERAL (SELECT id FROM content.person WHERE id >= md5(f.id::text)::uuid
                            ORDER BY id LIMIT 1) p
      WHERE f.title LIKE $1::text || ' %'`,
    [tag],
  );
  return rows;
}

/** 101-250 links, or 101-150 films (cascading to their links), in one DELETE. */
export function bulkDelete({ q, rng }: OpContext, filmsToo: boolean): Promise<number> {
  const start = drawUuid(rng, 0.7);
  if (filmsToo && rng.chance(0.4)) {
    return q(`DELETE FROM content.film_work WHERE id IN ${range('film_work', 1, 2)}`, [
      start,
      rng.int(101, 150),
    ]);
  }
  const table = rng.chance(0.6) ? 'person_film_work' : 'genre_film_work';
  return q(`DELETE FROM content.${table} WHERE id IN ${range(table, 1, 2)}`, [
    start,
    rng.int(101, 250),
  ]);
}

/** 101-200 persons renamed by one UPDATE: each of their films changes. */
export function bulkRename({ q, rng }: OpContext): Promise<number> {
  return q(
    `UPDATE content.person SET full_name = regexp_replace(full_name, ' \\[[0-9]+\\]$', '')
                                           || ' [' || $3::text || ']'
      WHERE id IN ${range('person', 1, 2)}`,
    [drawUuid(rng, 0.5), rng.int(101, 200), rng.int(1, 99_999)],
  );
}

export function truncate(q: Exec, table: 'person_film_work' | 'genre_film_work'): Promise<number> {
  return q(`TRUNCATE content.${table}`, []);
}

/** Every film linked again: four roles (one a producer) or one genre each, by hashed pick. */
export function relink(q: Exec, table: 'person_film_work' | 'genre_film_work'): Promise<number> {
  if (table === 'genre_film_work') {
    return q(
      `INSERT INTO content.genre_film_work (id, genre_id, film_work_id)
       SELECT gen_random_uuid(), g.id, f.id
         FROM content.film_work f
         CROSS JOIN LATERAL (SELECT id FROM content.genre WHERE id >= md5(f.id::text)::uuid
                              ORDER BY id LIMIT 1) g
       ON CONFLICT DO NOTHING`,
      [],
    );
  }
  return q(
    `INSERT INTO content.person_film_work (id, person_id, film_work_id, role)
     SELECT gen_random_uuid(), p.id, f.id, r.role
       FROM content.film_work f
       CROSS JOIN (VALUES ('actor'), ('director'), ('writer'), ('producer')) r(role)
       CROSS JOIN LATERAL (SELECT id FROM content.person
                            WHERE id >= md5(f.id::text || r.role)::uuid ORDER BY id LIMIT 1) p
     ON CONFLICT DO NOTHING`,
    [],
  );
}
