/**
 * Two deployments on one database: each its own Redis prefix and its own indices (a second
 * cluster, or a move to a new one), both fed from the same tables and tombstones.
 *
 * Outside reading: a syncer prunes the tombstones older than a day that its own watermarks have
 * read past. The other deployment, stopped for longer, found those deletions gone when it came
 * back, and kept the deleted films' documents for good. The pruning now records how far it went
 * (etl.tombstone_horizon), and a deployment whose watermarks are not past it loads again.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Config } from '../../src/config.js';
import type { Snapshot } from '../../src/queue/watermarks.js';
import { pruneTombstones } from '../../src/sql/queries.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

const TOMBSTONE_TABLES = ['film_tombstone', 'person_tombstone', 'genre_tombstone'];

describe('two deployments on one database', () => {
  let sandbox: Sandbox;
  let second: Sandbox;

  before(async () => {
    sandbox = await createSandbox('two_deployments');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 40, 3, 10);
    // Under the sandbox's prefix and index name, so its clean-up removes them too.
    const config: Config = {
      ...sandbox.config,
      redisPrefix: `${sandbox.config.redisPrefix}second:`,
      index: `${sandbox.config.index}-second`,
      personsIndex: `${sandbox.config.index}-second-persons`,
      genresIndex: `${sandbox.config.index}-second-genres`,
    };
    second = { ...sandbox, config };
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('one stopped for long misses no deletion the other pruned meanwhile', async () => {
    const other = await startSyncer(second);
    await waitForConvergence(second);
    await other.stop();

    let first = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
      const [film] = (
        await sandbox.pg.query<{ id: string }>(
          'SELECT id FROM content.film_work ORDER BY id LIMIT 1',
        )
      ).rows;
      assert.ok(film);
      await sandbox.pg.query('DELETE FROM content.film_work WHERE id = $1', [film.id]);
      await waitForConvergence(sandbox);
      // A day goes by; the first deployment's next start prunes (its first pass does).
      for (const table of ['film_tombstone', 'person_tombstone', 'genre_tombstone'])
        await sandbox.pg.query(`UPDATE etl.${table} SET created = now() - interval '2 days'`);
      await first.stop();
      first = await startSyncer(sandbox);
      await eventually(
        async () =>
          (await sandbox.pg.query('SELECT 1 FROM etl.film_tombstone WHERE film_id = $1', [film.id]))
            .rowCount === 0,
        20_000,
        'the tombstone pruned by the first deployment',
      );
    } finally {
      await first.stop();
    }

    const back = await startSyncer(second);
    try {
      await waitForConvergence(second, 30_000);
    } finally {
      await back.stop();
    }
  });

  // Outside reading, reproduced: the check came at the start of a pass, and the tombstones were
  // read at its end. A prune by the other deployment in between (a catch-up pass after a day away
  // reads for a while) took tombstones the pass had not read; it then moved its watermarks past
  // them, and no later pass noticed.
  it('one whose pass is under way when the other prunes misses no deletion', async () => {
    const other = await startSyncer(second);
    await waitForConvergence(second);
    await other.stop();

    const first = await startSyncer(sandbox, { pollIntervalMs: 500 });
    let film: string;
    try {
      await waitForConvergence(sandbox);
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY id LIMIT 1',
      );
      film = rows[0]?.id ?? '';
      await sandbox.pg.query('DELETE FROM content.film_work WHERE id = $1', [film]);
      await waitForConvergence(sandbox);
      // A few more passes: the first deployment's tombstone watermarks past the deletion.
      await delay(2_000);
    } finally {
      await first.stop();
    }
    // A day goes by.
    for (const table of TOMBSTONE_TABLES)
      await sandbox.pg.query(`UPDATE etl.${table} SET created = now() - interval '2 days'`);

    // The second deployment comes back; its first pass is held on a table it reads before the
    // tombstones, after its check of the horizon.
    const locker = await sandbox.pg.connect();
    let back: Syncer | null = null;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE content.person_film_work IN ACCESS EXCLUSIVE MODE');
      const starting = startSyncer(second, { pollIntervalMs: 500 });
      await eventually(
        async () =>
          (
            await sandbox.pg.query(
              `SELECT 1 FROM pg_locks
                WHERE NOT granted AND relation = 'content.person_film_work'::regclass`,
            )
          ).rowCount !== 0,
        10_000,
        "the second deployment's pass waits on the table",
      );
      // Meanwhile the first deployment prunes, with its own statement and its own watermarks
      // (its passes would wait on the same table first).
      const marks = await sandbox.redis.mget(
        ...TOMBSTONE_TABLES.map((t) => `${sandbox.config.redisPrefix}watermark:${t}`),
      );
      const oldest = marks
        .map((mark) => BigInt((JSON.parse(mark ?? '{}') as Snapshot).xmin))
        .reduce((a, b) => (b < a ? b : a));
      await sandbox.pg.query(pruneTombstones.text, [oldest.toString()]);
      const left = await sandbox.pg.query('SELECT 1 FROM etl.film_tombstone WHERE film_id = $1', [
        film,
      ]);
      assert.equal(left.rowCount, 0, 'the tombstone pruned by the first deployment');
      await locker.query('COMMIT');
      back = await starting;
      await waitForConvergence(second, 30_000);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
      await back?.stop();
    }
  });
});
