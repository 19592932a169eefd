/**
 * Redis restarts empty in the middle of a full load. The loader that was running does not know
 * yet (its lease is only checked every few seconds) and walks on; another syncer starts the load
 * over in the new, empty Redis. Nothing the old loader did before the restart may count for the
 * new load: the films it queued then are gone with the queue, so a new load that took its place in
 * the walk from it would skip them, set the watermarks, and leave them stale for good.
 *
 * Driven pass by pass with two pollers, the way two syncers share one Redis, so the interleaving
 * that a chaos campaign hit by chance (seed 90417) happens every time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FanOut } from '../../src/capture/fanOut.js';
import { Poller, fullLoadQueueBound, type PassResult } from '../../src/capture/poller.js';
import { Resolver } from '../../src/capture/resolver.js';
import { Postgres } from '../../src/db/postgres.js';
import { films } from '../../src/kinds/films.js';
import { IndexedDocumentIds } from '../../src/load/indexedIds.js';
import { ensureIndex } from '../../src/load/indexManager.js';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import { ReloadRequests } from '../../src/queue/reloadRequests.js';
import { ReadLock } from '../../src/queue/readLock.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import { seedCatalog } from '../helpers/catalog.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, testLog } from '../helpers/syncerHarness.js';

const SIZE = 10;
const FILMS = 600;

describe('a full load cut off by Redis restarting empty', () => {
  let sandbox: Sandbox;
  let db: Postgres;
  const stores: RedisStore[] = [];

  before(async () => {
    sandbox = await createSandbox('loadrestart');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, FILMS, 3, 10);
    db = new Postgres(sandbox.config.databaseUrl, testLog());
  });

  after(async () => {
    await db.end();
    for (const store of stores) await store.close();
    await sandbox.cleanup();
  });

  /** One syncer's poller (films only: the plan logic is the same for every kind). */
  async function syncerPoller(
    owner: string,
    hooks: Pick<ConstructorParameters<typeof Poller>[0], 'whileWaiting' | 'onFullLoad'>,
  ) {
    const log = testLog();
    const store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, log);
    stores.push(store);
    const queue = new DocumentQueue(store);
    const lock = new ReadLock(store, owner, log);
    const target = await ensureIndex(sandbox.es, sandbox.config.index, log);
    const poller = new Poller({
      db,
      lock,
      queue,
      watermarks: new Watermarks(store),
      fanOut: new FanOut(queue, new Resolver(db, lock, SIZE, 0), [films]),
      kinds: [{ kind: films, indexed: new IndexedDocumentIds(sandbox.es, target) }],
      log,
      sizeLimit: SIZE,
      sleepMs: 0,
      owner,
      plans: new FullLoadPlans(store),
      reloads: new ReloadRequests(store),
      ...hooks,
    });
    return { poller, queue, store, watermarks: new Watermarks(store) };
  }

  it('queues every film again after the restart, whatever the old loader does', async () => {
    // The old loader fills the queue to its bound (nobody indexes) and waits for room.
    let stalled!: () => void;
    const oldStalled = new Promise<void>((resolve) => (stalled = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const old = await syncerPoller('old', {
      // Called before every page too (to queue what the live path heard): stall only once the
      // queue is full, where the loader waits for room.
      whileWaiting: async () => {
        if ((await old.queue.depth()) < fullLoadQueueBound(SIZE)) return;
        stalled();
        await released;
      },
    });
    const oldRun: Promise<PassResult | Error> = old.poller
      .pass()
      .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    await oldStalled;
    assert.ok((await old.queue.depth()) >= fullLoadQueueBound(SIZE));

    // Redis restarts empty: queue, plan, cursor, epoch, leases, all gone.
    const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
    assert.ok(keys.length > 0);
    await sandbox.redis.del(...keys);

    // The new loader begins its plan; while it gets ready (bulk-load mode, say) the old one
    // goes on walking from where it was.
    const plans = new FullLoadPlans(old.store);
    const fresh = await syncerPoller('new', {
      onFullLoad: async () => {
        release();
        const deadline = Date.now() + 10_000;
        const oldDone = { now: false };
        void oldRun.then(() => (oldDone.now = true));
        while (!oldDone.now && (await plans.cursor('queue:films')) === undefined) {
          assert.ok(Date.now() < deadline, 'the old loader neither walked on nor stopped');
          await delay(10);
        }
      },
    });
    const newRun = fresh.poller.pass();

    // An indexer that takes everything queued from now on.
    const queued = new Set<string>();
    const indexing = new AbortController();
    const drained = (async () => {
      while (!indexing.signal.aborted) {
        const claim = await fresh.queue.claim('indexer', 100);
        if (!claim) {
          await delay(10);
          continue;
        }
        for (const id of claim.ids) queued.add(id);
        await fresh.queue.ack(claim, claim.ids);
      }
    })();
    const [oldResult, newResult] = await Promise.all([oldRun, newRun]);
    indexing.abort();
    await drained;
    for (;;) {
      const claim = await fresh.queue.claim('indexer', 1_000);
      if (!claim) break;
      for (const id of claim.ids) queued.add(id);
      await fresh.queue.ack(claim, claim.ids);
    }

    if (oldResult instanceof Error) throw oldResult;
    assert.equal(oldResult.kind, 'skipped', 'the old loader stopped once it found its plan gone');
    assert.equal(newResult.kind, 'full');
    assert.notEqual(await fresh.watermarks.get('film_work'), null, 'the new load finished');
    const { rows } = await sandbox.pg.query<{ id: string }>('SELECT id FROM content.film_work');
    const missing = rows.filter((r) => !queued.has(r.id));
    assert.equal(
      missing.length,
      0,
      `${missing.length} of ${rows.length} films were never queued after the restart, and the watermarks passed them`,
    );
    assert.equal(await plans.current(), null, 'no plan left behind');
  });
});
