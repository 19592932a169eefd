/**
 * Reading a `_bulk` answer, as pure logic: match each item to the operation it answers, and say
 * what became of it. Everything the loader decides about an item is decided here.
 */
import { isTransientStatus } from '../errors.js';

export type Operation =
  | { kind: 'index'; id: string; version: number; json: string }
  | { kind: 'delete'; id: string; version: number };

export interface BulkItemError {
  type?: string;
  reason?: string;
  caused_by?: { reason?: string };
}

/** The bulk answer as `filter_path=items.*.status,items.*.error` leaves it. */
export interface BulkResponse {
  items?: Partial<Record<'index' | 'delete', { status: number; error?: BulkItemError }>>[];
}

export type Outcome = { status: number; error?: BulkItemError };

/** A bulk answer that does not say what became of every operation sent. */
export class BulkAnswerMismatch extends Error {
  constructor(readonly detail: string) {
    super(`bulk answer does not match the operations sent: ${detail}`);
    this.name = 'BulkAnswerMismatch';
  }
}

/**
 * Each operation's outcome, in order: exactly one item per operation, each under the action sent.
 * Anything else throws BulkAnswerMismatch, before any of the answer is acted on (an item that
 * matches nothing must never count as done).
 */
export function matchOutcomes(
  operations: Operation[],
  response: BulkResponse,
): { op: Operation; outcome: Outcome }[] {
  const items = response.items;
  if (!Array.isArray(items)) throw new BulkAnswerMismatch('no items');
  if (items.length !== operations.length) {
    throw new BulkAnswerMismatch(`${items.length} items for ${operations.length} operations`);
  }
  return operations.map((op, i) => {
    const outcome = items[i]?.[op.kind];
    if (typeof outcome?.status !== 'number') {
      throw new BulkAnswerMismatch(`item ${i} has no ${op.kind} result (document ${op.id})`);
    }
    return { op, outcome };
  });
}

/**
 * - indexed / deleted: done (a delete of a document that is not there is done too);
 * - stale: 409, a newer version is indexed: done, nothing to write;
 * - index-missing: the index or alias is gone: retry once it is back;
 * - retry: 429 / 5xx, not now but later;
 * - index-refused: a refusal of the index, not of the document (see INDEX_REFUSALS): later too;
 * - dead: refused for good (mapping, unparsable value): a dead letter.
 */
export type ItemVerdict =
  'indexed' | 'deleted' | 'stale' | 'index-missing' | 'retry' | 'index-refused' | 'dead';

/**
 * Refusals that hold for every document of the index for a while, and say nothing of this one: an
 * index closed or write-blocked by an operator (to change its analysis settings, to move or shrink
 * it), and 401/403 (credentials that lost their write privilege). Lettered, every edit made
 * meanwhile stayed out of the index once it took writes again, until someone re-drove the letters.
 * A flood-stage disk block is one too (a 429).
 */
const INDEX_REFUSALS = new Set(['cluster_block_exception', 'index_closed_exception']);

export function classifyItem(op: Operation, outcome: Outcome): ItemVerdict {
  const { status } = outcome;
  const errorType = outcome.error?.type;
  if (status >= 200 && status < 300) return op.kind === 'index' ? 'indexed' : 'deleted';
  if (status === 409) return 'stale';
  if (status === 404 && op.kind === 'delete' && errorType === undefined) return 'deleted';
  if (errorType === 'index_not_found_exception') return 'index-missing';
  // Before the status: a disk past its flood stage blocks the index with a 429, and that index's
  // documents are held back like those of any blocked index (src/sync/indexPause.ts).
  if (status === 401 || status === 403 || INDEX_REFUSALS.has(errorType ?? '')) {
    return 'index-refused';
  }
  if (isTransientStatus(status)) return 'retry';
  return 'dead';
}

/** What a dead letter says of a refused item. */
export function refusalReason(outcome: Outcome): string {
  const error = outcome.error;
  const cause = error?.caused_by?.reason ? ` (${error.caused_by.reason})` : '';
  return `${error?.type ?? 'error'}: ${error?.reason ?? 'no reason given'}${cause}`;
}

/**
 * A request Elasticsearch's indexing pressure refused for its own size, which no retry cures: its
 * bytes and the limit, or null for any other answer (a refusal because of what else was in flight
 * is "not now", retried like any 429). Indexing pressure (`indexing_pressure.memory.limit`, 10 %
 * of the heap: 53,687,091 bytes at 512 MB) is checked twice, and Elasticsearch 9.5 words the
 * refusals so (checked with one document of 12 MB and one of 75 MB):
 *  - the whole request, on the node it reaches (429 for the request): `rejected execution of
 *    coordinating operation [coordinating_and_primary_bytes=<in flight>, ...,
 *    coordinating_operation_bytes=<the request's>, max_coordinating_bytes=<limit>]`. Over the
 *    limit alone when the request's bytes are.
 *  - each shard's part, on its primary (429 for each of its items): `rejected execution of
 *    primary operation [coordinating_and_primary_bytes=<in flight, this request's own bytes
 *    included>, ..., primary_operation_bytes=<the part's, about four times its documents' size>,
 *    max_primary_bytes=<limit>]`. Over it alone when the part's bytes and this request's own
 *    (`ownBytes`, its body: still in flight while its primary runs) are: so a document of about a
 *    fifth of the limit (10.7 MB at a 512 MB heap) can never be written, nor a few of 8 MB in one
 *    bulk.
 */
export function overPressureAlone(
  reason: string | undefined,
  ownBytes: number,
): { bytes: number; limit: number } | null {
  const said =
    /rejected execution of (coordinating|primary) operation \[coordinating_and_primary_bytes=(\d+),.*\b\1_operation_bytes=(\d+), max_[a-z_]+_bytes=(\d+)\]/.exec(
      reason ?? '',
    );
  if (!said) return null;
  const inFlight = Number(said[2]);
  const operation = Number(said[3]);
  const limit = Number(said[4]);
  const bytes = said[1] === 'primary' ? operation + Math.min(inFlight, ownBytes) : operation;
  return bytes > limit ? { bytes, limit } : null;
}
