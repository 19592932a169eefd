/**
 * The typed batch that extract hands to load (the seed's dataclass between stages 2 and 3), for
 * any index. The documents' shapes are their mappings (src/load/indexDefinition.ts) and the SQL
 * that builds them (src/sql/); the test oracle restates them independently.
 */
import type { Claim } from '../queue/documentQueue.js';

/** A document to (re)index, with the version of the read that produced it. */
export interface VersionedDocument {
  id: string;
  version: number;
  /**
   * The document as JSON text on one line, as Postgres built it: parsing and re-serialising
   * every document would cost the loader more CPU than the rest of its work together.
   */
  json: string;
}

/** A row that no longer exists: its document goes. */
export interface Deletion {
  id: string;
  version: number;
}

/** Whose documents a batch holds: a queue claim, or a reindex page (which has no claim id). */
export type BatchSource = Pick<Claim, 'workerId' | 'ids' | 'claimedAt'>;

export interface DocumentBatch {
  claim: BatchSource;
  documents: VersionedDocument[];
  deletions: Deletion[];
}
