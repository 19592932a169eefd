/**
 * The persons and genres indices (contract.md section 2b), as the movie site uses them: person
 * search, a person's page, the genres list. Each scenario ends with all three indices equal to
 * the documents the oracle computes from Postgres (waitForConvergence), and checks what a site
 * would show.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, insertGenre, insertPerson, link, seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence, waitForFullLoadDone } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import type { GenreDoc, PersonDoc } from '../helpers/expectedPersonsGenres.js';
import { runCli } from '../helpers/runCli.js';
import { migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';

describe('persons and genres indices', () => {
  let sandbox: Sandbox;
  let syncer: Syncer;

  before(async () => {
    sandbox = await createSandbox('persons_genres');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 300, 6, 40);
    syncer = await startSyncer(sandbox, { pollIntervalMs: 600_000 });
    await waitForConvergence(sandbox, 60_000);
  });

  after(async () => {
    await syncer.stop();
    await sandbox.cleanup();
  });

  const q = (text: string, params: unknown[] = []) => sandbox.pg.query(text, params);
  const person = async (id: string) =>
    (await sandbox.es.get<PersonDoc>({ index: sandbox.config.personsIndex, id }))._source;
  /** Delete the indices behind these aliases; the next start creates them empty. */
  const dropIndices = async (aliases: string[]) => {
    for (const name of aliases) {
      const concrete = Object.keys(await sandbox.es.indices.getAlias({ name }));
      await sandbox.es.indices.delete({ index: concrete });
    }
  };
  const genre = async (id: string) =>
    (await sandbox.es.get<GenreDoc>({ index: sandbox.config.genresIndex, id }))._source;

  it('answers the person search and page a site makes', async () => {
    const film = await insertFilm(sandbox.pg, 'Зеркало', { rating: 8.0 });
    const tarkovsky = await insertPerson(sandbox.pg, 'Андрей Тарковский');
    await link(sandbox.pg, film, { person: tarkovsky, role: 'director' });
    await link(sandbox.pg, film, { person: tarkovsky, role: 'writer' });
    await link(sandbox.pg, film, { person: tarkovsky, role: 'producer' }); // not indexed
    await waitForConvergence(sandbox);
    await sandbox.es.indices.refresh({ index: sandbox.config.personsIndex });
    // /persons/search?query=тарковский: Russian analysis, any case.
    const found = await sandbox.es.search<PersonDoc>({
      index: sandbox.config.personsIndex,
      query: { match: { full_name: 'тарковский' } },
    });
    assert.deepEqual(
      found.hits.hits.map((h) => h._id),
      [tarkovsky],
    );
    // /persons/{id}: the film once, with both indexed roles.
    assert.deepEqual((await person(tarkovsky))?.films, [
      { id: film, title: 'Зеркало', imdb_rating: 8, roles: ['director', 'writer'] },
    ]);
  });

  it("a film's title and rating reach its people; a person's rename reaches their films", async () => {
    const film = await insertFilm(sandbox.pg, 'Сталкер', { rating: 7.9 });
    const actor = await insertPerson(sandbox.pg, 'Александр Кайдановский');
    await link(sandbox.pg, film, { person: actor, role: 'actor' });
    await waitForConvergence(sandbox);
    await q(`UPDATE content.film_work SET title = 'Stalker', rating = 8.2 WHERE id = $1`, [film]);
    await waitForConvergence(sandbox);
    assert.deepEqual((await person(actor))?.films[0], {
      id: film,
      title: 'Stalker',
      imdb_rating: 8.2,
      roles: ['actor'],
    });
    await q(`UPDATE content.person SET full_name = 'Alexander Kaidanovsky' WHERE id = $1`, [actor]);
    await waitForConvergence(sandbox);
    assert.equal((await person(actor))?.full_name, 'Alexander Kaidanovsky');
  });

  it('a link moved to another film and another person reaches all four documents', async () => {
    const [a, b] = [await insertFilm(sandbox.pg, 'Film A'), await insertFilm(sandbox.pg, 'Film B')];
    const [p, r] = [await insertPerson(sandbox.pg, 'Pat'), await insertPerson(sandbox.pg, 'Rae')];
    const linkId = await link(sandbox.pg, a, { person: p, role: 'actor' });
    await waitForConvergence(sandbox);
    await q(`UPDATE content.person_film_work SET film_work_id = $2, person_id = $3 WHERE id = $1`, [
      linkId,
      b,
      r,
    ]);
    await waitForConvergence(sandbox);
    assert.deepEqual((await person(p))?.films, []);
    assert.deepEqual(
      (await person(r))?.films.map((f) => f.id),
      [b],
    );
  });

  it('films_count follows links added, removed and cascaded away with their films', async () => {
    const noir = await insertGenre(sandbox.pg, 'Нуар');
    const films = [];
    for (let i = 0; i < 3; i++) films.push(await insertFilm(sandbox.pg, `Noir ${i}`));
    for (const film of films) await link(sandbox.pg, film, { genre: noir });
    await waitForConvergence(sandbox);
    assert.equal((await genre(noir))?.films_count, 3);
    await q(`DELETE FROM content.genre_film_work WHERE film_work_id = $1`, [films[0]]);
    await q(`DELETE FROM content.film_work WHERE id = $1`, [films[1]]);
    await waitForConvergence(sandbox);
    assert.equal((await genre(noir))?.films_count, 1);
    // /genres: every genre, as SQL counts it.
    await sandbox.es.indices.refresh({ index: sandbox.config.genresIndex });
    const all = await sandbox.es.search<GenreDoc>({ index: sandbox.config.genresIndex, size: 100 });
    const { rows } = await q(`SELECT count(*)::int AS n FROM content.genre`);
    assert.equal(all.hits.hits.length, (rows[0] as { n: number }).n);
  });

  it('deletions of persons and genres made while the syncer was down', async () => {
    await syncer.stop();
    const { rows: people } = await q(`SELECT id FROM content.person ORDER BY id LIMIT 2`);
    const { rows: kinds } = await q(`SELECT id FROM content.genre ORDER BY id LIMIT 1`);
    const [gonePerson, renamed] = people.map((r) => (r as { id: string }).id);
    const goneGenre = (kinds[0] as { id: string }).id;
    await q(`DELETE FROM content.person WHERE id = $1`, [gonePerson]);
    await q(`DELETE FROM content.genre WHERE id = $1`, [goneGenre]);
    await q(`UPDATE content.person SET full_name = 'Renamed while down' WHERE id = $1`, [renamed]);
    syncer = await startSyncer(sandbox, { pollIntervalMs: 600_000 });
    await waitForConvergence(sandbox);
    const missing = { ignore: [404] };
    const index = sandbox.config.personsIndex;
    assert.equal((await sandbox.es.get({ index, id: gonePerson ?? '' }, missing)).found, false);
    const genres = sandbox.config.genresIndex;
    assert.equal((await sandbox.es.get({ index: genres, id: goneGenre }, missing)).found, false);
  });

  it('the first and last possible ids are indexed like any other', async () => {
    const first = '00000000-0000-0000-0000-000000000000';
    const last = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
    await q(`INSERT INTO content.person (id, full_name) VALUES ($1, 'First'), ($2, 'Last')`, [
      first,
      last,
    ]);
    await q(`INSERT INTO content.genre (id, name) VALUES ($1, 'First'), ($2, 'Last')`, [
      first,
      last,
    ]);
    await waitForConvergence(sandbox);
    // And a full load from nothing finds them too.
    await syncer.stop();
    const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
    if (keys.length > 0) await sandbox.redis.del(...keys);
    await dropIndices([sandbox.config.personsIndex, sandbox.config.genresIndex]);
    syncer = await startSyncer(sandbox, { pollIntervalMs: 600_000 });
    await waitForConvergence(sandbox, 60_000);
    assert.equal((await person(first))?.full_name, 'First');
    assert.equal((await genre(last))?.name, 'Last');
    // Over, not only searchable: the next test stops the syncer and edits what it left.
    await waitForFullLoadDone(sandbox);
  });

  it('an upgrade from films only loads the new indices and leaves the films index alone', async () => {
    // What version 0.2 left: the films index and its watermarks, no persons or genres state.
    await syncer.stop();
    for (const table of ['person_tombstone', 'genre_tombstone'])
      await sandbox.redis.del(`${sandbox.config.redisPrefix}watermark:${table}`);
    await dropIndices([sandbox.config.personsIndex, sandbox.config.genresIndex]);
    syncer = await startSyncer(sandbox, { pollIntervalMs: 600_000 });
    await waitForConvergence(sandbox, 60_000);
    const counts = syncer.indexer?.stats.byIndex;
    assert.ok(counts);
    assert.equal(counts.films.indexed, 0, 'no film was indexed again');
    const { rows } = await q(`SELECT count(*)::int AS n FROM content.person`);
    assert.equal(counts.persons.indexed, (rows[0] as { n: number }).n);
  });

  it('npm run status shows the queue and the dead letters per index', async () => {
    await syncer.stop();
    // Work waiting for each index, as a stopped syncer can leave it.
    const ids = async (table: string, n: number) =>
      (await q(`SELECT id FROM content.${table} ORDER BY id LIMIT ${n}`)).rows.map(
        (r) => (r as { id: string }).id,
      );
    const store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
    try {
      await new DocumentQueue(store).enqueue([
        ...(await ids('film_work', 3)),
        ...(await ids('person', 2)).map((id) => `persons/${id}`),
        ...(await ids('genre', 1)).map((id) => `genres/${id}`),
      ]);
    } finally {
      await store.close();
    }
    const status = await runCli('status', sandbox.env, ['--json']);
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout) as {
      queue: { depth: number; byIndex: Record<string, number>; exact: boolean };
      deadLettersByIndex: Record<string, number>;
    };
    assert.deepEqual(report.queue, {
      depth: 6,
      byIndex: { films: 3, persons: 2, genres: 1 },
      exact: true,
    });
    assert.deepEqual(report.deadLettersByIndex, { films: 0, persons: 0, genres: 0 });
    const text = await runCli('status', sandbox.env);
    assert.match(text.stdout, /6 documents waiting \(films 3, persons 2, genres 1\)/);
    syncer = await startSyncer(sandbox, { pollIntervalMs: 600_000 });
    await waitForConvergence(sandbox, 60_000);
  });
});
