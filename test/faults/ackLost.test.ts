/**
 * `kill -9` after Elasticsearch acknowledged part of a claim and before the claim was removed from
 * Redis: the next syncer gives the claim back and indexes those films again (harmlessly: versioned,
 * idempotent writes), converging with nothing left in processing.
 *
 * To hit that window every time, Redis is reached through a proxy that goes silent right after the
 * first documents of a claim appear in the index: the worker can still write to Elasticsearch, but
 * its acknowledgement to Redis never arrives. Then the process is killed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { proxiedUrl, startFaultProxy, type FaultProxy } from '../helpers/faultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, testLog } from '../helpers/syncerHarness.js';
import { spawnSyncer } from '../helpers/syncerProcess.js';

describe('kill -9 between the Elasticsearch acknowledgement and the claim removal', () => {
  let sandbox: Sandbox;
  let proxy: FaultProxy;
  let store: RedisStore;

  before(async () => {
    sandbox = await createSandbox('acklost');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 2_000, 5, 100);
    proxy = await startFaultProxy(sandbox.config.redisUrl);
    store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
  });

  after(async () => {
    await store.close();
    await proxy.close();
    await sandbox.cleanup();
  });

  it('re-indexes the acknowledged films and converges', async () => {
    const queue = new DocumentQueue(store);
    // 100 bulk requests per claim, two workers: the claim is open long after its first documents
    // landed, even when this process polls late (beside another test file, on a fast machine,
    // 40 requests and six workers indexed all 2,000 films between two polls).
    const first = spawnSyncer(sandbox, {
      REDIS_URL: proxiedUrl(sandbox.config.redisUrl, proxy),
      ETL_SIZE_LIMIT: '1000',
      ETL_BULK_SIZE: '10',
      ETL_WORKERS: '2',
    });
    // Refreshed first: an initial load runs with refresh off (bulk-load mode).
    const indexed = async () => {
      const index = sandbox.config.index;
      await sandbox.es.indices.refresh({ index }).catch(() => undefined);
      return (await sandbox.es.count({ index }).catch(() => ({ count: 0 }))).count;
    };
    await eventually(async () => (await indexed()) > 0, 60_000, 'first documents acknowledged');
    await proxy.blackhole();
    const acknowledged = await indexed();
    const [claim] = await queue.inFlight();
    first.child.kill('SIGKILL');
    await proxy.forward();

    assert.ok(claim && claim.size > 0, 'the claim is still in processing');
    assert.ok(acknowledged < 2_000, 'the syncer was stopped mid-claim');

    const second = spawnSyncer(sandbox);
    try {
      await waitForConvergence(sandbox, 120_000);
      await eventually(async () => (await queue.inFlight()).length === 0, 30_000, 'no claims left');
      console.log(
        `# ${acknowledged} documents acknowledged before the kill; claim of ${claim.size} returned`,
      );
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });
});
