/**
 * What metrics and health checks may read of a running syncer: a narrow, read-only view, so that
 * metrics/ never imports sync/ (the syncer builds the view; src/sync/syncer.ts).
 */
import type { SearchHealth } from '../load/searchHealth.js';
import type { DeadLetters } from '../queue/deadLetters.js';
import type { DocumentQueue } from '../queue/documentQueue.js';
import type { LeaseInfo } from '../queue/lease.js';
import type { StatusReport } from '../queue/statusReport.js';
import type { Watermarks } from '../queue/watermarks.js';
import type { IndexerStats } from './indexerStats.js';

export interface SyncerView {
  readonly startedAt: number;
  /**
   * Documents waiting, or a claim held, this long with no batch acknowledged: /readyz says the
   * syncer is stalled.
   */
  readonly stallMs: number;
  /** The indexers' counters summed, or null before they exist. */
  indexerStats(): IndexerStats | null;
  /**
   * Bulk requests retried by this process (Elasticsearch away, 429, 5xx), counted as each retry
   * happens: a write retried for the whole of an outage counts all along, not once it succeeds.
   */
  bulkRetries(): number;
  /** When the longest-held claim of this process's indexers was taken (ms); null when none. */
  oldestClaimAt(): number | null;
  captureStats(): { notifications: number; passes: number } | null;
  /** The capture's steps failing in a row (see ChangeCapture.failing); null while they go through. */
  captureFailing(): { steps: number; error: string } | null;
  listenerConnected(): boolean;
  /** Another deployment's claim on this Redis prefix, as a readiness problem; null when none. */
  deploymentConflict(): string | null;
  /** Time this process has waited for the Postgres read lock, in total. */
  lockWaitedMs(): number;
  /** Who holds the Postgres read lock now (any syncer, or a seed), and for how long; null when free. */
  readLockHolder(): Promise<LeaseInfo | null>;
  /** Whether this process is the syncer capturing changes (one at a time: capture/captureLease.ts). */
  capturing(): boolean;
  queue: Pick<DocumentQueue, 'depth' | 'depthByKind' | 'inFlight'>;
  deadLetters: Pick<DeadLetters, 'count' | 'countByKind'>;
  watermarks: Pick<Watermarks, 'getAll'>;
  /** What `npm run status` shows (every syncer sharing this Redis prefix), for the status page. */
  status(): Promise<StatusReport>;
  /** One round trip to each service; rejects when it does not answer. */
  services: Record<'postgres' | 'redis', () => Promise<unknown>>;
  /** Elasticsearch's cluster health as it bears on our indices; rejects when it does not answer. */
  searchHealth(): Promise<SearchHealth>;
}
