/**
 * Document ids -> documents, with the kind's one big query (src/kinds: `documents`), at most
 * ETL_BULK_SIZE documents per query, each query under the Postgres read lock.
 */
import type { Postgres } from '../db/postgres.js';
import type { DocumentKind } from '../kinds/documentKind.js';
import type { ReadLock } from '../queue/readLock.js';
import { isDocumentError, isStatementTimeout } from '../errors.js';
import { probeBounds, snapshotVersion, type DocumentRow } from '../sql/queries.js';
import type { BatchSource, DocumentBatch } from './documentBatch.js';

/** A document PostgreSQL could not build: its error, and the version of a read made after. */
export interface Unreadable {
  id: string;
  version: number;
  reason: string;
}

/** What `readApart` made of a list of ids. */
export interface ReadApart {
  batch: DocumentBatch;
  unreadable: Unreadable[];
  /** Ids not read yet: the timeouts allowed for one list were spent before their turn came. */
  unresolved: string[];
}

/**
 * How many reads of one list may run out of time before the rest is left for later: enough to
 * isolate two slow documents in it (a timeout at each level on the way down to each). Each costs
 * the single reader a whole statement timeout (15 s by default) that no other read can use.
 */
const timeoutsAllowed = (ids: number) => 2 * Math.ceil(Math.log2(Math.max(ids, 1))) + 1;

/** The share of the statement timeout the probe for a lock (`tablesFree`) is given. */
const PROBE_SHARE = 4;

export class DocumentExtractor {
  constructor(
    private readonly db: Postgres,
    private readonly lock: ReadLock,
    readonly bulkSize: number,
  ) {}

  /**
   * `read`, except that a document PostgreSQL cannot build is set apart instead of failing the
   * others: the ids are read again in halves, down to the one that fails. Such a document failed
   * every read of its claim before, and the claim went back to the head of the queue for every
   * worker to fail on in turn. Its version is that of a read made after the failure: newer than
   * what the index holds (so it is not taken as superseded), older than any later read of it
   * (which clears the letter).
   *
   * Cannot build: its query fails on its own data (src/errors.ts, isDocumentError), or runs out of
   * time (a person in a vast number of films, a policy function that waits). A timeout also comes
   * from causes that hold for every read (a table locked by an `ALTER TABLE`, which the query
   * waits on): so after each one the kind's query is run for no document at all (`tablesFree`),
   * and unless that runs without waiting for a lock the read fails as a whole, as before (its
   * claim is retried). A slow row shared by documents in both halves (a person in many of the
   * films) makes each of them slow on its own: each is set apart, which is what they are. At most
   * `timeoutsAllowed` reads run out of time per call; the ids not read by then are returned
   * unresolved, for the caller to queue again, so one claim cannot hold the reader for long, and
   * every call sets apart or reads at least one of them.
   */
  async readApart(
    kind: DocumentKind,
    claim: BatchSource,
    ids: string[],
    /** Aborted (a stop that will not wait any longer): the next read throws instead of running. */
    signal?: AbortSignal,
  ): Promise<ReadApart> {
    return this.apart(kind, claim, ids, { timeoutsLeft: timeoutsAllowed(ids.length), signal });
  }

  private async apart(
    kind: DocumentKind,
    claim: BatchSource,
    ids: string[],
    budget: { timeoutsLeft: number; signal: AbortSignal | undefined },
  ): Promise<ReadApart> {
    const nothing = (): DocumentBatch => ({ claim, documents: [], deletions: [] });
    if (budget.timeoutsLeft <= 0) return { batch: nothing(), unreadable: [], unresolved: ids };
    // Reads that time out one after the other take minutes: a stop must not wait for them all.
    budget.signal?.throwIfAborted();
    const outcome = await this.lock.withLock('extract', () => this.attempt(kind, ids));
    if ('rows' in outcome)
      return { batch: toBatch(claim, outcome.rows), unreadable: [], unresolved: [] };
    const { err, timedOut } = outcome;
    if (timedOut) budget.timeoutsLeft--;
    if (ids.length === 1) {
      const [row] = await this.lock.withLock('extract', () => this.db.query(snapshotVersion));
      const message = (err as Error).message;
      const reason = timedOut
        ? `postgres could not build the document within the statement timeout: ${message}`
        : `postgres could not build the document: ${message}`;
      return {
        batch: nothing(),
        unreadable: [{ id: ids[0] as string, version: Number(row?.version ?? 0), reason }],
        unresolved: [],
      };
    }
    const half = Math.ceil(ids.length / 2);
    const first = await this.apart(kind, claim, ids.slice(0, half), budget);
    const second = await this.apart(kind, claim, ids.slice(half), budget);
    return {
      batch: {
        claim,
        documents: [...first.batch.documents, ...second.batch.documents],
        deletions: [...first.batch.deletions, ...second.batch.deletions],
      },
      unreadable: [...first.unreadable, ...second.unreadable],
      unresolved: [...first.unresolved, ...second.unresolved],
    };
  }

  /**
   * One read of `ids`, under the read lock: its rows, or its failure when that may be the
   * documents' own (throws any other). A timeout is the documents' own only if the probe, run at
   * once in the same hold of the lock, finds the tables free: run later, behind other readers, it
   * could find free a table whose lock the read had waited on until then, and letter a healthy
   * document.
   */
  private async attempt(
    kind: DocumentKind,
    ids: string[],
  ): Promise<{ rows: DocumentRow[] } | { err: unknown; timedOut: boolean }> {
    try {
      return { rows: await this.db.query(kind.documents, [ids]) };
    } catch (err) {
      if (isDocumentError(err)) return { err, timedOut: false };
      if (isStatementTimeout(err) && (await this.tablesFree(kind))) return { err, timedOut: true };
      throw err;
    }
  }

  /**
   * Whether the kind's document query, for no document at all, runs without waiting for a lock
   * (`lock_timeout`) and within a share of the statement timeout. It takes every lock a read
   * takes, so it fails while a table is locked (an `ALTER TABLE`, a `TRUNCATE`). It cannot tell a
   * database slow for every document (overloaded, a policy's own table locked): documents then
   * time out alone and are lettered, and their retries bring them back once it passes.
   */
  private async tablesFree(kind: DocumentKind): Promise<boolean> {
    const bound = Math.max(1, Math.floor(this.db.queryTimeoutMs / PROBE_SHARE));
    try {
      await this.db.transaction(async (tx) => {
        await tx.query(probeBounds, [String(bound)]);
        await tx.query(kind.documents, [[]]);
      });
      return true;
    } catch {
      return false;
    }
  }

  async read(kind: DocumentKind, claim: BatchSource, ids: string[]): Promise<DocumentBatch> {
    const rows = await this.lock.withLock('extract', () => this.db.query(kind.documents, [ids]));
    return toBatch(claim, rows);
  }
}

function toBatch(claim: BatchSource, rows: DocumentRow[]): DocumentBatch {
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
