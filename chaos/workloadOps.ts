/**
 * The small writes of the workload, one function per kind, each plain SQL as an editor or the
 * admin app would send it: single-row updates (with and without touching `modified`), inserts with
 * links (some with a role the index leaves out), deletes that cascade, links added, removed, moved
 * and re-roled. Each returns the number of rows its statements reported.
 *
 * What can go wrong, and is fine: a unique violation (a link that exists), a foreign-key violation
 * (a person deleted meanwhile), a deadlock, a lock timeout. The writer counts those as workload
 * noise; they are never findings.
 */
import type { Rng } from './prng.js';
import { date, drawUuid, pick, rating, ROLES, words } from './sqlPicks.js';

export type Exec = (text: string, params: unknown[]) => Promise<number>;

export interface OpContext {
  q: Exec;
  rng: Rng;
}

export async function filmUpdate({ q, rng }: OpContext): Promise<number> {
  const film = drawUuid(rng);
  switch (rng.int(0, 3)) {
    case 0: // plain SQL that leaves `modified` alone
      return q(`UPDATE content.film_work SET title = $2 WHERE id = ${pick('film_work', 1)}`, [
        film,
        words(rng, rng.int(1, 4)),
      ]);
    case 1: // a writer that sets `modified` itself, to a time long past
      return q(
        `UPDATE content.film_work SET rating = $2, description = $3,
                modified = now() - interval '10 years' WHERE id = ${pick('film_work', 1)}`,
        [film, rating(rng), rng.chance(0.2) ? null : words(rng, rng.int(2, 8))],
      );
    case 2:
      return q(
        `UPDATE content.film_work SET creation_date = $2::date, type = $3
          WHERE id = ${pick('film_work', 1)}`,
        [film, date(rng), rng.pick(['movie', 'tv_show'])],
      );
    default: // an update that changes nothing the index shows
      return q(`UPDATE content.film_work SET title = title WHERE id = ${pick('film_work', 1)}`, [
        film,
      ]);
  }
}

export async function filmInsert({ q, rng }: OpContext): Promise<number> {
  const film = drawUuid(rng);
  let rows = await q(
    `INSERT INTO content.film_work (id, title, description, creation_date, rating, type)
     VALUES ($1, $2, $3, $4::date, $5, $6)`,
    [
      film,
      words(rng, rng.int(1, 3)),
      words(rng, 5),
      date(rng),
      rating(rng),
      rng.pick(['movie', 'tv_show']),
    ],
  );
  rows += await q(
    `INSERT INTO content.genre_film_work (id, genre_id, film_work_id)
     SELECT $1::uuid, ${pick('genre', 2)}, $3::uuid ON CONFLICT DO NOTHING`,
    [drawUuid(rng), drawUuid(rng), film],
  );
  for (let i = rng.int(0, 4); i > 0; i--) rows += await linkPerson(q, rng, film, true);
  return rows;
}

export function filmDelete({ q, rng }: OpContext): Promise<number> {
  return q(`DELETE FROM content.film_work WHERE id = ${pick('film_work', 1)}`, [drawUuid(rng)]);
}

export function personRename({ q, rng }: OpContext): Promise<number> {
  return q(`UPDATE content.person SET full_name = $2 WHERE id = ${pick('person', 1)}`, [
    drawUuid(rng),
    words(rng, 2),
  ]);
}

export async function personInsert({ q, rng }: OpContext): Promise<number> {
  const person = drawUuid(rng);
  let rows = await q('INSERT INTO content.person (id, full_name) VALUES ($1, $2)', [
    person,
    words(rng, 2),
  ]);
  for (let i = rng.int(1, 5); i > 0; i--) {
    rows += await q(
      `INSERT INTO content.person_film_work (id, person_id, film_work_id, role)
       SELECT $1::uuid, $2::uuid, ${pick('film_work', 3)}, $4::text ON CONFLICT DO NOTHING`,
      [drawUuid(rng), person, drawUuid(rng), rng.pick(ROLES)],
    );
  }
  return rows;
}

export function personDelete({ q, rng }: OpContext): Promise<number> {
  return q(`DELETE FROM content.person WHERE id = ${pick('person', 1)}`, [drawUuid(rng)]);
}

export function genreRename({ q, rng }: OpContext): Promise<number> {
  return q(`UPDATE content.genre SET name = $2, description = $3 WHERE id = ${pick('genre', 1)}`, [
    drawUuid(rng),
    words(rng, 1) + ` ${rng.int(1, 999)}`,
    words(rng, 4),
  ]);
}

export async function genreInsert({ q, rng }: OpContext): Promise<number> {
  const genre = drawUuid(rng);
  let rows = await q('INSERT INTO content.genre (id, name) VALUES ($1, $2)', [
    genre,
    `${words(rng, 1)} ${rng.int(1, 999)}`,
  ]);
  for (let i = rng.int(1, 30); i > 0; i--) {
    rows += await q(
      `INSERT INTO content.genre_film_work (id, genre_id, film_work_id)
       SELECT $1::uuid, $2::uuid, ${pick('film_work', 3)} ON CONFLICT DO NOTHING`,
      [drawUuid(rng), genre, drawUuid(rng)],
    );
  }
  return rows;
}

export function genreDelete({ q, rng }: OpContext): Promise<number> {
  return q(`DELETE FROM content.genre WHERE id = ${pick('genre', 1)}`, [drawUuid(rng)]);
}

export async function linkAdd({ q, rng }: OpContext): Promise<number> {
  if (rng.chance(0.3)) {
    return q(
      `INSERT INTO content.genre_film_work (id, genre_id, film_work_id)
       VALUES ($1, ${pick('genre', 2)}, ${pick('film_work', 3)})`,
      [drawUuid(rng), drawUuid(rng), drawUuid(rng)],
    );
  }
  return linkPerson(q, rng, null, false);
}

export function linkRemove({ q, rng }: OpContext): Promise<number> {
  const table = rng.chance(0.7) ? 'person_film_work' : 'genre_film_work';
  return q(`DELETE FROM content.${table} WHERE id = ${pick(table, 1)}`, [drawUuid(rng)]);
}

export function linkMove({ q, rng }: OpContext): Promise<number> {
  const table = rng.chance(0.7) ? 'person_film_work' : 'genre_film_work';
  return q(
    `UPDATE content.${table} SET film_work_id = ${pick('film_work', 2)} WHERE id = ${pick(table, 1)}`,
    [drawUuid(rng), drawUuid(rng)],
  );
}

export function roleChange({ q, rng }: OpContext): Promise<number> {
  return q(
    `UPDATE content.person_film_work SET role = $2 WHERE id = ${pick('person_film_work', 1)}`,
    [drawUuid(rng), rng.pick(ROLES)],
  );
}

/** A person linked to `film` (or a drawn one) in a drawn role; a duplicate fails unless skipped. */
function linkPerson(q: Exec, rng: Rng, film: string | null, skipDuplicate: boolean) {
  const target = film === null ? pick('film_work', 4) : '$4::uuid';
  return q(
    `INSERT INTO content.person_film_work (id, person_id, film_work_id, role)
     VALUES ($1, ${pick('person', 2)}, ${target}, $3)${skipDuplicate ? ' ON CONFLICT DO NOTHING' : ''}`,
    [drawUuid(rng), drawUuid(rng), rng.pick(ROLES), film ?? drawUuid(rng)],
  );
}
