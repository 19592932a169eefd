/**
 * The SQL of the persons index (contract.md section 2b): its documents, its ids, and the fan-out
 * from films to the persons whose documents show them. Conventions as in queries.ts.
 */
import { keyset, query, SNAPSHOT_VERSION, type DocumentRow } from './queries.js';
import { esFloat } from './esValues.js';

/** The roles a person's document lists; others are not indexed (as in the films index). */
const INDEXED_ROLES = `('actor', 'director', 'writer')`;

/**
 * The documents of some persons: every film they have an indexed role in, once per film, with
 * those roles. Persons that no longer exist are absent from `doc` (their documents go).
 */
export const personDocuments = query<DocumentRow>(
  'person_documents',
  // Links are grouped per (person, film) first, so a film appears once with all its roles.
  `WITH snap AS (${SNAPSHOT_VERSION}),
   requested AS (
     SELECT DISTINCT unnest($1::uuid[]) AS id
   ),
   roles AS (
     SELECT pfw.person_id, pfw.film_work_id, array_agg(DISTINCT pfw.role ORDER BY pfw.role) AS roles
       FROM content.person_film_work pfw
      WHERE pfw.person_id = ANY ($1::uuid[]) AND pfw.role IN ${INDEXED_ROLES}
      GROUP BY pfw.person_id, pfw.film_work_id
   ),
   films AS (
     SELECT r.person_id,
            json_agg(json_build_object('id', f.id, 'title', f.title, 'imdb_rating', ${esFloat('f.rating')},
                                       'roles', r.roles) ORDER BY f.id) AS films
       FROM roles r
       JOIN content.film_work f ON f.id = r.film_work_id
      GROUP BY r.person_id
   )
   SELECT r.id::text AS id,
          (SELECT version FROM snap) AS version,
          CASE WHEN p.id IS NOT NULL THEN json_build_object(
            'id', p.id,
            'full_name', p.full_name,
            'films', coalesce(fl.films, '[]'::json)
          )::text END AS doc
     FROM requested r
     LEFT JOIN content.person p ON p.id = r.id
     LEFT JOIN films fl ON fl.person_id = r.id`,
);

/** Every person, keyset-paged by id. $1 page size, $2 cursor. */
export const personIdPages = keyset<{ id: string }>(
  'person_ids',
  `SELECT p.id::text AS id FROM content.person p WHERE {after} ORDER BY p.id LIMIT $1`,
  'p.id > $2::uuid',
);

export const countPersons = query<{ count: number }>(
  'count_persons',
  `SELECT count(*) AS count FROM content.person`,
);

export const estimatePersons = query<{ count: number }>(
  'estimate_persons',
  `SELECT greatest(reltuples, 0)::bigint AS count FROM pg_class WHERE oid = 'content.person'::regclass`,
);

export const existingPersonIds = query<{ id: string }>(
  'existing_person_ids',
  `SELECT id::text AS id FROM content.person WHERE id = ANY ($1::uuid[])`,
);

/**
 * Persons with an indexed role in some films, keyset-paged by person id: a film's title or rating
 * changed, so their documents did. $1 the film ids, $2 the page size; later pages $3 the cursor.
 */
export const personsOfFilms = keyset<{ id: string }>(
  'persons_of_films',
  `SELECT person_id::text AS id
     FROM (SELECT DISTINCT person_id
             FROM content.person_film_work
            WHERE film_work_id = ANY ($1::uuid[]) AND role IN ${INDEXED_ROLES} AND {after}
            ORDER BY person_id
            LIMIT $2) persons`,
  'person_id > $3::uuid',
);
