/**
 * Writers that commit in two phases (`PREPARE TRANSACTION`, then `COMMIT PREPARED`): an XA
 * transaction manager, a job that commits across two databases.
 *
 * Found by an outside reading: PostgreSQL refuses to prepare a transaction that ran NOTIFY, and
 * the capturing statements notify whenever the syncer listens and sleeps (the doorbell), so such
 * a writer failed at random; a TRUNCATE notified always, and could never be prepared. A
 * transaction that sets `etl.notify` to `off` now sends nothing, and its changes reach the index
 * by the next poll pass.
 *
 * The shared test server has prepared transactions disabled (a setting only a restart changes):
 * this runs a PostgreSQL cluster of its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { migrate } from '../../src/db/migrator.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { startPrivateCluster, type PrivateCluster } from '../helpers/privateCluster.js';
import { MIGRATIONS, startSyncer, testLog } from '../helpers/syncerHarness.js';

describe('two-phase commit', () => {
  let cluster: PrivateCluster;
  let sandbox: Sandbox;
  let db: pg.Pool;
  let syncer: Syncer | null = null;

  before(async () => {
    cluster = await startPrivateCluster(['max_prepared_transactions=4', 'fsync=off']);
    sandbox = await createSandbox('prepared');
    await migrate(cluster.url, MIGRATIONS, testLog());
    db = new pg.Pool({ connectionString: cluster.url });
    await seedCatalog(db, 20, 2, 5);
    const url = cluster.url;
    syncer = await startSyncer(sandbox, { databaseUrl: url, listenUrl: url, pollIntervalMs: 500 });
    await eventually(
      async () => (await sandbox.es.count({ index: sandbox.config.index })).count === 20,
      30_000,
      'the films loaded',
    );
  });

  after(async () => {
    await syncer?.stop();
    await db.end();
    await sandbox.cleanup();
    await cluster.stop();
  });

  /** One transaction, prepared and then committed from another session, as a manager does. */
  async function inTwoPhases(name: string, statements: [string, unknown[]?][]): Promise<void> {
    // Asleep: the doorbell rings, and a statement would notify unless told not to.
    await eventually(() => syncer?.capture?.cadenceState === 'asleep', 20_000, 'asleep');
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL etl.notify = off');
      for (const [text, params] of statements) await client.query(text, params);
      await client.query(`PREPARE TRANSACTION '${name}'`);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    await db.query(`COMMIT PREPARED '${name}'`);
  }

  const title = async (id: string) =>
    (
      await sandbox.es.get<{ title: string }>(
        { index: sandbox.config.index, id },
        { ignore: [404] },
      )
    )._source?.title;

  it('prepares an edit with `etl.notify` off, and the edit reaches the index', async () => {
    const { rows } = await db.query<{ id: string }>(
      'SELECT id::text AS id FROM content.film_work ORDER BY id LIMIT 1',
    );
    const id = rows[0]?.id ?? '';
    await inTwoPhases('edit', [
      ['UPDATE content.film_work SET title = $2 WHERE id = $1', [id, 'Prepared title']],
    ]);
    await eventually(async () => (await title(id)) === 'Prepared title', 15_000, 'the new title');
  });

  it('prepares a TRUNCATE, and the index follows', async () => {
    await inTwoPhases('truncate', [['TRUNCATE content.genre_film_work']]);
    await eventually(
      async () => {
        const found = await sandbox.es.search<{ films_count: number }>({
          index: sandbox.config.genresIndex,
          query: { range: { films_count: { gt: 0 } } },
          size: 0,
          track_total_hits: true,
        });
        const total = found.hits.total;
        return (typeof total === 'number' ? total : (total?.value ?? -1)) === 0;
      },
      30_000,
      'no genre counting films',
    );
    assert.equal((await sandbox.es.count({ index: sandbox.config.index })).count, 20);
  });
});
