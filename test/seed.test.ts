import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { Postgres } from '../src/db/postgres.js';
import { generateCatalog } from '../src/seed/catalogGenerator.js';
import { runCli } from './helpers/runCli.js';
import { createSandbox, type Sandbox } from './helpers/isolation.js';
import { migrateSandbox, testLog } from './helpers/syncerHarness.js';

describe('the catalog generator', () => {
  let sandbox: Sandbox;
  let db: Postgres;

  before(async () => {
    sandbox = await createSandbox('seed');
    await migrateSandbox(sandbox);
    db = new Postgres(sandbox.config.databaseUrl, testLog());
  });

  after(async () => {
    await db.end();
    await sandbox.cleanup();
  });

  const counts = async () =>
    (
      await sandbox.pg.query<Record<string, number>>(
        `SELECT (SELECT count(*)::int FROM content.film_work) AS films,
                (SELECT count(*)::int FROM content.person) AS persons,
                (SELECT count(*)::int FROM content.genre) AS genres,
                (SELECT count(*)::int FROM content.person_film_work) AS person_links,
                (SELECT count(*)::int FROM content.genre_film_work) AS genre_links,
                (SELECT count(DISTINCT type)::int FROM content.film_work) AS types,
                (SELECT count(*)::int FROM content.film_work WHERE title ~ '[а-яё]') AS russian_titles`,
      )
    ).rows[0] ?? {};

  it('makes a realistic catalog of the size asked for', async () => {
    const report = await generateCatalog(db, 2_000);
    assert.equal(report.triggersSkipped, true, 'a superuser seeds without per-row triggers');
    const c = await counts();
    assert.equal(c.films, 2_000);
    assert.equal(c.persons, 6_000);
    assert.ok((c.genres ?? 0) >= 20);
    const linksPerFilm = (c.person_links ?? 0) / 2_000;
    assert.ok(linksPerFilm > 8 && linksPerFilm < 12, `${linksPerFilm} person links per film`);
    assert.ok((c.genre_links ?? 0) >= 2_000);
    assert.equal(c.types, 2);
    assert.ok((c.russian_titles ?? 0) > 0);
    const { rows } = await sandbox.pg.query<{ n: number }>(
      `SELECT max(n)::int AS n FROM (SELECT count(*) AS n FROM content.person_film_work GROUP BY person_id) s`,
    );
    assert.ok((rows[0]?.n ?? 0) > 50, 'a long tail of prolific persons');
  });

  it('is deterministic and idempotent', async () => {
    const before = await counts();
    const digest = async () =>
      (
        await sandbox.pg.query<{ d: string }>(
          `SELECT md5(string_agg(id::text || title || coalesce(rating::text, ''), ',' ORDER BY id)) AS d
             FROM content.film_work`,
        )
      ).rows[0]?.d;
    const first = await digest();
    await generateCatalog(db, 2_000);
    assert.deepEqual(await counts(), before);
    assert.equal(await digest(), first);
  });

  it('--sample leaves a catalog that has films alone', async () => {
    const result = await runCli('seed', sandbox.env, ['--sample']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /catalog is not empty/);
    assert.equal((await counts()).films, 2_000);
  });

  it('gives the same catalog, captured the same way, under a role that may not take shortcuts', async () => {
    const other = await createSandbox('seed-role');
    const role = `seed_writer_${randomBytes(3).toString('hex')}`;
    try {
      await migrateSandbox(other);
      await other.pg.query(`CREATE ROLE ${role} LOGIN`);
      await other.pg.query(`GRANT USAGE ON SCHEMA content, etl TO ${role}`);
      await other.pg.query(`GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA content TO ${role}`);
      const url = new URL(other.config.databaseUrl);
      url.username = role;
      const writer = new Postgres(url.toString(), testLog(), 1, 0);
      try {
        const report = await generateCatalog(writer, 2_000);
        assert.equal(report.triggersSkipped, false);
        assert.equal(report.indexesDeferred, false);
      } finally {
        await writer.end();
      }
      const fingerprint = async (pool: pg.Pool) =>
        (
          await pool.query<Record<string, string | number>>(
            `SELECT (SELECT md5(string_agg(id || title || coalesce(rating::text, ''), ',' ORDER BY id))
                       FROM content.film_work) AS films,
                    (SELECT md5(string_agg(concat_ws(' ', film_work_id, person_id, role), ',' ORDER BY id))
                       FROM content.person_film_work) AS people,
                    (SELECT md5(string_agg(concat_ws(' ', film_work_id, genre_id), ',' ORDER BY id))
                       FROM content.genre_film_work) AS genres,
                    (SELECT count(*)::int FROM content.person_film_work WHERE etl_txid IS NULL)
                    + (SELECT count(*)::int FROM content.film_work WHERE etl_txid IS NULL) AS unstamped`,
          )
        ).rows[0];
      const theirs = await fingerprint(other.pg);
      assert.equal(theirs?.unstamped, 0, 'every row carries the transaction that wrote it');
      assert.deepEqual(theirs, await fingerprint(sandbox.pg));
    } finally {
      await other.cleanup();
      const admin = new pg.Client({ connectionString: sandbox.config.databaseUrl });
      await admin.connect();
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });
});
