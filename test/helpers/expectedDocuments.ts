/**
 * The test oracle: the documents contract.md section 2 prescribes, computed in plain TypeScript
 * from the raw tables (independently of the syncer's SQL), and the index's actual documents, both
 * normalised so that array order does not matter. Section 2b's persons and genres documents are
 * in expectedPersonsGenres.ts; comparing works alike for all three.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Client } from '@elastic/elasticsearch';
import type pg from 'pg';

type Ref = { id: string; name: string };

export interface Doc {
  id: string;
  title: string;
  description: string | null;
  imdb_rating: number | null;
  type: string;
  creation_date: string | null;
  genres: Ref[];
  genres_names: string[];
  directors: Ref[];
  directors_names: string[];
  actors: Ref[];
  actors_names: string[];
  writers: Ref[];
  writers_names: string[];
}

const byId = (a: Ref, b: Ref) => a.id.localeCompare(b.id);

/**
 * Arrays in a fixed order. A document that lacks one (not the syncer's: an operator's test
 * document) keeps it absent, so it is reported as a stale or extra document rather than failing
 * the read of the whole index (reported then as every document missing).
 */
export function normalise(doc: Doc): Doc {
  const sorted = <T>(values: T[] | undefined, by?: (a: T, b: T) => number) =>
    Array.isArray(values) ? [...values].sort(by) : values;
  return {
    ...doc,
    genres: sorted(doc.genres, byId),
    genres_names: sorted(doc.genres_names),
    directors: sorted(doc.directors, byId),
    directors_names: sorted(doc.directors_names),
    actors: sorted(doc.actors, byId),
    actors_names: sorted(doc.actors_names),
    writers: sorted(doc.writers, byId),
    writers_names: sorted(doc.writers_names),
  } as Doc;
}

/** Largest 32-bit float: the mapping's `float` makes anything beyond it Infinity, refused. */
const FLOAT_MAX = 3.4028234663852886e38;

/** Contract: `imdb_rating` is the rating "or null"; null where Elasticsearch cannot hold it. */
export function esFloat(value: number | null): number | null {
  return value !== null && Number.isFinite(value) && Math.abs(value) <= FLOAT_MAX ? value : null;
}

/** A date as PostgreSQL writes it (`::text`): kept in years 1-9999, the `date` field's range. */
export function esDate(value: string | null): string | null {
  return value !== null && /^\d{4}-\d{2}-\d{2}$/.test(value) ? value : null;
}

export async function expectedDocuments(db: pg.Pool): Promise<Map<string, Doc>> {
  const films = await db.query<{
    id: string;
    title: string;
    description: string | null;
    rating: number | null;
    type: string;
    creation_date: string | null;
  }>('SELECT id, title, description, rating, type, creation_date::text FROM content.film_work');
  const genres = await db.query<{ film: string; id: string; name: string }>(
    `SELECT gfw.film_work_id AS film, g.id, g.name
       FROM content.genre_film_work gfw JOIN content.genre g ON g.id = gfw.genre_id`,
  );
  const people = await db.query<{ film: string; id: string; name: string; role: string }>(
    `SELECT pfw.film_work_id AS film, p.id, p.full_name AS name, pfw.role
       FROM content.person_film_work pfw JOIN content.person p ON p.id = pfw.person_id`,
  );
  const docs = new Map<string, Doc>();
  for (const f of films.rows) {
    docs.set(f.id, {
      id: f.id,
      title: f.title,
      description: f.description,
      imdb_rating: esFloat(f.rating),
      type: f.type,
      creation_date: esDate(f.creation_date),
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
  for (const g of genres.rows) {
    const doc = docs.get(g.film);
    if (!doc) continue;
    doc.genres.push({ id: g.id, name: g.name });
    doc.genres_names.push(g.name);
  }
  for (const p of people.rows) {
    const doc = docs.get(p.film);
    if (!doc) continue;
    const key = ({ director: 'directors', actor: 'actors', writer: 'writers' } as const)[
      p.role as 'director' | 'actor' | 'writer'
    ] as 'directors' | 'actors' | 'writers' | undefined;
    if (!key) continue; // other roles are not indexed
    doc[key].push({ id: p.id, name: p.name });
    doc[`${key}_names`].push(p.name);
  }
  return new Map([...docs].map(([id, doc]) => [id, normalise(doc)]));
}

export async function indexedDocuments<D = Doc>(
  es: Client,
  index: string,
  normaliseDoc: (doc: D) => D = normalise as unknown as (doc: D) => D,
): Promise<Map<string, D>> {
  await es.indices.refresh({ index });
  const docs = new Map<string, D>();
  let after: (string | number)[] | undefined;
  for (;;) {
    const page = await es.search<D>({
      index,
      size: 5_000,
      sort: [{ id: 'asc' }],
      ...(after ? { search_after: after } : {}),
    });
    for (const hit of page.hits.hits) {
      if (hit._source && hit._id !== undefined) docs.set(hit._id, normaliseDoc(hit._source));
    }
    const last = page.hits.hits.at(-1);
    if (page.hits.hits.length < 5_000 || !last?.sort) break;
    after = last.sort as (string | number)[];
  }
  return docs;
}

export interface Drift<D = Doc> {
  missing: string[];
  extra: string[];
  stale: { id: string; expected: D; actual: D }[];
}

export function compare<D>(expected: Map<string, D>, actual: Map<string, D>): Drift<D> {
  const drift: Drift<D> = { missing: [], extra: [], stale: [] };
  for (const [id, doc] of expected) {
    const got = actual.get(id);
    if (!got) drift.missing.push(id);
    else if (!isDeepStrictEqual(got, doc)) drift.stale.push({ id, expected: doc, actual: got });
  }
  for (const id of actual.keys()) if (!expected.has(id)) drift.extra.push(id);
  return drift;
}

export const inSync = (d: Drift<unknown>) =>
  d.missing.length + d.extra.length + d.stale.length === 0;

export function describeDrift(d: Drift<unknown>): string {
  const first = d.stale[0];
  return (
    `missing ${d.missing.length} (${d.missing.slice(0, 3).join(', ')}), ` +
    `extra ${d.extra.length} (${d.extra.slice(0, 3).join(', ')}), stale ${d.stale.length}` +
    (first
      ? `\nfirst stale ${first.id}:\n expected ${clip(first.expected)}\n actual   ${clip(first.actual)}`
      : '')
  );
}

/** A document for a message: a person with hundreds of films would flood the output. */
const clip = (doc: unknown) => {
  const text = JSON.stringify(doc);
  return text.length > 800 ? `${text.slice(0, 800)}…` : text;
};
