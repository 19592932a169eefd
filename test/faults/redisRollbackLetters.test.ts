/**
 * Redis back from a save taken while a claim was being read: the claim is in the save, the dead
 * letters its read wrote afterwards are not. An outside reading found that the acknowledgement
 * then found the claim and went through: the document PostgreSQL could not build had no letter,
 * no retry and no queue entry left, and stayed stale in the index once its cause had passed.
 * The same held for the ids a claim queues again before its acknowledgement (read too slowly, or
 * held for an index refusing writes) and for letters of documents Elasticsearch refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { guardPersons, personInFewestFilms } from '../helpers/personGuard.js';
import { startRedisServer, type RedisServer } from '../helpers/redisServer.js';
import { migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';
import { createSyncerRole, type SyncerRole } from '../helpers/syncerRole.js';

describe('redis back from a save taken while a claim was read', () => {
  let sandbox: Sandbox;
  let role: SyncerRole;
  let redis: RedisServer;
  let store: RedisStore;

  before(async () => {
    sandbox = await createSandbox('rollback_letters');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 20, 3, 10);
    role = await createSyncerRole(sandbox, 'etl_rollback');
    // A person whose rows take 3 s to read and then raise, for the syncer's role: a claim of their
    // films is read for seconds, and ends with dead letters.
    await guardPersons(
      sandbox,
      role,
      'broken',
      "PERFORM pg_sleep(3); RAISE EXCEPTION 'person % cannot be read', id",
      { lookupsOnly: true },
    );
    redis = await startRedisServer();
    store = new RedisStore(redis.url, sandbox.config.redisPrefix, testLog());
  });

  after(async () => {
    await store.close();
    await redis.stop();
    await sandbox.cleanup();
    await role.drop();
  });

  it('reads the claim again, so a document lettered since the save is lettered again', async () => {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const syncer = await startSyncer(
      sandbox,
      {
        databaseUrl: role.databaseUrl,
        listenUrl: role.databaseUrl,
        redisUrl: redis.url,
        elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
        workers: 1,
      },
      testLog(),
      { unreadableRetry: { firstMs: 1_000, tries: 6 } },
    );
    const queue = new DocumentQueue(store);
    const letters = `${sandbox.config.redisPrefix}dead-letters`;
    try {
      await waitForConvergence(sandbox);
      const { person, films } = await personInFewestFilms(sandbox.pg, { asProducer: false });
      const bad = films[0] ?? '';
      const { rows } = await sandbox.pg.query<{ id: string }>(
        `SELECT id::text AS id FROM content.film_work WHERE id <> ALL ($1::uuid[]) LIMIT 1`,
        [films],
      );
      const other = rows[0]?.id ?? '';
      // The write of the film that can be built waits for its answer until Redis is back.
      proxy.holdBulkAnswersTo(
        (index) => index === sandbox.config.index || index.startsWith(`${sandbox.config.index}_v`),
      );
      await sandbox.pg.query('INSERT INTO content.broken VALUES ($1)', [person]);
      // Both films changed where the capture does not look, and queued as `verify --repair` or
      // `dead-letters --retry` queue documents: with no transaction for a pass to read again.
      const client = await sandbox.pg.connect();
      try {
        await client.query('BEGIN');
        await client.query("SET LOCAL session_replication_role = 'replica'");
        await client.query(
          `UPDATE content.film_work SET description = 'Edited where the capture does not look' WHERE id = ANY ($1::uuid[])`,
          [[bad, other]],
        );
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      await queue.enqueue([bad, other]);
      // Saved while the film's claim is read (3 s a try), before the read fails.
      await eventually(
        async () => {
          if ((await store.redis.hexists(letters, bad)) === 1) return false;
          for (const claim of await queue.inFlight())
            if ((await store.redis.lrange(claim.key, 0, -1)).includes(bad)) return true;
          return false;
        },
        10_000,
        'the film claimed',
      );
      await redis.snapshot();
      assert.equal(await store.redis.hexists(letters, bad), 0, 'saved before the letter');
      await eventually(
        async () => (await store.redis.hexists(letters, bad)) === 1,
        30_000,
        'the film lettered',
      );
      await redis.restartFromSnapshot();
      proxy.forward();
      // The cause passes: the film's retry, if it has one, reads it.
      await sandbox.pg.query('TRUNCATE content.broken');
      await waitForConvergence(sandbox, 30_000);
    } finally {
      await syncer.stop();
      await proxy.close();
    }
  });
});
