/**
 * Bulk-load mode: a full load into an empty index runs with refresh off and no replicas, and the
 * index's own settings come back once the load has drained, after a stop, and after a crash.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';
import { Lease } from '../../src/queue/lease.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import { BulkLoadMode } from '../../src/load/bulkLoadMode.js';
import { ensureIndex } from '../../src/load/indexManager.js';
import { filmsDefinition } from '../../src/load/indexDefinition.js';
import { FullLoadWatch } from '../../src/sync/fullLoadWatch.js';
import { KINDS } from '../../src/kinds/kinds.js';
import { Client } from '@elastic/elasticsearch';

describe('bulk-load mode', () => {
  let sandbox: Sandbox;
  let syncer: Syncer | null = null;

  before(async () => {
    sandbox = await createSandbox('bulk-load');
    await migrateSandbox(sandbox);
  });

  after(async () => {
    await syncer?.stop();
    await sandbox.cleanup();
  });

  const settings = async () => {
    const index = sandbox.config.index;
    const [body] = Object.values(await sandbox.es.indices.getSettings({ index }));
    const [mapping] = Object.values(await sandbox.es.indices.getMapping({ index }));
    return {
      refresh: body?.settings?.index?.refresh_interval?.toString(),
      replicas: body?.settings?.index?.number_of_replicas?.toString(),
      // The index's own `_meta` holds other keys too (it was born empty: indexManager.ts).
      remembered: 'movies_etl_bulk_load' in (mapping?.mappings._meta ?? {}),
    };
  };

  /**
   * Two syncers' bulk-load modes on `name`: `paused`'s Elasticsearch traffic goes through a
   * proxy (to hold its requests), and while `pause(true)` its lease refreshes never reach Redis
   * (a stopped process runs no timer); `other` goes straight to both.
   */
  const pausableAndOther = async (name: string, prefix: string, log = testLog()) => {
    const pausedStore = new RedisStore(sandbox.config.redisUrl, prefix, log);
    let paused = false;
    const run = pausedStore.run.bind(pausedStore);
    pausedStore.run = (script, keys, args) =>
      paused && script === 'lockRefresh' ? new Promise(() => undefined) : run(script, keys, args);
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const es = new Client({ node: proxy.url, maxRetries: 0, requestTimeout: 120_000 });
    const otherStore = new RedisStore(sandbox.config.redisUrl, prefix, log);
    return {
      proxy,
      paused: new BulkLoadMode(es, name, log, pausedStore, 'paused-syncer'),
      other: new BulkLoadMode(sandbox.es, name, log, otherStore, 'other-syncer'),
      pause: (on: boolean) => (paused = on),
      close: async () => {
        for (const closing of [es, proxy, pausedStore, otherStore]) await closing.close();
      },
    };
  };

  /** The index's own settings back, and nothing left remembered. */
  const restored = async () => {
    const now = await settings();
    return now.refresh === '1s' && now.replicas === '1' && !now.remembered;
  };

  it('loads an empty index with refresh off and puts the settings back once drained', async () => {
    await seedCatalog(sandbox.pg, 3_000);
    // Small batches and one worker: the load lasts long enough to be seen relaxed.
    syncer = await startSyncer(sandbox, { workers: 1, sizeLimit: 50, bulkSize: 50 });
    const seen = new Set<string>();
    await eventually(
      async () => {
        const now = await settings();
        seen.add(`${now.refresh}/${now.replicas}/${now.remembered}`);
        return seen.has('-1/0/true');
      },
      15_000,
      'refresh off and no replicas during the load',
    );
    await waitForConvergence(sandbox, 60_000); // searchable: the closing refresh happened
    await eventually(restored, 10_000, 'settings restored');
    const { count } = await sandbox.es.count({ index: sandbox.config.index });
    assert.equal(count, 3_000);
  });

  it("a syncer that starts during another's full load leaves its bulk-load mode alone", async () => {
    await syncer?.stop();
    syncer = null;
    // A fresh index and no Redis state: the next start runs a full load into an empty index.
    const [index = ''] = Object.keys(
      await sandbox.es.indices.getSettings({ index: sandbox.config.index }),
    );
    await sandbox.es.indices.delete({ index });
    const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
    if (keys.length > 0) await sandbox.redis.del(...keys);
    const loader = await startSyncer(sandbox, { workers: 1, sizeLimit: 20, bulkSize: 20 });
    let second: Syncer | null = null;
    try {
      await eventually(
        async () => (await settings()).refresh === '-1',
        15_000,
        'the full load relaxed the index',
      );
      second = await startSyncer(sandbox, { workers: 1, sizeLimit: 20, bulkSize: 20 });
      assert.equal((await settings()).refresh, '-1', 'the starting syncer restored the settings');
      await waitForConvergence(sandbox, 60_000);
      await eventually(restored, 10_000, 'settings restored once the load drained');
    } finally {
      await second?.stop();
      await loader.stop();
    }
  });

  /** As a syncer killed mid-load leaves its index: relaxed, the old settings remembered. */
  const relaxAs = async (owner?: string) => {
    const [index = ''] = Object.keys(
      await sandbox.es.indices.getSettings({ index: sandbox.config.index }),
    );
    await sandbox.es.indices.putMapping({
      index,
      _meta: {
        movies_etl_bulk_load: {
          refresh_interval: '1s',
          number_of_replicas: '1',
          ...(owner ? { owner } : {}),
        },
      },
    });
    await sandbox.es.indices.putSettings({
      index,
      settings: { refresh_interval: '-1', number_of_replicas: 0 },
    });
  };

  it('restores what a syncer killed and restarted at once left relaxed, once its lease lapses', async () => {
    await syncer?.stop();
    syncer = null;
    // The killed syncer's ownership lease still stands when its replacement starts (a restart
    // policy brings it back within a second); it lapses a few seconds later.
    const store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
    try {
      const lease = new Lease(store, store.key('bulk-load', sandbox.config.index), 4_000);
      const ghost = await lease.tryAcquire('killed-syncer');
      assert.ok(ghost);
      ghost.abandon(); // killed: nobody refreshes it
      await relaxAs(ghost.token);
      syncer = await startSyncer(sandbox);
      assert.equal((await settings()).refresh, '-1', "a live owner's settings are left alone");
      await eventually(restored, 40_000, 'settings restored after the lease lapsed');
    } finally {
      await store.close();
    }
  });

  it('leaves a non-empty index alone and restores what a crashed syncer left relaxed', async () => {
    await syncer?.stop();
    syncer = null;
    // A syncer of a version that did not record the owner.
    await relaxAs();
    // And this sandbox's Redis state lost: the next start runs a full load again.
    const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
    if (keys.length > 0) await sandbox.redis.del(...keys);
    syncer = await startSyncer(sandbox);
    assert.deepEqual(await settings(), { refresh: '1s', replicas: '1', remembered: false });
    await waitForConvergence(sandbox, 60_000);
    // The full load found documents in the index, so it ran without relaxing anything.
    assert.deepEqual(await settings(), { refresh: '1s', replicas: '1', remembered: false });
  });

  // Outside reading: an error from Elasticsearch after the lease was taken left the lease held
  // and refreshed for the life of the process: every syncer then saw the index in bulk-load mode
  // (no refresh after live batches: edits searchable after the 1 s interval only), and none could
  // relax it for a later load.
  it('gives its lease back when Elasticsearch fails while it enters', async () => {
    await syncer?.stop();
    syncer = null;
    const name = `${sandbox.config.index}-enter-fails`;
    const prefix = `${sandbox.config.redisPrefix}enter-fails:`;
    const store = new RedisStore(sandbox.config.redisUrl, prefix, testLog());
    const log = testLog();
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const es = new Client({ node: proxy.url, maxRetries: 0 });
    await ensureIndex(sandbox.es, name, log, filmsDefinition);
    const mode = new BulkLoadMode(es, name, log, store, 'this-syncer');
    try {
      proxy.holdRequests((method, path) => method === 'GET' && path.includes('/_settings'), 502);
      const entering = mode.enter();
      entering.catch(() => undefined); // awaited below
      await eventually(() => proxy.requestsHeld > 0, 10_000, 'the settings asked for');
      proxy.forward();
      await assert.rejects(entering);
      assert.equal(mode.active, false);
      assert.equal(await mode.heldByAnyone(), false, 'the lease given back');
      assert.equal(await mode.enter(), true, 'a later load relaxes the index');
    } finally {
      await mode.leave();
      await es.close();
      await proxy.close();
      await store.close();
      const concrete = Object.keys(await sandbox.es.indices.getSettings({ index: name }));
      await sandbox.es.indices.delete({ index: concrete });
    }
  });

  // Outside test: a syncer paused (a stopped VM) after remembering the settings and before its
  // PUT went out lost its lease; another syncer put back what looked abandoned and removed the
  // record; then the late PUT relaxed the index (refresh off, no replicas) with nothing left to
  // restore it from, for good.
  it('puts the settings back itself when its relaxing lands after another syncer restored them', async () => {
    await syncer?.stop();
    syncer = null;
    const name = `${sandbox.config.index}-paused-enter`;
    const prefix = `${sandbox.config.redisPrefix}paused-enter:`;
    const log = testLog();
    await ensureIndex(sandbox.es, name, log, filmsDefinition);
    const look = async () => {
      const [body] = Object.values(await sandbox.es.indices.getSettings({ index: name }));
      const [mapping] = Object.values(await sandbox.es.indices.getMapping({ index: name }));
      return {
        refresh: body?.settings?.index?.refresh_interval?.toString(),
        replicas: body?.settings?.index?.number_of_replicas?.toString(),
        remembered: 'movies_etl_bulk_load' in (mapping?.mappings._meta ?? {}),
      };
    };
    const {
      proxy,
      paused: modeA,
      other: modeB,
      pause,
      close,
    } = await pausableAndOther(name, prefix, log);
    try {
      proxy.holdRequests((method, path) => method === 'PUT' && path.includes('/_settings'));
      const entering = modeA.enter();
      await eventually(() => proxy.requestsHeld > 0, 10_000, 'the PUT on its way');
      pause(true);
      assert.equal((await look()).remembered, true, 'remembered before the PUT');
      await eventually(async () => !(await modeB.heldByAnyone()), 30_000, 'its lease lapsed');
      await modeB.restoreAbandoned();
      pause(false);
      proxy.forward();
      assert.equal(await entering, false, 'it does not take the index for relaxed');
      assert.equal(modeA.active, false);
      assert.deepEqual(await look(), { refresh: '1s', replicas: '1', remembered: false });
    } finally {
      await modeA.leave();
      await close();
      const concrete = Object.keys(await sandbox.es.indices.getSettings({ index: name }));
      await sandbox.es.indices.delete({ index: concrete });
    }
  });

  // Review: a syncer standing down (its lease lost while relaxing) read its own record, then
  // another syncer began the load and wrote its record; the stand-down's removal, landing after,
  // took that record away, and the index stayed relaxed for good. A removal now re-checks whose
  // record it removes, and a load puts back what it remembers itself when its record is gone.
  it('keeps the load of a syncer that took over from one standing down', async () => {
    await syncer?.stop();
    syncer = null;
    const name = `${sandbox.config.index}-stand-down`;
    const prefix = `${sandbox.config.redisPrefix}stand-down:`;
    const log = testLog();
    await ensureIndex(sandbox.es, name, log, filmsDefinition);
    const {
      proxy,
      paused: standing,
      other: taking,
      pause,
      close,
    } = await pausableAndOther(name, prefix, log);
    try {
      proxy.holdRequests((method, path) => method === 'PUT' && path.includes('/_settings'));
      const entering = standing.enter();
      await eventually(() => proxy.requestsHeld > 0, 10_000, 'the relaxing on its way');
      pause(true);
      await eventually(async () => !(await taking.heldByAnyone()), 30_000, 'its lease lapsed');
      pause(false);
      proxy.forward();
      // It stands down: its settings back, then its record's removal, held on its way.
      proxy.holdRequests((method, path) => method === 'PUT' && path.includes('/_mapping'));
      await eventually(() => proxy.requestsHeld > 0, 10_000, 'the removal on its way');
      assert.equal(await taking.enter(), true, 'the other syncer relaxes the index');
      proxy.forward();
      assert.equal(await entering, false);
      await taking.leave();
      const [body] = Object.values(await sandbox.es.indices.getSettings({ index: name }));
      assert.deepEqual(
        {
          refresh: body?.settings?.index?.refresh_interval?.toString(),
          replicas: body?.settings?.index?.number_of_replicas?.toString(),
        },
        { refresh: '1s', replicas: '1' },
      );
    } finally {
      await standing.leave();
      await close();
      const concrete = Object.keys(await sandbox.es.indices.getSettings({ index: name }));
      await sandbox.es.indices.delete({ index: concrete });
    }
  });

  // Outside test: a tidy read the lease (nobody held it), then the records; a syncer that took
  // the lease and wrote its record in between had its record put back and removed as abandoned,
  // just before its own relaxing landed: refresh off and no replicas, with nothing to restore.
  it('leaves alone the record of a load that began while it looked', async () => {
    await syncer?.stop();
    syncer = null;
    const name = `${sandbox.config.index}-tidy-race`;
    const prefix = `${sandbox.config.redisPrefix}tidy-race:`;
    const log = testLog();
    await ensureIndex(sandbox.es, name, log, filmsDefinition);
    const proxyA = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const proxyB = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const esA = new Client({ node: proxyA.url, maxRetries: 0 });
    const esB = new Client({ node: proxyB.url, maxRetries: 0 });
    const storeA = new RedisStore(sandbox.config.redisUrl, prefix, log);
    const storeB = new RedisStore(sandbox.config.redisUrl, prefix, log);
    const loading = new BulkLoadMode(esA, name, log, storeA, 'loading-syncer');
    const tidying = new BulkLoadMode(esB, name, log, storeB, 'tidying-syncer');
    try {
      proxyB.holdRequests((method, path) => method === 'GET' && path.includes('/_mapping'));
      const restoring = tidying.restoreAbandoned();
      await eventually(() => proxyB.requestsHeld > 0, 10_000, "the tidy's look on its way");
      proxyA.holdRequests((method, path) => method === 'PUT' && path.includes('/_settings'));
      const entering = loading.enter();
      await eventually(() => proxyA.requestsHeld > 0, 10_000, 'the relaxing on its way');
      proxyB.forward();
      await restoring;
      proxyA.forward();
      assert.equal(await entering, true, 'the load relaxes the index');
      const [mapping] = Object.values(await sandbox.es.indices.getMapping({ index: name }));
      assert.ok('movies_etl_bulk_load' in (mapping?.mappings._meta ?? {}), 'its record kept');
      await loading.leave();
      const [body] = Object.values(await sandbox.es.indices.getSettings({ index: name }));
      assert.deepEqual(
        {
          refresh: body?.settings?.index?.refresh_interval?.toString(),
          replicas: body?.settings?.index?.number_of_replicas?.toString(),
        },
        { refresh: '1s', replicas: '1' },
      );
    } finally {
      await loading.leave();
      for (const closing of [esA, esB, proxyA, proxyB, storeA, storeB]) await closing.close();
      const concrete = Object.keys(await sandbox.es.indices.getSettings({ index: name }));
      await sandbox.es.indices.delete({ index: concrete });
    }
  });

  it('puts back what it relaxed for a load that another syncer finished', async () => {
    await syncer?.stop();
    syncer = null;
    // This process relaxed an empty index for a full load; its walk was interrupted and another
    // syncer resumed the plan and finished it: no plan in force, nothing queued or claimed.
    const name = `${sandbox.config.index}-handed-over`;
    const prefix = `${sandbox.config.redisPrefix}handed-over:`;
    const store = new RedisStore(sandbox.config.redisUrl, prefix, testLog());
    const log = testLog();
    await ensureIndex(sandbox.es, name, log, filmsDefinition);
    const mode = new BulkLoadMode(sandbox.es, name, log, store, 'this-syncer');
    const plans = new FullLoadPlans(store);
    const watch = new FullLoadWatch(
      new DocumentQueue(store),
      new Map([['films', mode]]),
      () => 0,
      log,
      async () => (await plans.current()) !== null,
      { tidyMs: 200 },
    );
    try {
      assert.equal(await mode.enter(), true);
      assert.equal(await plans.current(), null);
      await eventually(() => !mode.active, 10_000, 'bulk-load mode left');
      const [body] = Object.values(await sandbox.es.indices.getSettings({ index: name }));
      assert.equal(body?.settings?.index?.refresh_interval?.toString(), '1s');
    } finally {
      watch.stop();
      await mode.leave();
      await store.close();
      const concrete = Object.keys(await sandbox.es.indices.getSettings({ index: name }));
      await sandbox.es.indices.delete({ index: concrete });
    }
  });

  // Outside test: the whole queue had to drain first. Another syncer's load of another index
  // (deleted meanwhile) kept it full, and this load's films index kept refresh off, its edits
  // searchable only once that other load ended.
  it('gives an index its settings back once its own backlog is gone, whatever else is queued', async () => {
    await syncer?.stop();
    syncer = null;
    const prefix = `${sandbox.config.redisPrefix}own-backlog:`;
    const store = new RedisStore(sandbox.config.redisUrl, prefix, testLog());
    const log = testLog();
    const names = {
      films: `${sandbox.config.index}-own-films`,
      persons: `${sandbox.config.index}-own-persons`,
    };
    const modes = new Map(
      await Promise.all(
        (['films', 'persons'] as const).map(async (kind) => {
          await ensureIndex(sandbox.es, names[kind], log, filmsDefinition);
          return [
            kind,
            new BulkLoadMode(sandbox.es, names[kind], log, store, 'this-syncer'),
          ] as const;
        }),
      ),
    );
    const queue = new DocumentQueue(store);
    const watch = new FullLoadWatch(
      queue,
      modes,
      () => 0,
      log,
      () => Promise.resolve(true),
      {
        backlogGoneAt: 10,
      },
    );
    try {
      await watch.began(
        100,
        KINDS.filter((k) => k.name in names),
      );
      assert.equal(modes.get('films')?.active, true);
      assert.equal(modes.get('persons')?.active, true);
      // Another syncer's load of persons keeps the queue well over the threshold.
      await queue.enqueue(
        Array.from(
          { length: 50 },
          (_, i) => `persons/00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        ),
      );
      watch.queued();
      await eventually(() => modes.get('films')?.active === false, 10_000, 'films put back');
      assert.equal(modes.get('persons')?.active, true, 'persons still loading');
      const [body] = Object.values(await sandbox.es.indices.getSettings({ index: names.films }));
      assert.equal(body?.settings?.index?.refresh_interval?.toString(), '1s');
    } finally {
      watch.stop();
      await watch.leave();
      await store.close();
      for (const name of Object.values(names)) {
        const concrete = Object.keys(await sandbox.es.indices.getSettings({ index: name }));
        await sandbox.es.indices.delete({ index: concrete });
      }
    }
  });

  // Found by an outside reading: a new load stopped the last one's drain check, so an index that
  // load had relaxed, and this one does not fill, kept refresh off (live edits of it not
  // searchable) until this load drained; for good, if it never did.
  it('gives an index relaxed for the last load its settings back when a load of others begins', async () => {
    await syncer?.stop();
    syncer = null;
    const prefix = `${sandbox.config.redisPrefix}next-load:`;
    const store = new RedisStore(sandbox.config.redisUrl, prefix, testLog());
    const log = testLog();
    const names = {
      films: `${sandbox.config.index}-first`,
      genres: `${sandbox.config.index}-next`,
    };
    const modes = new Map(
      await Promise.all(
        (['films', 'genres'] as const).map(async (kind) => {
          await ensureIndex(sandbox.es, names[kind], log, filmsDefinition);
          return [
            kind,
            new BulkLoadMode(sandbox.es, names[kind], log, store, 'this-syncer'),
          ] as const;
        }),
      ),
    );
    const queue = new DocumentQueue(store);
    // A plan in force, and a backlog: nothing ends either load's mode by itself.
    const watch = new FullLoadWatch(
      queue,
      modes,
      () => 0,
      log,
      () => Promise.resolve(true),
    );
    const kind = (name: string) => KINDS.filter((k) => k.name === name);
    try {
      await queue.enqueue(['genres/00000000-0000-4000-8000-000000000001']);
      await watch.began(100, kind('films'));
      watch.queued();
      assert.equal(modes.get('films')?.active, true);
      await watch.began(100, kind('genres'));
      assert.equal(modes.get('genres')?.active, true, 'the new load relaxes its own index');
      assert.equal(modes.get('films')?.active, false, "the last load's index is put back");
      const [body] = Object.values(await sandbox.es.indices.getSettings({ index: names.films }));
      assert.equal(body?.settings?.index?.refresh_interval?.toString(), '1s');
    } finally {
      watch.stop();
      await watch.leave();
      await store.close();
      for (const name of Object.values(names)) {
        const concrete = Object.keys(await sandbox.es.indices.getSettings({ index: name }));
        await sandbox.es.indices.delete({ index: concrete });
      }
    }
  });
});

// Found by an outside reading: bulk-load mode ended only once the queue was seen empty with no
// claim in flight, which a steady stream of live edits (of any index) never allows. The index
// then kept refresh off and no replicas after its load: nothing new became searchable.
describe('bulk-load mode beside a claim that stays in flight', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('bulk-load-busy');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 1_000, 5, 20);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  // Seen in a chaos campaign once bulk-load mode ended with the backlog: the progress (its bar,
  // its "full load done" line) ended too, whenever the indexers had caught up with the walk.
  it('reports the load done only once every document is queued', async () => {
    const prefix = `${sandbox.config.redisPrefix}progress:`;
    const store = new RedisStore(sandbox.config.redisUrl, prefix, testLog());
    const { log, lines } = capturingLog();
    // The queue is empty: the indexers have caught up with a walk that is not over.
    const watch = new FullLoadWatch(
      new DocumentQueue(store),
      new Map(),
      () => 0,
      log,
      () => Promise.resolve(true),
      { backlogGoneAt: sandbox.config.sizeLimit },
    );
    const done = () => lines().some((line) => line.msg === 'full load done');
    try {
      await watch.began(1_000, []);
      await delay(2_500); // the progress looks every second
      assert.equal(done(), false, 'not done while the walk goes on');
      watch.queued();
      await eventually(done, 5_000, 'done once every document is queued');
    } finally {
      watch.stop();
      await store.close();
    }
  });

  it("ends once the load's own documents are indexed", async () => {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    // Every write to the genres index waits for its answer: a claim is always in flight.
    proxy.holdBulkAnswersTo((index) => index === sandbox.config.genresIndex);
    const busy = await startSyncer(sandbox, {
      elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
    });
    try {
      const index = sandbox.config.index;
      await eventually(
        async () => {
          await sandbox.es.indices.refresh({ index });
          return (await sandbox.es.count({ index })).count === 1_000;
        },
        30_000,
        'every film indexed',
      );
      await eventually(
        async () => (await busy.queue.inFlight()).length > 0,
        5_000,
        'the genres claim in flight',
      );
      await eventually(
        async () => {
          const [body] = Object.values(await sandbox.es.indices.getSettings({ index }));
          return body?.settings?.index?.refresh_interval?.toString() === '1s';
        },
        10_000,
        "the films index's own refresh back",
      );
    } finally {
      proxy.forward();
      await busy.stop();
      await proxy.close();
    }
  });
});
