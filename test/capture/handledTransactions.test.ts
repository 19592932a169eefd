/**
 * A live edit is indexed once: the poll pass passes over transactions the live path has already
 * queued. And it never passes over one it must read: a transaction that also changed too many
 * rows to list, or one whose notifications were not proven complete.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

const POLL_MS = 300;

describe('transactions the live path handled', () => {
  let sandbox: Sandbox;
  let syncer: Syncer;

  before(async () => {
    sandbox = await createSandbox('handled');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 400, 5, 30);
    // Frequent passes: each edit below meets several of them.
    syncer = await startSyncer(sandbox, { pollIntervalMs: POLL_MS });
    await waitForConvergence(sandbox);
  });

  after(async () => {
    await syncer.stop();
    await sandbox.cleanup();
  });

  /** Films documents written so far, once the count has stopped moving. */
  const settledCount = async () => {
    let last = -1;
    await eventually(
      async () => {
        const now = syncer.indexer?.stats.byIndex.films.indexed ?? 0;
        const settled = now === last;
        last = now;
        await delay(POLL_MS * 3);
        return settled;
      },
      20_000,
      'indexing to settle',
    );
    return last;
  };

  it('indexes each live edit once, though several poll passes see its transaction', async () => {
    const before = await settledCount();
    const { rows } = await sandbox.pg.query<{ id: string }>(
      `SELECT id FROM content.film_work ORDER BY id LIMIT 20`,
    );
    for (const [i, { id }] of rows.entries()) {
      await sandbox.pg.query(`UPDATE content.film_work SET title = $2 WHERE id = $1`, [
        id,
        `Edited once ${i}`,
      ]);
      await delay(50);
    }
    await waitForConvergence(sandbox);
    const written = (await settledCount()) - before;
    // Read again by a poll pass, every edit would be written twice (40). An edit that commits in
    // the few milliseconds between a pass's heartbeat and its snapshot is still read twice; on a
    // machine busy with other test files that window widens (4 of 20 seen in CI), so the bound
    // sits well under the 40 of the defect, not at the quiet machine's 1-2.
    assert.ok(written >= 20 && written <= 29, `${written} documents written for 20 edits`);
  });

  it('reads a transaction in full when one of its statements changed too many rows to list', async () => {
    const client = await sandbox.pg.connect();
    try {
      await client.query('BEGIN');
      // One listed statement and one "many" statement (over 100 rows) in the same transaction.
      await client.query(
        `UPDATE content.film_work SET title = 'Listed' WHERE id = (SELECT id FROM content.film_work ORDER BY id LIMIT 1)`,
      );
      await client.query(`UPDATE content.film_work SET rating = 9.9 WHERE title <> 'Listed'`);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await waitForConvergence(sandbox);
  });
});
