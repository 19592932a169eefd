/**
 * Values PostgreSQL holds and Elasticsearch cannot: a `float` rating of NaN or Infinity, or beyond
 * a 32-bit float (the mapping's `float`, which turns it into Infinity); a `date` of `infinity`,
 * before year 1 (`0044-03-15 BC`) or past 9999. Elasticsearch refuses the whole document for one
 * such field, so the film went to the dead letters, and with a bad rating so did the document of
 * every person in its cast (a person's document lists each film's rating): verify reported them
 * missing on every run, and a repair only queued them to fail again. The contract gives both
 * fields as "or null": such a value is null in the documents now, and the rest is indexed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('ratings and dates Elasticsearch cannot hold', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('unrepresentable');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 20, 3, 10);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('index the film and its people with the field null, and leave no dead letter', async () => {
    const syncer = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
      // Films with an actor, so each bad rating reaches a person's document too.
      const { rows } = await sandbox.pg.query<{ id: string }>(
        `SELECT DISTINCT film_work_id AS id FROM content.person_film_work
          WHERE role = 'actor' ORDER BY 1 LIMIT 6`,
      );
      const [nan, infinite, tooBig, forever, bc, farFuture] = rows.map((row) => row.id);
      const set = (column: string, value: string, id: string | undefined) =>
        sandbox.pg.query(`UPDATE content.film_work SET ${column} = $1 WHERE id = $2`, [value, id]);
      await set('rating', 'NaN', nan);
      await set('rating', '-Infinity', infinite);
      await set('rating', '1e39', tooBig);
      await set('creation_date', 'infinity', forever);
      await set('creation_date', '0044-03-15 BC', bc);
      await set('creation_date', '12000-01-01', farFuture);
      // The oracle (test/helpers) applies the same rule, from the raw rows.
      await waitForConvergence(sandbox, 30_000);
      assert.deepEqual(await syncer.deadLetters.list(), [], 'no document refused');
      for (const id of [nan, infinite, tooBig]) {
        const doc = await sandbox.es.get<{ imdb_rating: unknown }>({
          index: sandbox.config.index,
          id: id ?? '',
        });
        assert.equal(doc._source?.imdb_rating, null, `${id}: imdb_rating`);
      }
      for (const id of [forever, bc, farFuture]) {
        const doc = await sandbox.es.get<{ creation_date: unknown }>({
          index: sandbox.config.index,
          id: id ?? '',
        });
        assert.equal(doc._source?.creation_date, null, `${id}: creation_date`);
      }
    } finally {
      await syncer.stop();
    }
  });
});
