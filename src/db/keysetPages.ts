/**
 * The one keyset pager: every read that walks a table (or the index) page by page goes through
 * here, so the rule that bit six hand-written copies is written once. The first page has no
 * lower bound at all; every later page starts strictly after the last key seen. A loop that
 * started "after the smallest uuid" instead never saw the row whose key IS the smallest uuid
 * (00000000-0000-0000-0000-000000000000: a valid id that Postgres accepts and people do use).
 *
 * A page shorter than the page size ends the walk. A reader that returns more rows than that (a
 * DISTINCT over a LIMIT, say) is fine; one that returns none ends it too.
 */
import type pg from 'pg';
import type { Query } from '../sql/queries.js';
import type { Postgres } from './postgres.js';

export interface KeysetPaging<Row, Key> {
  pageSize: number;
  /** Read one page: `after` is undefined for the first page, else the last key of the previous. */
  read(after: Key | undefined): Promise<Row[]>;
  keyOf(row: Row): Key;
  /** Between pages (the seed's "sleep a little"); never before the first. */
  pause?: () => Promise<void>;
  /** Stops the walk between pages. */
  signal?: AbortSignal | undefined;
  /** Resume a walk: its first page starts strictly after this key (a page already done). */
  from?: Key | undefined;
}

export async function* keysetPages<Row, Key>(
  paging: KeysetPaging<Row, Key>,
): AsyncGenerator<Row[]> {
  let after: Key | undefined = paging.from;
  for (;;) {
    if (paging.signal?.aborted) return;
    const rows = await paging.read(after);
    if (rows.length > 0) yield rows;
    const last = rows.at(-1);
    if (rows.length < paging.pageSize || last === undefined) return;
    after = paging.keyOf(last);
    if (paging.pause) await paging.pause();
  }
}

/**
 * A keyset query in its two forms (src/sql/queries.ts `keyset`): `first` without the cursor
 * condition, `after` with it. The cursor's parameters come last, after the query's own.
 */
export interface KeysetQuery<Row> {
  first: Query<Row>;
  after: Query<Row>;
}

/** One page of a keyset query: `params` are the query's own, `after` the cursor's values. */
export function readPage<Row extends pg.QueryResultRow>(
  db: Pick<Postgres, 'query'>,
  query: KeysetQuery<Row>,
  params: unknown[],
  after: unknown[] | undefined,
): Promise<Row[]> {
  return after === undefined
    ? db.query(query.first, params)
    : db.query(query.after, [...params, ...after]);
}
