/**
 * An index that takes no writes for a while, for reasons of its own and not of any document: an
 * operator closed it or set `index.blocks.write` (to change its analysis settings, to move or
 * shrink it), or the syncer's credentials lost their write privilege. Elasticsearch answers every
 * item of a `_bulk` then (`cluster_block_exception`, `index_closed_exception`, 403
 * `security_exception`), and none of that is the document's fault.
 *
 * Outside reading: those items went to the dead letters and their claims were acknowledged, so
 * every edit made meanwhile stayed out of the index once it took writes again, until someone ran
 * `dead-letters --retry`. They are retried now, like a 429, until the index takes them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('an index that takes no writes for a while', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('index_blocked');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 30, 3, 10);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('gets the edits made meanwhile once it takes writes again, with no dead letter', async () => {
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(sandbox, {}, log);
    const retried = () =>
      lines().some((line) => line.msg === 'bulk retry' && String(line.reason).includes('blocked'));
    const index = sandbox.config.index;
    const blockWrites = (on: boolean) =>
      sandbox.es.indices.putSettings({ index, settings: { 'index.blocks.write': on } });
    try {
      await waitForConvergence(sandbox);
      await blockWrites(true);
      const films = (
        await sandbox.pg.query<{ id: string }>(
          'SELECT id FROM content.film_work ORDER BY id LIMIT 2',
        )
      ).rows.map((row) => row.id);
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = 'Edited while the index was blocked' WHERE id = $1`,
        [films[0]],
      );
      await sandbox.pg.query('DELETE FROM content.film_work WHERE id = $1', [films[1]]);
      // Either way the writes were answered: retried (now), or refused into the letters (before).
      await eventually(
        async () => retried() || (await syncer.deadLetters.list()).length > 0,
        20_000,
        'the blocked writes answered',
      );
      assert.deepEqual(
        (await syncer.deadLetters.list()).map((letter) => letter.reason),
        [],
        'no dead letter for a write the index refused as a whole',
      );
      await blockWrites(false);
      await waitForConvergence(sandbox, 30_000);
      assert.deepEqual(await syncer.deadLetters.list(), [], 'and none after');
    } finally {
      await blockWrites(false).catch(() => undefined);
      await syncer.stop();
    }
  });

  // Outside reading: each write retried inside the worker until the index took writes again, and
  // a worker's claim mixes the documents of every index. Once each worker had taken a claim with
  // one document of the blocked index, no film or person was indexed either, for as long as the
  // block lasted (an operator's maintenance of one index: minutes to hours).
  // Blocked by an operator (403), or by a disk past its flood stage (read_only_allow_delete: 429).
  for (const block of ['index.blocks.write', 'index.blocks.read_only_allow_delete'])
    it(`holds only its own documents, not those of the other indices (${block})`, async () => {
      await holdsOnlyItsOwn(block);
    });

  async function holdsOnlyItsOwn(block: string): Promise<void> {
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(sandbox, { workers: 2 }, log);
    const genres = sandbox.config.genresIndex;
    const blockGenres = (on: boolean) =>
      sandbox.es.indices.putSettings({ index: genres, settings: { [block]: on } });
    try {
      await waitForConvergence(sandbox);
      await blockGenres(true);
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.genre ORDER BY id LIMIT 2',
      );
      // One rename at a time, each in a claim of its own, until both workers have met the block.
      for (const [i, { id }] of rows.entries()) {
        const before = lines().filter((l) => l.msg === 'bulk retry').length;
        await sandbox.pg.query(`UPDATE content.genre SET name = name || '!' WHERE id = $1`, [id]);
        await eventually(
          () => lines().filter((l) => l.msg === 'bulk retry').length > before,
          20_000,
          `rename ${i + 1} met the block`,
        );
      }
      const film = await sandbox.pg.query<{ id: string }>(
        `UPDATE content.film_work SET title = 'Edited while genres was blocked'
          WHERE id = (SELECT id FROM content.film_work ORDER BY id DESC LIMIT 1) RETURNING id::text`,
      );
      await eventually(
        async () => {
          const doc = await sandbox.es
            .get<{ title: string }>({ index: sandbox.config.index, id: film.rows[0]?.id ?? '' })
            .catch(() => null);
          return doc?._source?.title === 'Edited while genres was blocked';
        },
        15_000,
        'the film edit indexed while genres is blocked',
      );
      await blockGenres(false);
      await waitForConvergence(sandbox, 30_000);
      assert.deepEqual(await syncer.deadLetters.list(), [], 'no dead letter');
    } finally {
      await blockGenres(false).catch(() => undefined);
      await syncer.stop();
    }
  }
});
