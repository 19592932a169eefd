/**
 * Bulk-load mode: a full load into an empty index runs with refresh off and no replicas, and the
 * index's own settings come back once the load has drained, after a stop, and after a crash.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

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
      remembered: Object.keys(mapping?.mappings._meta ?? {}).length > 0,
    };
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
    await eventually(
      async () => {
        const now = await settings();
        return now.refresh === '1s' && now.replicas === '1' && !now.remembered;
      },
      10_000,
      'settings restored',
    );
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
      await eventually(
        async () => {
          const now = await settings();
          return now.refresh === '1s' && now.replicas === '1' && !now.remembered;
        },
        10_000,
        'settings restored once the load drained',
      );
    } finally {
      await second?.stop();
      await loader.stop();
    }
  });

  it('leaves a non-empty index alone and restores what a crashed syncer left relaxed', async () => {
    await syncer?.stop();
    syncer = null;
    // As a syncer killed mid-load leaves it: relaxed, with the old settings remembered.
    const [index = ''] = Object.keys(
      await sandbox.es.indices.getSettings({ index: sandbox.config.index }),
    );
    await sandbox.es.indices.putMapping({
      index,
      _meta: { movies_etl_bulk_load: { refresh_interval: '1s', number_of_replicas: '1' } },
    });
    await sandbox.es.indices.putSettings({
      index,
      settings: { refresh_interval: '-1', number_of_replicas: 0 },
    });
    // And this sandbox's Redis state lost: the next start runs a full load again.
    const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
    if (keys.length > 0) await sandbox.redis.del(...keys);
    syncer = await startSyncer(sandbox);
    assert.deepEqual(await settings(), { refresh: '1s', replicas: '1', remembered: false });
    await waitForConvergence(sandbox, 60_000);
    // The full load found documents in the index, so it ran without relaxing anything.
    assert.deepEqual(await settings(), { refresh: '1s', replicas: '1', remembered: false });
  });
});
