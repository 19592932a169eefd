/**
 * A document Elasticsearch refuses for good goes to the dead letters with the reason; the rest of
 * the batch loads; once the cause is fixed the film loads and leaves the dead letters.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { runCli } from '../helpers/runCli.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('documents Elasticsearch refuses', () => {
  let sandbox: Sandbox;
  let syncer: Syncer;

  before(async () => {
    sandbox = await createSandbox('dead');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 100, 3, 10);
    syncer = await startSyncer(sandbox, { pollIntervalMs: 200 });
    await waitForConvergence(sandbox);
  });

  after(async () => {
    await syncer.stop();
    await sandbox.cleanup();
  });

  it('park the film with the reason, load the rest, and recover once fixed', async () => {
    const { rows } = await sandbox.pg.query<{ id: string }>(
      `SELECT id FROM content.film_work ORDER BY id LIMIT 3`,
    );
    const [bad, goodA, goodB] = rows.map((r) => r.id);
    assert.ok(bad && goodA && goodB);
    // A value Postgres stores happily and Elasticsearch refuses: a type (a keyword) longer than
    // a Lucene term holds. (The contract's fields of free text take any length, see longValues.)
    await sandbox.pg.query(
      `UPDATE content.film_work
          SET type = CASE WHEN id = $1 THEN repeat('x', 33000) ELSE type END,
              title = 'Same batch ' || title
        WHERE id = ANY ($2)`,
      [bad, [bad, goodA, goodB]],
    );
    await eventually(async () => (await syncer.deadLetters.count()) === 1, 15_000, 'a dead letter');
    const [letter] = await syncer.deadLetters.list();
    assert.equal(letter?.id, bad);
    assert.equal(letter.status, 400);
    assert.match(letter.reason, /\[type\]/);

    // The rest of the batch loaded, and nothing is stuck in flight. The letter is written before
    // the claim is acknowledged (the acknowledgement clears the letters of the documents done),
    // so the claim may still be in hand for a moment: it has to leave, not be gone already.
    for (const id of [goodA, goodB]) {
      const doc = await sandbox.es.get<{ title: string }>({ index: sandbox.config.index, id });
      assert.match(doc._source?.title ?? '', /^Same batch /);
    }
    await eventually(
      async () => (await syncer.queue.inFlight()).length === 0,
      5_000,
      'the claim acknowledged',
    );
    assert.equal(await syncer.deadLetters.count(), 1, 'the letter outlives the acknowledgement');

    // Fixed at the source: the film loads and leaves the dead letters.
    await sandbox.pg.query(`UPDATE content.film_work SET type = 'movie' WHERE id = $1`, [bad]);
    await waitForConvergence(sandbox);
    await eventually(
      async () => (await syncer.deadLetters.count()) === 0,
      5_000,
      'dead letter cleared',
    );
  });

  it('can be re-driven after the cause is fixed elsewhere', async () => {
    const { rows } = await sandbox.pg.query<{ id: string }>(
      `SELECT id FROM content.film_work ORDER BY id DESC LIMIT 1`,
    );
    const id = rows[0]?.id ?? '';
    await sandbox.pg.query(`UPDATE content.film_work SET type = repeat('x', 33000) WHERE id = $1`, [
      id,
    ]);
    await eventually(async () => (await syncer.deadLetters.count()) === 1, 15_000, 'a dead letter');
    // Let the poller pass over that write (it re-reads a change once more, harmlessly).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(await syncer.deadLetters.count(), 1);
    // Fixed without a write the syncer would see (triggers bypassed), so only a re-drive helps.
    const client = await sandbox.pg.connect();
    try {
      await client.query(`SET session_replication_role = replica`);
      await client.query(`UPDATE content.film_work SET type = 'movie' WHERE id = $1`, [id]);
    } finally {
      await client.query(`RESET session_replication_role`);
      client.release();
    }
    const listed = await runCli('deadLetters', sandbox.env);
    assert.match(listed.stdout, new RegExp(`${id}\\s+400\\s+\\S*parsing_exception.*type`));
    const retried = await runCli('deadLetters', sandbox.env, ['--retry']);
    assert.match(retried.stdout, /^1 dead letter queued again/);
    await waitForConvergence(sandbox);
    assert.equal(await syncer.deadLetters.count(), 0);
  });

  // From an outside reading: the load a TRUNCATE calls for queues the rows that exist and sweeps
  // the documents the index holds; a refused film is in neither, so its letter stayed for good
  // (and the dead-letter alert with it).
  it('leave with the row when a TRUNCATE removes it', async () => {
    // Refused when new: the index never held it.
    const id = await insertFilm(sandbox.pg, 'Too long a type', { type: 'x'.repeat(33_000) });
    await eventually(
      async () => (await syncer.deadLetters.list()).some((letter) => letter.id === id),
      15_000,
      'a dead letter',
    );
    await sandbox.pg.query('TRUNCATE content.film_work CASCADE');
    await waitForConvergence(sandbox, 60_000);
    await eventually(
      async () => (await syncer.deadLetters.count()) === 0,
      15_000,
      'the letter of a film that is gone cleared',
    );
  });
});
