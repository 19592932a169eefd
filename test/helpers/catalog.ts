/**
 * Test data written the way an editor would: plain SQL against the content schema. Ids are random
 * uuids; names are given so tests can search for them.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';

export async function insertFilm(
  db: pg.Pool,
  title: string,
  extra: Partial<{ type: string; rating: number; description: string; creation_date: string }> = {},
): Promise<string> {
  const id = randomUUID();
  await db.query(
    `INSERT INTO content.film_work (id, title, description, creation_date, rating, type)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      id,
      title,
      extra.description ?? null,
      extra.creation_date ?? null,
      extra.rating ?? null,
      extra.type ?? 'movie',
    ],
  );
  return id;
}

export async function insertGenre(db: pg.Pool, name: string): Promise<string> {
  const id = randomUUID();
  await db.query('INSERT INTO content.genre (id, name) VALUES ($1, $2)', [id, name]);
  return id;
}

export async function insertPerson(db: pg.Pool, name: string): Promise<string> {
  const id = randomUUID();
  await db.query('INSERT INTO content.person (id, full_name) VALUES ($1, $2)', [id, name]);
  return id;
}

export async function link(
  db: pg.Pool,
  film: string,
  target: { genre: string } | { person: string; role: string },
): Promise<string> {
  const id = randomUUID();
  if ('genre' in target) {
    await db.query(
      'INSERT INTO content.genre_film_work (id, genre_id, film_work_id) VALUES ($1, $2, $3)',
      [id, target.genre, film],
    );
  } else {
    await db.query(
      'INSERT INTO content.person_film_work (id, person_id, film_work_id, role) VALUES ($1, $2, $3, $4)',
      [id, target.person, film, target.role],
    );
  }
  return id;
}

/**
 * A catalog of `films` films, `genres` genres and `persons` persons, set-based (fast). Film i has
 * genre i % genres and persons linked as director, actor and writer.
 */
export async function seedCatalog(
  db: pg.Pool,
  films: number,
  genres = 5,
  persons = 20,
): Promise<void> {
  await db.query(
    `INSERT INTO content.genre (id, name)
     SELECT gen_random_uuid(), 'Genre ' || g FROM generate_series(1, $1) g`,
    [genres],
  );
  await db.query(
    `INSERT INTO content.person (id, full_name)
     SELECT gen_random_uuid(), 'Person ' || p FROM generate_series(1, $1) p`,
    [persons],
  );
  await db.query(
    `INSERT INTO content.film_work (id, title, description, creation_date, rating, type)
     SELECT gen_random_uuid(), 'Film ' || i, 'Описание ' || i, date '2000-01-01' + i, (i % 100) / 10.0,
            CASE WHEN i % 5 = 0 THEN 'tv_show' ELSE 'movie' END
       FROM generate_series(1, $1) i`,
    [films],
  );
  await db.query(
    `INSERT INTO content.genre_film_work (id, genre_id, film_work_id)
     SELECT gen_random_uuid(), g.id, f.id
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM content.film_work) f
       JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM content.genre) g
         ON g.n = f.n % $1`,
    [genres],
  );
  await db.query(
    `INSERT INTO content.person_film_work (id, person_id, film_work_id, role)
     SELECT gen_random_uuid(), p.id, f.id, r.role
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM content.film_work) f
       CROSS JOIN (VALUES (0, 'director'), (1, 'actor'), (2, 'writer'), (3, 'producer')) r(k, role)
       JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM content.person) p
         ON p.n = (f.n * 3 + r.k) % $1`,
    [persons],
  );
}

/**
 * Begins a transaction on `writer` that retitles the first film (by id) and leaves it open, as an
 * editor whose transaction runs on; says whether the doorbell had it ring (what its triggers
 * asked just before: etl.doorbell_rings()).
 */
export async function beginFirstFilmEdit(writer: pg.Client, title: string): Promise<boolean> {
  await writer.query('BEGIN');
  await writer.query(
    `UPDATE content.film_work SET title = $1
      WHERE id = (SELECT id FROM content.film_work ORDER BY id LIMIT 1)`,
    [title],
  );
  const { rows } = await writer.query<{ rings: boolean }>('SELECT etl.doorbell_rings() AS rings');
  return rows[0]?.rings === true;
}

export { randomUUID };
