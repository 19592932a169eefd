/**
 * The listener under bad input and broken connections: malformed payloads are logged and skipped
 * with the process staying up, and a killed connection comes back with LISTEN and a catch-up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence, waitForFullLoadDone } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('the change listener', () => {
  let sandbox: Sandbox;
  let syncer: Syncer;
  const captured = capturingLog();

  before(async () => {
    sandbox = await createSandbox('listener');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 30, 2, 5);
    syncer = await startSyncer(sandbox, { pollIntervalMs: 600_000 }, captured.log);
    await waitForConvergence(sandbox);
  });

  after(async () => {
    await syncer.stop();
    await sandbox.cleanup();
  });

  it('logs and skips malformed notifications, and keeps syncing', async () => {
    const bad = [
      'not json',
      '{"t":"nope","op":"U","ids":["00000000-0000-0000-0000-000000000001"]}',
      '{"t":"film_work","op":"U","ids":["not-a-uuid"]}',
      '{"t":"film_work","op":"X","ids":["00000000-0000-0000-0000-000000000001"]}',
      '{"t":"film_work","op":"U"}',
      `{"t":"film_work","op":"U","ids":["${'0'.repeat(7900)}"]}`,
    ];
    for (const payload of bad)
      await sandbox.pg.query(`SELECT pg_notify('etl_changes', $1)`, [payload]);
    const film = await insertFilm(sandbox.pg, 'After the junk');
    await waitForConvergence(sandbox);
    const skipped = captured.lines().filter((l) => l.msg === 'skipping malformed notification');
    assert.equal(skipped.length, bad.length);
    assert.ok(skipped.every((l) => typeof l.reason === 'string'));
    assert.ok(syncer.listener?.connected);
    const doc = await sandbox.es.get({ index: sandbox.config.index, id: film });
    assert.ok(doc.found);
  });

  // Found by an outside reading: a message that did not parse (a newer trigger's format, during
  // an upgrade that migrated before every syncer was replaced) was skipped without a word to its
  // transaction's ledger, so the transaction's other, listed messages made it look whole, and the
  // pass skipped the rows of the statement whose message was lost: film B never got its actor.
  it('reads the whole transaction of a message that did not parse', async () => {
    // Nothing of the first load left to read film B again.
    await waitForFullLoadDone(sandbox);
    await eventually(
      async () =>
        (await syncer.queue.depth()) === 0 &&
        (await syncer.queue.inFlight()).length === 0 &&
        captured.lines().some((l) => l.msg === 'full load done'),
      30_000,
      'the first load over',
    );
    const films = await sandbox.pg.query<{ id: string }>(
      'SELECT id::text AS id FROM content.film_work ORDER BY id LIMIT 2',
    );
    const [a, b] = films.rows.map((r) => r.id);
    const { rows } = await sandbox.pg.query<{ id: string }>(
      `SELECT id::text AS id FROM content.person p WHERE NOT EXISTS (
         SELECT 1 FROM content.person_film_work pfw WHERE pfw.person_id = p.id AND pfw.film_work_id = $1)
       ORDER BY id LIMIT 1`,
      [b],
    );
    const person = rows[0]?.id;
    assert.ok(a && b && person);
    const client = await sandbox.pg.connect();
    try {
      await client.query('BEGIN');
      // A statement whose message is listed, as every trigger sends it...
      await client.query(`UPDATE content.film_work SET title = 'Listed' WHERE id = $1`, [a]);
      // ... and one whose message this syncer cannot parse (its triggers made silent, the message
      // sent by hand in a format from the future). The row is stamped all the same (a default).
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query(
        `INSERT INTO content.person_film_work (id, film_work_id, person_id, role, created)
         VALUES (gen_random_uuid(), $1, $2, 'actor', now())`,
        [b, person],
      );
      await client.query(
        `SELECT pg_notify('etl_changes', json_build_object('t', 'person_film_work', 'op', 'I',
           'films', json_build_array($1::text), 'persons', json_build_array($2::text),
           'x', pg_current_xact_id()::text, 'v', 2)::text)`,
        [b, person],
      );
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await waitForConvergence(sandbox, 20_000);
    const doc = await sandbox.es.get<{ actors: { id: string }[] }>({
      index: sandbox.config.index,
      id: b,
    });
    assert.ok(
      doc._source?.actors.some((actor) => actor.id === person),
      'film B has its actor',
    );
  });

  it('comes back after its connection is killed, re-LISTENs, and catches up', async () => {
    const listeners = async () =>
      (
        await sandbox.pg.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE application_name = 'movies-etl listener' AND datname = $1`,
          [sandbox.name],
        )
      ).rows.map((r) => r.pid);
    const [pid] = await listeners();
    assert.ok(pid, 'a listener connection exists');
    await sandbox.pg.query('SELECT pg_terminate_backend($1)', [pid]);
    // Written while the listener is down: only the catch-up after the reconnect can see it.
    await insertFilm(sandbox.pg, 'While the listener was away');
    await eventually(
      async () => {
        const now = await listeners();
        return now.length === 1 && now[0] !== pid;
      },
      15_000,
      'a new listener connection',
    );
    await waitForConvergence(sandbox);
    await eventually(() => syncer.listener?.connected === true, 5_000, 'listener connected');
    // LISTEN is back: a live change arrives without any poll (the interval is ten minutes).
    await insertFilm(sandbox.pg, 'Live again');
    await waitForConvergence(sandbox, 10_000);
  });
});
