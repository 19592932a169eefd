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
import { after, before, describe, it } from 'node:test';
import type { Config } from '../../src/config.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

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
});
