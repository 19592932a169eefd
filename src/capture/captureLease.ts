/**
 * Which syncer captures changes: the holder of the `capture` lease, one process at a time. Every
 * syncer indexes from the queue; only the holder acts on what it hears and runs poll passes.
 *
 * Why one: every syncer hears every notification and every pass reads the same rows from the
 * same watermarks. Two syncers that both captured queued many an edit twice, and the queue
 * coalesces a document only while it waits, not once an indexer has claimed it: on a loaded
 * 20,000-film catalog at 20 rating edits/s every edit was indexed twice (films and people alike)
 * and resolved through Postgres twice, and at 300 edits/s the pair fell behind where one kept up.
 *
 * Nothing depends on there being only one: passes are idempotent and the watermarks only move
 * past what was queued, so two holders for a moment (one paused past its lease, then woken) only
 * do the work twice, as every syncer did before. What the lease costs is the handover: a holder
 * that stops releases it and another takes it within CAPTURE_CHECK_MS; one killed outright holds
 * it until it lapses (CAPTURE_LEASE_MS). Either way the new holder begins with a catch-up pass,
 * which reads whatever the old one heard and had not queued: its watermarks never passed that.
 *
 * Holding the lease says only that the process runs. A holder that cannot capture well (its
 * listener is down, or its steps keep failing) hands the lease to a syncer that can and asks for
 * it (a knock beside the lease, as the read lock's); with nobody asking it keeps it, so a lone
 * syncer with its listener down still polls, as it always did.
 */
import type { Logger } from '../logger.js';
import { Lease, type HeldLease, type LeaseInfo } from '../queue/lease.js';
import type { RedisStore } from '../queue/redisStore.js';

/** A killed holder's changes wait at most this long (plus a check) for another syncer. */
export const CAPTURE_LEASE_MS = 3_000;
/** How often a syncer that does not capture asks whether the lease is free. */
export const CAPTURE_CHECK_MS = 500;
/** How long a knock stands: a healthy syncer knocks again at every check. */
const KNOCK_MS = 3 * CAPTURE_CHECK_MS;

/** The capture lease (under the prefix), for status readers. */
export function captureLease(store: RedisStore, ttlMs = CAPTURE_LEASE_MS): Lease {
  return new Lease(store, store.key('capture'), ttlMs);
}

/** What ChangeCapture asks: whether it captures now, and to capture if it should. */
export interface CaptureRole {
  /** Read on every notification: no round trip. */
  readonly leading: boolean;
  /** Whether this process's listener is up (a holder that cannot hear looks for a taker often). */
  readonly hearing: boolean;
  /**
   * Take the lease if this process should capture, keep it if it holds it and should go on;
   * resolves to whether this process captures. `failing`: its last capture steps failed.
   */
  claim(failing: boolean): Promise<boolean>;
}

export class CaptureLease implements CaptureRole {
  private held: HeldLease | null = null;
  private closed = false;
  private readonly lease: Lease;
  private readonly knockKey: string;

  constructor(
    private readonly store: RedisStore,
    private readonly owner: string,
    /** Whether this process's listener is up: one that cannot hear yields to one that can. */
    private readonly listening: () => boolean,
    private readonly log: Logger,
    ttlMs = CAPTURE_LEASE_MS,
  ) {
    this.lease = captureLease(store, ttlMs);
    this.knockKey = store.key('capture', 'knock');
  }

  get leading(): boolean {
    return this.held !== null && !this.held.lost;
  }

  get hearing(): boolean {
    return this.listening();
  }

  async claim(failing: boolean): Promise<boolean> {
    if (this.closed) return false;
    const healthy = this.hearing && !failing;
    if (this.leading) {
      if (healthy || !(await this.knocked())) return true;
      this.log.warn(
        { listening: this.hearing, failing },
        'handing the capture lease to a syncer that asked for it: this one cannot capture well now',
      );
      await this.drop();
      return false;
    }
    if (this.held) {
      this.log.warn('another syncer captures changes now (the capture lease lapsed)');
      this.held.abandon();
      this.held = null;
    }
    // Unhealthy: take the lease only when no healthy syncer is asking for it.
    if (!healthy && (await this.knocked())) return false;
    this.held = await this.lease.tryAcquire(
      this.owner,
      (reason) => this.log.warn({ reason }, 'capture lease: could not refresh it, or lost it'),
      healthy ? { key: this.knockKey, ms: KNOCK_MS } : undefined,
    );
    if (this.held) this.log.info('capturing changes (this syncer holds the capture lease)');
    return this.held !== null;
  }

  /** On stop: another syncer takes over within CAPTURE_CHECK_MS, and this one never again. */
  async release(): Promise<void> {
    this.closed = true;
    await this.drop();
  }

  holder(): Promise<LeaseInfo | null> {
    return this.lease.holder();
  }

  private async drop(): Promise<void> {
    const held = this.held;
    this.held = null;
    await held?.release();
  }

  private async knocked(): Promise<boolean> {
    return (await this.store.redis.exists(this.knockKey)) === 1;
  }
}
