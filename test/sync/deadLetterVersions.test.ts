/**
 * A dead letter says the newest read of its document was refused. An older read of the same
 * document whose write was held back (retried) and lands after that refusal must not clear the
 * letter: the index then keeps the older document, and the refusal would be gone from view (the
 * dead-letters command, the metric, the alert) with nothing left to say why the index is behind.
 * And the other order: a refused read held back until a newer read of the document has loaded
 * must leave no letter, since the index has the document and nothing would ever clear it. The
 * same when that newer read was the film's deletion: the index then holds nothing to compare.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../../src/sync/syncer.js';
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

  /** Until the film's document in the index has this title (a realtime get). */
  async function indexedWithTitle(id: string, title: string): Promise<void> {
    await eventually(
      async () => {
        const doc = await sandbox.es
          .get<{ title: string }>({ index: sandbox.config.index, id })
          .catch(() => null);
        return doc?._source?.title === title;
      },
      15_000,
      'the fix indexed',
    );
  }

  interface HeldWrite {
    /** The film edited. */
    id: string;
    /** One indexer, through the proxy. */
    held: Syncer;
    /** Another syncer, straight to Elasticsearch. */
    direct: () => Promise<void>;
    /** The held write goes through, and every claim is acknowledged. */
    release: () => Promise<void>;
  }

  /**
   * A syncer in step whose writes to the films index are then answered 429 (retried) until
   * `release()`; `set` is an edit of the `nth` film, made, read and its write held before `run`.
   */
  async function withHeldWrite(
    nth: number,
    set: string,
    /** What the edited document says, as JSON text. */
    shows: string,
    run: (t: HeldWrite) => Promise<void>,
  ): Promise<void> {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const held = await startSyncer(sandbox, {
      workers: 1,
      pollIntervalMs: 200,
      elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
    });
    let direct: Syncer | null = null;
    try {
      await waitForConvergence(sandbox);
      await waitForFullLoadDone(sandbox);
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY id OFFSET $1 LIMIT 1',
        [nth],
      );
      const id = rows[0]?.id ?? '';
      const index = sandbox.config.index;
      // Only this film's writes: the one indexer must not be held by another film's write (one
      // the syncer's start-up catch-up queued late, say), which would keep it from reading this.
      proxy.rejectBulkItemsTo(
        (name, doc) => doc === id && (name === index || name.startsWith(`${index}_v`)),
      );
      await sandbox.pg.query(`UPDATE content.film_work SET ${set} WHERE id = $1`, [id]);
      // The edit's own read: a write of an earlier read of the film (one indexed twice) is not it.
      await eventually(
        () => proxy.stats.lastSource.get(id)?.includes(shows) ?? false,
        15_000,
        'the edit read and its write held',
      );
      await run({
        id,
        held,
        direct: async () => {
          direct = await startSyncer(sandbox, { pollIntervalMs: 200 });
        },
        release: async () => {
          proxy.forward();
          await eventually(
            async () =>
              (await held.queue.inFlight()).length === 0 && (await held.queue.depth()) === 0,
            20_000,
            'every claim acknowledged',
          );
        },
      });
    } finally {
      await (direct as Syncer | null)?.stop();
      await held.stop();
      await proxy.close();
    }
  }

  it('keeps the dead letter', () =>
    withHeldWrite(
      0,
      `title = 'Read first'`,
      '"Read first"',
      async ({ id, held, direct, release }) => {
        // The second edit, read by the other syncer, is refused for good.
        await direct();
        await sandbox.pg.query(
          `UPDATE content.film_work SET type = repeat('x', 33000) WHERE id = $1`,
          [id],
        );
        await eventually(
          async () => (await held.deadLetters.list()).some((l) => l.id === id),
          15_000,
          'the second edit dead-lettered',
        );
        await release();
        const letters = await held.deadLetters.list();
        assert.deepEqual(
          letters.map((l) => l.id),
          [id],
          'the refusal of the newer read is still reported',
        );
        assert.match(letters[0]?.reason ?? '', /\[type\]/);
        // Fixed, for the next case.
        await sandbox.pg.query(`UPDATE content.film_work SET type = 'movie' WHERE id = $1`, [id]);
      },
    ));

  it('leaves no letter for a refused read older than what the index holds', () =>
    // A read Elasticsearch will refuse, held back (429, retried) ...
    withHeldWrite(
      1,
      `type = repeat('x', 33000)`,
      `"${'x'.repeat(20)}`,
      async ({ id, held, direct, release }) => {
        // ... while the editor fixes it, and the other syncer indexes the fix.
        await direct();
        await sandbox.pg.query(
          `UPDATE content.film_work SET type = 'movie', title = 'Fixed' WHERE id = $1`,
          [id],
        );
        const index = sandbox.config.index;
        await indexedWithTitle(id, 'Fixed');
        await release();
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
      },
    ));

  // Found by the review of the case above: the index was asked which version it holds, and a film
  // deleted since holds none, so the letter stayed, saying a film nobody has any more is refused.
  it('leaves no letter for a refused read of a film deleted since', () =>
    withHeldWrite(
      2,
      `type = repeat('x', 33000)`,
      `"${'x'.repeat(20)}`,
      async ({ id, held, direct, release }) => {
        // ... while the editor deletes the film, and the other syncer deletes its document.
        await direct();
        await sandbox.pg.query('DELETE FROM content.film_work WHERE id = $1', [id]);
        const index = sandbox.config.index;
        await eventually(
          async () => !(await sandbox.es.exists({ index, id })),
          15_000,
          'the document deleted',
        );
        await release();
        assert.ok((held.indexer?.stats.dead ?? 0) > 0, 'Elasticsearch refused the held read');
        const letters = await held.deadLetters.list();
        assert.deepEqual(
          letters.filter((l) => l.id === id),
          [],
          'the film is gone: no letter says it is refused',
        );
        assert.equal(await sandbox.es.exists({ index, id }), false);
      },
    ));

  // Found by an outside reading: a letter was written with a plain HSET, so a late refusal of an
  // older read replaced the newer read's letter, and the check that followed (the index holds a
  // version at least as new as that older read) then cleared it: the index kept the fix while
  // Postgres held a value Elasticsearch refuses, and nothing said so.
  it('keeps the newer letter when an older refusal lands after it', () =>
    // A read Elasticsearch will refuse, held back (429, retried) ...
    withHeldWrite(
      3,
      `type = repeat('x', 33000)`,
      `"${'x'.repeat(20)}`,
      async ({ id, held, direct, release }) => {
        // ... while the editor fixes it, the other syncer indexes the fix, and the editor then
        // sets the refused value again, which the other syncer reads and dead-letters.
        await direct();
        await sandbox.pg.query(
          `UPDATE content.film_work SET type = 'movie', title = 'Fixed once' WHERE id = $1`,
          [id],
        );
        await indexedWithTitle(id, 'Fixed once');
        await sandbox.pg.query(
          `UPDATE content.film_work SET type = repeat('x', 33000), title = 'Broken again' WHERE id = $1`,
          [id],
        );
        await eventually(
          async () => (await held.deadLetters.list()).some((l) => l.id === id),
          15_000,
          'the third edit dead-lettered',
        );
        const newer = (await held.deadLetters.list()).find((l) => l.id === id);
        await release();
        assert.ok((held.indexer?.stats.dead ?? 0) > 0, 'Elasticsearch refused the held read');
        const letters = (await held.deadLetters.list()).filter((l) => l.id === id);
        assert.equal(letters.length, 1, 'the refusal of the newest read is still reported');
        assert.ok(
          (letters[0]?.version ?? 0) >= (newer?.version ?? Infinity),
          `the letter is the newest read's (${letters[0]?.version} >= ${newer?.version})`,
        );
      },
    ));
});
