/**
 * Redis with persistence (RDB save points, or an AOF written every second) that crashes comes back
 * with what it last saved: everything in it is as it was some seconds or minutes ago, the epoch
 * included, so nothing looks reset. Whatever the syncer remembers in memory about the writes it
 * made since (a transaction the live path queued, a full load's place) must not be trusted then.
 *
 * Each test runs its own redis-server (test/helpers/redisServer.ts) that saves a snapshot when told
 * to and loads it when restarted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PoolClient } from 'pg';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { Watermarks, type Snapshot } from '../../src/queue/watermarks.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { startRedisServer, type RedisServer } from '../helpers/redisServer.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';

/** Whether the watermark's snapshot sees transaction `txid` as committed (the pass read it). */
const sees = (mark: Snapshot | null | undefined, txid: string): boolean =>
  mark !== null &&
  mark !== undefined &&
  (BigInt(txid) < BigInt(mark.xmin) ||
    (BigInt(txid) < BigInt(mark.xmax) && !mark.xip.includes(txid)));

describe('redis restarted from an older snapshot', () => {
  let sandbox: Sandbox;
  let redis: RedisServer;
  let store: RedisStore;

  before(async () => {
    sandbox = await createSandbox('redis_rollback');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 400, 10, 40);
    redis = await startRedisServer();
    store = new RedisStore(redis.url, sandbox.config.redisPrefix, testLog());
  });

  after(async () => {
    await store.close();
    await redis.stop();
    await sandbox.cleanup();
  });

  it('a full load picks up from the saved cursor, not from where it had got to', async () => {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const films = (name: string) =>
      name === sandbox.config.index || name.startsWith(`${sandbox.config.index}_v`);
    // Film documents are refused (429, retried) while this holds: the walk over the films then
    // stops at the queue's bound (25 × ETL_SIZE_LIMIT) and waits.
    proxy.rejectBulkItemsTo(films);
    const syncer = await startSyncer(sandbox, {
      redisUrl: redis.url,
      sizeLimit: 5,
      bulkSize: 5,
      workers: 2,
      elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
    });
    const plans = new FullLoadPlans(store);
    const queue = new DocumentQueue(store);
    try {
      await eventually(async () => (await plans.queued()) >= 100, 20_000, 'the walk under way');
      const saved = await plans.queued();
      await redis.snapshot();
      // Let it go on for a while, then hold it again with more of the films in the queue.
      proxy.forward();
      await eventually(async () => (await plans.queued()) >= saved + 100, 20_000, 'more queued');
      proxy.rejectBulkItemsTo(films);
      await eventually(async () => (await queue.depth()) >= 50, 20_000, 'a queue again');
      // The crash: Redis comes back with the cursor and queue of the snapshot. The loader still
      // knows where it had got to, but what it queued since is gone.
      await redis.restartFromSnapshot();
      assert.ok((await plans.queued()) <= saved + 10, 'the snapshot has the older cursor');
      proxy.forward();
      await waitForConvergence(sandbox, 60_000);
    } finally {
      await syncer.stop();
      await proxy.close();
    }
  });

  it('reads again what the live path queued after the snapshot', async () => {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const syncer = await startSyncer(sandbox, {
      redisUrl: redis.url,
      pollIntervalMs: 3_000,
      sizeLimit: 5,
      bulkSize: 5,
      workers: 2,
      elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
    });
    const watermarks = new Watermarks(store);
    let older: PoolClient | undefined;
    try {
      await waitForConvergence(sandbox);
      // The first full load is over once its sweep (which reads Elasticsearch) has set the marks.
      await eventually(
        async () => [...(await watermarks.getAll()).values()].every((mark) => mark !== null),
        20_000,
        'every watermark set',
      );
      await eventually(() => syncer.capture?.cadenceState === 'asleep', 20_000, 'asleep');
      await redis.snapshot();
      // Elasticsearch away: the films stay in the queue (two workers hold ten of them).
      proxy.down();
      // Another session's transaction, older and still open (a report, a migration, anything):
      // the passes' snapshots keep it running, so what they learned about later transactions
      // stays in memory until it ends.
      older = await sandbox.pg.connect();
      await older.query('BEGIN');
      await older.query('SELECT pg_current_xact_id()');
      // One statement, one message listing its 50 films, heard while asleep: the live path
      // queues them and tells the pass to skip the transaction.
      const client = await sandbox.pg.connect();
      let txid: string;
      try {
        await client.query('BEGIN');
        await client.query(
          `UPDATE content.film_work SET rating = coalesce(rating, 0) + 1
            WHERE id IN (SELECT id FROM content.film_work ORDER BY id LIMIT 50)`,
        );
        const { rows } = await client.query<{ x: string }>(
          'SELECT pg_current_xact_id()::text AS x',
        );
        txid = rows[0]?.x ?? '';
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      await eventually(
        async () => sees((await watermarks.getAll()).get('film_work'), txid),
        20_000,
        'a pass past the transaction',
      );
      // The crash: Redis comes back with the snapshot, from before the transaction. Its films
      // are not in the queue, and the watermark is before it again.
      await redis.restartFromSnapshot();
      assert.equal(
        sees((await watermarks.getAll()).get('film_work'), txid),
        false,
        'the snapshot predates the transaction',
      );
      proxy.forward();
      await older.query('ROLLBACK');
      // A pass after the restart must read the transaction again (periodic passes come every
      // 3 s); one that skipped it would move the watermark past it for good.
      await waitForConvergence(sandbox, 40_000);
    } finally {
      older?.release(true);
      await syncer.stop();
      await proxy.close();
    }
  });

  // Found when the reload above was asked for again too late once in CI: the running syncer's
  // reload began its plan as Redis restarted, after reading the old server's run. The plan landed
  // in the restarted Redis; the loader then found its writes refused and stopped, and the plan it
  // left there named the new index as filled by a load in force, so the look that a pass makes on
  // seeing the restart took the index for accounted for, and nothing loaded it.
  it('a load that read the run before a restart writes no plan after it', async () => {
    const plans = new FullLoadPlans(store);
    const watermarks = new Watermarks(store);
    const run = await watermarks.serverRun();
    await redis.snapshot();
    await redis.restartFromSnapshot();
    const before = await plans.current();
    const began = await plans.begin(
      {
        id: 'plan-of-the-old-run',
        epoch: 'e',
        snapshot: { xmin: '1', xmax: '1', xip: [], at: new Date().toISOString() },
        kinds: ['films'],
        tables: [],
        total: 0,
        began: new Date().toISOString(),
        indices: { films: 'the-new-index' },
      },
      run,
    );
    assert.equal(began.superseded.aborted, true, 'the loader is told to stop');
    assert.deepEqual(await plans.current(), before, 'the plan in Redis is as the restart left it');
  });

  // Chaos seed 71205311, round 9: the films index deleted and created again (its reload asked
  // for in Redis), then Redis came back from a save made before: the request, the load's plan and
  // its queue were gone, and the index, which was there, was never loaded again (971 films
  // missing for good). The index is marked born empty, and a syncer that finds no request, load
  // or finished load in Redis for it asks again (src/sync/indexWatch.ts): a running one when a
  // pass sees Redis restarted, a starting one before its first pass. The periodic look (every
  // 15 s) is put out of reach here, so each test shows its own path.
  const films = (name: string) =>
    name === sandbox.config.index || name.startsWith(`${sandbox.config.index}_v`);
  const reloadKey = () => `${sandbox.config.redisPrefix}full-load:reload`;

  /**
   * Snapshot Redis, delete the films index, and have an edit's write find it gone: the syncer
   * creates it again and asks for its reload, which cannot finish (film documents are refused).
   */
  async function deleteAfterSnapshot(proxy: EsFaultProxy): Promise<void> {
    await waitForConvergence(sandbox);
    const watermarks = new Watermarks(store);
    await eventually(
      async () => [...(await watermarks.getAll()).values()].every((mark) => mark !== null),
      20_000,
      'every watermark set',
    );
    await redis.snapshot();
    const concrete = Object.keys(await sandbox.es.indices.get({ index: sandbox.config.index }));
    await sandbox.es.indices.delete({ index: concrete });
    await insertFilm(sandbox.pg, 'Written after the films index was deleted');
    await eventually(
      async () =>
        (await sandbox.es.indices.existsAlias({ name: sandbox.config.index })) &&
        (await store.redis.hlen(reloadKey())) > 0,
      20_000,
      'the index created again and its reload asked for',
    );
    // The walk stops at the queue's bound (25 × ETL_SIZE_LIMIT), below the 400 films.
    proxy.rejectBulkItemsTo(films);
  }

  const noPeriodicLook = { indexCheckMs: 600_000 };

  /** A syncer on the private Redis, writing through `proxy`; `slow`: a few documents a claim. */
  const startProxied = (proxy: EsFaultProxy, slow: boolean) =>
    startSyncer(
      sandbox,
      {
        redisUrl: redis.url,
        elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
        ...(slow ? { sizeLimit: 5, bulkSize: 5 } : {}),
      },
      testLog(),
      noPeriodicLook,
    );

  /** Stop `syncer`, bring Redis back from its save, let every write through, start a syncer. */
  async function restartFromSave(syncer: Syncer, proxy: EsFaultProxy): Promise<Syncer> {
    await syncer.stop();
    await redis.restartFromSnapshot();
    proxy.forward();
    return startProxied(proxy, false);
  }

  it('an index created again just before the crash is loaded again: a running syncer', async () => {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const syncer = await startProxied(proxy, true);
    try {
      await deleteAfterSnapshot(proxy);
      // The snapshot predates the request: a request from now on is one asked for again (not
      // asserted absent first: a pass may already have seen the restart and asked).
      await redis.restartFromSnapshot();
      proxy.forward();
      await eventually(
        async () => (await store.redis.hlen(reloadKey())) > 0,
        10_000,
        'the reload asked for again once a pass saw Redis restarted',
      );
      await waitForConvergence(sandbox, 60_000);
    } finally {
      await syncer.stop();
      await proxy.close();
    }
  });

  it('an index created again just before the crash is loaded again: a syncer started after', async () => {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    let syncer = await startProxied(proxy, true);
    try {
      await deleteAfterSnapshot(proxy);
      syncer = await restartFromSave(syncer, proxy);
      await waitForConvergence(sandbox, 60_000);
    } finally {
      await syncer.stop();
      await proxy.close();
    }
  });

  // A CI run: the test above failed once with 395 of 400 films missing. Its first syncer had
  // resumed the load the test before left unfinished, and the snapshot caught that load, nearly
  // done, with its request pending: after the restart the pending request was taken to account
  // for any index of the kind, the load finished with its last few documents written to the index
  // made since, and that index was never loaded whole.
  it('an index created again just before the crash is loaded again: Redis saved during a reload', async () => {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    let syncer = await startProxied(proxy, true);
    const uuid = async () =>
      Object.values(await sandbox.es.indices.get({ index: sandbox.config.index }))[0]?.settings
        ?.index?.uuid;
    try {
      await waitForConvergence(sandbox);
      // The writes of the last films the walk reaches refused (more than the queue holds): the
      // reload of the index made again loads the films before them, and its walk waits for room.
      const { rows } = await sandbox.pg.query<{ id: string }>(
        `SELECT id::text AS id FROM content.film_work ORDER BY id
          OFFSET (SELECT count(*) - 250 FROM content.film_work) LIMIT 1`,
      );
      const from = rows[0]?.id ?? '';
      proxy.rejectBulkItemsTo((index, id) => films(index) && id >= from);
      const first = Object.keys(await sandbox.es.indices.get({ index: sandbox.config.index }));
      await sandbox.es.indices.delete({ index: first });
      // An edit whose write is not refused finds the index gone.
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = title || ' (edited)'
          WHERE id = (SELECT id FROM content.film_work ORDER BY id LIMIT 1)`,
      );
      const before = await sandbox.pg.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM content.film_work WHERE id < $1',
        [from],
      );
      await eventually(
        async () => {
          await sandbox.es.indices.refresh({ index: sandbox.config.index }).catch(() => undefined);
          const { count } = await sandbox.es
            .count({ index: sandbox.config.index })
            .catch(() => ({ count: 0 }));
          return count >= (before.rows[0]?.n ?? 0);
        },
        30_000,
        'the reload wrote the films before those refused',
        {
          describe: async () => {
            const indexed = await sandbox.es
              .count({ index: sandbox.config.index })
              .catch(() => ({ count: 'no index' }));
            const claims = await new DocumentQueue(store).inFlight();
            return `${indexed.count} of ${before.rows[0]?.n}, ${claims.length} claims in flight`;
          },
        },
      );
      assert.ok((await store.redis.hlen(reloadKey())) > 0, 'the reload is not over');
      const reloaded = await uuid();
      await redis.snapshot();
      // Deleted again: the write of an edit makes it anew and asks for its reload, which has
      // written next to nothing when Redis crashes.
      proxy.forward();
      await sandbox.es.indices.delete({
        index: Object.keys(await sandbox.es.indices.get({ index: sandbox.config.index })),
      });
      await insertFilm(sandbox.pg, 'Written after the films index was deleted again');
      await eventually(
        async () =>
          (await sandbox.es.indices.existsAlias({ name: sandbox.config.index })) &&
          (await uuid()) !== reloaded,
        20_000,
        'the index created once more',
      );
      proxy.rejectBulkItemsTo(films);
      syncer = await restartFromSave(syncer, proxy);
      await waitForConvergence(sandbox, 60_000);
    } finally {
      await syncer.stop();
      await proxy.close();
    }
  });
});
