/**
 * The syncer on a two-node Elasticsearch cluster (the same server `npm run services` installs,
 * started here on local ports), with ELASTICSEARCH_URL naming both nodes. The data node is stopped
 * twice:
 *  - killed in the middle of a full load, while bulk-load mode has taken the replicas away and the
 *    indices' only copies live on that node (they go red: writes wait, then fail, then succeed
 *    once it is back);
 *  - stopped during live edits, with the replicas restored (yellow: the copies on the other node
 *    take over and writes go on).
 * Nothing may be lost, bulk-load mode must restore the replicas, and /readyz must say what it sees.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { startEsCluster, type EsCluster } from '../helpers/esCluster.js';
import { freePort } from '../helpers/freePort.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

interface ReadyBody {
  ready: boolean;
  problems: string[];
  warnings: string[];
  elasticsearch: { status: string; nodes: number; redIndices: string[] } | null;
}

describe('on a two-node Elasticsearch cluster', () => {
  let cluster: EsCluster;
  let sandbox: Sandbox;
  let syncer: Syncer | undefined;
  let readyz: () => Promise<{ status: number; body: ReadyBody }>;

  before(async () => {
    cluster = await startEsCluster();
    sandbox = await createSandbox('escluster', { elasticsearchUrl: cluster.url });
    await migrateSandbox(sandbox);
    // Enough films, in small reads, that the full load is surely under way when the node dies.
    await seedCatalog(sandbox.pg, 2_000, 5, 200);
  });

  after(async () => {
    await syncer?.stop();
    await sandbox.cleanup().catch(() => undefined);
    await cluster.stop();
  });

  it('loses nothing when a node stops during a full load and during live edits', async () => {
    const { admin } = cluster;
    const indices = [sandbox.config.index, sandbox.config.personsIndex, sandbox.config.genresIndex];
    // New shards go to the data node alone: the full load's only copies live where it will die.
    const [firstName] = (await admin.cat.nodes({ format: 'json', h: 'name' }))
      .map((node) => node.name ?? '')
      .filter((name) => name !== cluster.secondName);
    await admin.cluster.putSettings({
      persistent: { 'cluster.routing.allocation.exclude._name': firstName },
    });

    const port = await freePort();
    readyz = async () => {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`);
      return { status: response.status, body: (await response.json()) as ReadyBody };
    };
    syncer = await startSyncer(sandbox, {
      sizeLimit: 20,
      bulkSize: 20,
      sleepMs: 0,
      metricsPort: port,
    });
    const plans = new FullLoadPlans(syncer.store);
    // Bulk-load mode turns refresh off, so a count would show nothing: ask what was written.
    const written = async () => {
      const stats = await admin.indices
        .stats({ index: sandbox.config.index, metric: 'indexing' })
        .catch(() => null);
      return stats?._all.primaries?.indexing?.index_total ?? 0;
    };
    const bulkLoadMode = async () => {
      const settings = await admin.indices.getSettings({ index: sandbox.config.index });
      return Object.values(settings)[0]?.settings?.index?.refresh_interval === '-1';
    };
    await eventually(async () => (await written()) >= 100, 60_000, 'the full load to index films');
    const underway = await bulkLoadMode();
    const loadedBefore = await written();

    // 1. The data node dies mid-load: our indices' only copies are gone until it is back.
    await cluster.stopSecond('SIGKILL');
    await admin.cluster.putSettings({
      persistent: { 'cluster.routing.allocation.exclude._name': null },
    });
    assert.ok(underway, 'the node must die while the full load is still under way');
    assert.ok(loadedBefore < 2_000, `the load had written ${loadedBefore} films already`);
    await insertFilm(sandbox.pg, 'Written while the indices were red');
    await eventually(
      async () => {
        const { status, body } = await readyz();
        return status === 503 && (body.elasticsearch?.redIndices.length ?? 0) > 0;
      },
      30_000,
      '/readyz to report the red indices',
    );
    const red = await readyz();
    assert.ok(red.body.problems.some((p) => p.includes(sandbox.config.index) && /red/.test(p)));
    assert.equal(red.body.elasticsearch?.nodes, 1);

    await cluster.startSecond();
    await waitForConvergence(sandbox, 240_000);
    await eventually(
      async () => (await plans.current()) === null,
      60_000,
      'the full load to finish',
    );
    // Bulk-load mode ends once the queue drains: every index has its replica back.
    const restored = async () => {
      for (const index of indices) {
        const [value] = Object.values(await admin.indices.getSettings({ index }));
        const settings = value?.settings?.index;
        if (settings?.number_of_replicas !== '1' || settings.refresh_interval === '-1')
          return false;
      }
      return true;
    };
    await eventually(restored, 60_000, 'bulk-load mode to restore replicas and refresh');
    await admin.cluster.health({ index: indices, wait_for_status: 'green', timeout: '120s' });
    await eventually(async () => (await readyz()).status === 200, 30_000, 'ready again');

    // 2. Live edits, and the node stops (as for an upgrade): the replicas on the other node take
    // over, the cluster runs yellow, writes go on.
    await insertFilm(sandbox.pg, 'Written before the node stopped');
    await cluster.stopSecond('SIGTERM');
    for (let i = 0; i < 20; i++) await insertFilm(sandbox.pg, `Written with one node, ${i}`);
    await sandbox.pg.query(
      `UPDATE content.film_work SET rating = 9.9
        WHERE id IN (SELECT id FROM content.film_work ORDER BY id LIMIT 50)`,
    );
    await waitForConvergence(sandbox, 120_000);
    const yellow = await readyz();
    assert.equal(yellow.status, 200, JSON.stringify(yellow.body));
    assert.equal(yellow.body.elasticsearch?.status, 'yellow');
    assert.equal(yellow.body.elasticsearch.nodes, 1);
    assert.ok(yellow.body.warnings.some((w) => /cluster yellow, 1 node/.test(w)));

    await cluster.startSecond();
    await insertFilm(sandbox.pg, 'Written after the node came back');
    await waitForConvergence(sandbox, 120_000);
    await admin.cluster.health({ index: indices, wait_for_status: 'green', timeout: '120s' });
    const green = await readyz();
    assert.equal(green.status, 200);
    assert.equal(green.body.elasticsearch?.status, 'green');
    assert.deepEqual(green.body.warnings, []);
  });
});
