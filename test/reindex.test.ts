/**
 * `npm run reindex` while syncers run and editors write: search never fails and never comes back
 * empty, each of the three aliases moves to a new index, the old ones go, and no change made
 * during the load is lost. Afterwards nothing of the reindex's own remains (write aliases,
 * `_meta` markers, Redis keys).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../src/sync/syncer.js';
import { insertFilm, seedCatalog } from './helpers/catalog.js';
import { waitForConvergence } from './helpers/convergence.js';
import { createSandbox, type Sandbox } from './helpers/isolation.js';
import { runCli } from './helpers/runCli.js';
import { migrateSandbox, startSyncer } from './helpers/syncerHarness.js';

describe('zero-downtime reindex', () => {
  let sandbox: Sandbox;
  let syncer: Syncer;

  before(async () => {
    sandbox = await createSandbox('reindex');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 3_000, 6, 200);
    syncer = await startSyncer(sandbox);
    await waitForConvergence(sandbox, 60_000);
  });

  after(async () => {
    await syncer.stop();
    await sandbox.cleanup();
  });

  it('swaps the aliases with searches and writes running throughout', async () => {
    const alias = sandbox.config.index;
    const { personsIndex, genresIndex } = sandbox.config;
    const behind = async (name: string) => Object.keys(await sandbox.es.indices.getAlias({ name }));
    const before = await behind(alias);
    const beforeOthers = [...(await behind(personsIndex)), ...(await behind(genresIndex))];
    const stop = new AbortController();
    const searches = { done: 0, failed: 0, empty: 0 };
    const searching = (async () => {
      while (!stop.signal.aborted) {
        try {
          const result = await sandbox.es.search({ index: alias, size: 0, track_total_hits: true });
          const total =
            typeof result.hits.total === 'number'
              ? result.hits.total
              : (result.hits.total?.value ?? 0);
          if (total === 0) searches.empty++;
        } catch {
          searches.failed++;
        }
        searches.done++;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    let writes = 0;
    const writing = (async () => {
      while (!stop.signal.aborted) {
        await insertFilm(sandbox.pg, `written during reindex ${writes}`);
        await sandbox.pg.query(
          `UPDATE content.film_work SET title = 'edited during reindex ' || $1::int
            WHERE id = (SELECT id FROM content.film_work ORDER BY random() LIMIT 1)`,
          [writes],
        );
        await sandbox.pg.query(
          `DELETE FROM content.film_work WHERE id = (SELECT id FROM content.film_work ORDER BY random() LIMIT 1)`,
        );
        await sandbox.pg.query(
          `UPDATE content.person SET full_name = 'renamed during reindex ' || $1::int
            WHERE id = (SELECT id FROM content.person ORDER BY random() LIMIT 1)`,
          [writes],
        );
        writes++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    const result = await runCli(
      'reindex',
      { ...sandbox.env, ETL_SIZE_LIMIT: '200', ETL_BULK_SIZE: '100' },
      [],
      120_000,
    );
    // Search keeps going a little past the swap, and the old index's removal.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    stop.abort();
    await Promise.all([searching, writing]);

    assert.equal(result.code, 0, result.stdout + result.stderr);
    const afterSwap = Object.keys(await sandbox.es.indices.getAlias({ name: alias }));
    assert.equal(afterSwap.length, 1);
    assert.ok(!before.includes(afterSwap[0] ?? ''), 'the alias points at a new index');
    for (const old of before) assert.equal(await sandbox.es.indices.exists({ index: old }), false);
    // Nothing of the reindex's own is left: no other index, no write alias, no marker, no keys.
    const indices = await sandbox.es.indices.get({ index: `${alias}*`, allow_no_indices: true });
    const afterOthers = [...(await behind(personsIndex)), ...(await behind(genresIndex))];
    assert.deepEqual(Object.keys(indices).sort(), [...afterSwap, ...afterOthers].sort());
    for (const old of beforeOthers)
      assert.equal(await sandbox.es.indices.exists({ index: old }), false, `${old} is gone`);
    assert.equal(afterOthers.length, 2);
    const aliases = Object.keys(indices[afterSwap[0] ?? '']?.aliases ?? {});
    assert.deepEqual(aliases, [alias], 'the reindex write alias is gone');
    const mapping = await sandbox.es.indices.getMapping({ index: afterSwap });
    assert.deepEqual(Object.values(mapping)[0]?.mappings._meta ?? {}, {}, 'no reindex marker');
    assert.deepEqual(await sandbox.redis.keys(`${sandbox.config.redisPrefix}reindex-*`), []);
    assert.ok(searches.done > 50, `${searches.done} searches`);
    assert.deepEqual({ failed: searches.failed, empty: searches.empty }, { failed: 0, empty: 0 });
    assert.ok(writes > 5, `${writes} rounds of writes during the reindex`);
    console.log(
      `# ${searches.done} searches and ${writes * 4} writes during the reindex; none failed or came back empty`,
    );
    await waitForConvergence(sandbox, 60_000);
  });
});
