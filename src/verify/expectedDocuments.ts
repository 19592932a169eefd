/**
 * The documents contract.md prescribes (sections 2 and 2b), built in TypeScript from plain rows of
 * the catalog's tables, for `npm run verify` to hold the index against.
 *
 * Not the syncer's document queries (src/sql): a check that builds what it expects with the code
 * it checks agrees with that code's every mistake (a role left out, a join that drops a film with
 * no genre), and reports an index in step that is not. Here each field is taken from its column
 * as the contract's tables say, with plain SELECTs, and joined in TypeScript.
 *
 * The few queries of one batch are separate statements, so an edit committed between them can tear
 * a document; `verify` looks again at whatever differs before it reports it, which settles that.
 */
import type { Postgres } from '../db/postgres.js';
import type { KindName } from '../kinds/documentKind.js';
import { query } from '../sql/queries.js';

type Ref = { id: string; name: string };

/** Largest 32-bit float: the mapping's `float` cannot hold more, nor NaN or infinities. */
const FLOAT_MAX = 3.4028234663852886e38;

/** Contract: a rating "or null"; null where the `float` field cannot hold it (README). */
function rating(value: number | null): number | null {
  return value !== null && Number.isFinite(value) && Math.abs(value) <= FLOAT_MAX ? value : null;
}

/**
 * Contract: a date "or null"; null outside the `date` field's years 1-9999 (README). The text is
 * `to_char`'s, whatever the session's DateStyle (`::text` follows it: `31/01/2020` under
 * `SQL, DMY`); the year tells BC dates (which `to_char` writes without the era) and infinities.
 */
function date(text: string | null, year: number | null): string | null {
  return text !== null && year !== null && year >= 1 && year <= 9999 ? text : null;
}

const ROLES = { director: 'directors', actor: 'actors', writer: 'writers' } as const;

const filmRows = query<{
  id: string;
  title: string;
  description: string | null;
  rating: number | null;
  type: string;
  creation_date: string | null;
  creation_year: number | null;
}>(
  'verify_film_rows',
  `SELECT id::text AS id, title, description, rating, type,
          to_char(creation_date, 'YYYY-MM-DD') AS creation_date,
          extract(year FROM creation_date)::float8 AS creation_year
     FROM content.film_work WHERE id = ANY($1::uuid[])`,
);

const filmGenres = query<{ film: string; id: string; name: string }>(
  'verify_film_genres',
  `SELECT gfw.film_work_id::text AS film, g.id::text AS id, g.name
     FROM content.genre_film_work gfw JOIN content.genre g ON g.id = gfw.genre_id
    WHERE gfw.film_work_id = ANY($1::uuid[])`,
);

const filmPeople = query<{ film: string; id: string; name: string; role: string }>(
  'verify_film_people',
  `SELECT pfw.film_work_id::text AS film, p.id::text AS id, p.full_name AS name, pfw.role
     FROM content.person_film_work pfw JOIN content.person p ON p.id = pfw.person_id
    WHERE pfw.film_work_id = ANY($1::uuid[])`,
);

const personRows = query<{ id: string; full_name: string }>(
  'verify_person_rows',
  'SELECT id::text AS id, full_name FROM content.person WHERE id = ANY($1::uuid[])',
);

const personFilms = query<{
  person: string;
  id: string;
  title: string;
  rating: number | null;
  role: string;
}>(
  'verify_person_films',
  `SELECT pfw.person_id::text AS person, f.id::text AS id, f.title, f.rating, pfw.role
     FROM content.person_film_work pfw JOIN content.film_work f ON f.id = pfw.film_work_id
    WHERE pfw.person_id = ANY($1::uuid[])`,
);

const genreRows = query<{ id: string; name: string; description: string | null }>(
  'verify_genre_rows',
  'SELECT id::text AS id, name, description FROM content.genre WHERE id = ANY($1::uuid[])',
);

const genreLinks = query<{ genre: string; films: number }>(
  'verify_genre_links',
  `SELECT genre_id::text AS genre, count(*)::int AS films
     FROM content.genre_film_work WHERE genre_id = ANY($1::uuid[]) GROUP BY genre_id`,
);

async function films(db: Postgres, ids: string[]): Promise<Map<string, unknown>> {
  // One after another: the read lock promises one reader at a time, not one query.
  const rows = await db.query(filmRows, [ids]);
  const genres = await db.query(filmGenres, [ids]);
  const people = await db.query(filmPeople, [ids]);
  const docs = new Map(
    rows.map((f) => [
      f.id,
      {
        id: f.id,
        title: f.title,
        description: f.description,
        imdb_rating: rating(f.rating),
        type: f.type,
        creation_date: date(f.creation_date, f.creation_year),
        genres: [] as Ref[],
        genres_names: [] as string[],
        directors: [] as Ref[],
        directors_names: [] as string[],
        actors: [] as Ref[],
        actors_names: [] as string[],
        writers: [] as Ref[],
        writers_names: [] as string[],
      },
    ]),
  );
  for (const g of genres) {
    const doc = docs.get(g.film);
    doc?.genres.push({ id: g.id, name: g.name });
    doc?.genres_names.push(g.name);
  }
  for (const p of people) {
    const doc = docs.get(p.film);
    const field = Object.hasOwn(ROLES, p.role) ? ROLES[p.role as keyof typeof ROLES] : null;
    if (!doc || !field) continue; // other roles are not indexed
    doc[field].push({ id: p.id, name: p.name });
    doc[`${field}_names`].push(p.name);
  }
  return docs;
}

async function persons(db: Postgres, ids: string[]): Promise<Map<string, unknown>> {
  const rows = await db.query(personRows, [ids]);
  const links = await db.query(personFilms, [ids]);
  type Film = { id: string; title: string; imdb_rating: number | null; roles: string[] };
  const docs = new Map(
    rows.map((p) => [p.id, { id: p.id, full_name: p.full_name, films: [] as Film[] }]),
  );
  // Once per film, with every indexed role the person has in it.
  const entries = new Map<string, Film>();
  for (const link of links) {
    const doc = docs.get(link.person);
    if (!doc || !Object.hasOwn(ROLES, link.role)) continue;
    const key = `${link.person} ${link.id}`;
    let film = entries.get(key);
    if (!film) {
      film = { id: link.id, title: link.title, imdb_rating: rating(link.rating), roles: [] };
      entries.set(key, film);
      doc.films.push(film);
    }
    if (!film.roles.includes(link.role)) film.roles.push(link.role);
  }
  return docs;
}

async function genres(db: Postgres, ids: string[]): Promise<Map<string, unknown>> {
  const rows = await db.query(genreRows, [ids]);
  const links = await db.query(genreLinks, [ids]);
  const counts = new Map(links.map((l) => [l.genre, l.films]));
  return new Map(
    rows.map((g) => [
      g.id,
      { id: g.id, name: g.name, description: g.description, films_count: counts.get(g.id) ?? 0 },
    ]),
  );
}

/**
 * The documents of these ids as the contract prescribes them; an id whose row does not exist is
 * absent. Arrays come in no particular order (the contract gives none): compare them unordered.
 */
export const expectedDocuments: Record<
  KindName,
  (db: Postgres, ids: string[]) => Promise<Map<string, unknown>>
> = { films, persons, genres };
