/**
 * When the poller runs next: every ETL_POLL_INTERVAL_MS while nothing happens (asleep), back to
 * back while changes keep coming (awake). Awake, this syncer holds the doorbell's window open
 * (src/capture/doorbell.ts), so writers stop notifying and the poll passes are the live path.
 *
 *   asleep ──ring or rows──▶ awake ──window over, server agrees──▶ settling ──▶ asleep
 *                            │ ▲                                      ▲  │
 *                            │ └──────────── ring or rows ────────────┼──┘
 *                            └──────────── a step failed ─────────────┘
 *
 * Settling also follows a takeover, a start, every listener reconnect and a listening lease that
 * ran out and was renewed (takeOver).
 *
 * The hazard is the way back to sleep: a writer that saw the window open sends no notification,
 * and may commit after the window closed. Its transaction already had an id when it looked (it
 * had written a row). The pass that sees the window closed reads the doorbell in the same
 * statement as its snapshot, a hair after it; after that pass the syncer takes a transaction id of
 * its own, the reference: given out after the window closed, so above every such writer's. It
 * keeps polling back to back (settling) until a pass's snapshot has an xmin above the reference:
 * every such writer has ended, and that pass has read whatever it committed.
 * Not a snapshot's xmax as the reference: xmax is one past the newest transaction that has ended,
 * not the next id to be given out, and a writer that took its id after the last one that ended is
 * at or above the xmax of every snapshot until another ends, and in none of their in-progress
 * lists. Settling on that saw xmin reach xmax with the writer still open (a CI flake).
 * A writer that stays open longer than ETL_POLL_INTERVAL_MS (or SETTLE_AT_MOST_MS) is left to the
 * periodic pass (it reads it just as well, only later); so is any transaction of the cluster that
 * started before the reference and runs long, writer or not, which is why settling is capped.
 * Pure logic: the caller passes the time and what each pass saw.
 */

/** How long after the last ring or change the syncer stays awake. */
export const AWAKE_MS = 500;
/** Longest settling: transaction ids are cluster-wide, and any long one holds xmin back. */
export const SETTLE_AT_MOST_MS = 10_000;
/** Pause between passes while awake: a change waits for at most this plus one pass. */
export const FAST_POLL_MS = 25;

export type CadenceState = 'asleep' | 'awake' | 'settling';

/** What a finished incremental pass saw. */
export interface PassSighting {
  /** Changed rows it read. */
  rows: number;
  /** Its snapshot's xmin, and whether writers still saw the doorbell's window open then. */
  xmin: string;
  awake: boolean;
}

export class PollCadence {
  private current: CadenceState = 'asleep';
  /** Local time until which this syncer means to stay awake. */
  private windowEnd = 0;
  /** Local time until which the server's window was last armed. */
  private armedUntil = 0;
  /**
   * While settling: whether a pass has seen the window closed yet, the reference transaction id
   * (taken after that pass; null until then), and when to give up.
   */
  private settling: { closedSeen: boolean; reference: bigint | null; deadline: number } | null =
    null;

  constructor(
    private readonly pollIntervalMs: number,
    private readonly awakeMs = AWAKE_MS,
    private readonly fastMs = FAST_POLL_MS,
  ) {}

  get state(): CadenceState {
    return this.current;
  }

  /** A notification, or a pass that found changes: stay awake for a while from `now`. */
  heard(now: number): void {
    this.current = 'awake';
    this.settling = null;
    this.windowEnd = Math.max(this.windowEnd, now + this.awakeMs);
  }

  /**
   * How long (ms from `now`) to hold the server's window open, when it needs extending now; null
   * when it does not. Extends only when less than half a window is left, so a steady stream of
   * changes costs about two small updates a second, not one per pass.
   */
  toArm(now: number): number | null {
    if (this.current !== 'awake' || this.windowEnd <= this.armedUntil) return null;
    if (this.armedUntil - now >= this.awakeMs / 2) return null;
    this.armedUntil = this.windowEnd;
    return this.windowEnd - now;
  }

  /**
   * Passes are full loads for now, not the live path (Poller.servesLive): back to polling every
   * ETL_POLL_INTERVAL_MS, and no window held open, so writers notify and the live path queues
   * what they change.
   */
  rest(): void {
    this.current = 'asleep';
    this.settling = null;
    this.windowEnd = 0;
  }

  /**
   * This syncer took capturing over from another (captureLease.ts), or its listener (re)connected,
   * or it renewed a listening lease that had run out: writers that saw the other's window open, or
   * nobody listening, sent nothing and may still commit. Poll back to back until they have ended,
   * as after a window of our own: the first pass sees the other's window closed (open, it wakes
   * us up), and the reference is taken after it.
   */
  takeOver(now: number): void {
    this.settle(now, false);
  }

  /**
   * A step failed; its pass, if any, saw nothing. Passes may go on failing for a while (a server
   * away, or one row that cannot be read, which fails every pass until it can), and meanwhile they
   * serve nothing live: no window is held open, so writers ring and the live path queues what they
   * change (changeCapture.take). Once a pass goes through, settle as after a takeover: writers that
   * saw our window open sent nothing. True when we were awake: the window may still be open on the
   * server, and the caller closes it so writers ring at once rather than when it runs out.
   */
  failed(now: number): boolean {
    if (this.current === 'asleep') return false;
    const wasAwake = this.current === 'awake';
    this.settle(now, false);
    this.armedUntil = 0;
    return wasAwake;
  }

  /**
   * Settling wants its reference now: a transaction id given out from now on (the caller takes
   * one, and passes it to `referenced`), before the next pass.
   */
  get needsReference(): boolean {
    return this.settling !== null && this.settling.closedSeen && this.settling.reference === null;
  }

  /** The reference transaction id, taken after the pass that saw the window closed. */
  referenced(txid: string): void {
    if (this.settling?.closedSeen && this.settling.reference === null)
      this.settling.reference = BigInt(txid);
  }

  private settle(now: number, closedSeen: boolean): void {
    this.current = 'settling';
    const longest = Math.min(this.pollIntervalMs, SETTLE_AT_MOST_MS);
    this.settling = { closedSeen, reference: null, deadline: now + longest };
  }

  /** A pass finished at `now`, having seen this. */
  passed(now: number, seen: PassSighting): void {
    // Not awake, yet writers see a window open: not ours (we open one only while awake, and left
    // awake only once a pass saw it closed) but the last capturer's, still open after a handover
    // or re-armed by one that paused past its lease. Its writers are quiet: poll for them.
    if (seen.rows > 0 || (this.current !== 'awake' && seen.awake)) this.heard(now);
    if (this.current === 'awake' && now >= this.windowEnd && !seen.awake) {
      this.settle(now, true);
      return;
    }
    if (this.current === 'settling' && this.settling) {
      // Taken over: this first pass saw the last capturer's window closed (open, it woke us).
      this.settling.closedSeen = true;
      const { reference, deadline } = this.settling;
      if ((reference !== null && BigInt(seen.xmin) > reference) || now >= deadline) {
        this.current = 'asleep';
        this.settling = null;
      }
    }
  }

  /** How long after a pass the next one runs. */
  nextDelay(): number {
    return this.current === 'asleep' ? this.pollIntervalMs : this.fastMs;
  }
}
