/**
 * Every table x insert, update, delete reaches the index while the syncer runs, and after each
 * scenario the whole index equals the documents computed from Postgres, with nothing extra.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, insertGenre, insertPerson, link, seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('live changes reach the index', () => {
  let sandbox: Sandbox;
  let syncer: Syncer;

  before(async () => {
    sandbox = await createSandbox('live');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 300, 6, 40);
    // A long poll interval: these changes must arrive through LISTEN/NOTIFY, not the poller.
    syncer = await startSyncer(sandbox, { pollIntervalMs: 600_000 });
    await waitForConvergence(sandbox);
  });

  after(async () => {
    await syncer.stop();
    await sandbox.cleanup();
  });

  const q = (text: string, params: unknown[] = []) => sandbox.pg.query(text, params);

  it('a new film, with genre and people', async () => {
    const film = await insertFilm(sandbox.pg, 'Солярис', {
      description: 'Психолог прибывает на станцию',
      rating: 8.1,
      creation_date: '1972-03-20',
    });
    const genre = await insertGenre(sandbox.pg, 'Фантастика');
    const director = await insertPerson(sandbox.pg, 'Андрей Тарковский');
    await link(sandbox.pg, film, { genre });
    await link(sandbox.pg, film, { person: director, role: 'director' });
    await waitForConvergence(sandbox);
    const doc = await sandbox.es.get<{ directors_names: string[] }>({
      index: sandbox.config.index,
      id: film,
    });
    assert.deepEqual(doc._source?.directors_names, ['Андрей Тарковский']);
  });

  it('a title edit by plain SQL that leaves modified alone', async () => {
    const { rows } = await q(`SELECT id, modified FROM content.film_work ORDER BY id LIMIT 1`);
    const before = rows[0] as { id: string; modified: Date };
    await q(`UPDATE content.film_work SET title = 'Renamed by SQL' WHERE id = $1`, [before.id]);
    await waitForConvergence(sandbox);
    const after = await q(`SELECT modified FROM content.film_work WHERE id = $1`, [before.id]);
    assert.ok(
      (after.rows[0] as { modified: Date }).modified > before.modified,
      'modified was kept current',
    );
  });

  it('a film type change', async () => {
    await q(`UPDATE content.film_work SET type = 'tv_show' WHERE title = 'Renamed by SQL'`);
    await waitForConvergence(sandbox);
  });

  it('a genre renamed on many films', async () => {
    await q(`UPDATE content.genre SET name = 'Renamed genre' WHERE name = 'Genre 1'`);
    await waitForConvergence(sandbox);
    const hits = await sandbox.es.count({
      index: sandbox.config.index,
      query: { term: { genres_names: 'Renamed genre' } },
    });
    assert.equal(hits.count, 50);
  });

  it('a person renamed', async () => {
    await q(`UPDATE content.person SET full_name = 'Renamed Person' WHERE full_name = 'Person 1'`);
    await waitForConvergence(sandbox);
  });

  it('a link added, changed and removed', async () => {
    const { rows: films } = await q(`SELECT id FROM content.film_work ORDER BY id LIMIT 2`);
    const [a, b] = films as { id: string }[];
    assert.ok(a && b);
    const person = await insertPerson(sandbox.pg, 'Linked Person');
    const linkId = await link(sandbox.pg, a.id, { person, role: 'actor' });
    await waitForConvergence(sandbox);
    await q(`UPDATE content.person_film_work SET role = 'writer' WHERE id = $1`, [linkId]);
    await waitForConvergence(sandbox);
    // The link moves to another film: the first film must lose the person too.
    await q(`UPDATE content.person_film_work SET film_work_id = $2 WHERE id = $1`, [linkId, b.id]);
    await waitForConvergence(sandbox);
    await q(`DELETE FROM content.person_film_work WHERE id = $1`, [linkId]);
    await waitForConvergence(sandbox);
    const { rows: genreLinks } = await q(
      `SELECT id FROM content.genre_film_work WHERE film_work_id = $1`,
      [a.id],
    );
    await q(`DELETE FROM content.genre_film_work WHERE id = ANY($1)`, [
      genreLinks.map((r: { id: string }) => r.id),
    ]);
    await waitForConvergence(sandbox);
  });

  it('a person deleted: the links cascade away', async () => {
    await q(`DELETE FROM content.person WHERE full_name = 'Person 2'`);
    await waitForConvergence(sandbox);
  });

  it('a genre deleted: the links cascade away', async () => {
    await q(`DELETE FROM content.genre WHERE name = 'Genre 2'`);
    await waitForConvergence(sandbox);
  });

  it('a film deleted', async () => {
    await q(
      `DELETE FROM content.film_work WHERE id IN (SELECT id FROM content.film_work ORDER BY id LIMIT 3)`,
    );
    await waitForConvergence(sandbox);
  });

  it('a statement touching more rows than a notification lists', async () => {
    await q(`UPDATE content.film_work SET rating = 1.5 WHERE type = 'movie'`);
    await waitForConvergence(sandbox);
    await q(`DELETE FROM content.person_film_work WHERE role = 'actor'`);
    await waitForConvergence(sandbox);
  });

  it('TRUNCATE of a link table', async () => {
    await q(`TRUNCATE content.genre_film_work`);
    await waitForConvergence(sandbox);
  });

  it('TRUNCATE of the films (cascading to the links)', async () => {
    await q(`TRUNCATE content.film_work CASCADE`);
    await waitForConvergence(sandbox);
    await insertFilm(sandbox.pg, 'After truncate');
    await waitForConvergence(sandbox);
  });
});
