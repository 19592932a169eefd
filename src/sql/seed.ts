/**
 * SQL of the catalog generator (`npm run seed`): set-based, deterministic (every id and value is a
 * hash of the row number), idempotent (rows that exist are left alone), so seeding twice changes
 * nothing. Rows carry `etl_txid` themselves, so they are captured the same whether the capture
 * triggers run or not (see catalogGenerator.ts).
 */
import type { Query } from './queries.js';

const query = <Row>(name: string, text: string): Query<Row> => ({ name, text });

/** A deterministic number in [0, 1) from a text key. */
const unit = (key: string) => `(('x' || left(md5(${key}), 8))::bit(32)::bigint / 4294967296.0)`;

export const seedGenres = query<Record<string, never>>(
  'seed_genres',
  `INSERT INTO content.genre (id, name, description, created, modified, etl_txid)
   SELECT g.id, g.name, g.description, now(), now(), pg_current_xact_id()
     FROM (SELECT md5('genre-' || i)::uuid AS id, name, 'Фильмы жанра «' || name || '»' AS description
             FROM unnest($1::text[]) WITH ORDINALITY AS u(name, i)) g
    WHERE NOT EXISTS (SELECT 1 FROM content.genre e WHERE e.id = g.id)`,
);

/** $1 how many persons, $2 first names, $3 last names. */
export const seedPersons = query<Record<string, never>>(
  'seed_persons',
  `INSERT INTO content.person (id, full_name, created, modified, etl_txid)
   SELECT p.id, p.full_name, now(), now(), pg_current_xact_id()
     FROM (SELECT md5('person-' || i)::uuid AS id,
                  ($2::text[])[1 + floor(${unit(`'pf' || i`)} * cardinality($2::text[]))::int] || ' ' ||
                  ($3::text[])[1 + floor(${unit(`'pl' || i`)} * cardinality($3::text[]))::int] AS full_name
             FROM generate_series(1, $1::int) i) p
    WHERE NOT EXISTS (SELECT 1 FROM content.person e WHERE e.id = p.id)
    ORDER BY p.id`,
);

/** $1 how many films, $2 title words (first half Russian, second English), $3 description phrases. */
export const seedFilms = query<Record<string, never>>(
  'seed_films',
  `INSERT INTO content.film_work
          (id, title, description, creation_date, rating, type, created, modified, etl_txid)
   SELECT f.id, f.title, f.description, f.creation_date, f.rating, f.type, now(), now(), pg_current_xact_id()
     FROM (SELECT md5('film-' || i)::uuid AS id,
                  initcap(($2::text[])[1 + floor(${unit(`'t1' || i`)} * cardinality($2::text[]))::int]) || ' ' ||
                  ($2::text[])[1 + floor(${unit(`'t2' || i`)} * cardinality($2::text[]))::int] ||
                  CASE WHEN ${unit(`'t3' || i`)} < 0.3 THEN ' ' || (1 + i % 7)::text ELSE '' END AS title,
                  CASE WHEN ${unit(`'dn' || i`)} < 0.1 THEN NULL
                       ELSE ($3::text[])[1 + floor(${unit(`'d1' || i`)} * cardinality($3::text[]))::int] || ' ' ||
                            ($3::text[])[1 + floor(${unit(`'d2' || i`)} * cardinality($3::text[]))::int] END AS description,
                  CASE WHEN ${unit(`'cn' || i`)} < 0.05 THEN NULL
                       ELSE date '1920-01-01' + floor(${unit(`'c' || i`)} * 38000)::int END AS creation_date,
                  CASE WHEN ${unit(`'rn' || i`)} < 0.05 THEN NULL
                       ELSE round((1 + 9 * ${unit(`'r' || i`)})::numeric, 1)::float END AS rating,
                  CASE WHEN ${unit(`'ty' || i`)} < 0.2 THEN 'tv_show' ELSE 'movie' END AS type
             FROM generate_series(1, $1::int) i) f
    WHERE NOT EXISTS (SELECT 1 FROM content.film_work e WHERE e.id = f.id)
    ORDER BY f.id`,
);

/**
 * One to three genres per film (a genre drawn twice counts once). $1 films, $2 genres.
 * A link is skipped when its id or its (film, genre) pair exists: seeding again adds nothing.
 */
export const seedGenreLinks = query<Record<string, never>>(
  'seed_genre_links',
  `INSERT INTO content.genre_film_work (id, genre_id, film_work_id, created, etl_txid)
   SELECT l.id, l.genre_id, l.film_work_id, now(), pg_current_xact_id()
     FROM (SELECT DISTINCT ON (film_work_id, genre_id) *
             FROM (SELECT md5('gfw-' || i || '-' || k)::uuid AS id,
                          md5('genre-' || (1 + floor(${unit(`'g' || i || '-' || k`)} * $2::int)::int))::uuid AS genre_id,
                          md5('film-' || i)::uuid AS film_work_id
                     FROM generate_series(1, $1::int) i
                     CROSS JOIN generate_series(1, 3) k
                    WHERE k = 1 OR ${unit(`'gk' || i || '-' || k`)} < 0.4) drawn
            ORDER BY film_work_id, genre_id, id) l
    WHERE NOT EXISTS (SELECT 1 FROM content.genre_film_work e WHERE e.id = l.id)
      AND NOT EXISTS (SELECT 1 FROM content.genre_film_work e
                       WHERE e.film_work_id = l.film_work_id AND e.genre_id = l.genre_id)`,
);

/**
 * About ten people per film: a director, one or two writers, about seven actors, and now and then
 * a producer (a role the index leaves out). Squaring the draw gives a long tail: a few persons
 * appear in thousands of films. A person drawn twice in one role of a film counts once.
 * $1 films, $2 persons.
 */
export const seedPersonLinks = query<Record<string, never>>(
  'seed_person_links',
  `INSERT INTO content.person_film_work (id, person_id, film_work_id, role, created, etl_txid)
   SELECT l.id, l.person_id, l.film_work_id, l.role, now(), pg_current_xact_id()
     FROM (SELECT DISTINCT ON (film_work_id, person_id, role) *
             FROM (SELECT md5('pfw-' || i || '-' || k)::uuid AS id,
                          md5('person-' || (1 + floor(power(${unit(`'p' || i || '-' || k`)}, 2) * $2::int)::int))::uuid AS person_id,
                          md5('film-' || i)::uuid AS film_work_id,
                          CASE WHEN k = 1 THEN 'director'
                               WHEN k <= 3 THEN 'writer'
                               WHEN k = 12 THEN 'producer'
                               ELSE 'actor' END AS role
                     FROM generate_series(1, $1::int) i
                     CROSS JOIN generate_series(1, 12) k
                    WHERE k <= 2 OR k BETWEEN 4 AND 10
                       OR (k = 3 AND ${unit(`'w' || i`)} < 0.5)
                       OR (k = 11 AND ${unit(`'a' || i`)} < 0.5)
                       OR (k = 12 AND ${unit(`'pr' || i`)} < 0.2)) drawn
            ORDER BY film_work_id, person_id, role, id) l
    WHERE NOT EXISTS (SELECT 1 FROM content.person_film_work e WHERE e.id = l.id)
      AND NOT EXISTS (SELECT 1 FROM content.person_film_work e
                       WHERE e.film_work_id = l.film_work_id AND e.person_id = l.person_id
                         AND e.role = l.role)`,
);

// --- bulk-load speed-ups, each optional (see catalogGenerator.ts) -----------------------------

/** Skip triggers and foreign-key checks in this transaction. Superusers only. */
export const skipTriggers = query<Record<string, never>>(
  'seed_skip_triggers',
  `SET LOCAL session_replication_role = replica`,
);

/**
 * What the capture triggers would have sent had they run: "many rows of this table changed", so a
 * running syncer polls them now rather than at its next poll interval.
 */
export const notifyTables = query<Record<string, never>>(
  'seed_notify_tables',
  `SELECT pg_notify('etl_changes', json_build_object('t', t, 'op', 'I', 'many', true)::text)
     FROM unnest($1::text[]) t`,
);

/**
 * Indexes and constraints of the link tables that are empty, to drop before the load and rebuild
 * after it: building an index once is several times faster than a million random insertions into
 * it (PostgreSQL's "Populating a Database" advice). Definitions come from the catalog, so what is
 * rebuilt is exactly what the migrations made. Foreign keys are re-added last and re-validated.
 */
export const deferLinkIndexes = query<Record<string, never>>(
  'seed_defer_link_indexes',
  `CREATE TEMP TABLE seed_deferred ON COMMIT DROP AS
   WITH empty AS (
     SELECT 'content.genre_film_work'::regclass AS rel
      WHERE NOT EXISTS (SELECT 1 FROM content.genre_film_work)
     UNION ALL
     SELECT 'content.person_film_work'::regclass
      WHERE NOT EXISTS (SELECT 1 FROM content.person_film_work)
   )
   SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname) AS drop_ddl,
          format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
                 pg_get_constraintdef(c.oid)) AS create_ddl,
          CASE WHEN c.contype = 'f' THEN 3 ELSE 2 END AS stage
     FROM pg_constraint c JOIN empty ON c.conrelid = empty.rel
    WHERE c.contype IN ('p', 'u', 'f')
   UNION ALL
   SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid), 1
     FROM pg_index i JOIN empty ON i.indrelid = empty.rel
    WHERE NOT EXISTS (SELECT 1 FROM pg_constraint c
                       WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)`,
);

export const dropDeferred = query<Record<string, never>>(
  'seed_drop_deferred',
  `DO $$
   DECLARE ddl text;
   BEGIN
     FOR ddl IN SELECT drop_ddl FROM seed_deferred ORDER BY stage DESC LOOP
       EXECUTE ddl;
     END LOOP;
   END
   $$`,
);

export const rebuildDeferred = query<Record<string, never>>(
  'seed_rebuild_deferred',
  `DO $$
   DECLARE ddl text;
   BEGIN
     SET LOCAL maintenance_work_mem = '256MB';
     FOR ddl IN SELECT create_ddl FROM seed_deferred ORDER BY stage LOOP
       EXECUTE ddl;
     END LOOP;
   END
   $$`,
);

export const analyzeCatalog = query<Record<string, never>>(
  'seed_analyze_catalog',
  `ANALYZE content.film_work, content.genre, content.person, content.genre_film_work,
           content.person_film_work`,
);
