/**
 * Elasticsearch answers 413, with an empty body and nothing written, to a `_bulk` over its
 * `http.max_content_length` (100 MB by default; checked on Elasticsearch 9.5). Films with long
 * descriptions make such bulks at ETL_BULK_SIZE documents, and one document can be over the
 * limit on its own. Such a claim used to fail whole, go back to the queue and fail again, for
 * ever: every other document in it was never indexed. Below that, a request over its
 * `indexing_pressure.memory.limit` alone (10 % of the heap: 54 MB at 512 MB) is answered 429,
 * which is "not now" for any other reason, and was retried for ever the same way (a reindex too).
 * The proxy stands in for a small limit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { films } from '../../src/kinds/films.js';
import { reindex } from '../../src/load/reindexer.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { inProcessReindex } from '../helpers/inProcessReindex.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

const LIMIT = 60_000;

describe('a bulk over what Elasticsearch takes in one request', () => {
  let sandbox: Sandbox;
  let proxy: EsFaultProxy;
  let syncer: Syncer;

  before(async () => {
    sandbox = await createSandbox('bulk_too_large');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 60, 3, 10);
    proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    syncer = await startSyncer(sandbox, {
      pollIntervalMs: 200,
      bulkSize: 10,
      sizeLimit: 30,
      elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
    });
    await waitForConvergence(sandbox);
  });

  after(async () => {
    await syncer.stop();
    await proxy.close();
    await sandbox.cleanup();
  });

  const limits = [
    { as: 'content-length', status: 413, reason: /http\.max_content_length/ },
    { as: 'indexing-pressure', status: 429, reason: /indexing_pressure\.memory\.limit/ },
    { as: 'primary-pressure', status: 429, reason: /indexing_pressure\.memory\.limit/ },
  ] as const;
  for (const { as, status, reason } of limits)
    it(`is sent in smaller bulks, and a document too large alone is a dead letter (${as})`, async () => {
      proxy.limitBulkBytes(LIMIT, as);
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY id LIMIT 21',
      );
      const ids = rows.map((r) => r.id);
      const [huge, ...long] = ids;
      assert.ok(huge);
      // One statement: the twenty-one films are one claim. Ten of them make a body of about
      // 200 KB, over the limit; each alone is a third of it, but the huge one is over it alone.
      await sandbox.pg.query(
        `UPDATE content.film_work
          SET description = repeat('long ', CASE WHEN id = $1 THEN 16000 ELSE 4000 END)
        WHERE id = ANY ($2)`,
        [huge, ids],
      );
      await eventually(
        async () => (await syncer.deadLetters.count()) === 1,
        20_000,
        'a dead letter for the huge film',
      );
      const [letter] = await syncer.deadLetters.list();
      assert.equal(letter?.id, huge);
      assert.equal(letter.status, status);
      assert.match(letter.reason, reason);
      await eventually(
        async () =>
          (await syncer.queue.depth()) === 0 && (await syncer.queue.inFlight()).length === 0,
        20_000,
        'the claim acknowledged',
      );
      for (const id of long) {
        const doc = await sandbox.es.get<{ description: string }>({
          index: sandbox.config.index,
          id,
        });
        assert.equal(doc._source?.description.length, 4000 * 'long '.length, `${id} indexed`);
      }

      // Shortened at the source, the film loads and leaves the dead letters.
      await sandbox.pg.query(`UPDATE content.film_work SET description = 'short' WHERE id = $1`, [
        huge,
      ]);
      await waitForConvergence(sandbox);
      await eventually(
        async () => (await syncer.deadLetters.count()) === 0,
        5_000,
        'dead letter cleared',
      );
    });

  it('does not hold a reindex for ever (indexing-pressure)', async () => {
    proxy.limitBulkBytes(LIMIT, 'indexing-pressure');
    const { rows } = await sandbox.pg.query<{ id: string }>(
      'SELECT id FROM content.film_work ORDER BY id LIMIT 1',
    );
    const huge = rows[0]?.id ?? '';
    await sandbox.pg.query(`UPDATE content.film_work SET description = $2 WHERE id = $1`, [
      huge,
      'long '.repeat(16000),
    ]);
    await eventually(
      async () => (await syncer.deadLetters.count()) === 1,
      20_000,
      'a dead letter for the huge film',
    );
    const serving = async () =>
      Object.keys(await sandbox.es.indices.getAlias({ name: sandbox.config.index }));
    const before = await serving();
    const run = inProcessReindex({
      ...sandbox.config,
      elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
    });
    const stop = new AbortController();
    try {
      const reindexing = reindex({ ...run.deps(films), signal: stop.signal }).then(
        () => 'swapped',
        (err: unknown) => `failed: ${(err as Error).message}`,
      );
      const timer = new Promise<string>((resolve) =>
        setTimeout(() => resolve('still running after 60 s'), 60_000).unref(),
      );
      const outcome = await Promise.race([reindexing, timer]);
      stop.abort(new Error('the test is over'));
      await reindexing;
      // Lettered before the reindex began, so set aside: the swap takes nothing out of search.
      assert.equal(outcome, 'swapped');
    } finally {
      await run.close();
    }
    assert.notDeepEqual(await serving(), before, 'the alias moved to the new index');
    await eventually(
      async () => (await syncer.deadLetters.list())[0]?.status === 429,
      20_000,
      'the film read again after the swap and lettered again',
    );
  });
});
