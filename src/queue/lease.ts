/**
 * A lease in Redis: `SET key {holder, since, token} NX PX ttl`, refreshed while held, released
 * only by its holder. The Postgres read lock, the full-load guard, bulk-load mode and a running
 * reindex all hold one.
 *
 * Refresh and release are token-checked scripts (lockRefresh.lua, lockRelease.lua): a holder
 * paused past its lease (GC, a stopped VM, Redis away) finds another holder there when it wakes,
 * and must neither extend nor delete that one's lease. It learns it lost the lease instead
 * (`lost`, `onLost`), and whatever it guarded must stay safe without it.
 */
import { randomUUID } from 'node:crypto';
import type { RedisStore } from './redisStore.js';

export interface LeaseValue {
  holder: string;
  since: string;
  token: string;
}

export interface LeaseInfo extends LeaseValue {
  ageMs: number;
  leaseLeftMs: number;
}

/** A lease this process holds. */
export class HeldLease {
  lost = false;
  /** Taken over from an earlier lease of the same holder that nobody held any more. */
  reclaimed = false;
  private released = false;
  private readonly lostNow = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: RedisStore,
    readonly key: string,
    /** The exact value stored; refresh and release compare against it. */
    readonly value: string,
    private readonly ttlMs: number,
    private readonly onLost?: (reason: string) => void,
  ) {
    this.timer = setInterval(() => void this.refresh(), Math.max(50, ttlMs / 3));
    this.timer.unref();
  }

  /** Aborts when the lease is found lost (not on a refresh that merely failed: Redis away). */
  get lostSignal(): AbortSignal {
    return this.lostNow.signal;
  }

  get token(): string {
    return (JSON.parse(this.value) as LeaseValue).token;
  }

  /** Extend the lease now; false (and `lost`) when another holder has it or it expired. */
  async refresh(): Promise<boolean> {
    if (this.released) return false;
    try {
      const kept = Number(
        await this.store.run('lockRefresh', [this.key], [this.value, this.ttlMs]),
      );
      // A refresh already on its way when release() ran finds the lease gone: not a loss.
      if (kept !== 1 && !this.isReleased())
        this.markLost('lease expired or taken by another holder');
      return kept === 1;
    } catch (err) {
      // Redis away: the lease may still stand; the next refresh tells.
      if (!this.isReleased()) this.onLost?.(`could not refresh: ${(err as Error).message}`);
      return false;
    }
  }

  /** Stop refreshing and delete the lease if it is still ours; resolves to whether it was. */
  async release(): Promise<boolean> {
    if (!this.stopRefreshing()) return false;
    return Number(await this.store.run('lockRelease', [this.key], [this.value])) === 1;
  }

  /**
   * Release (as `release`), and say whether another process knocked at `knockKey` meanwhile
   * (`Lease.tryAcquire` with a knock key), in the same round trip.
   */
  async releaseAsking(knockKey: string): Promise<{ released: boolean; knocked: boolean }> {
    if (!this.stopRefreshing()) return { released: false, knocked: false };
    const [released, knocked] = (await this.store.run(
      'lockReleaseKnocked',
      [this.key, knockKey],
      [this.value],
    )) as [number, number];
    return { released: released === 1, knocked: knocked === 1 };
  }

  /** Stop refreshing without touching Redis (the lease then lapses by itself). */
  abandon(): void {
    this.stopRefreshing();
  }

  /** Marks the lease released and stops its refresh; false if that had happened already. */
  private stopRefreshing(): boolean {
    if (this.released) return false;
    this.released = true;
    clearInterval(this.timer);
    return true;
  }

  /** A method, not a field read: it changes while we await, which narrowing cannot see. */
  private isReleased(): boolean {
    return this.released;
  }

  private markLost(reason: string): void {
    if (this.lost) return;
    this.lost = true;
    this.lostNow.abort();
    this.onLost?.(reason);
  }
}

export class Lease {
  constructor(
    private readonly store: RedisStore,
    readonly key: string,
    readonly ttlMs: number,
  ) {}

  /**
   * One attempt; the held lease, or null when someone else holds it. With `knock`, a failed
   * attempt leaves a knock at `knock.key` for `knock.ms` (see `HeldLease.releaseAsking`), and
   * a lease there whose token begins with `knock.ownTokens` is taken over (`reclaimed`): the
   * caller promises it holds none of its own leases then (lockAcquire.lua says when that helps).
   */
  async tryAcquire(
    holder: string,
    onLost?: (reason: string) => void,
    knock?: { key: string; ms: number; ownTokens: string },
  ): Promise<HeldLease | null> {
    const value = JSON.stringify({
      holder,
      since: new Date().toISOString(),
      token: `${knock?.ownTokens ?? ''}${randomUUID()}`,
    } satisfies LeaseValue);
    let taken: number;
    try {
      taken = knock
        ? Number(
            await this.store.run(
              'lockAcquire',
              [this.key, knock.key],
              [value, this.ttlMs, knock.ms, knock.ownTokens],
            ),
          )
        : (await this.store.redis.set(this.key, value, 'PX', this.ttlMs, 'NX')) === 'OK'
          ? 1
          : 0;
    } catch (err) {
      // No answer is not "not acquired": a command that timed out here is still sent when the
      // connection comes back, and would then hold the lease for a whole ttl with nobody to
      // refresh or release it (every reader of every syncer waiting it out). Undo it: the
      // release is queued behind the acquire on the same connection, and deletes only this
      // exact value, so it cannot touch a lease someone else took meanwhile.
      void this.store.run('lockRelease', [this.key], [value]).catch(() => undefined);
      throw err;
    }
    if (taken === 0) return null;
    const held = new HeldLease(this.store, this.key, value, this.ttlMs, onLost);
    held.reclaimed = taken === 2;
    return held;
  }

  /** Who holds it now, and since when; null when free. */
  async holder(): Promise<LeaseInfo | null> {
    const [raw, ttl] = await Promise.all([
      this.store.redis.get(this.key),
      this.store.redis.pttl(this.key),
    ]);
    if (raw === null) return null;
    let parsed: LeaseValue;
    try {
      parsed = JSON.parse(raw) as LeaseValue;
    } catch {
      // Not written by this program (or an older one): still a holder, just an unnamed one.
      parsed = { holder: raw.slice(0, 100), since: new Date().toISOString(), token: '' };
    }
    return { ...parsed, ageMs: Date.now() - Date.parse(parsed.since), leaseLeftMs: ttl };
  }
}
