/**
 * The row stamp: whatever a writer does, a row it inserts or updates carries the writing
 * transaction's id in etl_txid when it commits (the poller finds changes by it), and a film,
 * person or genre carries a current `modified`. Migration 0007 dropped the UPDATE stamp's WHEN
 * test (it cost every UPDATE statement and nearly always passed); these are the cases that test
 * used to decide, so each must come out as before.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox } from '../helpers/syncerHarness.js';

interface Stamp {
  etl_txid: string;
  modified: Date;
  tx: string;
  now: Date;
}

describe('row stamps', () => {
  let sandbox: Sandbox;
  let film: string;

  before(async () => {
    sandbox = await createSandbox('row_stamp');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 3, 2, 4);
    film = await insertFilm(sandbox.pg, 'Stamped');
  });

  after(() => sandbox.cleanup());

  /** Run `statements` in one transaction, then read the film's stamp and that transaction's id. */
  async function inTransaction(statements: (c: pg.PoolClient) => Promise<unknown>): Promise<Stamp> {
    const client = await sandbox.pg.connect();
    try {
      await client.query('BEGIN');
      await statements(client);
      const { rows } = await client.query<Stamp>(
        `SELECT etl_txid::text, modified, pg_current_xact_id()::text AS tx, now() AS now
           FROM content.film_work WHERE id = $1`,
        [film],
      );
      await client.query('COMMIT');
      return rows[0] as Stamp;
    } finally {
      client.release();
    }
  }

  it('an UPDATE that leaves modified alone: stamped, and modified is now', async () => {
    const stamp = await inTransaction((c) =>
      c.query(`UPDATE content.film_work SET title = 'Renamed' WHERE id = $1`, [film]),
    );
    assert.equal(stamp.etl_txid, stamp.tx);
    assert.equal(stamp.modified.getTime(), stamp.now.getTime());
  });

  it('an UPDATE that sets modified: stamped, and its modified is kept', async () => {
    const when = new Date('2001-02-03T04:05:06Z');
    const stamp = await inTransaction((c) =>
      c.query(`UPDATE content.film_work SET rating = 7, modified = $2 WHERE id = $1`, [film, when]),
    );
    assert.equal(stamp.etl_txid, stamp.tx);
    assert.equal(stamp.modified.getTime(), when.getTime());
  });

  it('an UPDATE that writes another etl_txid: stamped all the same', async () => {
    const stamp = await inTransaction((c) =>
      c.query(`UPDATE content.film_work SET etl_txid = '3'::xid8 WHERE id = $1`, [film]),
    );
    assert.equal(stamp.etl_txid, stamp.tx);
  });

  it('two UPDATEs of one row in one transaction: stamped once, modified now', async () => {
    const stamp = await inTransaction(async (c) => {
      await c.query(`UPDATE content.film_work SET title = 'First' WHERE id = $1`, [film]);
      await c.query(`UPDATE content.film_work SET title = 'Second' WHERE id = $1`, [film]);
    });
    assert.equal(stamp.etl_txid, stamp.tx);
    assert.equal(stamp.modified.getTime(), stamp.now.getTime());
  });

  it('a writer that set modified itself keeps it through a later UPDATE of the row', async () => {
    // An ORM stamping modified on save, then a bulk update of other columns in the same
    // transaction: the second UPDATE leaves modified as the first one set it.
    const when = new Date(Date.now() + 3_600_000);
    const stamp = await inTransaction(async (c) => {
      await c.query(`UPDATE content.film_work SET title = 'Saved', modified = $2 WHERE id = $1`, [
        film,
        when,
      ]);
      await c.query(`UPDATE content.film_work SET rating = 8 WHERE id = $1`, [film]);
    });
    assert.equal(stamp.etl_txid, stamp.tx);
    assert.equal(stamp.modified.getTime(), when.getTime());
  });

  it('a person and a genre: stamped, modified now', async () => {
    const { rows } = await sandbox.pg.query<{ table: string; stamped: boolean; current: boolean }>(
      `WITH p AS (
         UPDATE content.person SET full_name = full_name || '.'
          WHERE id = (SELECT id FROM content.person ORDER BY id LIMIT 1)
         RETURNING etl_txid, modified),
       g AS (
         UPDATE content.genre SET name = name || '.'
          WHERE id = (SELECT id FROM content.genre ORDER BY id LIMIT 1)
         RETURNING etl_txid, modified)
       SELECT 'person' AS table, etl_txid = pg_current_xact_id() AS stamped,
              modified = now() AS current FROM p
       UNION ALL
       SELECT 'genre', etl_txid = pg_current_xact_id(), modified = now() FROM g`,
    );
    assert.deepEqual(rows, [
      { table: 'person', stamped: true, current: true },
      { table: 'genre', stamped: true, current: true },
    ]);
  });

  it('a row copied with its old etl_txid: stamped with the copying transaction', async () => {
    const { rows } = await sandbox.pg.query<{ copied: boolean; link: boolean }>(
      `WITH film AS (
         INSERT INTO content.film_work (id, title, type, etl_txid, created, modified)
         SELECT gen_random_uuid(), title || ' (copy)', type, etl_txid, created, modified
           FROM content.film_work WHERE id = $1
         RETURNING etl_txid),
       link AS (
         INSERT INTO content.person_film_work (id, person_id, film_work_id, role, created, etl_txid)
         SELECT gen_random_uuid(), person_id, $1, 'copied', now(), '3'::xid8
           FROM content.person_film_work LIMIT 1
         RETURNING etl_txid)
       SELECT (SELECT etl_txid FROM film) = pg_current_xact_id() AS copied,
              (SELECT etl_txid FROM link) = pg_current_xact_id() AS link`,
      [film],
    );
    assert.deepEqual(rows[0], { copied: true, link: true });
  });

  it('link UPDATEs: stamped with their transaction', async () => {
    const { rows } = await sandbox.pg.query<{ link: string; stamped: boolean }>(
      `WITH person_link AS (
         UPDATE content.person_film_work SET role = role || '!', etl_txid = '3'::xid8
          WHERE id = (SELECT id FROM content.person_film_work ORDER BY id LIMIT 1)
         RETURNING etl_txid),
       genre_link AS (
         UPDATE content.genre_film_work SET created = now()
          WHERE id = (SELECT id FROM content.genre_film_work ORDER BY id LIMIT 1)
         RETURNING etl_txid)
       SELECT 'person' AS link, etl_txid = pg_current_xact_id() AS stamped FROM person_link
       UNION ALL
       SELECT 'genre', etl_txid = pg_current_xact_id() FROM genre_link`,
    );
    assert.deepEqual(rows, [
      { link: 'person', stamped: true },
      { link: 'genre', stamped: true },
    ]);
  });
});
