/**
 * A query the syncer gives up on ends on the server too.
 *
 * Found while reading the reads' timeouts: the 15 s bound was the driver's alone, which stops
 * waiting and drops the connection, while PostgreSQL goes on. A backend waiting for a lock does
 * not notice its client is gone, so while an `ALTER TABLE` (or any transaction holding an
 * exclusive lock) stood on a catalog table, every retry of the syncer left one more backend
 * queued behind it, with its connection slot: an hour of it would have used up
 * `max_connections`, and the editors' own application could not connect.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Postgres } from '../../src/db/postgres.js';
import * as sql from '../../src/sql/queries.js';
import { eventually } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, testLog } from '../helpers/syncerHarness.js';

describe('postgres reads', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('pg_timeout');
    await migrateSandbox(sandbox);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('leave no query running on the server once they time out', async () => {
    const holder = await sandbox.pg.connect();
    const db = new Postgres(sandbox.config.databaseUrl, testLog(), 2, 1_000);
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE etl.version_base IN ACCESS EXCLUSIVE MODE');
      for (let i = 0; i < 3; i++)
        await assert.rejects(db.query(sql.currentSnapshot), 'the read gives up behind the lock');
      const waiting = async () => {
        const { rows } = await sandbox.pg.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = 'movies-etl'
              AND wait_event_type = 'Lock'`,
        );
        return rows[0]?.n ?? -1;
      };
      await eventually(async () => (await waiting()) === 0, 3_000, 'no backend left waiting');
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
      await db.end();
    }
  });

  // From a review: a transaction whose ROLLBACK never reached the server (the driver gave up on it
  // too, queued behind a statement it had already given up on) went back to the pool, still
  // inside the transaction, with its locks and its local settings, for the next query to run in.
  it('drop a connection whose transaction could not be rolled back', async () => {
    const db = new Postgres(sandbox.config.databaseUrl, testLog(), 1, 1_000);
    try {
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query(sql.probeBounds, ['0']);
          // Past the driver's bound (1 s + its 5 s backstop) twice over: the ROLLBACK queued
          // behind it runs out of time too.
          await tx.query(
            sql.query<Record<string, never>>('sleep_past_the_backstop', 'SELECT pg_sleep(13)'),
          );
        }),
        /Query read timeout/,
      );
      const [row] = await db.query(
        sql.query<{ statement_timeout: string }>('show_timeout', 'SHOW statement_timeout'),
      );
      assert.equal(row?.statement_timeout, '1s', 'a connection outside that transaction');
    } finally {
      await db.end();
    }
  });
});
