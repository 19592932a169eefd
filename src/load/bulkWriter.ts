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
 *
 * Every write carries the read's version (`external_gte`), so an older read that lands after a
 * newer one is refused rather than overwriting it.
 */
import type { Client } from '@elastic/elasticsearch';
import { ExponentialBackoff, handleType, retry } from 'cockatiel';
import type { Logger } from '../logger.js';
import type { DeadLetter } from '../queue/deadLetters.js';
import { isTransientError, isTransientStatus } from '../errors.js';
import type { FilmBatch } from '../extract/filmDocument.js';
import type { IndexTarget } from './indexManager.js';

export interface LoadResult {
  indexed: string[];
  deleted: string[];
  stale: string[];
  dead: DeadLetter[];
  retries: number;
  /** Items Elasticsearch answered with 429/5xx (each retried). */
  transientItems: number;
}

type Operation =
  | { kind: 'index'; id: string; version: number; json: string }
  | { kind: 'delete'; id: string; version: number };

interface BulkItemError {
  type?: string;
  reason?: string;
  caused_by?: { reason?: string };
}

/** The bulk answer as `filter_path` leaves it. */
interface BulkResponse {
  items?: Partial<Record<'index' | 'delete', { status: number; error?: BulkItemError }>>[];
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
  /** Called when the target index or alias vanished (someone deleted it). */
  onIndexMissing?: () => Promise<void>;
}

export class BulkWriter {
  private readonly policy;

  constructor(
    private readonly es: Client,
    private readonly target: IndexTarget,
    private readonly log: Logger,
    private readonly options: BulkWriterOptions = {},
  ) {
    this.policy = retry(
      handleType(ItemsPending).orWhen((err) => isTransientError(err)),
      {
        maxAttempts: Number.MAX_SAFE_INTEGER,
        backoff: new ExponentialBackoff({
          initialDelay: options.initialDelayMs ?? 200,
          maxDelay: options.maxDelayMs ?? 5_000,
        }),
      },
    );
  }

  get targetName(): string {
    return this.target.name;
  }

  async write(batch: FilmBatch, signal?: AbortSignal): Promise<LoadResult> {
    const result: LoadResult = {
      indexed: [],
      deleted: [],
      stale: [],
      dead: [],
      retries: 0,
      transientItems: 0,
    };
    let pending: Operation[] = [
      ...batch.documents.map((d) => ({
        kind: 'index' as const,
        id: d.id,
        version: d.version,
        json: d.json,
      })),
      ...batch.deletions.map((d) => ({ kind: 'delete' as const, id: d.id, version: d.version })),
    ];
    if (pending.length === 0) return result;

    const listener = this.policy.onRetry((event) => {
      result.retries++;
      const reason = 'error' in event ? event.error.message : 'unknown';
      this.log.warn(
        { delay_ms: Math.round(event.delay), attempt: event.attempt, reason },
        'bulk retry',
      );
    });
    try {
      await this.policy.execute(async () => {
        pending = await this.send(pending, result);
        if (pending.length > 0) throw new ItemsPending(pending.length, 'transient item errors');
      }, signal);
    } finally {
      listener.dispose();
    }
    return result;
  }

  /** One bulk request; returns the operations to try again. */
  private async send(operations: Operation[], result: LoadResult): Promise<Operation[]> {
    // The body is written by hand: documents arrive as JSON text and go out as they are.
    let body = '';
    for (const op of operations) {
      const meta = JSON.stringify({
        [op.kind]: {
          _index: this.target.name,
          _id: op.id,
          version: op.version,
          version_type: 'external_gte',
        },
      });
      body += op.kind === 'index' ? `${meta}\n${op.json}\n` : `${meta}\n`;
    }
    const response = await this.es.transport.request<BulkResponse>({
      method: 'POST',
      path: '/_bulk',
      // Only what is read below: the full answer repeats every id, index, shard and sequence number.
      querystring: {
        filter_path: 'items.*.status,items.*.error',
        ...(this.target.isAlias ? { require_alias: 'true' } : {}),
      },
      bulkBody: body,
    });
    const retryLater: Operation[] = [];
    let indexMissing = false;
    for (const [i, item] of (response.items ?? []).entries()) {
      const op = operations[i];
      const outcome = item.index ?? item.delete;
      if (!op || !outcome) continue;
      const status = outcome.status;
      const errorType = outcome.error?.type;
      if (status >= 200 && status < 300) {
        (op.kind === 'index' ? result.indexed : result.deleted).push(op.id);
      } else if (status === 409) {
        result.stale.push(op.id);
      } else if (status === 404 && op.kind === 'delete' && errorType === undefined) {
        result.deleted.push(op.id);
      } else if (errorType === 'index_not_found_exception') {
        indexMissing = true;
        retryLater.push(op);
      } else if (isTransientStatus(status)) {
        retryLater.push(op);
      } else {
        result.dead.push({
          id: op.id,
          status,
          reason: `${errorType ?? 'error'}: ${outcome.error?.reason ?? 'no reason given'}${
            outcome.error?.caused_by?.reason ? ` (${outcome.error.caused_by.reason})` : ''
          }`,
          at: new Date().toISOString(),
        });
      }
    }
    if (indexMissing) await this.options.onIndexMissing?.();
    result.transientItems += retryLater.length;
    return retryLater;
  }
}
