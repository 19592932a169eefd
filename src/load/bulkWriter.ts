/**
 * Documents -> Elasticsearch with `_bulk`, item by item.
 *
 * A bulk call can succeed while items inside it fail, so every item's status is read:
 *  - 2xx: done; 409: a newer version is already there (a stale read lost the race), done;
 *    404 on delete: already gone, done.
 *  - 429 / 5xx / connection errors: retried (only those items) with exponential backoff and
 *    jitter, for as long as it takes; the claim stays in Redis meanwhile, so nothing is lost.
 *  - anything else (mapping conflict, unparsable value): the film goes to the dead letters with
 *    Elasticsearch's reason, and the rest of the batch proceeds.
 *  - the target gone (`index_not_found_exception`): `onIndexMissing` (which may re-create it),
 *    then retried; without that hook the write fails at once (TargetMissing).
 *  - a body over SPLIT_ABOVE_BYTES is sent in parts; one answered 413 (over Elasticsearch's
 *    `http.max_content_length`, nothing in it written), or 429 for its own size by indexing
 *    pressure (for the request, or for its items on their primary: overPressureAlone), is sent
 *    again in halves (those items), down to one document, which then goes to the dead letters,
 *    and the smallest body refused is remembered, so later bulks that size are split before they
 *    are sent. Failed whole instead, or retried as "not now", its claim would come back and fail
 *    again for ever.
 *  - an answer that does not account for every operation sent (fewer items, or an item without
 *    the action sent): nothing in it is trusted and the write fails (BulkAnswerMismatch). The
 *    indexer then gives its claim back and the batch is retried later: acknowledging such a batch
 *    could lose a write for good, since no later event names the film again.
 *
 * Best effort (`bestEffort`, the reindex mirror): retries end after a short budget, a vanished
 * target or any other failure ends them at once, and what is left is handed to `onAbandoned`
 * instead of failing the write. A syncer's claim waits for the mirror, so the mirror must never
 * hold it for long; what it missed is the reindex's to repair.
 *
 * Writes to an alias carry `require_alias=true`, so an index write never auto-creates an index of
 * that name with dynamic mapping once the alias is gone. Deletes are not covered by that flag
 * (Elasticsearch still auto-creates for them): whoever removes an alias that writers may still use
 * must first make them stop (see ReindexTarget).
 *
 * Every write carries the read's version (`external_gte`), so an older read that lands after a
 * newer one is refused rather than overwriting it.
 */
import type { Client } from '@elastic/elasticsearch';
import { handleType, retry } from 'cockatiel';
import type { Logger } from '../logger.js';
import type { DeadLetter } from '../queue/deadLetters.js';
import { errorReasonOf, httpStatusOf, isTransientError } from '../errors.js';
import { backoff } from '../util/backoff.js';
import type { DocumentBatch } from '../extract/documentBatch.js';
import { bulkBody } from './bulkBody.js';
import {
  classifyItem,
  matchOutcomes,
  overPressureAlone,
  refusalReason,
  type BulkResponse,
  type Operation,
} from './bulkItems.js';
import type { IndexTarget } from './indexManager.js';

/**
 * The largest body sent as one request (bulks of ETL_BULK_SIZE documents of a few KB are far
 * below it). Over Elasticsearch's `http.max_content_length` (100 MB by default) a request is
 * refused, and the refusal does not always reach the client as a 413: Elasticsearch closes the
 * connection while the body is still being sent, which looks like a network failure, retried
 * for ever. Elastic advises bulks of tens of MB at most.
 */
const SPLIT_ABOVE_BYTES = 32 * 1024 * 1024;

export interface LoadResult {
  indexed: string[];
  deleted: string[];
  stale: string[];
  dead: DeadLetter[];
  retries: number;
  /** Items Elasticsearch answered with 429/5xx (each retried). */
  transientItems: number;
}

/** The target index or alias does not exist (and nobody said how to bring it back). */
export class TargetMissing extends Error {
  constructor(readonly target: string) {
    super(`${target} does not exist (index_not_found_exception)`);
    this.name = 'TargetMissing';
  }
}

/** A best-effort write spent its budget on retries. */
class BudgetSpent extends Error {
  constructor(readonly last: string) {
    super(`gave up after its retry budget (${last})`);
    this.name = 'BudgetSpent';
  }
}

/**
 * The index has refused every write as a whole (INDEX_REFUSALS: blocked, closed, no privilege)
 * for `BulkWriterOptions.refusedPatienceMs`: the caller holds these documents back and goes on
 * with the other indices' (src/sync/indexer.ts).
 */
export class IndexRefusing extends Error {
  constructor(
    readonly target: string,
    readonly reason: string,
  ) {
    super(`${target} refuses writes (${reason})`);
    this.name = 'IndexRefusing';
  }
}

class ItemsPending extends Error {
  constructor(
    readonly count: number,
    readonly reason: string,
  ) {
    super(`${count} bulk items to retry (${reason})`);
    this.name = 'ItemsPending';
  }
}

export interface BulkWriterOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  /**
   * Called when the target index or alias vanished (someone deleted it); the items are then
   * retried. Without it, a vanished target fails the write (TargetMissing).
   */
  onIndexMissing?: () => Promise<void>;
  /** Give up instead of failing or waiting long: see the header. */
  bestEffort?: BestEffort;
  /**
   * Called at every retry with its reason (a write can retry for as long as Elasticsearch is away:
   * `npm run status` shows it as the last error, which otherwise said "none" meanwhile). Must not
   * throw.
   */
  onRetry?: (reason: string) => void;
  /**
   * Throw IndexRefusing once the index has refused every attempt as a whole for this long;
   * without it, such refusals are retried until the index takes the writes.
   */
  refusedPatienceMs?: number;
}

export interface BestEffort {
  /** Retries stop this long after the write began (each request is cut off by then too). */
  budgetMs: number;
  /**
   * The films not written, and why: those still pending when the budget ran out, and those
   * refused for good (a reindex's new mapping refusing a change: handed over, the change is
   * queued again after the swap and refused there, where the dead letters show it). Must not
   * throw; the write returns normally after it.
   */
  onAbandoned: (ids: string[], reason: string) => Promise<void>;
}

export class BulkWriter {
  /**
   * Bodies this big are split before they are sent: SPLIT_ABOVE_BYTES, or less once Elasticsearch
   * refused a smaller one for its size (413, or indexing pressure's 429). It never grows back (a
   * limit raised later is used after a restart).
   */
  private tooLarge = SPLIT_ABOVE_BYTES;

  constructor(
    private readonly es: Client,
    private readonly target: IndexTarget,
    private readonly log: Logger,
    private readonly options: BulkWriterOptions = {},
  ) {}

  /**
   * One per write: the writer is shared by the process's indexers, and a policy's retry event
   * fires for every execution on it, so each write listening on a shared one counted (and logged)
   * the retries of every other write in flight as its own.
   */
  private retryPolicy() {
    return retry(
      handleType(ItemsPending).orWhen((err) => isTransientError(err)),
      {
        maxAttempts: Number.MAX_SAFE_INTEGER,
        backoff: backoff({
          initialMs: this.options.initialDelayMs ?? 200,
          maxMs: this.options.maxDelayMs ?? 5_000,
        }),
      },
    );
  }

  get targetName(): string {
    return this.target.name;
  }

  /**
   * The version each of these documents has in the index now: Elasticsearch's `_version`, which
   * is the version of the read that wrote it. Absent: not there, or the index could not be asked
   * (logged; the caller's question is only ever a tidying one).
   */
  async versionsHeld(ids: readonly string[]): Promise<Map<string, number>> {
    const versions = new Map<string, number>();
    if (ids.length === 0) return versions;
    try {
      const { docs } = await this.es.mget({
        index: this.target.name,
        ids: [...ids],
        _source: false,
        realtime: true,
      });
      for (const doc of docs)
        if ('found' in doc && doc.found && doc._version !== undefined)
          versions.set(doc._id, doc._version);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not read the versions indexed');
    }
    return versions;
  }

  async write(batch: DocumentBatch, signal?: AbortSignal): Promise<LoadResult> {
    const result: LoadResult = {
      indexed: [],
      deleted: [],
      stale: [],
      dead: [],
      retries: 0,
      transientItems: 0,
    };
    const state: WriteState = {
      pending: [
        ...batch.documents.map((d) => ({
          kind: 'index' as const,
          id: d.id,
          version: d.version,
          json: d.json,
        })),
        ...batch.deletions.map((d) => ({ kind: 'delete' as const, id: d.id, version: d.version })),
      ],
      last: 'no answer yet',
      refusedSince: null,
      deadline: this.options.bestEffort
        ? performance.now() + this.options.bestEffort.budgetMs
        : null,
    };
    if (state.pending.length === 0) return result;

    const policy = this.retryPolicy();
    const listener = policy.onRetry((event) => {
      result.retries++;
      const reason = 'error' in event ? event.error.message : 'unknown';
      this.options.onRetry?.(reason);
      this.log.warn(
        { delay_ms: Math.round(event.delay), attempt: event.attempt, reason },
        'bulk retry',
      );
    });
    try {
      await policy.execute(() => this.attempt(state, result), signal);
    } catch (err) {
      const { bestEffort } = this.options;
      // Stopping (signal) is not giving up: the caller gives its claim back as it always does.
      if (!bestEffort || signal?.aborted) throw err;
      await this.abandon(bestEffort, state.pending, result, err as Error);
    } finally {
      listener.dispose();
    }
    const { bestEffort } = this.options;
    if (bestEffort && result.dead.length > 0)
      await bestEffort.onAbandoned(
        result.dead.map((d) => d.id),
        `refused: ${result.dead[0]?.reason ?? ''}`,
      );
    return result;
  }

  /** One try of the retry policy: send what is pending, throw to have the rest retried. */
  private async attempt(state: WriteState, result: LoadResult): Promise<void> {
    if (state.deadline !== null && performance.now() >= state.deadline) {
      throw new BudgetSpent(state.last);
    }
    let why = '';
    let refused = false;
    try {
      ({
        retry: state.pending,
        why,
        refused,
      } = await this.send(state.pending, result, state.deadline));
    } catch (err) {
      state.last = (err as Error).message;
      // Part of the bulk may have its outcome already (a request split in parts, one that found
      // its index missing): retried, it would be sent and counted twice.
      const answered = new Set(
        [result.indexed, result.deleted, result.stale, result.dead.map((d) => d.id)].flat(),
      );
      state.pending = state.pending.filter((op) => !answered.has(op.id));
      throw err;
    }
    if (state.pending.length > 0) {
      state.last = `${state.pending.length} items answered 429/5xx or index missing (${why})`;
      // Every item left was refused by the index as a whole: how long that has lasted.
      state.refusedSince = refused ? (state.refusedSince ?? performance.now()) : null;
      const patience = this.options.refusedPatienceMs;
      if (
        patience !== undefined &&
        state.refusedSince !== null &&
        performance.now() - state.refusedSince >= patience
      )
        throw new IndexRefusing(this.target.name, why);
      throw new ItemsPending(state.pending.length, why);
    }
  }

  /** Best effort: hand over what is not written (some of the last request's items may be). */
  private async abandon(
    bestEffort: BestEffort,
    pending: Operation[],
    result: LoadResult,
    err: Error,
  ): Promise<void> {
    const done = new Set([
      ...result.indexed,
      ...result.deleted,
      ...result.stale,
      ...result.dead.map((d) => d.id),
    ]);
    const ids = pending.map((op) => op.id).filter((id) => !done.has(id));
    this.log.warn(
      { index: this.target.name, films: ids.length, reason: err.message },
      'gave up writing these films here',
    );
    await bestEffort.onAbandoned(ids, err.message);
  }

  /**
   * One bulk request (several, when Elasticsearch finds it too large); returns the operations to
   * try again, and why (the first one's answer).
   */
  private async send(
    operations: Operation[],
    result: LoadResult,
    deadline: number | null,
  ): Promise<{ retry: Operation[]; why: string; refused: boolean }> {
    const body = bulkBody(this.target.name, operations);
    if (body.length >= this.tooLarge && operations.length > 1)
      return this.sendHalves(operations, result, deadline);
    let response: BulkResponse;
    try {
      response = await this.es.transport.request<BulkResponse>(
        {
          method: 'POST',
          path: '/_bulk',
          // Only what is read below: the full answer repeats every id, index, shard and seq_no.
          querystring: {
            filter_path: 'items.*.status,items.*.error',
            ...(this.target.isAlias ? { require_alias: 'true' } : {}),
          },
          bulkBody: body,
        },
        deadline === null ? {} : { requestTimeout: Math.max(1, deadline - performance.now()) },
      );
    } catch (err) {
      const status = httpStatusOf(err);
      // A 429 is "not now", except for a request refused for its own size (overPressureAlone):
      // retried as it is, that one failed for ever, holding its claim (or a reindex) with it.
      const pressure = status === 429 ? overPressureAlone(errorReasonOf(err), body.length) : null;
      if (status !== 413 && !pressure) throw err;
      const limit = pressure ? pressureLimit(pressure.limit) : 'http.max_content_length';
      this.refusedForSize(body.length, operations.length, status ?? 413, limit);
      if (operations.length > 1) return this.sendHalves(operations, result, deadline);
      this.letterTooLarge(operations, body.length, status ?? 413, limit, result);
      return { retry: [], why: '', refused: false };
    }
    const retryLater: Operation[] = [];
    // Items the primary's indexing pressure refuses for this request's size (overPressureAlone).
    const overLimit: Operation[] = [];
    let pressureLimitBytes = 0;
    let why = '';
    let indexMissing = false;
    // Whether every item left to retry was refused by the index as a whole (none a 429).
    let refused = true;
    for (const { op, outcome } of matchOutcomes(operations, response)) {
      const verdict = classifyItem(op, outcome);
      const pressure =
        verdict === 'retry' && outcome.status === 429
          ? overPressureAlone(outcome.error?.reason, body.length)
          : null;
      if (pressure) {
        overLimit.push(op);
        pressureLimitBytes = pressure.limit;
        continue;
      }
      switch (verdict) {
        case 'indexed':
          result.indexed.push(op.id);
          break;
        case 'deleted':
          result.deleted.push(op.id);
          break;
        case 'stale':
          result.stale.push(op.id);
          break;
        case 'index-missing':
        case 'retry':
        case 'index-refused':
          indexMissing ||= verdict === 'index-missing';
          refused &&= verdict === 'index-refused';
          why ||= `${op.kind} ${outcome.status} ${outcome.error?.type ?? ''} in ${this.target.name}`;
          retryLater.push(op);
          break;
        case 'dead':
          result.dead.push({
            id: op.id,
            version: op.version,
            status: outcome.status,
            reason: refusalReason(outcome),
            at: new Date().toISOString(),
          });
      }
    }
    result.transientItems += retryLater.length;
    if (overLimit.length > 0) {
      const limit = pressureLimit(pressureLimitBytes);
      this.refusedForSize(body.length, operations.length, 429, limit);
      if (operations.length === 1) this.letterTooLarge(overLimit, body.length, 429, limit, result);
      else {
        // Those items again, in smaller requests (one alone carries its own bytes only).
        const again =
          overLimit.length > 1
            ? await this.sendHalves(overLimit, result, deadline)
            : await this.send(overLimit, result, deadline);
        if (again.retry.length > 0) {
          refused &&= again.refused;
          why ||= again.why;
          retryLater.push(...again.retry);
        }
      }
    }
    if (indexMissing) {
      const { onIndexMissing } = this.options;
      if (!onIndexMissing) throw new TargetMissing(this.target.name);
      await onIndexMissing();
    }
    return { retry: retryLater, why, refused: refused && retryLater.length > 0 };
  }

  /**
   * Elasticsearch refused a request of `bytes` for its size (413, or indexing pressure's 429):
   * bodies that big are split before they are sent from now on.
   */
  private refusedForSize(bytes: number, documents: number, status: number, limit: string): void {
    if (bytes < this.tooLarge)
      this.log.warn(
        { index: this.target.name, bytes, documents, status },
        `bulk request too large for elasticsearch (${status}, ${limit}): ` +
          'bulks this size are sent in parts from now on',
      );
    this.tooLarge = Math.min(this.tooLarge, bytes);
  }

  /** The one document of a request refused for its size, sent alone: a dead letter. */
  private letterTooLarge(
    operations: readonly Operation[],
    bytes: number,
    status: number,
    limit: string,
    result: LoadResult,
  ): void {
    const [op] = operations as [Operation];
    result.dead.push({
      id: op.id,
      version: op.version,
      status,
      reason:
        `the document alone (${bytes} bytes with its action) is over what ` +
        `Elasticsearch takes in one request (${limit})`,
      at: new Date().toISOString(),
    });
  }

  /** `send` each half in turn; what both leave to retry, and the first reason. */
  private async sendHalves(
    operations: Operation[],
    result: LoadResult,
    deadline: number | null,
  ): Promise<{ retry: Operation[]; why: string; refused: boolean }> {
    const middle = Math.ceil(operations.length / 2);
    // A throw from either half fails the attempt as a throw from one request would; `attempt`
    // keeps out of the retry what has its outcome already.
    const first = await this.send(operations.slice(0, middle), result, deadline);
    const second = await this.send(operations.slice(middle), result, deadline);
    const retry = [...first.retry, ...second.retry];
    // Refused as a whole only if no half left a 429 or 5xx behind.
    const refused =
      retry.length > 0 &&
      (first.retry.length === 0 || first.refused) &&
      (second.retry.length === 0 || second.refused);
    return { retry, why: first.why || second.why, refused };
  }
}

interface WriteState {
  pending: Operation[];
  /** Since when (performance.now()) every attempt was refused by the index as a whole; or null. */
  refusedSince: number | null;
  /** Why the last attempt did not finish, for the give-up message. */
  last: string;
  /** Best effort: when to give up (epoch ms); null: never. */
  deadline: number | null;
}

/** How a letter and the log name indexing pressure's limit. */
function pressureLimit(bytes: number): string {
  return `indexing_pressure.memory.limit, ${bytes} bytes`;
}
