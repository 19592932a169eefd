/**
 * Document ids -> documents, with the kind's one big query (src/kinds: `documents`), at most
 * ETL_BULK_SIZE documents per query, each query under the Postgres read lock.
 */
import type { Postgres } from '../db/postgres.js';
import type { DocumentKind } from '../kinds/documentKind.js';
import type { ReadLock } from '../queue/readLock.js';
import { isDocumentError } from '../errors.js';
import { snapshotVersion } from '../sql/queries.js';
import type { BatchSource, DocumentBatch } from './documentBatch.js';

/** A document PostgreSQL could not build: its error, and the version of a read made after. */
export interface Unreadable {
  id: string;
  version: number;
  reason: string;
}

export class DocumentExtractor {
  constructor(
    private readonly db: Postgres,
    private readonly lock: ReadLock,
    readonly bulkSize: number,
  ) {}

  /**
   * `read`, except that a document whose query fails on its own data (src/errors.ts,
   * isDocumentError) is set apart instead of failing the others: the ids are read again in
   * halves, down to the one that fails. Such a document failed every read of its claim before,
   * and the claim went back to the head of the queue for every worker to fail on in turn. Its
   * version is that of a read made after the failure: newer than what the index holds (so it is
   * not taken as superseded), older than any later read of it (which clears the letter).
   */
  async readApart(
    kind: DocumentKind,
    claim: BatchSource,
    ids: string[],
  ): Promise<{ batch: DocumentBatch; unreadable: Unreadable[] }> {
    try {
      return { batch: await this.read(kind, claim, ids), unreadable: [] };
    } catch (err) {
      if (!isDocumentError(err)) throw err;
      if (ids.length === 1) {
        const [row] = await this.lock.withLock('extract', () => this.db.query(snapshotVersion));
        const reason = `postgres could not build the document: ${(err as Error).message}`;
        return {
          batch: { claim, documents: [], deletions: [] },
          unreadable: [{ id: ids[0] as string, version: Number(row?.version ?? 0), reason }],
        };
      }
      const half = Math.ceil(ids.length / 2);
      const first = await this.readApart(kind, claim, ids.slice(0, half));
      const second = await this.readApart(kind, claim, ids.slice(half));
      return {
        batch: {
          claim,
          documents: [...first.batch.documents, ...second.batch.documents],
          deletions: [...first.batch.deletions, ...second.batch.deletions],
        },
        unreadable: [...first.unreadable, ...second.unreadable],
      };
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
