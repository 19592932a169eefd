/**
 * The Postgres read lock: at any moment one reader, across coroutines and processes, reads the
 * catalog (the seed's rule, so the syncer never hammers the database however many run).
 *
 * Redis holds `{holder, since}` under `lock:postgres-read` with a lease. The holder refreshes the
 * lease while it reads; a holder that dies blocks the others for at most one lease. A reader that
 * waits logs who holds the lock and for how long, every few seconds.
 *
 * Within a process, readers queue locally (src/util/mutex.ts) and only the one at the front goes
 * to Redis. When it finishes while others here wait, it hands the lease straight on instead of
 * releasing it and having the next one take it again: two round trips saved per read, which in a
 * full load (four indexers reading back to back) were a sixth of the lock's time. The holder shown
 * is then the first reader of the run. A run ends after RUN_MS, and other processes are not shut
 * out: one that finds the lock taken knocks (lockAcquire.lua), the release that ends the run sees
 * the knock, and this process's next reader then waits YIELD_MS while the knocker, which polls
 * often once it knocked, takes its turn. Without knocks, a waiter polling every 50 ms or so had to
 * land in the moment between one local reader's release and the next one's acquire: a live read of
 * another syncer waited up to seconds during a full load.
 *
 * A Redis that comes back from an older save (or a release lost on its way) can hold a lease of
 * this process that nobody reads under any more: this process takes it over at once
 * (lockAcquire.lua), where other processes wait it out. Before, a syncer waited up to a lease for
 * its own ghost after every such restart, and its first pass to see the restart came that late.
 * (A reader of another process that took the lock after the save and still reads then overlaps
 * with ours, as after any lease lost to a restart.)
 *
 * A lease can expire while its holder is paused (GC, a stopped VM), so two readers may briefly
 * overlap. That is harmless here: reads are idempotent and writes to Elasticsearch carry versions.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.js';
import { Mutex } from '../util/mutex.js';
import { sleep } from '../util/sleep.js';
import { Lease, type HeldLease, type LeaseInfo, type LeaseValue } from './lease.js';
import type { RedisStore } from './redisStore.js';

export type { LeaseValue as LockHolder };

/**
 * The lease: how long a holder that died (kill -9, a lost host) keeps every other reader waiting.
 * The holder refreshes it every third of that while it reads, so a read may take longer; 30 s, as
 * before, held a whole deployment's reads that long after each crash.
 */
const LEASE_MS = 10_000;
/** How long readers of one process may pass the lease among themselves before releasing it. */
const RUN_MS = 50;
/** After a release that found a knock, how long this process's next reader lets the knocker in. */
const YIELD_MS = 25;
/** How long a knock stands: a waiter knocks again at every try, far more often than this. */
const KNOCK_MS = 250;
/** A waiter that knocked tries again this often, to be there when it is let in... */
const KNOCKED_PAUSE_MS = 5;
/** ...for this long; then every 50 ms or so. */
const PROMPT_WAIT_MS = 1_000;

export interface ReadLockOptions {
  leaseMs?: number;
  logEveryMs?: number;
}

export class ReadLock {
  private readonly local = new Mutex();
  private readonly lease: Lease;
  private readonly knockKey: string;
  private readonly logEveryMs: number;
  /** Readers of this process waiting for the lock or holding it. */
  private readers = 0;
  /** The lease a finished reader handed on, and when this run of readers took it. */
  private handedOn: { lease: HeldLease; since: number } | null = null;
  /** Another process knocked: our next reader waits until then. */
  private yieldUntil = 0;
  /** Time spent in waits that ended. */
  private waitedBefore = 0;
  /** When the wait under way began (one at a time: the local mutex); null when none is. */
  private waitingSince: number | null = null;
  /**
   * How this lock's lease tokens begin: a lease of its own is known as such even when its owner
   * name is not unique (every `npm run reindex` is "reindex").
   */
  private readonly ownTokens = `${randomUUID()}/`;

  constructor(
    store: RedisStore,
    private readonly owner: string,
    private readonly log: Logger,
    options: ReadLockOptions = {},
  ) {
    this.lease = new Lease(store, store.key('lock', 'postgres-read'), options.leaseMs ?? LEASE_MS);
    this.knockKey = store.key('lock', 'postgres-read', 'knock');
    this.logEveryMs = options.logEveryMs ?? 5_000;
  }

  get key(): string {
    return this.lease.key;
  }

  /**
   * Run `read` while holding the lock. `what` names the read in the holder shown to others.
   * `first`: ahead of this process's other waiting readers (not of other processes).
   */
  async withLock<T>(
    what: string,
    read: () => Promise<T>,
    options: { first?: boolean } = {},
  ): Promise<T> {
    this.readers++;
    try {
      return await this.local.run(async () => {
        const held = await this.take(what);
        try {
          return await read();
        } finally {
          await this.putDown(held);
        }
      }, options);
    } finally {
      this.readers--;
    }
  }

  /** Who holds the lock now, and since when; null when free. */
  holder(): Promise<LeaseInfo | null> {
    return this.lease.holder();
  }

  /** The lease handed on by the reader before, while its run lasts; else a fresh one. */
  private async take(what: string): Promise<{ lease: HeldLease; since: number }> {
    const handed = this.handedOn;
    this.handedOn = null;
    if (handed && !handed.lease.lost && performance.now() - handed.since < RUN_MS) return handed;
    if (handed) await this.release(handed.lease);
    const lease = await this.acquire(what);
    return { lease, since: performance.now() };
  }

  private async putDown(held: { lease: HeldLease; since: number }): Promise<void> {
    // `readers` counts this reader too: more means another one here is queued behind it, and
    // the mutex runs it next, so a lease handed on is always taken (or released) by someone.
    if (this.readers > 1 && !held.lease.lost && performance.now() - held.since < RUN_MS) {
      this.handedOn = held;
      return;
    }
    await this.release(held.lease);
  }

  private async release(lease: HeldLease): Promise<void> {
    const { knocked } = await lease.releaseAsking(this.knockKey);
    if (knocked) this.yieldUntil = performance.now() + YIELD_MS;
  }

  /**
   * Total time this process spent waiting for the lock (for metrics), the wait under way
   * included: a reader stuck behind a holder counts all along, not once it gets its turn.
   */
  get waitedMs(): number {
    const now = this.waitingSince === null ? 0 : performance.now() - this.waitingSince;
    return this.waitedBefore + now;
  }

  private async acquire(what: string): Promise<HeldLease> {
    const started = performance.now();
    this.waitingSince = started;
    try {
      return await this.waitForLease(what, started);
    } finally {
      this.waitedBefore += performance.now() - started;
      this.waitingSince = null;
    }
  }

  private async waitForLease(what: string, started: number): Promise<HeldLease> {
    const courtesy = this.yieldUntil - started;
    if (courtesy > 0) await sleep(courtesy);
    let lastLog = started;
    let pause = 1;
    for (;;) {
      // Only one reader of this process is ever here (the local mutex), and the lease before it
      // was released or handed to it (take): any lease of ours in Redis now is nobody's.
      const held = await this.lease.tryAcquire(
        `${this.owner} ${what}`,
        (reason) => this.log.warn({ reason }, 'postgres read lock lease expired while reading'),
        { key: this.knockKey, ms: KNOCK_MS, ownTokens: this.ownTokens },
      );
      if (held) {
        if (held.reclaimed)
          this.log.warn(
            'took back a postgres read lock lease of this process that nobody read under ' +
              '(redis came back from an older save, or a release was lost)',
          );
        return held;
      }
      if (performance.now() - lastLog >= this.logEveryMs) {
        lastLog = performance.now();
        const current = await this.holder();
        this.log.info(
          {
            waiting_ms: lastLog - started,
            holder: current?.holder,
            held_ms: current?.ageMs,
            lease_left_ms: current?.leaseLeftMs,
          },
          'waiting for the postgres read lock',
        );
      }
      await sleep(pause + Math.random() * pause);
      // Often while a turn should come soon (the holder yields at the end of its run), then
      // gently: a long read, or a crashed holder's lease, is waited out at 20 tries a second.
      const soon = performance.now() - started < PROMPT_WAIT_MS;
      pause = Math.min(pause * 2, soon ? KNOCKED_PAUSE_MS : 50);
    }
  }
}
