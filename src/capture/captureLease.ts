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
 * it until it lapses (CAPTURE_LEASE_MS). The new holder replays what it heard meanwhile and begins
 * with a catch-up pass (src/capture/changeCapture.ts), so nothing the old one missed waits.
 *
 * The lease is looked after on its own timer, not by the capture loop: a loop inside an hour-long
 * full load must still notice a lost lease and take it back. Holding it says only that the
 * process runs, though: a holder that cannot capture well (its listener is down, or its steps
 * keep failing) hands it to a syncer that can and asks for it (a knock naming the asker); with
 * nobody asking it keeps it, so a lone syncer with its listener down still polls, as it always did.
 */
import type { Logger } from '../logger.js';
import { Lease, type HeldLease, type LeaseInfo } from '../queue/lease.js';
import type { RedisStore } from '../queue/redisStore.js';

/** A killed holder's changes wait at most this long (plus a check) for another syncer. */
export const CAPTURE_LEASE_MS = 3_000;
/** How often each syncer looks after the lease: takes it when free, hands it over when asked. */
export const CAPTURE_CHECK_MS = 500;
/** How long a knock stands: a syncer that can capture knocks again at every check. */
const KNOCK_MS = 3 * CAPTURE_CHECK_MS;

/** The capture lease (under the prefix), for status readers. */
export function captureLease(store: RedisStore, ttlMs = CAPTURE_LEASE_MS): Lease {
  return new Lease(store, store.key('capture'), ttlMs);
}

/** What ChangeCapture sees of the lease. */
export interface CaptureRole {
  /** Read on every notification: no round trip. */
  readonly leading: boolean;
  /** Calls `fn` with true when this process begins capturing, false when it stops. */
  onTransition(fn: (leading: boolean) => void): void;
  /** The capture loop's last steps failed (true) or it works again (false). */
  failing: boolean;
}

export class CaptureLease implements CaptureRole {
  failing = false;
  private held: HeldLease | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  /** The look under way, if any: one at a time, and release() waits for it. */
  private looking: Promise<void> | null = null;
  /** The last look failed (Redis away): said once, not at every look. */
  private lookFailed = false;
  private was = false;
  private transition: (leading: boolean) => void = () => undefined;
  private readonly lease: Lease;
  private readonly knockKey: string;

  constructor(
    private readonly store: RedisStore,
    private readonly owner: string,
    /** Whether this process's listener is up: one that cannot hear yields to one that can. */
    private readonly hearing: () => boolean,
    private readonly log: Logger,
    ttlMs = CAPTURE_LEASE_MS,
  ) {
    this.lease = captureLease(store, ttlMs);
    this.knockKey = store.key('capture', 'knock');
  }

  get leading(): boolean {
    return this.held !== null && !this.held.lost;
  }

  onTransition(fn: (leading: boolean) => void): void {
    this.transition = fn;
  }

  /** Look after the lease from now on, every CAPTURE_CHECK_MS; the first look is at once. */
  start(): Promise<void> {
    this.timer = setInterval(() => void this.check(), CAPTURE_CHECK_MS);
    return this.check();
  }

  /** Stopping: no more looks (a syncer on its way out must not take the lease); see release(). */
  stopLooking(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** On stop: another syncer takes over within CAPTURE_CHECK_MS, and this one never again. */
  async release(): Promise<void> {
    this.stopLooking();
    // A look still under way could take the lease after the drop below, and keep it refreshed.
    await this.looking;
    await this.drop();
  }

  holder(): Promise<LeaseInfo | null> {
    return this.lease.holder();
  }

  /** One look: never throws (Redis away: the next look tries again). */
  check(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.looking ??= this.look()
      .then(
        () => {
          if (this.lookFailed) this.log.info('capture lease: looked after again');
          this.lookFailed = false;
        },
        (err: unknown) => {
          if (!this.lookFailed)
            this.log.warn(
              { err: (err as Error).message },
              'capture lease: could not look after it',
            );
          this.lookFailed = true;
        },
      )
      .finally(() => {
        this.looking = null;
        this.changed();
      });
    return this.looking;
  }

  private async look(): Promise<void> {
    const able = this.hearing() && !this.failing;
    if (this.leading) {
      if (able) return;
      const asker = await this.store.redis.get(this.knockKey);
      if (asker === null || asker === this.owner) return;
      this.log.warn(
        { listening: this.hearing(), failing: this.failing, to: asker },
        'handing the capture lease to a syncer that asked for it: this one cannot capture well now',
      );
      await this.drop();
      return;
    }
    if (this.held) {
      this.log.warn('the capture lease lapsed (this process paused, or Redis lost it)');
      this.held.abandon();
      this.held = null;
    }
    // One that cannot capture well takes the lease only when no other syncer asks for it.
    const asker = await this.store.redis.get(this.knockKey);
    if (!able && asker !== null && asker !== this.owner) return;
    const held = await this.lease.tryAcquire(this.owner, (reason) => {
      // A refresh that failed (Redis away) is not a loss, and comes every second: not a warning.
      if (held?.lost) this.log.warn({ reason }, 'capture lease lost');
      else this.log.debug({ reason }, 'capture lease: could not refresh it');
      this.changed();
    });
    if (held && this.closed) {
      await held.release();
      return;
    }
    this.held = held;
    // At once, before any other await: a message that arrives from now on is taken as the
    // capturer's, so what was heard before (tookOver's replay) must be taken first.
    this.changed();
    if (this.held) {
      this.log.info('capturing changes (this syncer holds the capture lease)');
      if (asker === this.owner) await this.store.redis.del(this.knockKey);
    } else if (able) {
      await this.store.redis.set(this.knockKey, this.owner, 'PX', KNOCK_MS);
    }
  }

  private async drop(): Promise<void> {
    const held = this.held;
    this.held = null;
    this.changed();
    await held?.release();
  }

  /** Tell ChangeCapture when capturing began or ended (a lost lease is noticed by its refresh). */
  private changed(): void {
    const now = this.leading;
    if (now === this.was) return;
    this.was = now;
    this.transition(now);
  }
}
