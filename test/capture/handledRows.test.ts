/**
 * While a full load runs no pass reads the changes, and the live path queues what it hears: its
 * transactions are marked handled, and the first pass after the load reads their rows and passes
 * over them. It counted them all the same towards the rows a statement may change before its
 * fan-out is given up for a walk of whole indices (10,000), so after a load beside steady edits
 * one statement of a few rows made that pass walk every person: as long as a full load, during
 * which the same builds up again. Only rows a pass resolves itself may count.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateInto } from '../../bench/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

const WALK_BEGUN = 'many rows changed: queueing every document of the indices they fan out to';

describe('rows the live path queued during a full load', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('handled_rows');
    await migrateSandbox(sandbox);
    await generateInto(sandbox.config.databaseUrl, 5_000);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('do not make the pass after it walk whole indices', async () => {
    const { log, lines } = capturingLog();
    // One slow indexer: the load lasts while the edits below are made.
    const syncer = await startSyncer(
      sandbox,
      { workers: 1, sizeLimit: 50, bulkSize: 50, sleepMs: 20 },
      log,
    );
    try {
      await eventually(
        () => lines().some((l) => l.msg === 'full load: queueing every document'),
        60_000,
        'the full load under way',
      );
      // 10,001 people renamed one by one (as many rows: one edit per person), each in its own
      // transaction: each notifies, and the live path queues it.
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.person ORDER BY id LIMIT 10001',
      );
      assert.equal(rows.length, 10_001);
      let next = 0;
      const edit = async () => {
        for (let row = rows[next++]; row; row = rows[next++])
          await sandbox.pg.query(
            `UPDATE content.person SET full_name = full_name || '.' WHERE id = $1`,
            [row.id],
          );
      };
      await Promise.all([edit(), edit(), edit(), edit()]);
      // A statement over 101 other people: too many to list in a message, so a pass reads it.
      await sandbox.pg.query(
        `UPDATE content.person SET full_name = full_name || '!'
          WHERE id IN (SELECT id FROM content.person ORDER BY id DESC LIMIT 101)`,
      );
      assert.ok(
        !lines().some((l) => l.msg === 'full load queued'),
        'the load still ran when the edits were made (else this test shows nothing: slow it down)',
      );
      // The pass after the load reads those 10,102 rows a page at a time: it has ended, or begun
      // a walk, once the pass after it has run.
      await eventually(
        () => lines().some((l) => l.msg === 'full load queued'),
        180_000,
        'the full load queued',
      );
      const passes = syncer.capture?.stats.passes ?? 0;
      await eventually(
        () =>
          lines().some((l) => l.msg === WALK_BEGUN) ||
          (syncer.capture?.stats.passes ?? 0) >= passes + 2,
        120_000,
        'the pass after the load ended',
      );
      assert.deepEqual(
        lines()
          .filter((l) => l.msg === WALK_BEGUN)
          .map((l) => l.tables),
        [],
        'no walk of whole indices for 101 rows',
      );
      await waitForConvergence(sandbox, 180_000);
    } finally {
      await syncer.stop();
    }
  });
});
