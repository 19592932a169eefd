/**
 * The listener under bad input and broken connections: malformed payloads are logged and skipped
 * with the process staying up, and a killed connection comes back with LISTEN and a catch-up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
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
