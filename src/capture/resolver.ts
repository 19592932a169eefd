/**
 * Persons and genres -> the films whose documents show them. Streams keyset-paged pages of at most
 * ETL_SIZE_LIMIT films, each read under the Postgres read lock with a pause between reads, so a
 * genre on 100,000 films never becomes one huge list in memory or one long hold of the lock.
 */
import { keysetPages, readPage } from '../db/keysetPages.js';
import type { Postgres } from '../db/postgres.js';
import type { ReadLock } from '../queue/readLock.js';
import * as sql from '../sql/queries.js';
import { sleep } from '../util/sleep.js';

export type ResolvableTable = 'person' | 'genre';

export class FilmResolver {
  constructor(
    private readonly db: Postgres,
    private readonly lock: ReadLock,
    private readonly sizeLimit: number,
    private readonly sleepMs: number,
  ) {}

  async *filmsOf(table: ResolvableTable, ids: string[]): AsyncGenerator<string[]> {
    const query = table === 'person' ? sql.filmsOfPersons : sql.filmsOfGenres;
    // The id list itself is bounded too: a statement that renamed 5,000 persons is resolved in slices.
    for (let i = 0; i < ids.length; i += this.sizeLimit) {
      const slice = ids.slice(i, i + this.sizeLimit);
      const pages = keysetPages({
        pageSize: this.sizeLimit,
        read: (after: unknown[] | undefined) =>
          this.lock.withLock(`resolve ${table}`, () =>
            readPage(this.db, query, [slice, this.sizeLimit], after),
          ),
        keyOf: (row) => [row.id],
        pause: () => sleep(this.sleepMs),
      });
      for await (const rows of pages) yield rows.map((r) => r.id);
    }
  }
}
