/**
 * The fan-out: ids of one entity -> the ids of another kind's documents that show them (a person
 * -> their films, a film -> its people). Streams keyset-paged pages of at most ETL_SIZE_LIMIT ids,
 * each read under the Postgres read lock with a pause between reads, so a genre on 100,000 films
 * never becomes one huge list in memory or one long hold of the lock.
 */
import { keysetPages, readPage, type KeysetQuery } from '../db/keysetPages.js';
import type { Postgres } from '../db/postgres.js';
import type { ReadLock } from '../queue/readLock.js';
import { sleep } from '../util/sleep.js';

export class Resolver {
  constructor(
    private readonly db: Postgres,
    private readonly lock: ReadLock,
    private readonly sizeLimit: number,
    private readonly sleepMs: number,
  ) {}

  /** `via` takes the ids ($1) and a page size ($2), and yields the other side's ids. */
  async *resolve(via: KeysetQuery<{ id: string }>, ids: string[]): AsyncGenerator<string[]> {
    // The id list itself is bounded too: a statement that renamed 5,000 persons is resolved in slices.
    for (let i = 0; i < ids.length; i += this.sizeLimit) {
      const slice = ids.slice(i, i + this.sizeLimit);
      const pages = keysetPages({
        pageSize: this.sizeLimit,
        read: (after: unknown[] | undefined) =>
          this.lock.withLock(`resolve ${via.after.name}`, () =>
            readPage(this.db, via, [slice, this.sizeLimit], after),
          ),
        keyOf: (row) => [row.id],
        pause: () => sleep(this.sleepMs),
      });
      for await (const rows of pages) yield rows.map((r) => r.id);
    }
  }
}
