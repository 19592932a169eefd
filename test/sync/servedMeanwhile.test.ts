/**
 * A full load begun on news that another syncer's load had already served. Two syncers see the
 * same TRUNCATE; one loads the whole catalog and moves the watermarks past it; the other's pass had
 * read the watermarks just before that load finished, and takes the full-load lease just after:
 * it then loaded the whole catalog a second time (at ten million films, an hour of work for
 * nothing). The reason for a load is now read again once the lease is held.
 *
 * The race is made deterministic here: the test plays the other syncer (it holds the full-load
 * lease, then finishes "its" load by moving the watermarks), and holds the Postgres read lock so
 * that the syncer's pass stops between reading the watermarks and looking for truncations.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ReadLock } from '../../src/queue/readLock.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import * as sql from '../../src/sql/queries.js';
import { sleep } from '../../src/util/sleep.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';

describe('a full load whose reason another syncer served meanwhile', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('served_meanwhile');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 60, 4, 12);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('is not run again once the lease is held', async () => {
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(sandbox, { pollIntervalMs: 200 }, log);
    try {
      await waitForConvergence(sandbox);
      const watermarks = new Watermarks(syncer.store);
      const epoch = await watermarks.epoch();
      assert.ok(epoch);

      // The other syncer takes the full-load lease, and a TRUNCATE happens (the rows are put back
      // in the same transaction, so the catalog is as before and no load is needed for the index
      // to match it once the watermarks move past the truncation).
      const other = await watermarks.guardFullLoad('other-syncer');
      assert.ok(other, 'the test holds the full-load lease');
      const client = await sandbox.pg.connect();
      try {
        await client.query('BEGIN');
        await client.query(
          'CREATE TEMP TABLE saved ON COMMIT DROP AS TABLE content.genre_film_work',
        );
        await client.query('TRUNCATE content.genre_film_work');
        await client.query('INSERT INTO content.genre_film_work SELECT * FROM saved');
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      await eventually(
        () => lines().some((l) => l.msg === 'another syncer is running the full load'),
        20_000,
        'the syncer saw the truncation and found the lease taken',
      );

      // Hold the read lock: the syncer's next pass reads the watermarks (not yet moved), then
      // waits here (for the snapshot it takes before looking for truncations, or to read a table).
      const lock = new ReadLock(syncer.store, 'test-holder', testLog());
      let letGo = () => {};
      const released = new Promise<void>((resolve) => (letGo = resolve));
      const holding = lock.withLock('test', () => released);
      await sleep(1_000);

      // Meanwhile the other syncer's load finishes: watermarks past the TRUNCATE, lease released.
      const [now] = await syncer.db.query(sql.currentSnapshot);
      assert.ok(now);
      const snapshot = { xmin: now.xmin, xmax: now.xmax, xip: now.xip, at: now.at.toISOString() };
      assert.ok(await watermarks.advance(epoch, 'all', snapshot, await watermarks.serverRun()));
      await other.release();
      const from = lines().length;
      letGo();
      await holding;

      // The waiting pass goes on with what it read before (a TRUNCATE not loaded yet) and, holding
      // the lease, either loads everything again or finds it done meanwhile.
      const NOT_NEEDED = 'full load not needed any more: another syncer served its reason';
      const LOADING = 'full load: queueing every document';
      const outcome = () =>
        lines()
          .slice(from)
          .map((l) => l.msg)
          .filter((msg) => msg === NOT_NEEDED || msg === LOADING);
      await eventually(() => outcome().length > 0, 20_000, 'the pass decided');
      assert.deepEqual(outcome(), [NOT_NEEDED], 'no second full load began');
      await waitForConvergence(sandbox);
    } finally {
      await syncer.stop();
    }
  });
});
