/**
 * PostgreSQL misbehaving under the syncer, through a TCP proxy (test/helpers/faultProxy.ts): a
 * listener socket that goes silent (half-open), a database that refuses connections for longer
 * than any library's own retry window, and a connection that silently loses notifications (a
 * transaction-mode pooler). After each fault the index must equal the documents computed from
 * Postgres, no claim may be left in flight, and the listener must be connected again.
 * (pg_terminate_backend of the listener is covered in test/capture/listener.test.ts.)
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { proxiedUrl, startFaultProxy, type FaultProxy } from '../helpers/faultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';
import { spawnSyncer } from '../helpers/syncerProcess.js';

describe('postgres faults', () => {
  /** Run in reverse order in after(): syncers stop before their proxies and sandboxes go. */
  const cleanups: (() => Promise<unknown>)[] = [];

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  async function sandboxWithCatalog(label: string): Promise<Sandbox> {
    const sandbox = await createSandbox(label);
    cleanups.push(() => sandbox.cleanup());
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 200, 5, 30);
    return sandbox;
  }

  async function proxyTo(url: string, dropPgNotifications = false): Promise<FaultProxy> {
    const proxy = await startFaultProxy(url, { dropPgNotifications });
    cleanups.push(() => proxy.close());
    return proxy;
  }

  /** Nothing claimed and nothing waiting, and the listener is connected. */
  async function assertHealthy(syncer: Syncer): Promise<void> {
    await eventually(() => syncer.listener?.connected === true, 15_000, 'listener connected');
    await eventually(
      async () =>
        (await syncer.queue.inFlight()).length === 0 && (await syncer.queue.depth()) === 0,
      15_000,
      'no claims in flight and an empty queue',
    );
  }

  it('notices a half-open listener connection by its heartbeat, reconnects and catches up', async () => {
    const sandbox = await sandboxWithCatalog('fault_halfopen');
    const proxy = await proxyTo(sandbox.config.listenUrl);
    const captured = capturingLog();
    const syncer = await startSyncer(
      sandbox,
      { listenUrl: proxiedUrl(sandbox.config.listenUrl, proxy), pollIntervalMs: 600_000 },
      captured.log,
      { listenerHeartbeatMs: 500, listenerHeartbeatTimeoutMs: 1_000 },
    );
    cleanups.push(() => syncer.stop());
    await waitForConvergence(sandbox);
    const logged = (msg: string) => captured.lines().filter((l) => l.msg === msg).length;
    // The first full load over (its documents can all be in before it ends: its last steps, and
    // the pass after it, would read the edits below).
    await eventually(() => logged('full load queued') > 0, 15_000, 'the full load over');
    // Asleep, as an idle syncer is: no back-to-back passes that would find the edits below.
    await eventually(
      () => syncer.capture?.cadenceState === 'asleep',
      15_000,
      'the syncer to fall asleep',
    );

    const silenced = Date.now();
    await proxy.blackhole();
    // Heard by nobody: the NOTIFY dies in the blackhole and the poll interval is ten minutes.
    const film = await insertFilm(sandbox.pg, 'Written into the void');
    await sandbox.pg.query(
      `UPDATE content.genre SET name = 'Renamed in the void' WHERE name = 'Genre 2'`,
    );
    await eventually(
      () => logged('listener connection lost; reconnecting') > 0,
      5_000,
      'heartbeat miss',
    );
    const detectedMs = Date.now() - silenced;
    // Reconnects during the blackhole reach a silent peer too: connect must time out, not hang.
    await eventually(() => logged('listener reconnect failed') > 0, 10_000, 'a failed reconnect');
    assert.equal(syncer.listener?.connected, false);
    assert.equal(await sandbox.es.exists({ index: sandbox.config.index, id: film }), false);

    const restored = Date.now();
    await proxy.forward();
    await waitForConvergence(sandbox, 30_000);
    const recoveredMs = Date.now() - restored;
    console.log(
      `# half-open listener: heartbeat noticed it after ${detectedMs} ms; index converged ` +
        `${recoveredMs} ms after forward() (${logged('listener reconnect failed')} failed reconnects)`,
    );
    await assertHealthy(syncer);
    // LISTEN is back: a live change arrives without any poll.
    await insertFilm(sandbox.pg, 'Live after the blackhole');
    await waitForConvergence(sandbox, 10_000);
  });

  it('starts while its listener cannot connect, polls meanwhile, and listens once it can', async () => {
    // A syncer (re)started during a network fault on the listener's path only (a chaos campaign
    // found it: a restart during a half-open LISTEN connection): the database answers, the
    // listener's connect times out. That is an outage, not a misconfiguration: start, poll.
    const sandbox = await sandboxWithCatalog('fault_listen_start');
    const proxy = await proxyTo(sandbox.config.listenUrl);
    await proxy.blackhole();
    const captured = capturingLog();
    const syncer = new Syncer(
      {
        ...sandbox.config,
        listenUrl: proxiedUrl(sandbox.config.listenUrl, proxy),
        pollIntervalMs: 1_000,
      },
      captured.log,
      { listenerHeartbeatMs: 500, listenerHeartbeatTimeoutMs: 1_000, reapEveryMs: 1_000 },
    );
    const started = await syncer.start().then(
      () => null,
      async (err: unknown) => {
        await syncer.close();
        return (err as Error).message;
      },
    );
    assert.equal(started, null, `the syncer did not start: ${started}`);
    cleanups.push(() => syncer.stop());
    assert.equal(syncer.listener?.connected, false);
    await waitForConvergence(sandbox, 30_000);
    // Changes arrive by polling while LISTEN cannot connect.
    await insertFilm(sandbox.pg, 'Polled while the listener is cut off');
    await waitForConvergence(sandbox, 15_000);
    assert.equal(syncer.listener.connected, false);
    const logged = (msg: string) => captured.lines().filter((l) => l.msg === msg).length;
    assert.ok(logged('listener cannot connect yet; polling meanwhile') > 0, 'the outage is logged');

    await proxy.forward();
    // The reconnect loop takes over: the listener connects and says so, as after any outage.
    await assertHealthy(syncer);
    assert.ok(logged('listening for changes') > 0);
    await insertFilm(sandbox.pg, 'Written once the listener is back');
    await waitForConvergence(sandbox, 10_000);
  });

  it('still refuses to start when the listener connection is misconfigured', async () => {
    const sandbox = await sandboxWithCatalog('fault_listen_config');
    const listenUrl = new URL(sandbox.config.listenUrl);
    listenUrl.pathname = '/no_such_database_here';
    const syncer = new Syncer({ ...sandbox.config, listenUrl: listenUrl.toString() }, testLog());
    const failure = await syncer.start().then(
      () => null,
      (err: unknown) => (err as Error).message,
    );
    await (failure === null ? syncer.stop() : syncer.close());
    assert.match(failure ?? 'started', /no_such_database_here/);
  });

  it('recovers by itself after Postgres refuses connections for longer than any retry timeout', async () => {
    const sandbox = await sandboxWithCatalog('fault_refuse');
    const proxy = await proxyTo(sandbox.config.databaseUrl);
    const url = proxiedUrl(sandbox.config.databaseUrl, proxy);
    const captured = capturingLog();
    const syncer = await startSyncer(
      sandbox,
      { databaseUrl: url, listenUrl: url, pollIntervalMs: 600_000 },
      captured.log,
    );
    cleanups.push(() => syncer.stop());
    await waitForConvergence(sandbox);
    const logged = (msg: string) => captured.lines().filter((l) => l.msg === msg).length;

    // Cut it off while it works: a statement too big to list its keys makes it poll and re-index.
    await sandbox.pg.query(`UPDATE content.film_work SET description = description || ' (cut)'`);
    await delay(20);
    await proxy.refuse();
    // 8 s of writes, straight to Postgres, while the syncer cannot reach it (pg-listen alone
    // would have given up after 3 s).
    const outageEnds = Date.now() + 8_000;
    for (let i = 0; Date.now() < outageEnds; i++) {
      await insertFilm(sandbox.pg, `Written during the outage ${i}`);
      await sandbox.pg.query(
        `UPDATE content.film_work SET rating = 9.5 WHERE id = (SELECT id FROM content.film_work
           WHERE title LIKE 'Film %' ORDER BY id OFFSET $1 LIMIT 1)`,
        [i],
      );
      if (i % 4 === 0) {
        await sandbox.pg.query(`DELETE FROM content.film_work WHERE id = (SELECT id FROM
           content.film_work WHERE title LIKE 'Film %' ORDER BY id DESC LIMIT 1)`);
        await sandbox.pg.query(
          `UPDATE content.person SET full_name = full_name || '*' WHERE full_name = $1`,
          [`Person ${i}`],
        );
      }
      await delay(400);
    }
    assert.equal(syncer.listener?.connected, false);

    const restored = Date.now();
    await proxy.forward();
    await waitForConvergence(sandbox, 60_000);
    console.log(
      `# postgres refused for 8 s: index converged ${Date.now() - restored} ms after forward() ` +
        `(${logged('listener reconnect failed')} failed listener reconnects, ` +
        `${logged('change capture step failed; retrying')} failed capture steps, ` +
        `${logged('batch failed; claim returned to the queue')} failed batches)`,
    );
    await assertHealthy(syncer);
    await insertFilm(sandbox.pg, 'Live after the outage');
    await waitForConvergence(sandbox, 10_000);
  });

  it('exits with a clear message when the listener connection hears no notifications (a pooler)', async () => {
    const sandbox = await sandboxWithCatalog('fault_pooler');
    const proxy = await proxyTo(sandbox.config.listenUrl, true);
    const syncer = spawnSyncer(sandbox, {
      DATABASE_LISTEN_URL: proxiedUrl(sandbox.config.listenUrl, proxy),
    });
    cleanups.push(() => syncer.stop());
    const started = Date.now();
    const timer = new AbortController();
    const exit = await Promise.race([
      once(syncer.child, 'exit') as Promise<[number | null]>,
      delay(20_000, null, { signal: timer.signal }),
    ]);
    timer.abort();
    assert.ok(exit, `still running after 20 s:\n${syncer.output()}`);
    const [code] = exit;
    console.log(`# pooler dropping notifications: exited ${code} after ${Date.now() - started} ms`);
    const output = syncer.output();
    assert.notEqual(code, 0, output);
    assert.equal(typeof code, 'number', output);
    assert.match(output, /LISTEN self-check failed/);
    assert.match(output, /DATABASE_LISTEN_URL/);
    assert.match(output, /pooler/i);
    assert.doesNotMatch(output, /^\s+at /m, 'no stack trace');
    assert.ok(proxy.droppedNotifications > 0, 'the proxy did drop the echo');
  });
});
