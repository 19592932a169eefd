/**
 * A reindex of an index that a full load holds in bulk-load mode (refresh off, no replicas, its
 * own settings kept in `_meta`): the new index takes the settings the index had before the load,
 * not the relaxed ones. The saved settings go with the old index when it is deleted, so nothing
 * would put them back afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setMetaKey } from '../../src/load/indexManager.js';
import { seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { runCli } from '../helpers/runCli.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('a reindex during a full load in bulk-load mode', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('reindex_relaxed');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 40, 3, 5);
    const syncer = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
    } finally {
      await syncer.stop();
    }
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('gives the new index the replicas the old one had before the load relaxed it', async () => {
    const alias = sandbox.config.index;
    const [relaxed] = Object.keys(await sandbox.es.indices.getAlias({ name: alias }));
    assert.ok(relaxed);
    // What bulk-load mode leaves on an index while its load runs (src/load/bulkLoadMode.ts).
    await sandbox.es.indices.putSettings({
      index: relaxed,
      settings: { number_of_replicas: 0, refresh_interval: '-1' },
    });
    await setMetaKey(sandbox.es, relaxed, 'movies_etl_bulk_load', {
      refresh_interval: null,
      number_of_replicas: '2',
      owner: 'a-loading-syncer',
    });

    const result = await runCli('reindex', sandbox.env, ['--index', 'films'], 120_000);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const [rebuilt] = Object.keys(await sandbox.es.indices.getAlias({ name: alias }));
    assert.ok(rebuilt && rebuilt !== relaxed, 'the alias moved');
    const settings = await sandbox.es.indices.getSettings({ index: rebuilt });
    assert.equal(settings[rebuilt]?.settings?.index?.number_of_replicas, '2');
  });
});
