/**
 * The syncer on highly available Redis, for real: a Sentinel deployment (master, replica,
 * Sentinel) and a Redis Cluster (three masters with a replica each), both started here on local
 * ports. In each, the master holding the syncer's keys fails over in the middle of a full load
 * (the replica is promoted; the old master turns replica and answers writes with READONLY, or in
 * a cluster redirects them) while editors keep writing. Nothing may be lost: the indices end up
 * equal to Postgres, and nothing is left queued or claimed.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import {
  startClusterDeployment,
  startSentinelDeployment,
  type RedisDeployment,
} from '../helpers/redisDeployments.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

// Small reads and bulks: the full load takes many pages, so it is surely under way at the failover.
const SMALL = { sizeLimit: 10, bulkSize: 10, sleepMs: 0 };

const deployments: [string, () => Promise<RedisDeployment>, (name: string) => string][] = [
  ['Sentinel', () => startSentinelDeployment(), (name) => `test:${name}:`],
  // Every key of one script in one slot: the prefix carries a hash tag.
  ['Redis Cluster', startClusterDeployment, (name) => `{test:${name}}:`],
];

describe('on highly available Redis', () => {
  let sandbox: Sandbox;
  let deployment: RedisDeployment | undefined;
  let syncer: Syncer | undefined;
  let proxy: EsFaultProxy | undefined;

  afterEach(async () => {
    proxy?.forward();
    await syncer?.stop();
    await proxy?.close();
    await deployment?.stop();
    await sandbox.cleanup();
    [syncer, proxy, deployment] = [undefined, undefined, undefined];
  });

  for (const [label, start, prefixOf] of deployments) {
    it(`${label}: a failover in the middle of a full load loses nothing`, async () => {
      // Its own catalog and indices: the full load fills them from nothing.
      sandbox = await createSandbox('redisha');
      await migrateSandbox(sandbox);
      await seedCatalog(sandbox.pg, 600, 5, 120);
      deployment = await start();
      // Elasticsearch away at first: the load stops at the queue's bound, half done.
      proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
      const elasticsearch = { ...sandbox.config.elasticsearch, url: proxy.url };
      syncer = await startSyncer(sandbox, {
        ...SMALL,
        redisUrl: deployment.url,
        redisPrefix: prefixOf(sandbox.name),
        elasticsearch,
      });
      proxy.down();
      const plans = new FullLoadPlans(syncer.store);
      await eventually(async () => (await plans.queued()) > 0, 30_000, 'the full load under way');
      await insertFilm(sandbox.pg, 'Written before the failover');

      const { from, to } = await deployment.failover(syncer.store.key('queue'));
      assert.notEqual(from, to);
      await insertFilm(sandbox.pg, 'Written during the failover');
      proxy.forward();
      await insertFilm(sandbox.pg, 'Written after the failover');

      await waitForConvergence(sandbox, 120_000);
      const running = syncer;
      await eventually(
        async () =>
          (await running.queue.depth()) === 0 && (await running.queue.inFlight()).length === 0,
        30_000,
        'nothing queued or claimed',
      );
      // The load finished on the new master: every watermark set, no plan left.
      await eventually(
        async () =>
          [...(await running.watermarks.getAll()).values()].every((mark) => mark !== null) &&
          (await plans.current()) === null,
        30_000,
        'the full load to finish and set every watermark',
      );
    });
  }
});
