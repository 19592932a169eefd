/**
 * A key moved by a BEFORE UPDATE trigger of the user's own: a link redirected to another film, a
 * film given another id. The passes read rows as they are now, so only the tombstone the capture
 * writes for the side a row left says that side must be read again. Those tombstones came from
 * column triggers (`AFTER UPDATE OF ...`), which PostgreSQL fires only for the columns the UPDATE
 * names, not for those a BEFORE trigger changes: the film a link left listed its person for good
 * (an outside fuzzer, reproduced). The writers here send no notification (`etl.notify = off`, as
 * for a writer that saw the syncer awake), so the change reaches the index through a pass alone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe("a key moved by a BEFORE UPDATE trigger of the user's own", () => {
  let sandbox: Sandbox;
  let syncer: Syncer;

  before(async () => {
    sandbox = await createSandbox('key_moved');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 20, 3, 10);
    syncer = await startSyncer(sandbox, { pollIntervalMs: 300 });
    await waitForConvergence(sandbox);
  });

  after(async () => {
    await syncer.stop();
    await sandbox.cleanup();
  });

  /** One UPDATE in a transaction that sends no notification. */
  const silently = async (statement: string, values: unknown[]) => {
    const client = await sandbox.pg.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL etl.notify = off');
      await client.query(statement, values);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  };

  it('leaves the film a link was redirected from without its person', async () => {
    const { rows: films } = await sandbox.pg.query<{ id: string }>(
      'SELECT id FROM content.film_work ORDER BY id',
    );
    const target = films[0]?.id ?? '';
    // A house rule: a director link moves to the first film.
    await sandbox.pg.query(`
      CREATE FUNCTION public.redirect_director() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.role = 'director' AND OLD.role <> 'director' THEN
          NEW.film_work_id := '${target}';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER user_redirect BEFORE UPDATE ON content.person_film_work
        FOR EACH ROW EXECUTE FUNCTION public.redirect_director();`);
    const { rows: links } = await sandbox.pg.query<{ id: string; film: string; person: string }>(
      `SELECT id, film_work_id AS film, person_id AS person FROM content.person_film_work
        WHERE film_work_id <> $1 AND role = 'actor'
          AND person_id NOT IN (SELECT person_id FROM content.person_film_work
                                 WHERE film_work_id = $1)
        ORDER BY id LIMIT 1`,
      [target],
    );
    const link = links[0];
    assert.ok(link, 'an actor of another film');
    await silently(`UPDATE content.person_film_work SET role = 'director' WHERE id = $1`, [
      link.id,
    ]);
    const moved = await sandbox.pg.query(
      'SELECT 1 FROM content.person_film_work WHERE id = $1 AND film_work_id = $2',
      [link.id, target],
    );
    assert.equal(moved.rowCount, 1, 'the trigger moved the link');
    await waitForConvergence(sandbox, 15_000);
    const left = await sandbox.es.get<{ actors: { id: string }[] }>({
      index: sandbox.config.index,
      id: link.film,
    });
    assert.ok(!left._source?.actors.some((a) => a.id === link.person), 'not an actor there now');
  });

  it('takes out the old id of a film that a trigger gave another', async () => {
    const old = await insertFilm(sandbox.pg, 'A film to renumber');
    await waitForConvergence(sandbox, 15_000);
    await sandbox.pg.query(`
      CREATE FUNCTION public.renumber() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.title LIKE 'Renumbered:%' AND OLD.title NOT LIKE 'Renumbered:%' THEN
          NEW.id := gen_random_uuid();
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER user_renumber BEFORE UPDATE ON content.film_work
        FOR EACH ROW EXECUTE FUNCTION public.renumber();`);
    await silently(`UPDATE content.film_work SET title = 'Renumbered: ' || title WHERE id = $1`, [
      old,
    ]);
    await waitForConvergence(sandbox, 15_000);
    assert.equal(await sandbox.es.exists({ index: sandbox.config.index, id: old }), false);
  });
});
