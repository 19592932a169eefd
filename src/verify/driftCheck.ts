/**
 * Compares Postgres and one index document by document: documents missing from the index,
 * documents whose row no longer exists (extra), and documents whose content differs from what the
 * catalog says now (stale, by a hash of the canonical JSON). Reads ETL_SIZE_LIMIT rows at a time,
 * under the Postgres read lock, so it can run beside the syncer on a catalog of any size. The
 * same for every kind (src/kinds): the kind brings its ids; what its documents should say is built
 * from plain rows by expectedDocuments.ts, not by the syncer's document queries, whose mistakes a
 * check built on them would share.
 *
 * On a live catalog a document can differ for a moment without anything being wrong: an edit
 * committed and not indexed yet (the syncer's normal lag, about a second), or indexed after this
 * check read the row. So what differed is looked at again, about once a second, for `settleMs`:
 * only what never agreed in that time is reported. A real drift costs the whole wait; a catalog in
 * step costs none. A document edited without pause for the whole wait is reported too (say so if
 * it comes up: a longer `--settle` tells the two apart). An index further apart than can be
 * listed is walked again whole, about once a second, for the same time.
 */
import { createHash } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { keysetPages, readPage } from '../db/keysetPages.js';
import type { Postgres } from '../db/postgres.js';
import type { IndexedIds } from '../capture/poller.js';
import type { DocumentKind } from '../kinds/documentKind.js';
import type { ReadLock } from '../queue/readLock.js';
import { sleep } from '../util/sleep.js';
import { isCanonicalUuid } from '../util/uuid.js';
import { expectedDocuments } from './expectedDocuments.js';

type Difference = 'missing' | 'extra' | 'stale';

export interface DriftReport {
  /** Rows in Postgres (films, persons or genres). */
  rows: number;
  documents: number;
  /** The ids that differ, at most `listAtMost` of them in all (see `listed`). */
  missing: string[];
  extra: string[];
  stale: string[];
  /** How many documents differ, listed or not. */
  counts: Record<Difference, number>;
  /**
   * Whether every document that differs is listed. Past `listAtMost` the rest are only counted
   * (memory stays bounded however far an index drifted: an Elasticsearch restored from an old
   * snapshot), and nothing is looked at again: that far apart is no lag.
   */
  listed: boolean;
}

/** How often what differed is looked at again. */
const LOOK_EVERY_MS = 1_000;

/**
 * JSON with object keys sorted at every level, and array elements too (the contract gives the
 * documents' arrays no order): equal content, equal text.
 */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).sort().join(',')}]`;
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
  /** How long to keep looking at what differed before calling it drift (0: one look). */
  settleMs: number;
  /** Most ids listed; past it, differences are only counted. */
  listAtMost: number;
}): Promise<DriftReport> {
  let report = await walk(deps);
  // Further apart than can be listed, so there is nothing to look at again one by one; but one
  // statement over many rows, a change fanned out to thousands of documents or a load under way
  // leaves that many behind for a while, which is lag, not drift. So the whole walk is made
  // again, until it can list what differs or `settleMs` has passed.
  const deadline = Date.now() + deps.settleMs;
  while (!report.listed && Date.now() < deadline) {
    await sleep(Math.min(LOOK_EVERY_MS, deadline - Date.now()));
    report = await walk(deps);
  }
  return report.listed ? lookAgain(deps, report) : report;
}

/** One look at every row and every document. */
async function walk(deps: Parameters<typeof checkDrift>[0]): Promise<DriftReport> {
  const { kind, db, lock, indexed, pageSize, listAtMost } = deps;
  const report: DriftReport = {
    rows: 0,
    documents: 0,
    missing: [],
    extra: [],
    stale: [],
    counts: { missing: 0, extra: 0, stale: 0 },
    listed: true,
  };
  const differs = (difference: Difference, id: string) => {
    report.counts[difference]++;
    if (report.missing.length + report.extra.length + report.stale.length < listAtMost)
      report[difference].push(id);
    else report.listed = false;
  };

  // Every row: is its document there, and does it say what the catalog says?
  const pages = keysetPages({
    pageSize,
    read: (after: unknown[] | undefined) =>
      lock.withLock('verify', () => readPage(db, kind.ids, [pageSize], after)),
    keyOf: (row) => [row.id],
  });
  for await (const page of pages) {
    const ids = page.map((r) => r.id);
    for (const [id, seen] of await look(deps, ids)) {
      if (!seen.row) continue; // deleted between the two reads
      report.rows++;
      if (seen.difference) differs(seen.difference, id);
    }
  }

  // Every document: does its row still exist?
  for await (const page of indexed.pages(pageSize)) {
    report.documents += page.length;
    // An id no row can have is extra without asking (the query's uuid cast would fail on it).
    const ids = page.filter(isCanonicalUuid);
    for (const id of page) if (!isCanonicalUuid(id)) differs('extra', id);
    const existing = await lock.withLock('verify', () => db.query(kind.existing, [ids]));
    const present = new Set(existing.map((r) => r.id));
    for (const id of ids) if (!present.has(id)) differs('extra', id);
  }
  return report;
}

/** Each id's row and document now: whether the row exists, and how the document differs. */
async function look(
  deps: Parameters<typeof checkDrift>[0],
  ids: string[],
): Promise<Map<string, { row: boolean; difference: Difference | null }>> {
  const { kind, db, lock, es, index } = deps;
  // The row first, then the document: a document indexed in between is newer than the row read,
  // and differs for a moment, which the next look settles.
  const expected = await lock.withLock('verify', () => expectedDocuments[kind.name](db, ids));
  const indexedDocs = await es.mget<Record<string, unknown>>({ index, ids, realtime: true });
  const actual = new Map<string, unknown>();
  for (const doc of indexedDocs.docs) {
    if ('found' in doc && doc.found) actual.set(doc._id, doc._source);
  }
  const seen = new Map<string, { row: boolean; difference: Difference | null }>();
  for (const id of ids) {
    const doc = expected.get(id);
    seen.set(id, { row: doc !== undefined, difference: differenceOf(doc, actual.get(id)) });
  }
  return seen;
}

function differenceOf(expected: unknown, indexed: unknown): Difference | null {
  if (expected === undefined) return indexed === undefined ? null : 'extra';
  if (indexed === undefined) return 'missing';
  return contentHash(indexed) === contentHash(expected) ? null : 'stale';
}

/**
 * What differed, looked at again until it agrees or `settleMs` has passed; what never agreed is
 * reported as the last look saw it (a document stale at first can be missing by then). Ids no row
 * can have are extra without looking again: nothing will ever index or delete them.
 */
async function lookAgain(
  deps: Parameters<typeof checkDrift>[0],
  first: DriftReport,
): Promise<DriftReport> {
  const strays = first.extra.filter((id) => !isCanonicalUuid(id));
  let differing = new Map<string, Difference>();
  for (const difference of ['missing', 'extra', 'stale'] as const)
    for (const id of first[difference]) if (isCanonicalUuid(id)) differing.set(id, difference);
  const deadline = Date.now() + deps.settleMs;
  while (differing.size > 0 && Date.now() < deadline) {
    await sleep(Math.min(LOOK_EVERY_MS, deadline - Date.now()));
    const still = new Map<string, Difference>();
    const ids = [...differing.keys()];
    for (let i = 0; i < ids.length; i += deps.pageSize) {
      for (const [id, seen] of await look(deps, ids.slice(i, i + deps.pageSize)))
        if (seen.difference) still.set(id, seen.difference);
    }
    differing = still;
  }
  const report: DriftReport = { ...first, missing: [], extra: [...strays], stale: [] };
  for (const [id, difference] of differing) report[difference].push(id);
  report.counts = {
    missing: report.missing.length,
    extra: report.extra.length,
    stale: report.stale.length,
  };
  return report;
}
