/**
 * Least privilege and secrets: the syncer runs under a role that can only read the catalog plus
 * its own bookkeeping, and no password, token or key it was given appears in anything it prints.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../src/sync/syncer.js';
import { beginFirstFilmEdit, insertFilm, seedCatalog } from './helpers/catalog.js';
import { eventually, waitForConvergence } from './helpers/convergence.js';
import { createSandbox, type Sandbox } from './helpers/isolation.js';
import { runCli } from './helpers/runCli.js';
import { createSyncerRole, type SyncerRole } from './helpers/syncerRole.js';
import { migrateSandbox, startSyncer } from './helpers/syncerHarness.js';
import { spawnSyncer } from './helpers/syncerProcess.js';

const withCredentials = (url: string, user: string, password: string) => {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = password;
  return parsed.toString();
};

describe('security', () => {
  let sandbox: Sandbox;
  let role: SyncerRole | null = null;

  before(async () => {
    sandbox = await createSandbox('security');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 100, 3, 10);
  });

  after(async () => {
    await sandbox.cleanup(); // drops the database, and with it the role's grants
    await role?.drop();
  });

  it('syncs under a role that can only read the catalog and its bookkeeping', async () => {
    // The grants README.md shows.
    role = await createSyncerRole(sandbox, 'etl_reader');
    const { databaseUrl } = role;
    let syncer: Syncer | null = null;
    try {
      syncer = await startSyncer(sandbox, { databaseUrl, listenUrl: databaseUrl });
      await waitForConvergence(sandbox);
      await insertFilm(sandbox.pg, 'Seen by the reader role');
      await sandbox.pg.query(`DELETE FROM content.person WHERE full_name = 'Person 1'`);
      await waitForConvergence(sandbox);
      await syncer.stop();
      syncer = null;
      // Written while no syncer runs: only the poller's catch-up (every table and tombstone it
      // reads under this role) can bring these in.
      await insertFilm(sandbox.pg, 'Caught up by the reader role');
      await sandbox.pg.query(`DELETE FROM content.person WHERE full_name = 'Person 2'`);
      await sandbox.pg.query(`DELETE FROM content.genre WHERE name = 'Genre 1'`);
      syncer = await startSyncer(sandbox, { databaseUrl, listenUrl: databaseUrl });
      await waitForConvergence(sandbox);
    } finally {
      await syncer?.stop();
    }

    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await assert.rejects(
        client.query(`UPDATE content.film_work SET title = 'x'`),
        /permission denied/,
      );
      await assert.rejects(client.query(`DELETE FROM etl.schema_migrations`), /permission denied/);
    } finally {
      await client.end();
    }
  });

  // From a review: settling's reference id came from an update of the doorbell, and a role
  // without UPDATE on it (which the syncer tolerates, warning that writers may not notify)
  // failed that step before every pass, for good, once the first change had woken it.
  it('keeps polling under a role that may not update the doorbell', async () => {
    role ??= await createSyncerRole(sandbox, 'etl_reader');
    await sandbox.pg.query(`REVOKE UPDATE ON etl.doorbell FROM ${role.name}`);
    const { databaseUrl } = role;
    const syncer = await startSyncer(sandbox, {
      databaseUrl,
      listenUrl: databaseUrl,
      pollIntervalMs: 500,
    });
    try {
      await waitForConvergence(sandbox);
      // Wakes it (a pass finds the row), and it settles back to sleep.
      await insertFilm(sandbox.pg, 'Wakes the role without the doorbell');
      await waitForConvergence(sandbox);
      await eventually(() => syncer.capture?.cadenceState === 'asleep', 15_000, 'asleep again');
      await insertFilm(sandbox.pg, 'Read after it settled');
      await waitForConvergence(sandbox, 10_000);
    } finally {
      await syncer.stop();
      await sandbox.pg.query(`GRANT UPDATE ON etl.doorbell TO ${role.name}`);
    }
  });

  // From a review: a syncer whose renewals of the listening lease failed for longer than the lease
  // (here UPDATE on the doorbell revoked; a lock or a read-only moment would do) while its
  // listener stayed connected: writers saw nobody listening and sent nothing. Once a renewal went
  // through, one still open that committed after it waited for the periodic pass (a minute here).
  it('settles once it renews a listening lease that ran out, so a silent writer is read', async () => {
    role ??= await createSyncerRole(sandbox, 'etl_reader');
    const { databaseUrl } = role;
    const syncer = await startSyncer(sandbox, {
      databaseUrl,
      listenUrl: databaseUrl,
      pollIntervalMs: 60_000,
    });
    const { default: pg } = await import('pg');
    const writer = new pg.Client({ connectionString: sandbox.config.databaseUrl });
    await writer.connect();
    const listening = async () =>
      (
        await sandbox.pg.query(
          'SELECT 1 FROM etl.doorbell WHERE listening_until > clock_timestamp()',
        )
      ).rowCount === 1;
    try {
      await waitForConvergence(sandbox);
      await eventually(() => syncer.capture?.cadenceState === 'asleep', 20_000, 'asleep');
      await sandbox.pg.query(`REVOKE UPDATE ON etl.doorbell FROM ${role.name}`);
      await eventually(async () => !(await listening()), 30_000, 'the listening lease run out');
      const rings = await beginFirstFilmEdit(writer, 'Committed after the lease came back');
      assert.equal(rings, false, 'nobody listening: the writer sends nothing');
      await sandbox.pg.query(`GRANT UPDATE ON etl.doorbell TO ${role.name}`);
      await eventually(listening, 10_000, 'the lease renewed by a heartbeat');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await writer.query('COMMIT');
      await waitForConvergence(sandbox, 30_000);
    } finally {
      await writer.end();
      await syncer.stop();
      await sandbox.pg.query(`GRANT UPDATE ON etl.doorbell TO ${role.name}`);
    }
  });

  // Outside reading: the triggers run as the writer, and write the tombstones and check the
  // doorbell in the etl schema; the README named no grant for writers, and an admin app under a
  // role that could only edit the catalog failed every write after `npm run migrate`.
  it("lets a role that edits the catalog write with the README's writer grants", async () => {
    const name = `etl_writer_${randomBytes(3).toString('hex')}`;
    await sandbox.pg.query(`CREATE ROLE ${name} LOGIN`);
    const { default: pg } = await import('pg');
    const url = new URL(sandbox.config.databaseUrl);
    url.username = name;
    const writer = new pg.Client({ connectionString: url.toString() });
    let syncer: Syncer | null = null;
    try {
      await sandbox.pg.query(`GRANT CONNECT ON DATABASE ${sandbox.name} TO ${name}`);
      await sandbox.pg.query(`GRANT USAGE ON SCHEMA content TO ${name}`);
      await sandbox.pg.query(
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA content TO ${name}`,
      );
      await writer.connect();
      const edit = `UPDATE content.film_work SET title = 'Edited by the writer role'
                     WHERE id = (SELECT id FROM content.film_work ORDER BY id LIMIT 1)`;
      await assert.rejects(writer.query(edit), /permission denied for schema etl/);
      // The README's writer grants (Security).
      await sandbox.pg.query(`GRANT USAGE ON SCHEMA etl TO ${name}`);
      await sandbox.pg.query(
        `GRANT INSERT ON etl.film_tombstone, etl.person_tombstone, etl.genre_tombstone,
                         etl.truncation TO ${name}`,
      );
      syncer = await startSyncer(sandbox);
      await writer.query(edit);
      await writer.query(`DELETE FROM content.person WHERE full_name = 'Person 3'`);
      await writer.query(
        `INSERT INTO content.film_work (id, title, type)
         VALUES (gen_random_uuid(), 'Written by the writer role', 'movie')`,
      );
      await waitForConvergence(sandbox);
    } finally {
      await syncer?.stop();
      await writer.end().catch(() => undefined);
      await sandbox.pg.query(`DROP OWNED BY ${name}`);
      await sandbox.pg.query(`DROP ROLE ${name}`);
    }
  });

  it('never prints a password, token or key it was given', async () => {
    const secrets = {
      pg: `PgSecret${randomBytes(4).toString('hex')}`,
      redis: `RedisSecret${randomBytes(4).toString('hex')}`,
      es: `EsSecret${randomBytes(4).toString('hex')}`,
      unreachable: `UrlSecret${randomBytes(4).toString('hex')}`,
    };
    // Trust authentication and a Redis and Elasticsearch without auth accept and ignore these.
    const env = {
      ...sandbox.env,
      DATABASE_URL: withCredentials(sandbox.config.databaseUrl, 'postgres', secrets.pg),
      REDIS_URL: withCredentials(sandbox.config.redisUrl, '', secrets.redis),
      ELASTICSEARCH_USERNAME: 'elastic',
      ELASTICSEARCH_PASSWORD: secrets.es,
      LOG_LEVEL: 'debug',
    };
    const outputs: string[] = [];
    const migrateRun = await runCli('migrate', env);
    outputs.push(migrateRun.stdout, migrateRun.stderr);

    const syncer = spawnSyncer(sandbox, env);
    try {
      await insertFilm(sandbox.pg, 'Secret-free');
      await waitForConvergence(sandbox);
    } finally {
      await syncer.stop();
    }
    outputs.push(syncer.output());
    const status = await runCli('status', env, ['--json']);
    outputs.push(status.stdout, status.stderr);
    // Failures print URLs: the credentials in them must not come along.
    const failing = await runCli('start', {
      ...env,
      ELASTICSEARCH_URL: `http://user:${secrets.unreachable}@127.0.0.1:1`,
    });
    assert.equal(failing.code, 1);
    outputs.push(failing.stdout, failing.stderr);
    const badConfig = await runCli('start', {
      ...env,
      DATABASE_URL: `mysql://u:${secrets.unreachable}@h/db`,
    });
    assert.equal(badConfig.code, 2);
    outputs.push(badConfig.stdout, badConfig.stderr);

    const all = outputs.join('\n');
    assert.ok(all.length > 1_000, 'the commands said something');
    for (const [name, secret] of Object.entries(secrets)) {
      assert.ok(!all.includes(secret), `${name} secret leaked`);
    }
  });
});
