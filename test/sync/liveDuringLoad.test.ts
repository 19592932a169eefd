/**
 * Edits made while a full load or an index reload runs reach the index at once, not when the load
 * ends (at ten million films, an hour later).
 *
 * The first notification used to wake the syncer's cadence: it then left every later one to "the
 * next poll pass" and told writers to stop notifying. But while a load runs, a pass is the load
 * (or, in every other syncer, a pass that finds the full-load lease taken and returns), never the
 * incremental pass that would read those edits; and with no incremental pass the cadence never
 * fell asleep again. Found by an outside reading of the live path.
 *
 * The test plays the other syncer: it holds the full-load lease and files a reload request, so
 * every pass of the syncer under test asks for a load and finds it taken.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { HeldLease } from '../../src/queue/lease.js';
import { ReloadRequests } from '../../src/queue/reloadRequests.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence, waitForFullLoadDone } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('edits while another syncer reloads an index', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('live_during_load');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 40, 4, 10);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('are indexed at once, each of them', async () => {
    const { log, lines } = capturingLog();
    // Passes every 300 ms while asleep: within the wait below, a stranded edit would have had
    // dozens of passes to be read in, had any of them been incremental.
    const syncer = await startSyncer(sandbox, { pollIntervalMs: 300 }, log);
    let other: HeldLease | null = null;
    try {
      await waitForFullLoadDone(sandbox);
      await waitForConvergence(sandbox);
      other = await new Watermarks(syncer.store).guardFullLoad('other-syncer');
      assert.ok(other, 'the test holds the full-load lease');
      await new ReloadRequests(syncer.store).request('persons');
      await eventually(
        () => lines().some((l) => l.msg === 'another syncer is running the full load'),
        10_000,
        'the syncer asks for the reload and finds the lease taken',
      );

      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY id LIMIT 4',
      );
      for (const [i, { id }] of rows.entries()) {
        const title = `Edited during the reload ${i}`;
        await sandbox.pg.query('UPDATE content.film_work SET title = $1 WHERE id = $2', [
          title,
          id,
        ]);
        await eventually(
          async () => {
            const doc = await sandbox.es.get<{ title: string }>({
              index: sandbox.config.index,
              id,
            });
            return doc._source?.title === title;
          },
          10_000,
          `edit ${i + 1} of ${rows.length} searchable while the reload runs`,
        );
      }
    } finally {
      await other?.release();
      await syncer.stop();
    }
  });
});
