/**
 * A reindex swaps its alias while a syncer's write through that alias is still unanswered: the
 * write landed in the old index, and the reindex had read the film before the edit. The new index
 * must still end up with the edit: the syncer decides whether to mirror before it writes, and a
 * batch whose reindex ended while it was written goes through the alias once more.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { runCli } from '../helpers/runCli.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('a reindex swapping its alias under an unanswered write', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('reindex_swap');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 1_000, 5, 50);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('leaves the edit in the new index', async () => {
    const alias = sandbox.config.index;
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const syncer = await startSyncer(sandbox, {
      elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
    });
    try {
      await waitForConvergence(sandbox);
      const [first] = (
        await sandbox.pg.query<{ id: string }>(
          'SELECT id FROM content.film_work ORDER BY id LIMIT 1',
        )
      ).rows;
      const id = first?.id ?? '';
      const reindexing = runCli('reindex', sandbox.env, ['--index', 'films'], 120_000);
      // The reindex has read the film (its first page) and written it into the new index.
      await eventually(
        async () => {
          const building = await sandbox.es.indices
            .getAlias({ name: `${alias}-reindex-*` })
            .catch(() => ({}));
          const [index] = Object.keys(building);
          if (index === undefined) return false;
          // A shard that is still starting answers with an error: not yet.
          const doc = await sandbox.es.get({ index, id }, { ignore: [404] }).catch(() => null);
          return doc?.found === true;
        },
        60_000,
        'the film in the new index',
      );
      // The edit's write through the alias reaches the old index; its answer waits.
      proxy.holdBulkAnswersTo((index) => index === alias);
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = 'Edited during the swap' WHERE id = $1`,
        [id],
      );
      await eventually(
        () => (proxy.stats.indices.get(alias)?.lastAt ?? 0) > 0,
        10_000,
        'the write sent',
      );
      const result = await reindexing;
      assert.equal(result.code, 0, result.stdout + result.stderr);
      await delay(1_500); // past the syncer's memory of the reindex (1 s)
      proxy.forward();
      await waitForConvergence(sandbox, 30_000);
    } finally {
      await syncer.stop();
      await proxy.close();
    }
  });
});
