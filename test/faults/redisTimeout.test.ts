/**
 * Redis away for longer than a command may wait (5 s). The client then fails the command here, but
 * keeps it queued and sends it when the connection comes back: Redis runs it although its caller
 * has moved on. Found by the chaos campaign (seed 60617081): an indexer's claim timed out, ran a
 * few seconds later when Redis returned, and took 50 documents into a claim that the indexer did
 * not know it held. Its heartbeat kept beating, so no reaper ever gave the claim back, and those
 * documents stayed stale in the index for good.
 *
 * The documents to claim are queued by the test itself, over its own connection (as another
 * syncer with a working connection would queue them) for films it removed from the index: only a
 * claim that really reaches Elasticsearch brings them back. Redis is reached through a proxy that
 * refuses connections, so the syncer alone loses it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { Lease } from '../../src/queue/lease.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { WorkerRegistry } from '../../src/queue/workerRegistry.js';
import { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { proxiedUrl, startFaultProxy, type FaultProxy } from '../helpers/faultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';

describe('redis away longer than a command waits', () => {
  let sandbox: Sandbox;
  let proxy: FaultProxy;
  let store: RedisStore;
  let queue: DocumentQueue;

  before(async () => {
    sandbox = await createSandbox('redis_timeout');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 300, 5, 30);
    proxy = await startFaultProxy(sandbox.config.redisUrl);
    store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
    queue = new DocumentQueue(store);
  });

  after(async () => {
    await store.close();
    await proxy.close();
    await sandbox.cleanup();
  });

  it('a claim that timed out here and ran later in Redis is given back and indexed', async () => {
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(
      sandbox,
      { redisUrl: proxiedUrl(sandbox.config.redisUrl, proxy), workers: 2, sizeLimit: 20 },
      log,
    );
    try {
      await waitForConvergence(sandbox, 60_000);
      await proxy.refuse();
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY id LIMIT 30',
      );
      const ids = rows.map((r) => r.id);
      await sandbox.es.bulk({
        operations: ids.map((id) => ({ delete: { _index: sandbox.config.index, _id: id } })),
        refresh: true,
      });
      await queue.enqueue(ids);
      // An indexer's claim, queued in the client while Redis is unreachable, has timed out.
      await eventually(
        () =>
          lines().some(
            (l) => l.component === 'indexer' && /timed out/i.test(JSON.stringify(l.err ?? '')),
          ),
        30_000,
        'a claim timed out',
      );
      await proxy.forward();
      await waitForConvergence(sandbox, 60_000);
      await eventually(
        async () => (await queue.depth()) === 0 && (await queue.inFlight()).length === 0,
        30_000,
        'queue and claims drained',
        {
          describe: async () => JSON.stringify(await queue.inFlight()),
        },
      );
    } finally {
      await proxy.forward();
      await syncer.stop();
    }
  });

  it('a connection gone silent (a host lost, not closed) is dropped and made again', async () => {
    // A Redis host that dies or is cut off without closing the connection: every command times
    // out, and the client kept writing to the same socket until the kernel gave up on it (about
    // 15 minutes on Linux; never while a middlebox answers at the TCP level, as the proxy does).
    // A Sentinel failover meanwhile was never noticed. Outside reading.
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(
      sandbox,
      { redisUrl: proxiedUrl(sandbox.config.redisUrl, proxy) },
      log,
    );
    try {
      await waitForConvergence(sandbox, 60_000);
      await proxy.blackhole();
      await eventually(
        () => lines().some((l) => /timed out/i.test(JSON.stringify(l.err ?? ''))),
        30_000,
        'a command timed out',
      );
      // New connections go through again; the one the syncer has stays silent.
      await proxy.forward();
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = 'Edited while Redis was silent'
          WHERE id = (SELECT id FROM content.film_work ORDER BY id LIMIT 1)`,
      );
      await waitForConvergence(sandbox, 45_000);
    } finally {
      await proxy.forward();
      await syncer.stop();
    }
  });

  it('a claim recorded for one of its workers that the worker does not hold is given back', async () => {
    // However such a claim came to be (above: an answer lost; here: written before the syncer
    // started, under the id its first worker gets), that worker's heartbeat guards it from
    // every other syncer's reaper: its own reaper must give it back.
    const { log, lines } = capturingLog();
    const syncer = new Syncer(sandbox.config, log, { reapEveryMs: 1_000 });
    const worker = `${syncer.processId}/indexer-1`;
    await queue.enqueue(['00000000-0000-4000-8000-000000000001']);
    const orphan = await queue.claim(worker, 10);
    assert.ok(orphan, 'the test made its claim');
    // Beating already, as that worker soon will: no reaper may take the claim for a dead one's.
    await new WorkerRegistry(store).heartbeat(worker);
    await syncer.start();
    try {
      await eventually(
        async () => !(await queue.inFlight()).some((c) => c.claimId === orphan.id),
        30_000,
        'the claim given back',
      );
      assert.ok(
        // Other error lines may come too (a metrics port another file's syncer holds): no claims.
        lines().some(
          (l) => l.level === 50 && Array.isArray(l.claims) && l.claims.includes(orphan.id),
        ),
        'the give-back is logged as an error',
      );
      await waitForConvergence(sandbox, 60_000);
      await eventually(
        async () => (await queue.depth()) === 0 && (await queue.inFlight()).length === 0,
        30_000,
        'queue and claims drained',
      );
    } finally {
      await syncer.stop();
    }
  });

  it('a lease whose acquire timed out here is not left held when Redis comes back', async () => {
    const viaProxy = new RedisStore(
      proxiedUrl(sandbox.config.redisUrl, proxy),
      sandbox.config.redisPrefix,
      testLog(),
    );
    try {
      const lease = new Lease(viaProxy, viaProxy.key('lock', 'timeout-test'), 30_000);
      await proxy.refuse();
      await assert.rejects(lease.tryAcquire('a reader that gave up'), /timed out/i);
      await proxy.forward();
      // A ping answered on that connection comes after everything queued on it before.
      await eventually(
        () =>
          viaProxy.redis.ping().then(
            () => true,
            () => false,
          ),
        30_000,
        'the connection back',
      );
      // Nobody may hold what nobody knows it holds: every reader would wait out its 30 s.
      assert.equal(await store.redis.get(lease.key), null);
    } finally {
      await proxy.forward();
      await viaProxy.close();
    }
  });
});
