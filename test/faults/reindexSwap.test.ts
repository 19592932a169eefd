/**
 * A reindex swaps its alias while a syncer's write through that alias is still unanswered: the
 * write landed in the old index, and the reindex had read the film before the edit. The new index
 * must still end up with the edit: the syncer decides whether to mirror before it writes, and a
 * batch whose reindex ended while it was written goes through the alias once more.
 *
 * And the mirror write itself, late: a syncer paused (a stopped VM) after it asked which reindex
 * runs and before that mirror write went out, until the reindex had swapped and ended.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { DocumentBatch } from '../../src/extract/documentBatch.js';
import { BulkWriter } from '../../src/load/bulkWriter.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { runCli, spawnCli } from '../helpers/runCli.js';
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

  /**
   * A reindex reads a film into its new index; the edit of that film is then written through the
   * alias (to the old index), its answer held, while the reindex swaps and ends. Resolves to the
   * film once the reindex has exited 0; the answer waits for `proxy.forward()`.
   */
  async function editDuringSwap(proxy: EsFaultProxy): Promise<string> {
    const alias = sandbox.config.index;
    const [first] = (
      await sandbox.pg.query<{ id: string }>('SELECT id FROM content.film_work ORDER BY id LIMIT 1')
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
    proxy.resetStats();
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
    return id;
  }

  /** A syncer writing through a fault proxy, in step before `run`, stopped after it. */
  async function withProxiedSyncer(
    run: (proxy: EsFaultProxy, syncer: Syncer) => Promise<void>,
  ): Promise<void> {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const syncer = await startSyncer(sandbox, {
      elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
    });
    try {
      await waitForConvergence(sandbox);
      await run(proxy, syncer);
    } finally {
      await syncer.stop();
      await proxy.close();
    }
  }

  it('leaves the edit in the new index', () =>
    withProxiedSyncer(async (proxy) => {
      await editDuringSwap(proxy);
      await delay(1_500); // past the syncer's memory of the reindex (1 s)
      proxy.forward();
      await waitForConvergence(sandbox, 30_000);
    }));

  // Found by an outside reading: the batch asked "which reindex?" before and after its write,
  // and rewrote through the alias only when the answer after was "none". Another reindex begun
  // meanwhile got the batch as its mirror, and the index serving (the first reindex's) never got
  // the edit; once that second reindex failed, the edit was lost for good.
  it('leaves the edit in the new index when another reindex has begun by the answer', () =>
    withProxiedSyncer(async (proxy, syncer) => {
      const alias = sandbox.config.index;
      await editDuringSwap(proxy);
      // A second reindex, slow enough to be stopped before its own swap.
      const second = spawnCli(
        'reindex',
        { ...sandbox.env, ETL_SIZE_LIMIT: '50', ETL_BULK_SIZE: '50', ETL_SLEEP_MS: '400' },
        ['--index', 'films'],
      );
      try {
        await eventually(
          async () => {
            if (second.child.exitCode !== null) throw new Error(second.output());
            const building = await sandbox.es.indices
              .getAlias({ name: `${alias}-reindex-*` })
              .catch(() => ({}));
            return Object.keys(building).length > 0;
          },
          30_000,
          'the second reindex publishing its new index',
        );
        await delay(1_500); // the syncer sees it
        proxy.forward();
        await eventually(
          async () => (await syncer.queue.inFlight()).length === 0,
          10_000,
          'the held batch done',
        );
      } finally {
        second.child.kill('SIGKILL');
        await second.exited;
      }
      // The second reindex's new index is never served: the alias must have the edit itself.
      await waitForConvergence(sandbox, 30_000);
    }));

  /**
   * A film read into a reindex's new index, then edited to `title`: this process's mirror write of
   * the edit is paused (a stopped VM) until the reindex has swapped its alias and exited 0. The
   * edit's write through the alias went to the old index, now deleted. `run` gets the film and
   * `resume`, which lets the mirror write go.
   */
  async function lateMirrorWrite(
    title: string,
    run: (t: { id: string; syncer: Syncer; resume: () => void }) => Promise<void>,
  ): Promise<void> {
    const alias = sandbox.config.index;
    const [first] = (
      await sandbox.pg.query<{ id: string }>('SELECT id FROM content.film_work ORDER BY id LIMIT 1')
    ).rows;
    const id = first?.id ?? '';
    // The pause, made exact: this process's mirror write of the film waits for `resume`. The
    // reindex runs in a process of its own, so its writes are not held.
    let reached: (served: string[]) => void = () => undefined;
    const paused = new Promise<string[]>((resolve) => (reached = resolve));
    let resume = () => {};
    const resumed = new Promise<void>((resolve) => (resume = resolve));
    // Called below with each writer as `this`, and put back after the case.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const write = BulkWriter.prototype.write;
    BulkWriter.prototype.write = async function (
      this: BulkWriter,
      batch: DocumentBatch,
      signal?: AbortSignal,
    ) {
      if (
        this.targetName.startsWith(`${alias}-reindex-`) &&
        batch.documents.some((d) => d.id === id)
      ) {
        reached(Object.keys(await sandbox.es.indices.getAlias({ name: alias })));
        await resumed;
      }
      return write.call(this, batch, signal);
    };
    const syncer = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
      // A reindex a case before killed holds its lease until it lapses.
      await eventually(
        async () =>
          (await sandbox.redis.exists(`${sandbox.config.redisPrefix}reindex-target`)) === 0,
        15_000,
        'no reindex running',
      );
      const leftOver = Object.keys(
        await sandbox.es.indices.getAlias({ name: `${alias}-reindex-*` }).catch(() => ({})),
      );
      // Slow enough that the edit is written long before its swap.
      const reindexing = runCli(
        'reindex',
        { ...sandbox.env, ETL_SIZE_LIMIT: '50', ETL_BULK_SIZE: '50', ETL_SLEEP_MS: '300' },
        ['--index', 'films'],
        120_000,
      );
      let building = '';
      await eventually(
        async () => {
          const found = await sandbox.es.indices
            .getAlias({ name: `${alias}-reindex-*` })
            .catch(() => ({}));
          // Not the index of a reindex a case before killed, if it is still there.
          building = Object.keys(found).find((index) => !leftOver.includes(index)) ?? '';
          if (building === '') return false;
          // A shard that is still starting answers with an error: not yet.
          const doc = await sandbox.es
            .get({ index: building, id }, { ignore: [404] })
            .catch(() => null);
          return doc?.found === true;
        },
        60_000,
        'the film read into the new index',
      );
      await sandbox.pg.query(`UPDATE content.film_work SET title = $2 WHERE id = $1`, [id, title]);
      const servedAtPause = await Promise.race([
        paused,
        delay(30_000).then(() => Promise.reject(new Error('no mirror write of the edit in 30 s'))),
      ]);
      assert.ok(
        !servedAtPause.includes(building),
        'the write through the alias went to the old index',
      );
      const result = await reindexing;
      assert.equal(result.code, 0, result.stdout + result.stderr);
      await run({ id, syncer, resume });
    } finally {
      resume();
      BulkWriter.prototype.write = write;
      await syncer.stop();
    }
  }

  // Found by an outside reading: the late mirror write found the reindex's write alias gone, and
  // what it missed went to a list its reindex had already read. The batch's write through the
  // alias had gone to the old index, which the reindex then deleted: the edit was lost for good.
  it('leaves the edit in the new index when the mirror write comes after the reindex ended', () =>
    lateMirrorWrite('Edited, its mirror write late', async ({ resume }) => {
      resume();
      await waitForConvergence(sandbox, 30_000);
    }));

  // The write once more through the alias has the last word: the index that serves now may refuse
  // what the old one took (a reindex for a stricter mapping). Its refusals were discarded, the claim
  // acknowledged as indexed, and the index kept the older document with no dead letter.
  it('lists a refusal of that write once more through the alias in the dead letters', () =>
    lateMirrorWrite('Refused by the new index', async ({ id, syncer, resume }) => {
      const alias = sandbox.config.index;
      // The new index refuses the edit, as a stricter mapping would: no nested object allowed
      // (genres, persons). Nothing else is written to it meanwhile.
      const limit = 'index.mapping.nested_objects.limit';
      await sandbox.es.indices.putSettings({ index: alias, settings: { [limit]: 0 } });
      try {
        resume();
        await eventually(
          async () => (await syncer.deadLetters.list()).some((l) => l.id === id),
          20_000,
          'the refusal in the dead letters',
        );
        const letter = (await syncer.deadLetters.list()).find((l) => l.id === id);
        assert.match(letter?.reason ?? '', /nested/);
      } finally {
        await sandbox.es.indices.putSettings({ index: alias, settings: { [limit]: null } });
      }
    }));
});
