/**
 * Persons and genres -> the films whose documents show them. Streams keyset-paged pages of at most
 * ETL_SIZE_LIMIT films, each read under the Postgres read lock with a pause between reads, so a
 * genre on 100,000 films never becomes one huge list in memory or one long hold of the lock.
 */
import type { Postgres } from '../db/postgres.js';
import type { ReadLock } from '../queue/readLock.js';
import * as sql from '../sql/queries.js';
import { sleep } from '../util/sleep.js';
import { FIRST_UUID } from '../util/uuid.js';

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
      let cursor = FIRST_UUID;
      for (;;) {
        const rows = await this.lock.withLock(`resolve ${table}`, () =>
          this.db.query(query, [slice, cursor, this.sizeLimit]),
        );
        if (rows.length > 0) yield rows.map((r) => r.id);
        const last = rows.at(-1);
        if (rows.length < this.sizeLimit || !last) break;
        cursor = last.id;
        await sleep(this.sleepMs);
      }
    }
  }
}
