/**
 * Edits the live path never heard, made while a full load runs: here, while the syncer was down
 * in the middle of its first load (a restart, a deploy). Nobody listened, so nobody was told; the
 * record (row stamps, tombstones) has them. The syncer that comes back resumes the load, and the
 * edits must not wait for its end (an hour on a catalog of ten million films).
 *
 * Found by an outside reading: while a load runs every pass is the load, which reads no changes,
 * so only the first pass after it read these. The same held for edits a listener outage missed,
 * and for a statement too big to list its keys.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

/** A load slow enough to stop and resume in its middle: 20 documents a claim, one indexer, a pause between reads. */
const SLOW = { sizeLimit: 20, bulkSize: 20, sleepMs: 100, workers: 1, pollIntervalMs: 500 };

describe('edits nobody heard, made while a full load runs', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('missed_during_load');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 4_000, 3, 10);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  async function titleOf(id: string): Promise<string | null> {
    const doc = await sandbox.es
      .get<{ title: string }>({ index: sandbox.config.index, id })
      .catch(() => null);
    return doc?._source?.title ?? null;
  }

  it('are indexed while the resumed load still runs', async () => {
    const { rows } = await sandbox.pg.query<{ id: string; title: string }>(
      'SELECT id, title FROM content.film_work ORDER BY id LIMIT 2',
    );
    const [first, second] = rows;
    assert.ok(first && second);
    let syncer: Syncer = await startSyncer(sandbox, SLOW);
    try {
      // The walk goes by id: once the first film is indexed (a realtime get, which needs no
      // refresh), the load is under way, with most of the catalog still ahead of it.
      await eventually(
        async () => (await titleOf(first.id)) !== null && (await titleOf(second.id)) !== null,
        30_000,
        'the first two films indexed',
      );
      await syncer.stop();
      // While it is down: an edit of a film the load has passed, and a deletion.
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = 'Edited while down' WHERE id = $1`,
        [first.id],
      );
      await sandbox.pg.query('DELETE FROM content.film_work WHERE id = $1', [second.id]);
      syncer = await startSyncer(sandbox, SLOW);
      await eventually(
        async () =>
          (await titleOf(first.id)) === 'Edited while down' && (await titleOf(second.id)) === null,
        15_000,
        'the edit and the deletion indexed',
      );
      const plans = new FullLoadPlans(syncer.store);
      assert.ok(
        (await plans.current()) !== null,
        'the load is still running: the edits did not wait for its end',
      );
      // Read beside the load, which records nothing: the pass after it reads them again.
      const marks = await new Watermarks(syncer.store).getAll();
      assert.deepEqual(
        [...marks.values()].filter((mark) => mark !== null),
        [],
        'no watermark set while the load runs',
      );
    } finally {
      await syncer.stop();
    }
  });
});
