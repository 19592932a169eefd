/**
 * Redis refusing writes (a full Redis at maxmemory with noeviction answers OOM; a demoted master
 * READONLY; one that cannot save MISCONF) in the middle of a full load, and Redis going away
 * while the syncer stops. These are errors, not disconnects: the client does not retry them, so
 * every step that writes fails in place, acks and give-backs included. Nothing may be lost, no
 * claim may be stranded, and stopping must not wait for Redis forever.
 *
 * Each test runs its own redis-server (test/helpers/redisServer.ts): the shared one must never be
 * made to refuse writes.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { FaultProxy } from '../helpers/faultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { startRedisServer, type RedisServer } from '../helpers/redisServer.js';
import { migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';
import { spawnSyncer } from '../helpers/syncerProcess.js';

describe('redis refusing writes', () => {
  let sandbox: Sandbox;
  let redis: RedisServer;
  let store: RedisStore;
  let queue: DocumentQueue;

  before(async () => {
    sandbox = await createSandbox('redis_writes');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 6_000, 20, 600);
    redis = await startRedisServer();
    store = new RedisStore(redis.url, sandbox.config.redisPrefix, testLog());
    queue = new DocumentQueue(store);
  });

  after(async () => {
    await store.close();
    await redis.stop();
    await sandbox.cleanup();
  });

  /** Every index equals Postgres, and nothing waits or is claimed in Redis. */
  const convergedAndDrained = async () => {
    await waitForConvergence(sandbox, 90_000);
    await eventually(
      async () => (await queue.depth()) === 0 && (await queue.inFlight()).length === 0,
      20_000,
      'queue and claims drained',
    );
  };

  it('loses no film when acks and give-backs fail while claims are in flight', async () => {
    // Elasticsearch refuses half of every bulk's items (429, retried with backoff) from the change
    // until the faults are over, so a backlog is surely left when they begin: how fast it would
    // drain otherwise depends on the machine (on a quick one it was gone before the first fault).
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const syncer = await startSyncer(sandbox, {
      redisUrl: redis.url,
      sizeLimit: 40,
      bulkSize: 40,
      workers: 2,
      elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
    });
    try {
      await waitForConvergence(sandbox, 90_000);
      proxy.rejectBulkItems(0.5, 1_000_000);
      // One statement changes every film; once the poll pass that queued them has moved the
      // watermark on, nothing would ever queue them again: a claim lost now is a film lost.
      const { rows } = await sandbox.pg.query<{ at: Date }>(
        `UPDATE content.film_work SET rating = coalesce(rating, 0) + 1 RETURNING clock_timestamp() AS at`,
      );
      const changedAt = Math.max(...rows.map((r) => r.at.getTime()));
      const watermarks = new Watermarks(store);
      await eventually(
        async () => {
          const mark = await watermarks.get('film_work');
          return mark !== null && Date.parse(mark.at) > changedAt;
        },
        // The pass pages 6,000 changed films 40 at a time, each page fanned out to their people,
        // taking turns with two indexers under the read lock: ~13 s on a quiet machine, and more
        // than twice that when another test file shares the two cores.
        120_000,
        'the change queued and the watermark past it',
      );
      // Refuse writes several times while claims are in flight: each time, some worker has
      // documents acknowledged by Elasticsearch and can neither ack nor return its claim.
      // Up to four times, while the backlog lasts (how long it lasts depends on the machine).
      let rounds = 0;
      for (; rounds < 4; rounds++) {
        const seen = { inFlight: false };
        await eventually(
          async () => {
            seen.inFlight = (await queue.inFlight()).length > 0;
            return seen.inFlight || (await queue.depth()) === 0;
          },
          30_000,
          'a claim in flight, or the backlog gone',
        );
        if (!seen.inFlight) break;
        await redis.refuseWrites();
        await delay(1_500);
        await redis.allowWrites();
        await delay(300);
      }
      assert.ok(rounds > 0, 'Redis refused writes at least once while claims were in flight');
      proxy.forward();
      await convergedAndDrained();
    } finally {
      proxy.forward();
      await redis.allowWrites();
      await syncer.stop();
      await proxy.close();
    }
  });

  it('a syncer started while Redis refuses writes waits for it, then catches up', async () => {
    // Found by the chaos campaign: the first write of a starting indexer (its state) was outside
    // its retry loop, and an OOM there ended the whole syncer.
    await sandbox.pg.query('UPDATE content.film_work SET rating = coalesce(rating, 0) + 0.25');
    await redis.refuseWrites();
    const syncer = spawnSyncer(sandbox, { REDIS_URL: redis.url, ETL_WORKERS: '2' });
    try {
      await delay(8_000);
      assert.equal(
        syncer.child.exitCode,
        null,
        `the syncer exited:\n${syncer.output().slice(-3_000)}`,
      );
      await redis.allowWrites();
      await convergedAndDrained();
    } finally {
      await redis.allowWrites();
      await syncer.stop();
    }
  });

  it('stops within its bound while Redis is away, and the claims come back after', async () => {
    // The syncer reaches Redis through a proxy that can make Redis vanish for it alone.
    const proxy = new FaultProxy({ host: '127.0.0.1', port: redis.port });
    await proxy.forward();
    // Redis state gone and every document stale: the next start must reindex every film.
    await store.redis.flushall();
    await sandbox.pg.query('UPDATE content.film_work SET rating = coalesce(rating, 0) + 0.5');
    const proxied = `redis://127.0.0.1:${proxy.port}/0`;
    try {
      const first = spawnSyncer(sandbox, {
        REDIS_URL: proxied,
        ETL_SIZE_LIMIT: '40',
        ETL_BULK_SIZE: '40',
        ETL_WORKERS: '2',
      });
      await eventually(
        async () => (await queue.inFlight()).length > 0,
        60_000,
        'the full load under way',
      );
      await proxy.refuse();
      await delay(500);
      const started = Date.now();
      const code = await first.stop();
      const took = Date.now() - started;
      assert.equal(code, 0, first.output().slice(-2_000));
      assert.ok(took < 25_000, `stopped after ${took} ms`);
      assert.match(first.output(), /redis/i);
      assert.match(first.output(), /stopped/);

      await proxy.forward();
      const second = spawnSyncer(sandbox, { REDIS_URL: proxied });
      try {
        await waitForConvergence(sandbox, 120_000);
        await eventually(
          async () => (await queue.depth()) === 0 && (await queue.inFlight()).length === 0,
          30_000,
          'claims of the stopped syncer returned and drained',
        );
      } finally {
        assert.equal(await second.stop(), 0);
      }
    } finally {
      await proxy.close();
    }
  });
});
