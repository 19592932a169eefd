/**
 * The document oracle on a sample: for some films, the document computed in plain TypeScript from
 * the raw tables (independently of the syncer's SQL), compared with what Elasticsearch holds
 * (realtime GET). Arrays are compared as sets.
 */
import { isDeepStrictEqual } from 'node:util';
import type { BenchSandbox } from './sandbox.js';

type Ref = { id: string; name: string };
type Doc = Record<string, unknown> & {
  genres: Ref[];
  genres_names: string[];
  directors: Ref[];
  directors_names: string[];
  actors: Ref[];
  actors_names: string[];
  writers: Ref[];
  writers_names: string[];
};

const ROLES = { director: 'directors', actor: 'actors', writer: 'writers' } as const;
const LISTS = ['genres', 'directors', 'actors', 'writers'] as const;

function normalise(doc: Doc): Doc {
  const out = { ...doc };
  for (const list of LISTS) {
    out[list] = [...doc[list]].sort((a, b) => a.id.localeCompare(b.id));
    out[`${list}_names`] = [...doc[`${list}_names`]].sort();
  }
  return out;
}

async function expected(sb: BenchSandbox, ids: string[]): Promise<Map<string, Doc>> {
  const films = await sb.pool.query<{
    id: string;
    title: string;
    description: string | null;
    rating: number | null;
    type: string;
    creation_date: string | null;
  }>(
    `SELECT id, title, description, rating, type, creation_date::text
       FROM content.film_work WHERE id = ANY ($1::uuid[])`,
    [ids],
  );
  const docs = new Map<string, Doc>();
  for (const f of films.rows) {
    docs.set(f.id, {
      id: f.id,
      title: f.title,
      description: f.description,
      imdb_rating: f.rating,
      type: f.type,
      creation_date: f.creation_date,
      genres: [],
      genres_names: [],
      directors: [],
      directors_names: [],
      actors: [],
      actors_names: [],
      writers: [],
      writers_names: [],
    });
  }
  const genres = await sb.pool.query<{ film: string; id: string; name: string }>(
    `SELECT gfw.film_work_id AS film, g.id, g.name
       FROM content.genre_film_work gfw JOIN content.genre g ON g.id = gfw.genre_id
      WHERE gfw.film_work_id = ANY ($1::uuid[])`,
    [ids],
  );
  for (const g of genres.rows) {
    const doc = docs.get(g.film);
    doc?.genres.push({ id: g.id, name: g.name });
    doc?.genres_names.push(g.name);
  }
  const people = await sb.pool.query<{ film: string; id: string; name: string; role: string }>(
    `SELECT pfw.film_work_id AS film, p.id, p.full_name AS name, pfw.role
       FROM content.person_film_work pfw JOIN content.person p ON p.id = pfw.person_id
      WHERE pfw.film_work_id = ANY ($1::uuid[])`,
    [ids],
  );
  for (const p of people.rows) {
    const key = (ROLES as Record<string, (typeof ROLES)[keyof typeof ROLES] | undefined>)[p.role];
    const doc = docs.get(p.film);
    if (!key || !doc) continue;
    doc[key].push({ id: p.id, name: p.name });
    doc[`${key}_names`].push(p.name);
  }
  return new Map([...docs].map(([id, doc]) => [id, normalise(doc)]));
}

export interface SpotCheck {
  checked: number;
  mismatched: string[];
}

/** Compare `sample` random films (or the given ones) with their documents. */
export async function spotCheck(sb: BenchSandbox, sample = 50, ids?: string[]): Promise<SpotCheck> {
  const chosen =
    ids ??
    (
      await sb.pool.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY random() LIMIT $1',
        [sample],
      )
    ).rows.map((r) => r.id);
  if (chosen.length === 0) return { checked: 0, mismatched: [] };
  const want = await expected(sb, chosen);
  const got = await sb.es.mget<Doc>({ index: sb.config.index, ids: chosen });
  const mismatched: string[] = [];
  for (const doc of got.docs) {
    const id = doc._id;
    const source = 'found' in doc && doc.found ? doc._source : undefined;
    const expectedDoc = want.get(id);
    if (!expectedDoc && !source) continue;
    if (!expectedDoc || !source || !isDeepStrictEqual(normalise(source), expectedDoc))
      mismatched.push(id);
  }
  return { checked: chosen.length, mismatched };
}
