/**
 * The orphan sweep of a full load: documents whose row went while nobody kept track (Redis lost
 * everything, so no tombstone is read) are found by walking the index, page by page, beside the
 * walk that queues every document. The index is read in pages larger than ETL_SIZE_LIMIT, and
 * looked up in Postgres at most ETL_SIZE_LIMIT ids at a time: this catalog spans many of both,
 * with boundaries that do not line up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import { seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
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

  it('removes every document whose row went while Redis had lost track', async () => {
    const first = await startSyncer(sandbox, SMALL);
    try {
      await waitForConvergence(sandbox);
    } finally {
      await first.stop();
    }
    // Redis restarted empty; meanwhile rows went, spread over the whole id range.
    const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
    if (keys.length > 0) await sandbox.redis.del(...keys);
    const gone = await sandbox.pg.query(
      `DELETE FROM content.film_work WHERE id IN
         (SELECT id FROM content.film_work ORDER BY md5(id::text) LIMIT 61)`,
    );
    await sandbox.pg.query(
      `DELETE FROM content.person WHERE id IN
         (SELECT id FROM content.person ORDER BY md5(id::text) LIMIT 23)`,
    );
    assert.equal(gone.rowCount, 61);

    const { log, lines } = capturingLog();
    const second = await startSyncer(sandbox, SMALL, log, { sweepPageSize: 25 });
    try {
      await waitForConvergence(sandbox);
      const plans = new FullLoadPlans(second.store);
      assert.equal(await plans.current(), null, 'the load finished');
      const swept = lines().filter((l) => l.msg === 'documents of deleted rows queued');
      const orphans = Object.fromEntries(
        swept.map((l) => [l.index as string, l.orphans as number]),
      );
      assert.deepEqual(orphans, { films: 61, persons: 23 });
    } finally {
      await second.stop();
    }
  });
});
