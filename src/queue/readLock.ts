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
import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.js';
import { Mutex } from '../util/mutex.js';
import { sleep } from '../util/sleep.js';
import type { RedisStore } from './redisStore.js';

export interface LockHolder {
  holder: string;
  since: string;
  token: string;
}

export interface ReadLockOptions {
  leaseMs?: number;
  logEveryMs?: number;
}

export class ReadLock {
  private readonly local = new Mutex();
  private readonly leaseMs: number;
  private readonly logEveryMs: number;
  /** Total time this process spent waiting for the lock (for metrics). */
  waitedMs = 0;

  constructor(
    private readonly store: RedisStore,
    private readonly owner: string,
    private readonly log: Logger,
    options: ReadLockOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 30_000;
    this.logEveryMs = options.logEveryMs ?? 5_000;
  }

  get key(): string {
    return this.store.key('lock', 'postgres-read');
  }

  /** Run `read` while holding the lock. `what` names the read in the holder shown to others. */
  withLock<T>(what: string, read: () => Promise<T>): Promise<T> {
    return this.local.run(async () => {
      const value = await this.acquire(what);
      const held = { released: false };
      const refresh = setInterval(
        () => void this.refresh(value, held),
        Math.max(100, this.leaseMs / 3),
      );
      try {
        return await read();
      } finally {
        clearInterval(refresh);
        held.released = true;
        await this.store.run('lockRelease', [this.key], [value]);
      }
    });
  }

  /** Who holds the lock now, and since when; null when free. */
  async holder(): Promise<(LockHolder & { ageMs: number; leaseLeftMs: number }) | null> {
    const [raw, ttl] = await Promise.all([
      this.store.redis.get(this.key),
      this.store.redis.pttl(this.key),
    ]);
    if (raw === null) return null;
    let parsed: LockHolder;
    try {
      parsed = JSON.parse(raw) as LockHolder;
    } catch {
      // Not written by this program (or an older one): still a holder, just an unnamed one.
      parsed = { holder: raw.slice(0, 100), since: new Date().toISOString(), token: '' };
    }
    return { ...parsed, ageMs: Date.now() - Date.parse(parsed.since), leaseLeftMs: ttl };
  }

  private async acquire(what: string): Promise<string> {
    const started = Date.now();
    let lastLog = started;
    let pause = 1;
    for (;;) {
      const value = JSON.stringify({
        holder: `${this.owner} ${what}`,
        since: new Date().toISOString(),
        token: randomUUID(),
      } satisfies LockHolder);
      const ok = await this.store.redis.set(this.key, value, 'PX', this.leaseMs, 'NX');
      if (ok === 'OK') {
        this.waitedMs += Date.now() - started;
        return value;
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

  private async refresh(value: string, held: { released: boolean }): Promise<void> {
    try {
      const kept = await this.store.run('lockRefresh', [this.key], [value, this.leaseMs]);
      // A refresh already on its way when the read finished finds the lock released: not a loss.
      if (Number(kept) !== 1 && !held.released) {
        this.log.warn('postgres read lock lease expired while reading');
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not refresh the postgres read lock');
    }
  }
}
