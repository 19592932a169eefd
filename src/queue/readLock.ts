/**
 * The Postgres read lock: at any moment one reader, across coroutines and processes, reads the
 * catalog (the seed's rule, so the syncer never hammers the database however many run).
 *
 * Redis holds `{holder, since}` under `lock:postgres-read` with a lease. The holder refreshes the
 * lease while it reads; a holder that dies blocks the others for at most one lease. A reader that
 * waits logs who holds the lock and for how long, every few seconds.
 *
 * A lease can expire while its holder is paused (GC, a stopped VM), so two readers may briefly
 * overlap. That is harmless here: reads are idempotent and writes to Elasticsearch carry versions.
 */
import type { Logger } from '../logger.js';
import { Mutex } from '../util/mutex.js';
import { sleep } from '../util/sleep.js';
import { Lease, type HeldLease, type LeaseInfo, type LeaseValue } from './lease.js';
import type { RedisStore } from './redisStore.js';

export type { LeaseValue as LockHolder };

export interface ReadLockOptions {
  leaseMs?: number;
  logEveryMs?: number;
}

export class ReadLock {
  private readonly local = new Mutex();
  private readonly lease: Lease;
  private readonly logEveryMs: number;
  /** Total time this process spent waiting for the lock (for metrics). */
  waitedMs = 0;

  constructor(
    store: RedisStore,
    private readonly owner: string,
    private readonly log: Logger,
    options: ReadLockOptions = {},
  ) {
    this.lease = new Lease(store, store.key('lock', 'postgres-read'), options.leaseMs ?? 30_000);
    this.logEveryMs = options.logEveryMs ?? 5_000;
  }

  get key(): string {
    return this.lease.key;
  }

  /**
   * Run `read` while holding the lock. `what` names the read in the holder shown to others.
   * `first`: ahead of this process's other waiting readers (not of other processes).
   */
  withLock<T>(what: string, read: () => Promise<T>, options: { first?: boolean } = {}): Promise<T> {
    return this.local.run(async () => {
      const held = await this.acquire(what);
      try {
        return await read();
      } finally {
        await held.release();
      }
    }, options);
  }

  /** Who holds the lock now, and since when; null when free. */
  holder(): Promise<LeaseInfo | null> {
    return this.lease.holder();
  }

  private async acquire(what: string): Promise<HeldLease> {
    const started = Date.now();
    let lastLog = started;
    let pause = 1;
    for (;;) {
      const held = await this.lease.tryAcquire(`${this.owner} ${what}`, (reason) =>
        this.log.warn({ reason }, 'postgres read lock lease expired while reading'),
      );
      if (held) {
        this.waitedMs += Date.now() - started;
        return held;
      }
      if (Date.now() - lastLog >= this.logEveryMs) {
        lastLog = Date.now();
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
      pause = Math.min(pause * 2, 50);
    }
  }
}
