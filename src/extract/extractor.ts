/**
 * Film ids -> documents, with the one big query (src/sql/queries.ts `filmDocuments`), at most
 * ETL_BULK_SIZE films per query, each query under the Postgres read lock.
 */
import type { Postgres } from '../db/postgres.js';
import type { ReadLock } from '../queue/readLock.js';
import * as sql from '../sql/queries.js';
import type { BatchSource, FilmBatch } from './filmDocument.js';

export class FilmExtractor {
  constructor(
    private readonly db: Postgres,
    private readonly lock: ReadLock,
    readonly bulkSize: number,
  ) {}

  /** The claim's films in batches of at most ETL_BULK_SIZE, read one batch at a time. */
  async *batches(claim: BatchSource): AsyncGenerator<FilmBatch> {
    for (let i = 0; i < claim.ids.length; i += this.bulkSize) {
      yield await this.read(claim, claim.ids.slice(i, i + this.bulkSize));
    }
  }

  async read(claim: BatchSource, ids: string[]): Promise<FilmBatch> {
    const rows = await this.lock.withLock('extract', () => this.db.query(sql.filmDocuments, [ids]));
    const batch: FilmBatch = { claim, documents: [], deletions: [] };
    for (const row of rows) {
      const version = Number(row.version);
      if (row.doc === null) batch.deletions.push({ id: row.id, version });
      // json_agg separates elements with a line break, which NDJSON (the bulk body) forbids; in
      // JSON text a raw line break can only be whitespace between tokens, so dropping it is safe.
      else batch.documents.push({ id: row.id, version, json: row.doc.replaceAll('\n', '') });
    }
    return batch;
  }
}
