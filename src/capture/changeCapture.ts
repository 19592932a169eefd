/**
 * Builds the queue of changed documents (the seed's "separate class that builds the ID queue"),
 * of every kind: what each change touches is decided by src/capture/fanOut.ts.
 *
 * Two inputs feed it: notifications from the listener (live, within milliseconds) and poll passes
 * (the durable fallback: at start, after reconnects, on a timer, and when a statement was too big
 * to list its keys). Notifications that arrive while a batch is being resolved are merged, so a
 * burst of edits becomes a few resolutions rather than one per statement.
 *
 * While changes keep coming, the passes run back to back and are the live path themselves: this
 * syncer holds the doorbell open (src/capture/pollCadence.ts, doorbell.ts) and writers stop
 * notifying, which spares them the commit lock every notifying transaction takes.
 *
 * With several syncers, one captures at a time (src/capture/captureLease.ts): the others ignore
 * what they hear and only index, until the lease is theirs.
 */
import type { Logger } from '../logger.js';
import type { ChangeClock } from '../metrics/changeClock.js';
import type { DocumentQueue } from '../queue/documentQueue.js';
import { RetryDelays } from '../util/backoff.js';
import { Mutex } from '../util/mutex.js';
import { CAPTURE_CHECK_MS, CAPTURE_LEASE_MS, type CaptureRole } from './captureLease.js';
import type { Doorbell } from './doorbell.js';
import type { FanOut, Resolution } from './fanOut.js';
import type { HandledTransactions } from './handledTransactions.js';
import { keysOf, type ChangeNotification } from './notification.js';
import { PollCadence } from './pollCadence.js';
import type { Poller } from './poller.js';

/**
 * While a full load runs, the live path reads Postgres (to resolve what an edit touches) at most
 * this often, all it heard meanwhile in one read per kind. The load's readers and these reads take
 * turns at the single read lock, and another syncer's read costs the loader more than the read
 * itself (src/queue/readLock.ts: the holder lets a knocker in and pauses): resolved as they came,
 * 50 edits/s in one syncer slowed the other's full load 2.4 times. Edits during a load are then
 * searchable within about this much more than usual.
 */
export const LOAD_RESOLVE_GAP_MS = 500;

/** Failed steps in a row after which this syncer hands capturing to one that asks for it. */
const FAILING_STEPS = 3;
/** A streak of failures is forgotten this long after the last one (a syncer standing by runs none). */
const FAILURES_FORGOTTEN_MS = 10_000;

/**
 * What a syncer that does not capture keeps of what it hears, to replay should it take over: the
 * last holder may have heard the same and died before queueing it, and during a full load no pass
 * would read it before the load's end. A killed holder's lease lapses within CAPTURE_LEASE_MS,
 * and it may have held what it heard a little before that.
 */
const UNHEARD_MS = 2 * CAPTURE_LEASE_MS;
const UNHEARD_AT_MOST = 20_000;

/**
 * Changes left to the passes kept for a failing step to hand back (see `deferred`); past this many
 * the live path queues them instead (a pass may read them too: indexed twice). Writers are quiet
 * while passes run back to back, so few are heard meanwhile.
 */
const DEFERRED_AT_MOST = 10_000;

export interface CaptureStats {
  notifications: number;
  passes: number;
}

export class ChangeCapture {
  /** Queue members heard of and not yet queued. */
  private members = new Set<string>();
  /** One drain at a time: see drain(). */
  private readonly draining = new Mutex();
  /** Ids heard of that still need resolving, merged per kind and touch. */
  private resolutions = new Map<string, Resolution>();
  private pollRequested = true; // the first pass is the start-up catch-up
  private wakeUp: (() => void) | null = null;
  /** Cuts a failure backoff short: Postgres is evidently back once the listener reconnected. */
  private backoff = new AbortController();
  private readonly cadence: PollCadence;
  /** The steps failed in a row and the last error; null after a step that went through. */
  private failure: { steps: number; error: string } | null = null;
  /** The transaction whose messages the live path is taking (see onChange). */
  private liveTx: string | undefined;
  /** When the live path last read Postgres to resolve (performance.now()): LOAD_RESOLVE_GAP_MS. */
  private resolvedAt = -Infinity;
  /** Bumped when this process begins or stops capturing: what a pass begun before saw is stale. */
  private epoch = 0;
  /**
   * Changes heard and left to the passes (take) since the last pass that went through began. A
   * step that fails hands them to the live path: passes may go on failing (one row that cannot be
   * read fails every pass until it can), and they would wait as long.
   */
  private deferred: ChangeNotification[] = [];
  /** Heard while another syncer captured, newest last (UNHEARD_MS): replayed on taking over. */
  private unheard: { change: ChangeNotification; at: number }[] = [];
  readonly stats: CaptureStats = { notifications: 0, passes: 0 };

  constructor(
    private readonly queue: DocumentQueue,
    private readonly fanOut: FanOut,
    private readonly poller: Poller,
    private readonly log: Logger,
    pollIntervalMs: number,
    private readonly reportError?: (message: string) => Promise<void>,
    private readonly clock?: ChangeClock,
    /** What lets a poll pass skip transactions the live path has queued (handledTransactions.ts). */
    private readonly live?: { handled: HandledTransactions; barrier: () => Promise<unknown> },
    /** Tells writers when this syncer polls back to back; without it, it never does. */
    private readonly doorbell?: Doorbell,
    /** Whether this syncer is the one capturing (captureLease.ts); without it, always. */
    private readonly role?: CaptureRole,
  ) {
    this.cadence = new PollCadence(pollIntervalMs);
    role?.onTransition((leading) => (leading ? this.tookOver() : this.steppedDown()));
  }

  /**
   * The steps failed in a row, and the last one's error, once there are FAILING_STEPS of them
   * (readiness: a capture that reads nothing must not look ready); null otherwise.
   */
  get failing(): { steps: number; error: string } | null {
    return this.failure && this.failure.steps >= FAILING_STEPS ? this.failure : null;
  }

  /** asleep, awake or settling: see pollCadence.ts. */
  get cadenceState(): string {
    return this.cadence.state;
  }

  /** From the listener. Never throws and never waits: the work happens in run(). */
  onChange(change: ChangeNotification): void {
    this.stats.notifications++;
    // Another syncer captures; it heard this too. Kept for a while, in case we take over.
    if (this.role && !this.role.leading) {
      // Its first messages may have come while we still captured (the lease lost between two).
      if (change.x !== undefined) this.live?.handled.missed(change.x);
      this.keepUnheard(change);
      return;
    }
    this.take(change, false);
  }

  /**
   * From the listener: a message that did not parse was skipped. Its transaction must not be
   * skipped by a pass on the strength of its other messages, and its rows are read by one now.
   */
  onMalformed(txid: string | undefined): void {
    if (txid !== undefined) this.live?.handled.heardFrom(txid, false);
    if (!this.role || this.role.leading) this.requestPoll();
  }

  /**
   * Act on one message. `replayed`: heard while another syncer captured (tookOver): queued all
   * the same, but its transaction is never skipped by a pass. Its earlier messages may have been
   * dropped from the replay, or taken another way while this process captured before; a pass
   * reading it once more costs a document indexed twice, skipping it could lose a change.
   */
  private take(change: ChangeNotification, replayed: boolean): void {
    // A transaction's messages arrive one after another; the first one wakes the cadence up, and
    // the rest of that transaction must take the same path as the first.
    const sameAsLive = change.x !== undefined && change.x === this.liveTx;
    // A TRUNCATE, or a statement too big to list its keys, leaves the work to a pass.
    const op = change.op;
    const plan =
      !change.many && op !== 'T'
        ? this.fanOut.plan({ table: change.t, keys: keysOf(change), op })
        : null;
    // While a full load runs (here or in another syncer), no pass reads the changes before it
    // ends: the live path queues them, as when asleep, and does not wake the cadence. The same
    // while the last step failed: passes may keep failing (one row that cannot be read fails
    // every pass until it can), and a change left to them would wait as long.
    const passesServeLive = this.poller.servesLive && this.failure === null;
    // Not a replay: a syncer that just took over has not run a pass yet, so it cannot know
    // whether its passes serve live (its first one may resume another syncer's load).
    if (
      this.cadence.state !== 'asleep' &&
      passesServeLive &&
      !sameAsLive &&
      !replayed &&
      this.deferred.length < DEFERRED_AT_MOST
    ) {
      // Polling back to back already: the next pass (its snapshot is later than this commit)
      // reads the change. Queued here too, it would be indexed twice whenever it committed just
      // before a pass's snapshot, which back-to-back passes make the common case. Its
      // transaction must not be skipped by that pass, though: another of its messages may have
      // been queued while we were asleep, and this one was not.
      if (change.x !== undefined) this.live?.handled.heardFrom(change.x, false);
      if (plan) this.clock?.heard(plan.members);
      this.deferred.push(change);
      this.cadence.heard(performance.now());
      this.requestPoll();
      return;
    }
    if (this.doorbell && passesServeLive) {
      // Said once per wake-up: the one edit a pass may read too (it may read the rows before
      // this path has them queued, see handledTransactions.ts), so indexed twice; harmless.
      if (this.cadence.state === 'asleep')
        this.log.debug(
          { tx: change.x, table: change.t },
          'a change woke the poller: queued by the live path, the changes after it by passes',
        );
      this.cadence.heard(performance.now());
    }
    this.liveTx = change.x;
    if (change.x !== undefined) this.live?.handled.heardFrom(change.x, plan !== null && !replayed);
    if (!plan) {
      this.requestPoll();
      return;
    }
    for (const member of plan.members) this.members.add(member);
    this.clock?.heard(plan.members);
    for (const resolution of plan.resolutions) {
      const key = `${resolution.kind.name}:${resolution.touch.via.after.name}`;
      const pending = this.resolutions.get(key);
      if (pending) pending.ids.push(...resolution.ids);
      else this.resolutions.set(key, { ...resolution, ids: [...resolution.ids] });
    }
    this.wake();
  }

  requestPoll(): void {
    this.pollRequested = true;
    this.wake();
  }

  /** From the listener after every (re)connect: catch up now, even in the middle of a backoff. */
  onListenerConnected(): void {
    this.live?.handled.reset();
    this.backoff.abort();
    this.backoff = new AbortController();
    // Writers that looked at the doorbell before it said "listening" (at start, after a syncer
    // was down past its listening lease, or after a long outage) sent nothing, nor did those that
    // saw a window of the last syncer's open; one that commits after the catch-up pass's snapshot
    // would wait for the next periodic pass (ETL_POLL_INTERVAL_MS). Settling reads it: the
    // doorbell already says "listening" (the syncer marks it before calling this), so the
    // reference it takes is above every such writer's id.
    this.onListeningAgain();
  }

  /**
   * The doorbell's listening lease ran out while the listener stayed connected (its renewals
   * failed for longer than the lease) and is renewed now: writers that looked meanwhile sent
   * nothing. Settle, as after a reconnect. (A syncer not capturing settles when it takes over.)
   */
  onListeningAgain(): void {
    if (this.doorbell && (!this.role || this.role.leading))
      this.cadence.takeOver(performance.now());
    this.requestPoll();
  }

  /**
   * From the listener when its connection is gone: what it delivered last may be a part of a
   * transaction. (What a syncer not capturing kept stays: replayed, it is never skipped.)
   */
  onListenerLost(): void {
    this.live?.handled.reset();
  }

  /**
   * Trimmed a second's worth (or a thousand) at a time, not at every message: a standby hears
   * every edit, and a copy of the list per message would cost it more than the edits themselves.
   * tookOver() drops what is older than UNHEARD_MS.
   */
  private keepUnheard(change: ChangeNotification): void {
    const now = performance.now();
    this.unheard.push({ change, at: now });
    const oldest = this.unheard[0]?.at ?? now;
    if (oldest >= now - UNHEARD_MS - 1_000 && this.unheard.length <= UNHEARD_AT_MOST + 1_000)
      return;
    const fresh = this.unheard.findIndex((u) => u.at >= now - UNHEARD_MS);
    this.unheard = this.unheard.slice(Math.max(fresh, this.unheard.length - UNHEARD_AT_MOST));
  }

  /**
   * This process began capturing (captureLease.ts). A catch-up pass reads what the last holder
   * heard and did not queue, and settles as after a window of our own (writers that saw the last
   * holder's window open sent nothing); what we heard meanwhile is replayed, so that during a full
   * load, when no pass reads changes before its end, it is queued at once all the same.
   */
  private tookOver(): void {
    this.epoch++;
    this.pollRequested = true;
    // At start too (writers that saw an earlier syncer's window open, or nobody listening). That
    // costs passes back to back for up to SETTLE_AT_MOST_MS when a transaction of the cluster
    // runs long, once per start, takeover or reconnect.
    if (this.doorbell) this.cadence.takeOver(performance.now());
    const since = performance.now() - UNHEARD_MS;
    const unheard = this.unheard.filter((u) => u.at >= since);
    this.unheard = [];
    for (const { change } of unheard) this.take(change, true);
    this.wake();
  }

  /** Another syncer captures now: close the window we may hold open, so writers ring for it. */
  private steppedDown(): void {
    this.epoch++;
    this.deferred = []; // the new holder heard them too, and its catch-up pass reads them
    if (this.cadence.state === 'asleep') return;
    this.cadence.rest();
    void this.doorbell?.close().catch(() => undefined);
  }

  /** The loop: drain notifications, run requested and periodic polls, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    // When the last pass began; the next one is due the cadence's delay after it, and that delay
    // shrinks the moment a notification wakes the cadence up.
    let lastPoll = -Infinity;
    const nextPoll = () => lastPoll + this.cadence.nextDelay();
    let failures = 0;
    let failedAt = 0;
    const delays = new RetryDelays({ initialMs: 250, maxMs: 10_000 });
    while (!signal.aborted) {
      try {
        await this.drain();
        if (this.role && !this.role.leading) {
          // Woken at once on taking over. The failure streak stands for a while: a syncer whose
          // steps failed must not ask for the lease back just for having rested (two failing
          // syncers would hand it to each other every few steps).
          if (failures > 0 && performance.now() - failedAt > FAILURES_FORGOTTEN_MS) {
            failures = 0;
            this.role.failing = false;
          }
          await this.waitForWork(CAPTURE_CHECK_MS, signal);
          continue;
        }
        const epoch = this.epoch;
        const arm = this.doorbell ? this.cadence.toArm(performance.now()) : null;
        if (arm !== null) await this.doorbell?.awake(arm);
        // Stopped capturing meanwhile: the window just armed is another syncer's trouble now.
        if (arm !== null && epoch !== this.epoch) await this.doorbell?.close();
        if (this.doorbell && this.cadence.needsReference) {
          const txid = await this.doorbell.newTransactionId();
          // Taken over or stepped down meanwhile: that settling takes a reference of its own.
          if (txid !== null && epoch === this.epoch) this.cadence.referenced(txid);
        }
        if (this.pollRequested || performance.now() >= nextPoll()) {
          this.pollRequested = false;
          lastPoll = performance.now();
          // Seal what the live path has heard and queue it, so the pass can skip it. Nothing
          // heard since the last seal (writers stay quiet while we poll back to back): no need.
          if (this.live?.handled.unsealed) await this.live.barrier();
          await this.drain();
          const deferred = { list: this.deferred, before: this.deferred.length };
          const result = await this.poller.pass(signal);
          this.stats.passes++;
          // Heard before it began, so committed before its snapshot: read. Not when the list was
          // replaced meanwhile (stepped down): what it holds now came after.
          if (this.deferred === deferred.list) this.deferred.splice(0, deferred.before);
          // A pass begun before this process began or stopped capturing says nothing of the
          // cadence now: its own window seen open would wake a standby, an old snapshot would
          // end a new holder's settling early.
          if (result.sighting && this.doorbell && epoch === this.epoch)
            this.cadence.passed(performance.now(), result.sighting);
          if (!this.poller.servesLive && this.cadence.state !== 'asleep') {
            this.cadence.rest();
            // Writers that saw the window open stay quiet until it closes: close it now.
            await this.doorbell?.close();
          }
          // A load of ours just ended: passes serve live again from the next incremental one, so
          // run it now. Left to the periodic pass, every edit until then went the live path's way
          // and woke nothing, and every writer rang (a serialised notifying commit each).
          if (result.kind === 'full') this.pollRequested = true;
          if (result.kind !== 'incremental' || result.queued > 0) {
            this.log.debug({ ...result, sighting: undefined }, 'poll pass');
          }
        }
        failures = 0;
        this.failure = null;
        delays.reset();
        if (this.role) this.role.failing = false;
      } catch (err) {
        // Postgres or Redis went away mid-step: nothing was acknowledged, so retrying is safe.
        failures++;
        this.failure = { steps: failures, error: (err as Error).message };
        failedAt = performance.now();
        if (this.role) this.role.failing = failures >= FAILING_STEPS;
        await this.reportError?.((err as Error).message).catch(() => undefined);
        this.pollRequested = true;
        // Awake, our window keeps writers quiet and leaves their changes to passes that fail.
        if (this.doorbell && this.cadence.failed(performance.now())) void this.doorbell.close();
        // What was left to the passes goes the live path's way now (take: a step failed). As
        // replays: their transactions are never skipped by a pass.
        const deferred = this.deferred;
        this.deferred = [];
        for (const change of deferred) this.take(change, true);
        this.log.warn(
          { err: (err as Error).message, failures },
          'change capture step failed; retrying',
        );
        await this.backOff(delays.next(), signal);
        continue;
      }
      // Read once: resolutions held back while a load runs (resolveIn) are due before the next
      // pass may be, and a second reading could find them due and wait for the pass instead.
      const held = this.resolveIn();
      if (this.idle(held)) {
        const untilPoll = nextPoll() - performance.now();
        await this.waitForWork(held > 0 ? Math.min(untilPoll, held) : untilPoll, signal);
      }
    }
  }

  /** Nothing to do before the next pass, or before `held` ms (resolutions held back) pass. */
  private idle(held: number): boolean {
    return (
      !this.pollRequested && this.members.size === 0 && (this.resolutions.size === 0 || held > 0)
    );
  }

  /** How long resolutions must wait (a full load runs, LOAD_RESOLVE_GAP_MS); 0: now. */
  private resolveIn(): number {
    if (this.resolutions.size === 0 || this.poller.servesLive) return 0;
    return Math.max(0, this.resolvedAt + LOAD_RESOLVE_GAP_MS - performance.now());
  }

  /** Queue what the live path heard so far (a long pass calls this while it waits, too). */
  async drain(): Promise<void> {
    // One at a time (a full load's two walks both drain while they wait): a drain that began
    // later and ended first would mark transactions handled whose ids the other still holds,
    // not yet queued, and a pass would then skip them.
    await this.draining.run(async () => {
      const drain = this.live?.handled.beginDrain() ?? 0;
      // A drain that left resolutions for later queued only part of what was heard: it must not
      // mark their transactions handled, or a pass would skip them. A later drain does.
      if (await this.drainPending()) this.live?.handled.drained(drain);
    });
  }

  /** Queue what is pending; false when resolutions were left for later (see resolveIn). */
  private async drainPending(): Promise<boolean> {
    if (this.members.size > 0) {
      const members = this.members;
      this.members = new Set();
      try {
        await this.queue.enqueue(members);
      } catch (err) {
        for (const member of members) this.members.add(member);
        throw err;
      }
    }
    if (this.resolveIn() > 0) return false;
    for (const [key, resolution] of [...this.resolutions]) {
      this.resolutions.delete(key);
      resolution.ids = [...new Set(resolution.ids)];
      try {
        await this.fanOut.resolve(resolution);
      } catch (err) {
        // Resolve the whole set again: re-queueing a document twice is harmless, dropping one is not.
        const since = this.resolutions.get(key);
        if (since) resolution.ids.push(...since.ids);
        this.resolutions.set(key, resolution);
        // Not counted as a read for the gap: the retry is the failure backoff's to time. Counted,
        // the drain after the first short backoff would hold back instead of failing again, pass
        // for a success, and reset the backoff: a failing read retried every gap for ever.
        throw err;
      }
      this.resolvedAt = performance.now();
    }
    return true;
  }

  /**
   * The failure backoff. Not cut short by notifications (with a broken pool that would retry the
   * whole step once per edit), but what the live path holds or hears meanwhile is queued as it
   * comes: a pass failing on one row may fail for an hour, at up to 10 s between tries. Work is
   * looked for before every wait, since a wake-up comes only to a wait under way (the failed step
   * replays into the live path before this begins, and more may come during a drain). After a
   * drain that fails too, the rest waits for the backoff's end.
   */
  private async backOff(ms: number, signal: AbortSignal): Promise<void> {
    const until = performance.now() + ms;
    const stop = AbortSignal.any([signal, this.backoff.signal]);
    let drains = true;
    while (!stop.aborted) {
      const held = this.resolveIn(); // resolutions held back while a load runs: due in `held`
      if (drains && (this.members.size > 0 || (this.resolutions.size > 0 && held === 0))) {
        try {
          await this.drain();
        } catch {
          drains = false;
        }
        continue;
      }
      const left = until - performance.now();
      if (left <= 0) return;
      await this.waitForWork(drains && held > 0 ? Math.min(left, held) : left, stop);
    }
  }

  private wake(): void {
    this.wakeUp?.();
  }

  private waitForWork(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      // Stopped during the pass: an 'abort' listener added now would never fire, and the timer
      // (up to ETL_POLL_INTERVAL_MS) would keep the loop, and the process, alive that long.
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal.addEventListener('abort', done, { once: true });
      this.wakeUp = done;
    });
  }
}
