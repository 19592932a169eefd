/**
 * The oracle for contract.md section 2b: the persons and genres documents, computed in plain
 * TypeScript from the raw tables, independently of the syncer's SQL.
 */
import type pg from 'pg';
import { esFloat } from './expectedDocuments.js';

const INDEXED_ROLES = new Set(['actor', 'director', 'writer']);

export interface PersonFilm {
  id: string;
  title: string;
  imdb_rating: number | null;
  roles: string[];
}

export interface PersonDoc {
  id: string;
  full_name: string;
  films: PersonFilm[];
}

export interface GenreDoc {
  id: string;
  name: string;
  description: string | null;
  films_count: number;
}

export function normalisePerson(doc: PersonDoc): PersonDoc {
  return {
    id: doc.id,
    full_name: doc.full_name,
    // Absent from a document not the syncer's (see normalise): reported, not thrown on.
    films: Array.isArray(doc.films)
      ? doc.films
          .map((film) => ({
            ...film,
            roles: Array.isArray(film.roles) ? [...film.roles].sort() : film.roles,
          }))
          .sort((a, b) => a.id.localeCompare(b.id))
      : doc.films,
  };
}

export const normaliseGenre = (doc: GenreDoc): GenreDoc => ({ ...doc });

export async function expectedPersonDocuments(db: pg.Pool): Promise<Map<string, PersonDoc>> {
  const persons = await db.query<{ id: string; full_name: string }>(
    'SELECT id, full_name FROM content.person',
  );
  const films = await db.query<{ id: string; title: string; rating: number | null }>(
    'SELECT id, title, rating FROM content.film_work',
  );
  const links = await db.query<{ person: string; film: string; role: string }>(
    'SELECT person_id AS person, film_work_id AS film, role FROM content.person_film_work',
  );
  const filmById = new Map(films.rows.map((f) => [f.id, f]));
  const docs = new Map<string, PersonDoc>();
  for (const p of persons.rows) docs.set(p.id, { id: p.id, full_name: p.full_name, films: [] });
  for (const link of links.rows) {
    const doc = docs.get(link.person);
    const film = filmById.get(link.film);
    if (!doc || !film || !INDEXED_ROLES.has(link.role)) continue;
    let entry = doc.films.find((f) => f.id === film.id);
    if (!entry) {
      entry = { id: film.id, title: film.title, imdb_rating: esFloat(film.rating), roles: [] };
      doc.films.push(entry);
    }
    if (!entry.roles.includes(link.role)) entry.roles.push(link.role);
  }
  return new Map([...docs].map(([id, doc]) => [id, normalisePerson(doc)]));
}

export async function expectedGenreDocuments(db: pg.Pool): Promise<Map<string, GenreDoc>> {
  const genres = await db.query<{ id: string; name: string; description: string | null }>(
    'SELECT id, name, description FROM content.genre',
  );
  const links = await db.query<{ genre: string }>(
    'SELECT genre_id AS genre FROM content.genre_film_work',
  );
  const counts = new Map<string, number>();
  for (const link of links.rows) counts.set(link.genre, (counts.get(link.genre) ?? 0) + 1);
  return new Map(
    genres.rows.map((g) => [
      g.id,
      { id: g.id, name: g.name, description: g.description, films_count: counts.get(g.id) ?? 0 },
    ]),
  );
}
