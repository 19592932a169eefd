/**
 * How the workload chooses rows without Math.random or counting tables: a uuid drawn from the
 * round's Rng, and the first row at or after it (wrapping to the first row). Ids are uniformly
 * spread, so the choice is uniform enough, and costs one index probe.
 *
 * What can go wrong: table names are spliced into SQL text, so they must only ever come from the
 * constants below, never from data.
 */
import type { Rng } from './prng.js';

export type Table = 'film_work' | 'person' | 'genre' | 'person_film_work' | 'genre_film_work';

export const ROLES = ['actor', 'director', 'writer', 'producer'] as const;

/** A uuid from the Rng; `below` < 1 keeps it in the first part of the id space. */
export function drawUuid(rng: Rng, below = 1): string {
  const hex = (n: number, digits: number) => n.toString(16).padStart(digits, '0');
  const head = hex(Math.floor(rng.next() * below * 0x100000000), 8);
  const rest = Array.from({ length: 6 }, () => hex(Math.floor(rng.next() * 0x10000), 4)).join('');
  return `${head}-${rest.slice(0, 4)}-${rest.slice(4, 8)}-${rest.slice(8, 12)}-${rest.slice(12, 24)}`;
}

/** SQL for "the row of `table` at or after parameter $n". */
export function pick(table: Table, n: number): string {
  return (
    `coalesce((SELECT id FROM content.${table} WHERE id >= $${n}::uuid ORDER BY id LIMIT 1),` +
    ` (SELECT id FROM content.${table} ORDER BY id LIMIT 1))`
  );
}

/** SQL for "up to $limit ids of `table` from parameter $start on". */
export function range(table: Table, start: number, limit: number): string {
  return `(SELECT id FROM content.${table} WHERE id >= $${start}::uuid ORDER BY id LIMIT $${limit})`;
}

const WORDS = [
  'Солярис',
  'Сталкер',
  'Brazil',
  'Alien',
  'Зеркало',
  'Metropolis',
  'Vertigo',
  'Андрей',
  "O'Brien",
  'Tarkovsky',
  'Ёжик',
  'Nostalgia',
  '"Quoted"',
  'Mirror & Smoke',
];

export function words(rng: Rng, count: number): string {
  return Array.from({ length: count }, () => rng.pick(WORDS)).join(' ');
}

/** A rating with one decimal, or null now and then. */
export function rating(rng: Rng): number | null {
  return rng.chance(0.1) ? null : Math.round(rng.next() * 100) / 10;
}

/** A date between 1920 and 2030 as YYYY-MM-DD, or null now and then. */
export function date(rng: Rng): string | null {
  if (rng.chance(0.1)) return null;
  const day = new Date(Date.UTC(1920, 0, 1) + rng.int(0, 110 * 365) * 86_400_000);
  return day.toISOString().slice(0, 10);
}
