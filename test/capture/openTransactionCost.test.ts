/**
 * A transaction left open somewhere in the cluster (a console in the middle of one, a long
 * migration, a writer that stays open for minutes: the contract calls that a normal write) holds
 * every snapshot's xmin back, and with it the lower bound of each pass's read. Each pass, every
 * 25 ms while edits come, then walked every row version written since that transaction began, in
 * every table, to keep the few that are new: work that grew with the transaction's age. A pass
 * must read about what changed since the last one, however old the oldest open transaction is.
 *
 * What is counted is what PostgreSQL says it read: the index entries of film_work's change index
 * (pg_stat_user_indexes), per pass.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('a transaction left open for long', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('long_transaction');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 200, 5, 20);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  /** Index entries read from film_work's change index so far (the statistics lag ~1 s). */
  const entriesRead = async () => {
    const { rows } = await sandbox.pg.query<{ read: string }>(
      `SELECT idx_tup_read::text AS read FROM pg_stat_user_indexes
        WHERE indexrelname = 'film_work_etl_txid_idx'`,
    );
    return Number(rows[0]?.read ?? 0);
  };

  it('does not make every pass read every change made since it began', async (t) => {
    const syncer = await startSyncer(sandbox);
    const open = await sandbox.pg.connect();
    try {
      await waitForConvergence(sandbox);
      await open.query('BEGIN');
      await open.query('SELECT pg_current_xact_id()'); // holds an id: every xmin stays at it
      // 20,000 row versions written while it stays open, each statement its own transaction.
      for (let i = 0; i < 100; i++)
        await sandbox.pg.query('UPDATE content.film_work SET rating = coalesce(rating, 0) + 0');
      await waitForConvergence(sandbox, 60_000);
      await delay(2_000); // the syncer's statistics flushed
      const readBefore = await entriesRead();
      const passesBefore = syncer.capture?.stats.passes ?? 0;
      // A trickle of single edits: the syncer polls back to back while they come.
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY id LIMIT 20',
      );
      for (const { id } of rows) {
        await sandbox.pg.query(`UPDATE content.film_work SET title = title || '.' WHERE id = $1`, [
          id,
        ]);
        await delay(50);
      }
      await waitForConvergence(sandbox, 30_000);
      await delay(2_000);
      const passes = (syncer.capture?.stats.passes ?? 0) - passesBefore;
      const perPass = (await entriesRead()) - readBefore;
      t.diagnostic(`${Math.round(perPass / passes)} index entries read per pass, ${passes} passes`);
      assert.ok(passes > 0, 'passes ran');
      assert.ok(
        perPass / passes < 1_000,
        `${Math.round(perPass / passes)} index entries read per pass (${passes} passes) with ` +
          '20,000 row versions written since the oldest open transaction began',
      );
    } finally {
      await open.query('ROLLBACK').catch(() => undefined);
      open.release();
      await syncer.stop();
    }
  });
});
