/**
 * Indices to load again whole. An index created again while the state in Redis goes on (someone
 * deleted it, or Elasticsearch lost its data) holds none of its documents, and the watermarks only
 * bring the changes from now on: every document of its kind must be queued again.
 *
 * A request stays in Redis (`full-load:reload`, kind -> request id) until a full load that began
 * after it, and covered its kind, finishes: the load records the ids it serves, and its finish
 * removes only those (fullLoadFinish.lua). An index deleted again while a load runs gets a new id,
 * which that load does not remove, so the kind is loaded once more. A syncer that dies meanwhile
 * leaves the request for the next one.
 *
 * Which index each request is for is recorded too, by Elasticsearch's uuid (kind -> uuid):
 * `full-load:born`, the index created after its request (by the syncer that created it), and
 * `full-load:loaded`, the index a finished load filled (the load read it when it began). A Redis
 * that comes back from an older save loses requests made since: an index born empty (marked so by
 * ensureIndex) that Redis has no request, no record and no load in progress for is asked for
 * again (`accountedFor`, src/sync/indexWatch.ts). Two records, not one: a load that began between
 * a request and its index's creation cannot read the index, and a syncer of an earlier version
 * serves requests without recording what it filled; the birth record covers both.
 */
import { randomUUID } from 'node:crypto';
import type { KindName } from '../kinds/documentKind.js';
import { FullLoadPlans, type PlanState } from './fullLoadPlan.js';
import { transactionResults, type RedisStore } from './redisStore.js';

export class ReloadRequests {
  constructor(private readonly store: RedisStore) {}

  get key(): string {
    return this.store.key('full-load', 'reload');
  }

  /** kind -> the uuid of the index the last finished load of that kind filled. */
  get loadedKey(): string {
    return this.store.key('full-load', 'loaded');
  }

  /** kind -> the uuid of the last index created after a request of that kind. */
  private get bornKey(): string {
    return this.store.key('full-load', 'born');
  }

  /** This kind's index is new: load every document of the kind again. Resolves to the request id. */
  async request(kind: KindName): Promise<string> {
    const id = randomUUID();
    await this.store.redis.hset(this.key, kind, id);
    // Confirmed: lost in a failover, it would wait for IndexWatch's next look to be asked again.
    await this.store.confirm(this.key);
    return id;
  }

  /**
   * Whether Redis knows that index `uuid` of `kind` is loaded or will be: a request is pending
   * and no other index is recorded born after one, it was born after a request (which only a
   * finished load removes), the load in force fills it, or a finished one did. Read in one
   * transaction: a load's finish removes its requests and records what it filled in one step, so
   * no look falls between the two.
   *
   * A pending request recorded for another index does not count: Redis back from a save made
   * during the reload of an index created before this one holds that reload's request, and the
   * load resumed from the save finishes it with its last few documents written here (a CI run:
   * 395 of 400 films never loaded again). A look between a request and its birth record (another
   * syncer creating the index that moment) asks again, for one more load.
   */
  async accountedFor(kind: KindName, uuid: string): Promise<boolean> {
    const [pending, born, loaded, plan] = transactionResults(
      await this.store.redis
        .multi()
        .hexists(this.key, kind)
        .hget(this.bornKey, kind)
        .hget(this.loadedKey, kind)
        .get(new FullLoadPlans(this.store).planKey)
        .exec(),
    );
    if ((pending === 1 && born === null) || born === uuid || loaded === uuid) return true;
    if (typeof plan !== 'string') return false;
    return (JSON.parse(plan) as Pick<PlanState, 'indices'>).indices?.[kind] === uuid;
  }

  /**
   * The index `uuid` of `kind` was created after request `id` (made before it): once no request is
   * pending, a finish served it. Recorded only while that request is pending (reloadBorn.lua);
   * not recorded, the index may be loaded once more at most (see accountedFor).
   */
  async born(kind: KindName, id: string, uuid: string): Promise<void> {
    await this.store.run('reloadBorn', [this.key, this.bornKey], [kind, id, uuid]);
  }

  /** Redis lost track of index `uuid`: request its load again, and record it born since. */
  async requestAgain(kind: KindName, uuid: string): Promise<void> {
    transactionResults(
      await this.store.redis
        .multi()
        .hset(this.key, kind, randomUUID())
        .hset(this.bornKey, kind, uuid)
        .exec(),
    );
    await this.store.confirm(this.key);
  }

  /** The uuid of the index the last finished load of `kind` filled; null when none is recorded. */
  async loaded(kind: KindName): Promise<string | null> {
    return this.store.redis.hget(this.loadedKey, kind);
  }

  /**
   * Record `uuid` as the index of `kind` the last load filled, unless a record exists (a load that
   * finishes records what it filled, over this). For an index found with no record: a load
   * finished by an older version, or a Redis restored without the record. Resolves to whether it
   * recorded.
   */
  async adoptLoaded(kind: KindName, uuid: string): Promise<boolean> {
    return (await this.store.redis.hsetnx(this.loadedKey, kind, uuid)) === 1;
  }

  /** The requests not yet served: kind -> request id. */
  pending(): Promise<Record<string, string>> {
    return this.store.redis.hgetall(this.key);
  }
}
