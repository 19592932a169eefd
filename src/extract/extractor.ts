/**
 * Document ids -> documents, with the kind's one big query (src/kinds: `documents`), at most
 * ETL_BULK_SIZE documents per query, each query under the Postgres read lock.
 */
import type { Postgres } from '../db/postgres.js';
import type { DocumentKind } from '../kinds/documentKind.js';
import type { ReadLock } from '../queue/readLock.js';
import type { BatchSource, DocumentBatch } from './documentBatch.js';

export class DocumentExtractor {
  constructor(
    private readonly db: Postgres,
    private readonly lock: ReadLock,
    readonly bulkSize: number,
  ) {}

  /** The claim's documents in batches of at most ETL_BULK_SIZE, read one batch at a time. */
  async *batches(kind: DocumentKind, claim: BatchSource): AsyncGenerator<DocumentBatch> {
    for (let i = 0; i < claim.ids.length; i += this.bulkSize) {
      yield await this.read(kind, claim, claim.ids.slice(i, i + this.bulkSize));
    }
  }

  async read(kind: DocumentKind, claim: BatchSource, ids: string[]): Promise<DocumentBatch> {
    const rows = await this.lock.withLock('extract', () => this.db.query(kind.documents, [ids]));
    const batch: DocumentBatch = { claim, documents: [], deletions: [] };
    for (const row of rows) {
      const version = Number(row.version);
      if (row.doc === null) batch.deletions.push({ id: row.id, version });
      // NDJSON (the bulk body) forbids line breaks inside a document. json_agg writes one between
      // elements of array or row type; the queries aggregate json and text values, which it joins
      // with ", " (no document had one when checked), so this is a guard against a future query,
      // nearly free when nothing matches. In JSON text a raw line break can only be whitespace
      // between tokens, so dropping it is safe.
      else batch.documents.push({ id: row.id, version, json: row.doc.replaceAll('\n', '') });
    }
    return batch;
  }
}
