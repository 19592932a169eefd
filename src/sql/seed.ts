/**
 * SQL of the catalog generator (`npm run seed`): set-based, deterministic (every id and value is a
 * hash of the row number), idempotent (ON CONFLICT DO NOTHING), so seeding twice changes nothing.
 */
import type { Query } from './queries.js';

const query = <Row>(name: string, text: string): Query<Row> => ({ name, text });

/** A deterministic number in [0, 1) from a text key. */
const unit = (key: string) => `(('x' || left(md5(${key}), 8))::bit(32)::bigint / 4294967296.0)`;

export const seedGenres = query<Record<string, never>>(
  'seed_genres',
  `INSERT INTO content.genre (id, name, description, created, modified)
   SELECT md5('genre-' || g.i)::uuid, g.name, 'Фильмы жанра «' || g.name || '»', now(), now()
     FROM unnest($1::text[]) WITH ORDINALITY AS g(name, i)
   ON CONFLICT DO NOTHING`,
);

/** $1 how many persons, $2 first names, $3 last names. */
export const seedPersons = query<Record<string, never>>(
  'seed_persons',
  `INSERT INTO content.person (id, full_name, created, modified)
   SELECT md5('person-' || i)::uuid,
          ($2::text[])[1 + floor(${unit(`'pf' || i`)} * cardinality($2::text[]))::int] || ' ' ||
          ($3::text[])[1 + floor(${unit(`'pl' || i`)} * cardinality($3::text[]))::int],
          now(), now()
     FROM generate_series(1, $1::int) i
   ON CONFLICT DO NOTHING`,
);

/** $1 how many films, $2 title words (first half Russian, second English), $3 description phrases. */
export const seedFilms = query<Record<string, never>>(
  'seed_films',
  `INSERT INTO content.film_work (id, title, description, creation_date, rating, type, created, modified)
   SELECT md5('film-' || i)::uuid,
          initcap(($2::text[])[1 + floor(${unit(`'t1' || i`)} * cardinality($2::text[]))::int]) || ' ' ||
          ($2::text[])[1 + floor(${unit(`'t2' || i`)} * cardinality($2::text[]))::int] ||
          CASE WHEN ${unit(`'t3' || i`)} < 0.3 THEN ' ' || (1 + i % 7)::text ELSE '' END,
          CASE WHEN ${unit(`'dn' || i`)} < 0.1 THEN NULL
               ELSE ($3::text[])[1 + floor(${unit(`'d1' || i`)} * cardinality($3::text[]))::int] || ' ' ||
                    ($3::text[])[1 + floor(${unit(`'d2' || i`)} * cardinality($3::text[]))::int] END,
          CASE WHEN ${unit(`'cn' || i`)} < 0.05 THEN NULL
               ELSE date '1920-01-01' + floor(${unit(`'c' || i`)} * 38000)::int END,
          CASE WHEN ${unit(`'rn' || i`)} < 0.05 THEN NULL
               ELSE round((1 + 9 * ${unit(`'r' || i`)})::numeric, 1)::float END,
          CASE WHEN ${unit(`'ty' || i`)} < 0.2 THEN 'tv_show' ELSE 'movie' END,
          now(), now()
     FROM generate_series(1, $1::int) i
   ON CONFLICT DO NOTHING`,
);

/** One to three genres per film. $1 films, $2 genres. */
export const seedGenreLinks = query<Record<string, never>>(
  'seed_genre_links',
  `INSERT INTO content.genre_film_work (id, genre_id, film_work_id, created)
   SELECT md5('gfw-' || i || '-' || k)::uuid,
          md5('genre-' || (1 + floor(${unit(`'g' || i || '-' || k`)} * $2::int)::int))::uuid,
          md5('film-' || i)::uuid, now()
     FROM generate_series(1, $1::int) i
     CROSS JOIN generate_series(1, 3) k
    WHERE k = 1 OR ${unit(`'gk' || i || '-' || k`)} < 0.4
   ON CONFLICT DO NOTHING`,
);

/**
 * About ten people per film: a director, one or two writers, about seven actors, and now and then
 * a producer (a role the index leaves out). Squaring the draw gives a long tail: a few persons
 * appear in thousands of films. $1 films, $2 persons.
 */
export const seedPersonLinks = query<Record<string, never>>(
  'seed_person_links',
  `INSERT INTO content.person_film_work (id, person_id, film_work_id, role, created)
   SELECT md5('pfw-' || i || '-' || k)::uuid,
          md5('person-' || (1 + floor(power(${unit(`'p' || i || '-' || k`)}, 2) * $2::int)::int))::uuid,
          md5('film-' || i)::uuid,
          CASE WHEN k = 1 THEN 'director'
               WHEN k <= 3 THEN 'writer'
               WHEN k = 12 THEN 'producer'
               ELSE 'actor' END,
          now()
     FROM generate_series(1, $1::int) i
     CROSS JOIN generate_series(1, 12) k
    WHERE k <= 2 OR k BETWEEN 4 AND 10
       OR (k = 3 AND ${unit(`'w' || i`)} < 0.5)
       OR (k = 11 AND ${unit(`'a' || i`)} < 0.5)
       OR (k = 12 AND ${unit(`'pr' || i`)} < 0.2)
   ON CONFLICT DO NOTHING`,
);
