/**
 * The timestamp race: a transaction that starts early, stays open across several poll passes and
 * commits last must still be read by the poller. Driven pass by pass, with the live path out of
 * the picture, so only the watermark logic is under test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FanOut } from '../../src/capture/fanOut.js';
import { Resolver } from '../../src/capture/resolver.js';
import { Poller } from '../../src/capture/poller.js';
import { Postgres } from '../../src/db/postgres.js';
import { films } from '../../src/kinds/films.js';
import { IndexedDocumentIds } from '../../src/load/indexedIds.js';
import { ensureIndex } from '../../src/load/indexManager.js';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import { ReloadRequests } from '../../src/queue/reloadRequests.js';
import { ReadLock } from '../../src/queue/readLock.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';

describe('a long transaction that commits last', () => {
  let sandbox: Sandbox;
  let db: Postgres;
  let store: RedisStore;
  let queue: DocumentQueue;
  let poller: Poller;

  before(async () => {
    sandbox = await createSandbox('longtx');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 50, 3, 10);
    const log = testLog();
    db = new Postgres(sandbox.config.databaseUrl, log);
    // Its own prefix: these passes queue and acknowledge without indexing, which the
    // end-to-end tests below must not inherit.
    store = new RedisStore(sandbox.config.redisUrl, `${sandbox.config.redisPrefix}direct:`, log);
    queue = new DocumentQueue(store);
    const lock = new ReadLock(store, 'test', log);
    const target = await ensureIndex(sandbox.es, sandbox.config.index, log);
    poller = new Poller({
      db,
      lock,
      queue,
      watermarks: new Watermarks(store),
      plans: new FullLoadPlans(store),
      reloads: new ReloadRequests(store),
      // The films index alone: the watermark logic is the same for every kind.
      fanOut: new FanOut(queue, new Resolver(db, lock, 200, 0), [films]),
      kinds: [{ kind: films, indexed: new IndexedDocumentIds(sandbox.es, target) }],
      log,
      sizeLimit: 200,
      sleepMs: 0,
      owner: 'test',
    });
  });

  after(async () => {
    await db.end();
    await store.close();
    await sandbox.cleanup();
  });

  const drain = async () => {
    const claim = await queue.claim('test-worker', 10_000);
    if (claim) await queue.ack(claim, claim.ids);
    return new Set(claim?.ids ?? []);
  };

  it('is read when it commits, however many passes went by', async () => {
    assert.equal((await poller.pass()).kind, 'full');
    await drain();

    const { rows } = await sandbox.pg.query<{ id: string }>(
      'SELECT id FROM content.film_work ORDER BY id LIMIT 2',
    );
    const [slow, person] = [rows[0]?.id ?? '', rows[1]?.id ?? ''];
    const long = await sandbox.pg.connect();
    try {
      await long.query('BEGIN');
      await long.query(`UPDATE content.film_work SET title = 'Committed last' WHERE id = $1`, [
        slow,
      ]);

      // Other writers commit meanwhile, and the poller passes over them several times.
      for (let pass = 0; pass < 3; pass++) {
        const other = await insertFilm(sandbox.pg, `Committed meanwhile ${pass}`);
        await poller.pass();
        const queued = await drain();
        assert.ok(queued.has(other), `pass ${pass} saw the film committed before it`);
        assert.ok(!queued.has(slow), 'an uncommitted change is not visible yet');
      }
      await sandbox.pg.query(`UPDATE content.film_work SET rating = 1 WHERE id = $1`, [person]);
      await long.query('COMMIT');
    } finally {
      long.release();
    }

    await poller.pass();
    const queued = await drain();
    assert.ok(queued.has(slow), 'the late commit was read');
    assert.ok(queued.has(person));

    // And once read, it is not read again and again.
    await poller.pass();
    assert.equal((await drain()).size, 0);
  });

  it('reaches the index end to end, with nothing lost', async () => {
    const syncer = await startSyncer(sandbox, { pollIntervalMs: 200 });
    try {
      await waitForConvergence(sandbox);
      const long = await sandbox.pg.connect();
      try {
        await long.query('BEGIN');
        await long.query(`UPDATE content.film_work SET description = 'long' WHERE id IN
                            (SELECT id FROM content.film_work ORDER BY id LIMIT 5)`);
        await insertFilm(sandbox.pg, 'meanwhile');
        await new Promise((resolve) => setTimeout(resolve, 1_000)); // five poll intervals
        await long.query('COMMIT');
      } finally {
        long.release();
      }
      await waitForConvergence(sandbox);
    } finally {
      await syncer.stop();
    }
  });

  it('a rolled-back transaction changes nothing in the index', async () => {
    const syncer = await startSyncer(sandbox, { pollIntervalMs: 200 });
    try {
      await waitForConvergence(sandbox);
      const tx = await sandbox.pg.connect();
      try {
        await tx.query('BEGIN');
        await tx.query(`UPDATE content.film_work SET title = 'never committed'`);
        await tx.query('ROLLBACK');
      } finally {
        tx.release();
      }
      await new Promise((resolve) => setTimeout(resolve, 600));
      await waitForConvergence(sandbox);
      const found = await sandbox.es.count({
        index: sandbox.config.index,
        query: { match_phrase: { title: 'never committed' } },
      });
      assert.equal(found.count, 0);
    } finally {
      await syncer.stop();
    }
  });
});
