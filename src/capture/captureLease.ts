/**
 * Which syncer captures changes: the holder of the `capture` lease, one process at a time. Every
 * syncer indexes from the queue; only the holder acts on what it hears and runs poll passes.
 *
 * Why one: every syncer hears every notification and every pass reads the same rows from the
 * same watermarks. Two syncers that both captured put each edit in the queue twice, and the queue
 * coalesces a document only while it waits, not once an indexer has claimed it: measured on a
 * loaded 20,000-film catalog, every rating edit was indexed twice (films and people alike) and
 * resolved through Postgres twice, and at 300 edits/s the pair fell behind where one syncer kept up.
 *
 * Nothing depends on there being only one: passes are idempotent and the watermarks only move
 * past what was queued, so two holders for a moment (one paused past its lease, then woken) only
 * do the work twice, as every syncer did before. What the lease costs is the handover: a holder
 * that stops releases it and another takes it within CAPTURE_CHECK_MS; one killed outright holds
 * it until it lapses (CAPTURE_LEASE_MS). Either way the new holder begins with a catch-up pass,
 * which reads whatever the old one heard and had not queued: its watermarks never passed that.
 */
import type { Logger } from '../logger.js';
import { Lease, type HeldLease, type LeaseInfo } from '../queue/lease.js';
import type { RedisStore } from '../queue/redisStore.js';

/** A killed holder's changes wait at most this long (plus a check) for another syncer. */
export const CAPTURE_LEASE_MS = 3_000;
/** How often a syncer that does not capture asks whether the lease is free. */
export const CAPTURE_CHECK_MS = 500;

/** The Redis key (under the prefix) of the capture lease, for status readers. */
export function captureLease(store: RedisStore, ttlMs = CAPTURE_LEASE_MS): Lease {
  return new Lease(store, store.key('capture'), ttlMs);
}

/** What ChangeCapture asks: whether it captures now, and to capture if nobody does. */
export interface CaptureRole {
  /** Read on every notification: no round trip. */
  readonly leading: boolean;
  /** Take the lease if it is free (or keep it); resolves to whether this process captures. */
  claim(): Promise<boolean>;
}

export class CaptureLease implements CaptureRole {
  private held: HeldLease | null = null;
  private readonly lease: Lease;

  constructor(
    store: RedisStore,
    private readonly owner: string,
    private readonly log: Logger,
    ttlMs = CAPTURE_LEASE_MS,
  ) {
    this.lease = captureLease(store, ttlMs);
  }

  get leading(): boolean {
    return this.held !== null && !this.held.lost;
  }

  async claim(): Promise<boolean> {
    if (this.leading) return true;
    if (this.held) {
      this.log.warn('another syncer captures changes now (the capture lease lapsed)');
      this.held = null;
    }
    this.held = await this.lease.tryAcquire(this.owner, (reason) =>
      this.log.warn({ reason }, 'capture lease: could not refresh it, or lost it'),
    );
    if (this.held) this.log.info('capturing changes (this syncer holds the capture lease)');
    return this.held !== null;
  }

  /** On stop: another syncer takes over within CAPTURE_CHECK_MS instead of CAPTURE_LEASE_MS. */
  async release(): Promise<void> {
    const held = this.held;
    this.held = null;
    await held?.release();
  }

  holder(): Promise<LeaseInfo | null> {
    return this.lease.holder();
  }
}
