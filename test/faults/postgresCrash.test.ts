/**
 * PostgreSQL killed outright and started again, having lost the last transaction ids it had
 * reported ended.
 *
 * Found by an outside reading: a transaction that writes no WAL before its commit record (one
 * that only took an id), one that aborts, and any under `synchronous_commit = off` end without
 * waiting for their record to reach the disk. A snapshot sees them ended at once, so a pass's
 * watermark can be past them; a crash before the WAL writer flushes them loses them, and after
 * the restart PostgreSQL gives the same ids out again. Every edit made under those ids was then
 * below the watermark and in none of its in-progress ids: no pass read it, and without a
 * notification heard it never reached the index. The server's identity and timeline are
 * unchanged, and writers move the counter past the watermark in moments, so only the restart
 * itself can tell: the syncer now compares where the server's recovery gave ids out from with
 * the watermarks taken before it, and loads every index again when it is below them.
 *
 * Two ways: the postmaster killed and started again (its start time changes), and one backend
 * killed, after which the postmaster alone resets and recovers (its start time stays; the
 * recovery's checkpoint is then later than the watermark).
 *
 * A cluster of the test's own: the shared server cannot be killed, and the WAL writer is set to
 * flush every 10 s (its longest) with autovacuum off, so nothing but the syncer's heartbeat
 * (every 5 s) flushes the WAL between the lost ids and the crash.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { migrate } from '../../src/db/migrator.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { startPrivateCluster, type PrivateCluster } from '../helpers/privateCluster.js';
import { MIGRATIONS, startSyncer, testLog } from '../helpers/syncerHarness.js';

const FILMS = 20;
/** Ids taken and lost: more than the syncer's reconnection takes before the test's edits. */
const LOST_IDS = 30;

describe('PostgreSQL crashes and gives out lost transaction ids again', () => {
  let cluster: PrivateCluster;
  let sandbox: Sandbox;
  let store: RedisStore;
  let syncer: Syncer | null = null;

  before(async () => {
    cluster = await startPrivateCluster(['wal_writer_delay=10000', 'autovacuum=off']);
    sandbox = await createSandbox('pg-crash');
    store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
    await migrate(cluster.url, MIGRATIONS, testLog());
    const db = new pg.Pool({ connectionString: cluster.url });
    await seedCatalog(db, FILMS, 2, 5);
    await db.end();
    const url = cluster.url;
    syncer = await startSyncer(sandbox, { databaseUrl: url, listenUrl: url, pollIntervalMs: 500 });
    await eventually(
      async () => (await sandbox.es.count({ index: sandbox.config.index })).count === FILMS,
      30_000,
      'the films loaded',
    );
  });

  after(async () => {
    await syncer?.stop();
    store.redis.disconnect();
    await sandbox.cleanup();
    await cluster.stop();
  });

  const session = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: cluster.url });
    // A connection the server's reset ends reports it through the query it was running; with no
    // listener its 'error' event would fail the test as an uncaught exception.
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  /** Takes the session a transaction id (one of its own in autocommit). */
  const txidOf = async (c: pg.Client) =>
    BigInt(
      (await c.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]?.x ?? 0,
    );
  const listeningUntil = () =>
    session(
      async (c) =>
        (await c.query<{ t: string }>('SELECT listening_until::text AS t FROM etl.doorbell'))
          .rows[0]?.t,
    );
  const xmaxOf = async () => BigInt((await new Watermarks(store).get('film_work'))?.xmax ?? 0);
  const start = async () => {
    const url = cluster.url;
    syncer = await startSyncer(sandbox, { databaseUrl: url, listenUrl: url, pollIntervalMs: 500 });
  };
  const indexed = async (films: string[], title: string) => {
    const { docs } = await sandbox.es.mget<{ title: string }>({
      index: sandbox.config.index,
      ids: films,
    });
    return docs.every((d) => 'found' in d && d.found && d._source?.title === `${title} ${d._id}`);
  };
  /** Killed the postmaster, or a backend: the postmaster then recovers without restarting. */
  const kills = {
    server: () => cluster.crashAndRestart(),
    backend: async () => {
      const victim = new pg.Client({ connectionString: cluster.url });
      victim.on('error', () => undefined);
      await victim.connect();
      const { rows } = await victim.query<{ pid: number; lsn: string }>(
        'SELECT pg_backend_pid() AS pid, checkpoint_lsn::text AS lsn FROM pg_control_checkpoint()',
      );
      process.kill(Number(rows[0]?.pid), 'SIGKILL');
      // Back once the recovery's own checkpoint is written: a connection made before the
      // postmaster has heard of the crash is one its reset then ends.
      await eventually(
        () =>
          session((c) =>
            c.query<{ lsn: string }>(
              'SELECT checkpoint_lsn::text AS lsn FROM pg_control_checkpoint()',
            ),
          ).then(
            (r) => r.rows[0]?.lsn !== rows[0]?.lsn,
            () => false,
          ),
        30_000,
        'the server back from its recovery',
      );
      await victim.end().catch(() => undefined);
    },
  };

  for (const killed of ['server', 'backend'] as const) {
    it(`indexes edits made under ids given out again after a ${killed} was killed`, async () => {
      const title = `After a ${killed} was killed`;
      let films: string[] | null = null;
      // Again if a flush came between the ids and the kill (a loaded machine: the heartbeat).
      for (let tries = 0; tries < 3 && films === null; tries++) {
        if (!syncer) await start();
        // Just after a heartbeat (a flushing commit), ids that end unflushed, a pass past them.
        const heartbeat = await listeningUntil();
        await eventually(async () => (await listeningUntil()) !== heartbeat, 10_000, 'heartbeat');
        const lastLost = await session(async (c) => {
          let txid = 0n;
          for (let i = 0; i < LOST_IDS; i++) txid = await txidOf(c);
          return txid;
        });
        await eventually(async () => (await xmaxOf()) > lastLost, 3_000, 'a pass past the ids');
        const watermark = await xmaxOf();
        // Stopped asleep, it writes nothing to PostgreSQL; it is started again once writers have
        // taken the counter past the watermark, as when a syncer is down while PostgreSQL
        // crashes (up, a pass that comes before them finds the counter behind its watermarks, a
        // rewind already).
        await syncer?.stop();
        syncer = null;
        // A checkpoint's time is in whole seconds: the recovery of a backend's crash (the
        // postmaster keeps its start time) tells only from the second after the watermark's on.
        const markedAt = Date.parse((await new Watermarks(store).get('film_work'))?.at ?? '');
        await delay(Math.max(0, Math.ceil((markedAt + 1) / 1000) * 1000 - Date.now()));
        await kills[killed]();

        // Edits that send no notification (as a two-phase writer's): only a pass reads them.
        const edit = await session(async (c) => {
          await c.query('BEGIN');
          await c.query('SET LOCAL etl.notify = off');
          const { rows } = await c.query<{ id: string }>(
            `UPDATE content.film_work SET title = $1 || ' ' || id
              WHERE id IN (SELECT id FROM content.film_work ORDER BY id LIMIT 3) RETURNING id`,
            [title],
          );
          const txid = await txidOf(c);
          await c.query('COMMIT');
          return { txid, films: rows.map((r) => r.id) };
        });
        testLog().info({ ...edit, txid: String(edit.txid), watermark: String(watermark) }, 'edit');
        if (edit.txid < watermark) {
          films = edit.films;
          await session(async (c) => {
            for (let txid = 0n; txid <= watermark;) txid = await txidOf(c);
          });
        }
        await start();
        await eventually(() => indexed(edit.films, title), 30_000, 'the edits indexed');
      }
      assert.ok(films, 'the crash lost the ids in one of three tries');
    });
  }
});
