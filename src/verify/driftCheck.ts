/**
 * Compares Postgres and one index document by document: documents missing from the index,
 * documents whose row no longer exists (extra), and documents whose content differs from what the
 * catalog says now (stale, by a hash of the canonical JSON). Reads ETL_SIZE_LIMIT rows at a time,
 * under the Postgres read lock, so it can run beside the syncer on a catalog of any size. The
 * same for every kind (src/kinds): the kind brings its ids and its document query.
 */
import { createHash } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { keysetPages, readPage } from '../db/keysetPages.js';
import type { Postgres } from '../db/postgres.js';
import type { IndexedIds } from '../capture/poller.js';
import type { DocumentKind } from '../kinds/documentKind.js';
import type { ReadLock } from '../queue/readLock.js';
import { isCanonicalUuid } from '../util/uuid.js';

export interface DriftReport {
  /** Rows in Postgres (films, persons or genres). */
  rows: number;
  documents: number;
  missing: string[];
  extra: string[];
  stale: string[];
}

/** JSON with object keys sorted at every level: equal content, equal text. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a.localeCompare(b),
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export const contentHash = (doc: unknown) =>
  createHash('sha1').update(canonical(doc)).digest('hex');

export async function checkDrift(deps: {
  kind: DocumentKind;
  db: Postgres;
  lock: ReadLock;
  es: Client;
  index: string;
  indexed: IndexedIds;
  pageSize: number;
}): Promise<DriftReport> {
  const { kind, db, lock, es, index, indexed, pageSize } = deps;
  const report: DriftReport = { rows: 0, documents: 0, missing: [], extra: [], stale: [] };

  // Every row: is its document there, and does it say what the catalog says?
  const pages = keysetPages({
    pageSize,
    read: (after: unknown[] | undefined) =>
      lock.withLock('verify', () => readPage(db, kind.ids, [pageSize], after)),
    keyOf: (row) => [row.id],
  });
  for await (const page of pages) {
    const ids = page.map((r) => r.id);
    const rows = await lock.withLock('verify', () => db.query(kind.documents, [ids]));
    const indexedDocs = await es.mget<Record<string, unknown>>({ index, ids, realtime: true });
    const actual = new Map<string, unknown>();
    for (const doc of indexedDocs.docs) {
      if ('found' in doc && doc.found) actual.set(doc._id, doc._source);
    }
    for (const row of rows) {
      if (row.doc === null) continue; // deleted between the two reads
      report.rows++;
      const got = actual.get(row.id);
      if (got === undefined) report.missing.push(row.id);
      else if (contentHash(got) !== contentHash(JSON.parse(row.doc))) report.stale.push(row.id);
    }
  }

  // Every document: does its row still exist?
  for await (const page of indexed.pages(pageSize)) {
    report.documents += page.length;
    // An id no row can have is extra without asking (the query's uuid cast would fail on it).
    const ids = page.filter(isCanonicalUuid);
    report.extra.push(...page.filter((id) => !isCanonicalUuid(id)));
    const existing = await lock.withLock('verify', () => db.query(kind.existing, [ids]));
    const present = new Set(existing.map((r) => r.id));
    for (const id of ids) if (!present.has(id)) report.extra.push(id);
  }
  return report;
}
