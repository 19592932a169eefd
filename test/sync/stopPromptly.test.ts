/**
 * A stop that lands in the middle of a poll pass (the start-up catch-up, a full load, a pass
 * while edits stream in) must still stop at once, not after its stop bound with a warning that
 * something is unreachable. (A stop during a pass while the syncer was asleep used to leave the
 * capture loop waiting for the next periodic pass, ETL_POLL_INTERVAL_MS, before it noticed: ten
 * minutes for a test file whose syncers poll every ten minutes.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('stopping while edits stream in', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('stop_busy');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 2_000, 5, 50);
  });

  after(() => sandbox.cleanup());

  it('stops within a second or two, however the stop meets the poll passes', async () => {
    for (let round = 0; round < 6; round++) {
      // No state: the start-up pass is a full load, which the stop interrupts.
      const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
      if (keys.length > 0) await sandbox.redis.del(...keys);
      const { log, lines } = capturingLog();
      // Periodic passes every 10 minutes: only the back-to-back passes that edits wake run.
      const syncer = await startSyncer(sandbox, { pollIntervalMs: 600_000 }, log);
      const edits = new AbortController();
      const writer = (async () => {
        for (let i = 0; !edits.signal.aborted; i++) {
          await sandbox.pg.query(
            `UPDATE content.film_work SET rating = $1
              WHERE id = (SELECT id FROM content.film_work ORDER BY id OFFSET $2 LIMIT 1)`,
            [(i % 90) / 10, i % 2_000],
          );
          await delay(3);
        }
      })();
      await delay(round * 60);
      const started = Date.now();
      await syncer.stop();
      const took = Date.now() - started;
      edits.abort();
      await writer;
      const warned = lines().filter((l) => String(l.msg).startsWith('stopping without waiting'));
      assert.deepEqual(warned, [], `round ${round}: stop gave up waiting after ${took} ms`);
      assert.ok(took < 5_000, `round ${round}: stop took ${took} ms`);
    }
    // And nothing was lost by all those stops.
    const last = await startSyncer(sandbox, { pollIntervalMs: 600_000 });
    try {
      await waitForConvergence(sandbox, 60_000);
    } finally {
      await last.stop();
    }
  });
});
