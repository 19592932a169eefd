/**
 * The SQL of the genres index (contract.md section 2b): its documents and its ids. A genre's
 * document changes only through its own row and its links, so it needs no fan-out query.
 */
import { keyset, query, SNAPSHOT_VERSION, type DocumentRow } from './queries.js';

/** The documents of some genres, with how many films are linked to each. */
export const genreDocuments = query<DocumentRow>(
  'genre_documents',
  // An index-only count per genre (genre_film_work_genre_film_idx), however many links it has.
  `WITH snap AS (${SNAPSHOT_VERSION}),
   requested AS (
     SELECT DISTINCT unnest($1::uuid[]) AS id
   )
   SELECT r.id::text AS id,
          (SELECT version FROM snap) AS version,
          CASE WHEN g.id IS NOT NULL THEN json_build_object(
            'id', g.id,
            'name', g.name,
            'description', g.description,
            'films_count', (SELECT count(*) FROM content.genre_film_work gfw WHERE gfw.genre_id = g.id)
          )::text END AS doc
     FROM requested r
     LEFT JOIN content.genre g ON g.id = r.id`,
);

/** Every genre, keyset-paged by id. $1 page size, $2 cursor. */
export const genreIdPages = keyset<{ id: string }>(
  'genre_ids',
  `SELECT g.id::text AS id FROM content.genre g WHERE {after} ORDER BY g.id LIMIT $1`,
  'g.id > $2::uuid',
);

export const countGenres = query<{ count: number }>(
  'count_genres',
  `SELECT count(*) AS count FROM content.genre`,
);

export const estimateGenres = query<{ count: number }>(
  'estimate_genres',
  `SELECT greatest(reltuples, 0)::bigint AS count FROM pg_class WHERE oid = 'content.genre'::regclass`,
);

export const existingGenreIds = query<{ id: string }>(
  'existing_genre_ids',
  `SELECT id::text AS id FROM content.genre WHERE id = ANY ($1::uuid[])`,
);
