/**
 * A dead letter says the newest read of its document was refused. An older read of the same
 * document whose write was held back (retried) and lands after that refusal must not clear the
 * letter: the index then keeps the older document, and the refusal would be gone from view (the
 * dead-letters command, the metric, the alert) with nothing left to say why the index is behind.
 * And the other order: a refused read held back until a newer read of the document has loaded
 * must leave no letter, since the index has the document and nothing would ever clear it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence, waitForFullLoadDone } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('a refused document and an older write of it that lands later', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('dead_versions');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 20, 3, 5);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('keeps the dead letter', async () => {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    // One indexer, through the proxy: its write of the first edit is refused (429) and retried.
    const held = await startSyncer(sandbox, {
      workers: 1,
      pollIntervalMs: 200,
      elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
    });
    let direct: Awaited<ReturnType<typeof startSyncer>> | null = null;
    try {
      await waitForConvergence(sandbox);
      await waitForFullLoadDone(sandbox);
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY id LIMIT 1',
      );
      const id = rows[0]?.id ?? '';
      const index = sandbox.config.index;
      proxy.rejectBulkItemsTo((name) => name === index || name.startsWith(`${index}_v`));
      const items = () => proxy.stats.indices.get(index)?.items ?? 0;
      const sent = items();
      await sandbox.pg.query(`UPDATE content.film_work SET title = 'Read first' WHERE id = $1`, [
        id,
      ]);
      await eventually(() => items() > sent, 15_000, 'the first edit read and its write refused');

      // Another syncer, straight to Elasticsearch, reads the second edit, which is refused for good.
      direct = await startSyncer(sandbox, { pollIntervalMs: 200 });
      await sandbox.pg.query(
        `UPDATE content.film_work SET creation_date = 'infinity'::date WHERE id = $1`,
        [id],
      );
      await eventually(
        async () => (await held.deadLetters.list()).some((l) => l.id === id),
        15_000,
        'the second edit dead-lettered',
      );

      // The first write goes through now, and is acknowledged.
      proxy.forward();
      await eventually(
        async () => (await held.queue.inFlight()).length === 0 && (await held.queue.depth()) === 0,
        20_000,
        'every claim acknowledged',
      );
      const letters = await held.deadLetters.list();
      assert.deepEqual(
        letters.map((l) => l.id),
        [id],
        'the refusal of the newer read is still reported',
      );
      assert.match(letters[0]?.reason ?? '', /creation_date/);
    } finally {
      await direct?.stop();
      await held.stop();
      await proxy.close();
    }
  });

  it('leaves no letter for a refused read older than what the index holds', async () => {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const held = await startSyncer(sandbox, {
      workers: 1,
      pollIntervalMs: 200,
      elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
    });
    let direct: Awaited<ReturnType<typeof startSyncer>> | null = null;
    try {
      // The film the first case left refused, fixed.
      await sandbox.pg.query(
        `UPDATE content.film_work SET creation_date = '2000-01-01' WHERE creation_date = 'infinity'`,
      );
      await waitForConvergence(sandbox);
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY id OFFSET 1 LIMIT 1',
      );
      const id = rows[0]?.id ?? '';
      const index = sandbox.config.index;
      proxy.rejectBulkItemsTo((name) => name === index || name.startsWith(`${index}_v`));
      const items = () => proxy.stats.indices.get(index)?.items ?? 0;
      const sent = items();
      // A read Elasticsearch will refuse, held back (429, retried) ...
      await sandbox.pg.query(
        `UPDATE content.film_work SET creation_date = 'infinity'::date WHERE id = $1`,
        [id],
      );
      await eventually(() => items() > sent, 15_000, 'the bad edit read and its write held');

      // ... while the editor fixes it, and another syncer indexes the fix.
      direct = await startSyncer(sandbox, { pollIntervalMs: 200 });
      await sandbox.pg.query(
        `UPDATE content.film_work SET creation_date = '2001-01-01', title = 'Fixed' WHERE id = $1`,
        [id],
      );
      await eventually(
        async () => {
          const doc = await sandbox.es.get<{ title: string }>({ index, id }).catch(() => null);
          return doc?._source?.title === 'Fixed';
        },
        15_000,
        'the fix indexed',
      );

      // The held write goes through now, and is refused for good.
      proxy.forward();
      await eventually(
        async () => (await held.queue.inFlight()).length === 0 && (await held.queue.depth()) === 0,
        20_000,
        'every claim acknowledged',
      );
      assert.ok(
        (held.indexer?.stats.dead ?? 0) > 0,
        'Elasticsearch refused the held read (it parses a document before checking its version)',
      );
      const letters = await held.deadLetters.list();
      assert.deepEqual(
        letters.filter((l) => l.id === id),
        [],
        'the index holds the fix: no letter says the film is refused',
      );
      const doc = await sandbox.es.get<{ title: string }>({ index, id });
      assert.equal(doc._source?.title, 'Fixed');
    } finally {
      await direct?.stop();
      await held.stop();
      await proxy.close();
    }
  });
});
