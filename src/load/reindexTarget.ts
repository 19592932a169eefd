/**
 * While `npm run reindex` builds a new index, every syncer writes each batch to it as well as to
 * the alias, so the new index misses no change made during the load.
 *
 * The reindex gives its new index a write alias of its own (`<alias>-reindex-<stamp>`) and
 * publishes that name in Redis under `reindex-target` (`reindex-target:persons`,
 * `reindex-target:genres` for the other indices: one reindex per index at a time) as a lease (src/queue/lease.ts, the name as
 * its holder) that it refreshes while it runs. Syncers look it up at most once a second. So:
 *  - a reindex that dies, even by SIGKILL, stops being mirrored within one lease plus that second;
 *  - mirror writes go to the write alias with `require_alias`, so once the index is deleted an
 *    index write cannot re-create it with dynamic mapping (a delete still could: see
 *    src/load/bulkWriter.ts; hence the order below, and no mirroring until the alias exists);
 *  - the mirror is best effort: a target that is gone drops the batch at once, and retries end
 *    after MIRROR_BUDGET_MS. The syncer's claim proceeds on the alias's result; the films the
 *    mirror did not write are kept in Redis (`reindex-missed:<write alias>`) for the reindex,
 *    which queues them again once its alias swap is done (or, should it die first, for whoever
 *    cleans up after it: removeReindexLeftovers).
 * Whoever withdraws a target waits MIRROR_SETTLE_MS before removing what it names: by then every
 * syncer has noticed and finished its last mirror write. A syncer paused for longer than that (a
 * stopped VM) can still write late; removeReindexLeftovers cleans up after it.
 */
import type { Client } from '@elastic/elasticsearch';
import type { KindName } from '../kinds/documentKind.js';
import { memberOf } from '../kinds/kinds.js';
import type { Logger } from '../logger.js';
import { Lease, type HeldLease, type LeaseInfo } from '../queue/lease.js';
import type { DocumentQueue } from '../queue/documentQueue.js';
import type { RedisStore } from '../queue/redisStore.js';
import { BulkWriter } from './bulkWriter.js';
import type { LiveReindex } from './indexManager.js';

/** The reindex's lease on `reindex-target`; refreshed every third of it. */
export const REINDEX_LEASE_MS = 10_000;
/** How long a syncer trusts its last look at `reindex-target`. */
export const MIRROR_CACHE_MS = 1_000;
/** The longest one mirror write retries before it gives up. */
export const MIRROR_BUDGET_MS = 2_500;
const MIRROR_MAX_DELAY_MS = 500;
/** After a target is withdrawn (or its lease lapsed), no syncer writes to it any more. */
export const MIRROR_SETTLE_MS = MIRROR_CACHE_MS + MIRROR_BUDGET_MS + MIRROR_MAX_DELAY_MS + 1_000;
/** Films a mirror missed are kept this long at most (a reindex that never finished). */
const MISSED_TTL_MS = 24 * 3_600_000;

/** Another reindex holds the target. */
export class ReindexBusy extends Error {
  constructor(readonly holder: LeaseInfo | null) {
    super(
      holder
        ? `another reindex is running (building ${holder.holder} since ${holder.since}); if it ` +
            `died, its lease lapses within ${Math.max(0, holder.leaseLeftMs)} ms`
        : 'another reindex is running',
    );
    this.name = 'ReindexBusy';
  }
}

export class ReindexTarget {
  /** The last look, and when it was asked (performance.now()). */
  private cached: { name: string | null; at: number } = { name: null, at: -Infinity };
  private writer: BulkWriter | null = null;
  private readonly lease: Lease;

  constructor(
    private readonly store: RedisStore,
    private readonly es: Client,
    private readonly log: Logger,
    readonly kind: KindName = 'films',
    private readonly cacheMs = MIRROR_CACHE_MS,
    leaseMs = REINDEX_LEASE_MS,
  ) {
    // The films key keeps its name from before there were other indices.
    const key = kind === 'films' ? store.key('reindex-target') : store.key('reindex-target', kind);
    this.lease = new Lease(store, key, leaseMs);
  }

  get key(): string {
    return this.lease.key;
  }

  /**
   * Publish `writeAlias` as every syncer's mirror target for as long as the returned lease is
   * held (release it to withdraw). ReindexBusy when another reindex holds it.
   */
  async set(writeAlias: string, onLost?: (reason: string) => void): Promise<HeldLease> {
    const held = await this.lease.tryAcquire(writeAlias, onLost);
    if (held) return held;
    throw new ReindexBusy(await this.lease.holder());
  }

  /** The write alias a live reindex publishes, or null. */
  async current(): Promise<string | null> {
    const info = await this.lease.holder();
    // A value without a token was not written by a lease (an older version): not a target.
    return info && info.token !== '' ? info.holder : null;
  }

  /**
   * The writer for the index being built, or null when no reindex runs. From a look at most
   * `cacheMs` old, or one made now when `fresh`.
   */
  async mirror(fresh = false): Promise<BulkWriter | null> {
    // Dated by performance.now(), which no clock step moves: with the wall clock stepped back, a
    // look saying "no reindex" was kept for as long as the step, and a reindex begun meanwhile
    // got none of this syncer's writes. Dated when asked, not when answered: the answer is as
    // old as the question.
    const asked = performance.now();
    if (fresh || asked - this.cached.at >= this.cacheMs) {
      this.cached = { name: await this.ready(await this.current()), at: asked };
    }
    const name = this.cached.name;
    if (name === null) return (this.writer = null);
    if (this.writer?.targetName !== name) this.writer = this.mirrorWriter(name);
    return this.writer;
  }

  /**
   * The published name if its write alias exists. A reindex publishes before it creates its index
   * (and may wait a while in between), and a mirror delete sent to a name that does not exist yet
   * would auto-create an index of that name, which its index creation then trips over. Skipping
   * those batches loses nothing: the reindex starts reading a few cache times after its index and
   * write alias exist. When Elasticsearch cannot say, mirror anyway (a write then tells).
   */
  private async ready(name: string | null): Promise<string | null> {
    if (name === null) return null;
    try {
      return (await this.es.indices.existsAlias({ name })) ? name : null;
    } catch {
      return name;
    }
  }

  /** Document ids mirrors gave up on for this write alias. */
  async missed(writeAlias: string): Promise<string[]> {
    return this.store.redis.smembers(this.missedKey(writeAlias));
  }

  async forgetMissed(writeAlias: string): Promise<void> {
    await this.store.redis.del(this.missedKey(writeAlias));
  }

  /**
   * Queue again the documents mirrors gave up on for `writeAlias`, whose index now serves behind
   * the alias, then forget them; resolves to how many. Forgotten only once queued: a failure
   * leaves them for the next try (the reindex's finish, or the cleanup of its leftovers).
   */
  async requeueMissed(writeAlias: string, queue: Pick<DocumentQueue, 'enqueue'>): Promise<number> {
    const missed = await this.missed(writeAlias);
    if (missed.length > 0) await queue.enqueue(missed.map((id) => memberOf(this.kind, id)));
    await this.forgetMissed(writeAlias);
    return missed.length;
  }

  /** What removeReindexLeftovers needs: which reindex runs, and how to queue what one missed. */
  leftoversOf(queue: Pick<DocumentQueue, 'enqueue'>): LiveReindex {
    return {
      current: () => this.current(),
      requeueMissed: (writeAlias) => this.requeueMissed(writeAlias, queue),
    };
  }

  private missedKey(writeAlias: string): string {
    return this.store.key('reindex-missed', writeAlias);
  }

  private mirrorWriter(writeAlias: string): BulkWriter {
    const log = this.log.child({ index: writeAlias });
    return new BulkWriter(this.es, { name: writeAlias, isAlias: true }, log, {
      maxDelayMs: MIRROR_MAX_DELAY_MS,
      bestEffort: {
        budgetMs: MIRROR_BUDGET_MS,
        onAbandoned: (ids) => this.recordMissed(writeAlias, ids, log),
      },
    });
  }

  /**
   * Documents to queue again after the swap, with those the mirrors missed: the reindex's own
   * load could not put them in the new index. Throws when Redis does not take them.
   */
  async keepForAfterSwap(writeAlias: string, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const key = this.missedKey(writeAlias);
    const answers = await this.store.redis
      .multi()
      .sadd(key, ...ids)
      .pexpire(key, MISSED_TTL_MS)
      .exec();
    const failed = answers?.find(([err]) => err !== null)?.[0];
    if (!answers || failed) throw failed ?? new Error('redis discarded the transaction');
  }

  private async recordMissed(writeAlias: string, ids: string[], log: Logger): Promise<void> {
    try {
      await this.keepForAfterSwap(writeAlias, ids);
    } catch (err) {
      // The reindex cannot repair what it does not know of: say so where someone may look.
      log.error(
        { films: ids, err: (err as Error).message },
        'could not record films the reindex mirror missed; the new index may lack their changes',
      );
    }
  }
}
