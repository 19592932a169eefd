/**
 * The orphan sweep of a full load: documents whose row went while nobody kept track (Redis lost
 * everything, so no tombstone is read) are found by walking the index, page by page, beside the
 * walk that queues every document. The index is read in pages larger than ETL_SIZE_LIMIT, and
 * looked up in Postgres at most ETL_SIZE_LIMIT ids at a time: this catalog spans many of both,
 * with boundaries that do not line up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fullLoadQueueBound } from '../../src/capture/poller.js';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

const SMALL = { sizeLimit: 10, bulkSize: 10, sleepMs: 0 };

describe('the orphan sweep of a full load', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('orphan_sweep');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 600, 6, 120);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  /** Converge, stop, then Redis loses everything and rows go meanwhile (no tombstone is read). */
  async function loseTrackAndDelete(films: number, persons: number): Promise<void> {
    const first = await startSyncer(sandbox, SMALL);
    try {
      await waitForConvergence(sandbox);
    } finally {
      await first.stop();
    }
    const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
    if (keys.length > 0) await sandbox.redis.del(...keys);
    const gone = await sandbox.pg.query(
      `DELETE FROM content.film_work WHERE id IN
         (SELECT id FROM content.film_work ORDER BY md5(id::text) LIMIT $1)`,
      [films],
    );
    assert.equal(gone.rowCount, films);
    await sandbox.pg.query(
      `DELETE FROM content.person WHERE id IN
         (SELECT id FROM content.person ORDER BY md5(id::text) LIMIT $1)`,
      [persons],
    );
  }

  it('removes every document whose row went while Redis had lost track', async () => {
    await loseTrackAndDelete(61, 23);

    const { log, lines } = capturingLog();
    const second = await startSyncer(sandbox, SMALL, log, { sweepPageSize: 25 });
    try {
      await waitForConvergence(sandbox);
      // Every document can be searchable a moment before the load records its end (its last
      // step, after the sweep's last deletions).
      const plans = new FullLoadPlans(second.store);
      await eventually(async () => (await plans.current()) === null, 15_000, 'the load finished');
      const swept = lines().filter((l) => l.msg === 'documents of deleted rows queued');
      const orphans = Object.fromEntries(
        swept.map((l) => [l.index as string, l.orphans as number]),
      );
      assert.deepEqual(orphans, { films: 61, persons: 23 });
      // What the load says it queued: every document of a row, and the 84 of rows gone.
      const [rows] = (
        await sandbox.pg.query<{ n: number }>(
          `SELECT (SELECT count(*) FROM content.film_work) + (SELECT count(*) FROM content.person)
                + (SELECT count(*) FROM content.genre) AS n`,
        )
      ).rows;
      const done = lines().find((l) => l.msg === 'full load queued' && l.complete === true);
      assert.equal(done?.queued, (rows?.n ?? 0) + 84);
    } finally {
      await second.stop();
    }
  });

  it('queues every document while Elasticsearch refuses the sweep, and sweeps once it stops', async () => {
    await loseTrackAndDelete(9, 4);
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    proxy.rejectSearches();
    const elasticsearch = { ...sandbox.config.elasticsearch, url: proxy.url };
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(sandbox, { ...SMALL, elasticsearch }, log);
    try {
      const plans = new FullLoadPlans(syncer.store);
      // The sweep fails at its first search, again at every pass; the walk beside it goes on.
      await eventually(
        async () =>
          (await plans.cursor('queue:films')) === 'done' &&
          (await plans.cursor('queue:persons')) === 'done' &&
          (await plans.cursor('queue:genres')) === 'done',
        20_000,
        'every document queued while the sweep is refused',
      );
      assert.ok(
        lines().some(
          (l) =>
            l.msg === 'orphan sweep failed; the load goes on, and the next pass resumes the sweep',
        ),
      );
      assert.notEqual(await plans.current(), null, 'the load is not over without its sweep');
      proxy.forward();
      await waitForConvergence(sandbox);
    } finally {
      await syncer.stop();
      await proxy.close();
    }
  });
  it("keeps the queue within the load's bound while it sweeps many orphans", async () => {
    // More orphans than the bound, and no film written meanwhile (Elasticsearch answers 429 to
    // every films item): a sweep that queued whatever it found would take the queue past the
    // bound, and with a whole catalog truncated, Redis past its memory.
    await loseTrackAndDelete(400, 0);
    const { config } = sandbox;
    const films = (index: string) =>
      index.startsWith(config.index) &&
      !index.startsWith(config.personsIndex) &&
      !index.startsWith(config.genresIndex);
    const proxy = await EsFaultProxy.start(config.elasticsearch.url);
    proxy.rejectBulkItemsTo(films);
    const elasticsearch = { ...config.elasticsearch, url: proxy.url };
    const syncer = await startSyncer(sandbox, { ...SMALL, elasticsearch });
    const bound = fullLoadQueueBound(SMALL.sizeLimit);
    let deepest = 0;
    try {
      const plans = new FullLoadPlans(syncer.store);
      const until = Date.now() + 8_000;
      while (Date.now() < until) {
        deepest = Math.max(deepest, await syncer.queue.depth());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.notEqual(await plans.current(), null, 'the load still runs');
      // A check for room and the enqueue after it are two steps: the walk and the sweep, side by
      // side, may each add a few slices past it.
      assert.ok(deepest <= bound + 5 * SMALL.sizeLimit, `queue ${deepest}, bound ${bound}`);
      proxy.forward();
      await waitForConvergence(sandbox);
    } finally {
      proxy.forward();
      await syncer.stop();
      await proxy.close();
    }
  });
});
