/**
 * A row deleted and inserted again under the same id in one transaction, on a catalog whose link
 * foreign keys are checked at commit and do not cascade: the keys Django makes
 * (`DEFERRABLE INITIALLY DEFERRED`, its `on_delete` done by Django itself), and the admin app is
 * Django's. The links still point at the id, so the commit passes, and what the row's documents
 * show elsewhere changed: a film's title in its people's documents, a person's name in their
 * films'.
 *
 * Found by an outside reading: the notification said "deleted" and "inserted", and the other
 * kinds' documents were resolved only for "updated" (a new row has no links yet, a deleted one's
 * links cascade away, or so it was taken). The poller then skipped the transaction as handled:
 * those documents stayed stale for good.
 */
import { after, before, describe, it } from 'node:test';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('a row replaced under its id, with foreign keys checked at commit', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('deferred_keys');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 40, 3, 10);
    // The links' foreign keys as Django makes them.
    const { rows } = await sandbox.pg.query<{ tbl: string; name: string; def: string }>(
      `SELECT conrelid::regclass::text AS tbl, conname AS name, pg_get_constraintdef(oid) AS def
         FROM pg_constraint
        WHERE contype = 'f'
          AND conrelid IN ('content.person_film_work'::regclass, 'content.genre_film_work'::regclass)`,
    );
    for (const { tbl, name, def } of rows) {
      const django = def.replace(/ ON DELETE CASCADE/i, '') + ' DEFERRABLE INITIALLY DEFERRED';
      await sandbox.pg.query(`ALTER TABLE ${tbl} DROP CONSTRAINT ${name}`);
      await sandbox.pg.query(`ALTER TABLE ${tbl} ADD CONSTRAINT ${name} ${django}`);
    }
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it("reaches the documents that show the row: its people's, its films'", async () => {
    const syncer = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
      const replace = async (table: string, column: string, value: string, id: string) => {
        // Asleep, so the writer rings and the change comes by notification.
        await eventually(() => syncer.capture?.cadenceState === 'asleep', 20_000, 'asleep');
        const client = await sandbox.pg.connect();
        try {
          await client.query('BEGIN');
          await client.query(
            `CREATE TEMP TABLE kept ON COMMIT DROP AS SELECT * FROM content.${table} WHERE id = $1`,
            [id],
          );
          await client.query(`DELETE FROM content.${table} WHERE id = $1`, [id]);
          await client.query(`UPDATE kept SET ${column} = $1`, [value]);
          await client.query(`INSERT INTO content.${table} SELECT * FROM kept`);
          await client.query('COMMIT');
        } finally {
          client.release();
        }
        await waitForConvergence(sandbox, 15_000);
      };
      const film = await sandbox.pg.query<{ id: string }>(
        `SELECT film_work_id::text AS id FROM content.person_film_work
          GROUP BY film_work_id ORDER BY count(*) DESC, film_work_id LIMIT 1`,
      );
      await replace('film_work', 'title', 'Replaced title', film.rows[0]?.id ?? '');
      const person = await sandbox.pg.query<{ id: string }>(
        `SELECT person_id::text AS id FROM content.person_film_work
          GROUP BY person_id ORDER BY count(*) DESC, person_id LIMIT 1`,
      );
      await replace('person', 'full_name', 'Replaced Name', person.rows[0]?.id ?? '');
      const genre = await sandbox.pg.query<{ id: string }>(
        `SELECT genre_id::text AS id FROM content.genre_film_work
          GROUP BY genre_id ORDER BY count(*) DESC, genre_id LIMIT 1`,
      );
      await replace('genre', 'name', 'Replaced genre', genre.rows[0]?.id ?? '');
    } finally {
      await syncer.stop();
    }
  });
});
