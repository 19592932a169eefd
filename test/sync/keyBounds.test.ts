/**
 * Films, persons and genres whose ids are the first and the last possible uuid: the full load,
 * the resolver (person and genre to films), the poller's paging, verify and reindex all see them.
 * Every keyset walk once started "after 00000000-…" and so skipped the row whose id is exactly
 * that. Pages are tiny (2 rows) so that every walk crosses page boundaries.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FIRST_UUID, LAST_UUID } from '../../src/util/uuid.js';
import { insertFilm, link } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { runCli } from '../helpers/runCli.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('the first and last possible ids', () => {
  let sandbox: Sandbox;
  const small = { sizeLimit: 2, bulkSize: 2 };
  const env = () => ({ ...sandbox.env, ETL_SIZE_LIMIT: '2', ETL_BULK_SIZE: '2' });

  before(async () => {
    sandbox = await createSandbox('key_bounds');
    await migrateSandbox(sandbox);
    const q = (text: string, params: unknown[]) => sandbox.pg.query(text, params);
    for (const [id, title] of [
      [FIRST_UUID, 'First Film'],
      [LAST_UUID, 'Last Film'],
    ] as const) {
      await q(`INSERT INTO content.film_work (id, title, type) VALUES ($1, $2, 'movie')`, [
        id,
        title,
      ]);
      await q(`INSERT INTO content.person (id, full_name) VALUES ($1, $2)`, [id, `${title} Star`]);
      await q(`INSERT INTO content.genre (id, name) VALUES ($1, $2)`, [id, `${title} Genre`]);
    }
    const others = [];
    for (let i = 0; i < 5; i++) others.push(await insertFilm(sandbox.pg, `Middle ${i}`));
    for (const film of [FIRST_UUID, LAST_UUID, ...others]) {
      await link(sandbox.pg, film, { person: FIRST_UUID, role: 'actor' });
      await link(sandbox.pg, film, { genre: LAST_UUID });
    }
    await link(sandbox.pg, FIRST_UUID, { person: LAST_UUID, role: 'director' });
    await link(sandbox.pg, FIRST_UUID, { genre: FIRST_UUID });
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('the full load, the resolver and the poller index them', async () => {
    const syncer = await startSyncer(sandbox, small);
    try {
      await waitForConvergence(sandbox);
      const first = await sandbox.es.get({ index: sandbox.config.index, id: FIRST_UUID });
      assert.equal(first.found, true);
      // A rename of the first person and of the first genre reaches their films (the resolver).
      await sandbox.pg.query(`UPDATE content.person SET full_name = 'Renamed' WHERE id = $1`, [
        FIRST_UUID,
      ]);
      await sandbox.pg.query(`UPDATE content.genre SET name = 'Regenre' WHERE id = $1`, [
        FIRST_UUID,
      ]);
      await waitForConvergence(sandbox);
    } finally {
      await syncer.stop();
    }
    // Written while no syncer runs: only the poller's paging finds these.
    await sandbox.pg.query(`UPDATE content.film_work SET rating = 9.5 WHERE id = ANY ($1)`, [
      [FIRST_UUID, LAST_UUID],
    ]);
    await sandbox.pg.query(`UPDATE content.person SET full_name = 'Renamed again' WHERE id = $1`, [
      FIRST_UUID,
    ]);
    const again = await startSyncer(sandbox, small);
    try {
      await waitForConvergence(sandbox);
    } finally {
      await again.stop();
    }
  });

  it('verify checks them', async () => {
    await sandbox.es.delete({ index: sandbox.config.index, id: FIRST_UUID, refresh: true });
    const result = await runCli('verify', env(), ['--json', '--settle', '1']);
    assert.equal(result.code, 3, result.stderr);
    const report = JSON.parse(result.stdout) as {
      indices: { films: { rows: number } };
      missing: string[];
    };
    assert.equal(report.indices.films.rows, 7);
    assert.deepEqual(report.missing, [FIRST_UUID]);
    assert.equal((await runCli('verify', env(), ['--repair', '--settle', '1'])).code, 3);
    const syncer = await startSyncer(sandbox, small);
    try {
      await waitForConvergence(sandbox);
    } finally {
      await syncer.stop();
    }
  });

  it('reindex copies them', async () => {
    const result = await runCli('reindex', env(), ['--index', 'films']);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    await sandbox.es.indices.refresh({ index: sandbox.config.index });
    await waitForConvergence(sandbox);
  });
});
