import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, cpSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { migrate, readMigrations } from '../../src/db/migrator.js';
import { eventually } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { runCli } from '../helpers/runCli.js';
import { createSyncerRole, type SyncerRole } from '../helpers/syncerRole.js';
import { capturingLog, MIGRATIONS, testLog } from '../helpers/syncerHarness.js';
import pg from 'pg';

describe('npm run migrate', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('migrate');
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('is safe from two processes at once, and twice', async () => {
    const [a, b] = await Promise.all([
      migrate(sandbox.config.databaseUrl, MIGRATIONS, testLog()),
      migrate(sandbox.config.databaseUrl, MIGRATIONS, testLog()),
    ]);
    const versions = readMigrations(MIGRATIONS).map((m) => m.version);
    assert.ok(versions.length >= 3, versions.join(', '));
    assert.equal(a.applied.length + b.applied.length, versions.length, 'each applied once');
    const again = await migrate(sandbox.config.databaseUrl, MIGRATIONS, testLog());
    assert.deepEqual(again.applied, []);
    const { rows } = await sandbox.pg.query(
      'SELECT version FROM etl.schema_migrations ORDER BY version',
    );
    assert.deepEqual(
      rows.map((r: { version: string }) => r.version),
      versions,
    );
  });

  it('leaves an existing catalog and its data alone', async () => {
    await sandbox.pg.query(
      `INSERT INTO content.film_work (id, title, type) VALUES ('11111111-1111-1111-1111-111111111111', 'Kept', 'movie')`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'migrations-'));
    cpSync(MIGRATIONS, dir, { recursive: true });
    writeFileSync(join(dir, '9999_noop.sql'), 'SELECT 1;');
    const result = await migrate(sandbox.config.databaseUrl, dir, testLog());
    assert.deepEqual(result.applied, ['9999_noop']);
    const { rows } = await sandbox.pg.query(`SELECT title FROM content.film_work`);
    assert.deepEqual(rows, [{ title: 'Kept' }]);
  });

  it('refuses a migration that was edited after it was applied', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'migrations-'));
    cpSync(MIGRATIONS, dir, { recursive: true });
    writeFileSync(join(dir, '0001_content_schema.sql'), '-- edited\nSELECT 1;');
    await assert.rejects(
      migrate(sandbox.config.databaseUrl, dir, testLog()),
      /0001_content_schema changed after it was applied/,
    );
  });

  it('a syncer refuses to start on a database that lacks a migration, and says what to run', async () => {
    const old = await createSandbox('migrate_old');
    try {
      const dir = mkdtempSync(join(tmpdir(), 'migrations-'));
      cpSync(MIGRATIONS, dir, { recursive: true });
      const newest = readMigrations(MIGRATIONS).at(-1);
      assert.ok(newest);
      rmSync(join(dir, `${newest.version}_${newest.name}.sql`));
      await migrate(old.config.databaseUrl, dir, testLog());
      const result = await runCli('start', old.env);
      assert.equal(result.code, 1, result.stdout + result.stderr);
      const said = result.stdout + result.stderr;
      assert.match(said, new RegExp(`${newest.version}_${newest.name}`));
      assert.match(said, /npm run migrate/);
    } finally {
      await old.cleanup();
    }
  });

  // Outside reading: the README's least-privilege role could not read the ledger, so the check
  // was skipped and the syncer started on a schema it does not know (every pass then failed on
  // what the missing migration adds). The ledger is readable by every role now (0010).
  it('a syncer under the least-privilege role refuses to start while a migration is pending', async () => {
    const old = await createSandbox('migrate_role');
    let role: SyncerRole | null = null;
    try {
      await migrate(old.config.databaseUrl, MIGRATIONS, testLog());
      role = await createSyncerRole(old, 'etl_pending');
      const newest = readMigrations(MIGRATIONS).at(-1);
      assert.ok(newest);
      // As a database that never had it would look to the ledger.
      await old.pg.query('DELETE FROM etl.schema_migrations WHERE version = $1', [newest.version]);
      const result = await runCli(
        'start',
        { ...old.env, DATABASE_URL: role.databaseUrl, DATABASE_LISTEN_URL: role.databaseUrl },
        [],
        30_000,
      );
      assert.equal(result.code, 1, result.stdout + result.stderr);
      assert.match(result.stdout + result.stderr, new RegExp(`${newest.version}_${newest.name}`));
    } finally {
      await old.cleanup();
      await role?.drop();
    }
  });

  // Outside reading: `npm run migrate && exec npm start` under one role (the compose file's
  // pattern) failed as the least-privilege role with nothing to apply: the ledger's
  // `CREATE SCHEMA IF NOT EXISTS` asks for the database's CREATE privilege first.
  it('has nothing to do, and says so, under the least-privilege role once migrated', async () => {
    await migrate(sandbox.config.databaseUrl, MIGRATIONS, testLog());
    const role = await createSyncerRole(sandbox, 'etl_migrate');
    try {
      const result = await runCli('migrate', {
        ...sandbox.env,
        DATABASE_URL: role.databaseUrl,
      });
      assert.equal(result.code, 0, result.stdout + result.stderr);
    } finally {
      await sandbox.pg.query(`DROP OWNED BY ${role.name}`);
      await role.drop();
    }
  });

  // Outside reading: a migration that alters a catalog table waits for its lock behind any open
  // transaction that has read it, and every writer and reader of that table queues behind the
  // migration meanwhile: the catalog stalls for as long as the oldest transaction runs, silently.
  it('says so while another migrate holds the migration lock, naming it, and goes on after', async () => {
    const other = new pg.Client({
      connectionString: sandbox.config.databaseUrl,
      application_name: 'the other migrate',
    });
    await other.connect();
    try {
      await other.query(`SELECT pg_advisory_lock(hashtext('movies_etl.migrate'))`);
      const { rows } = await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const { log, lines } = capturingLog();
      const migrating = migrate(sandbox.config.databaseUrl, MIGRATIONS, log);
      migrating.catch(() => undefined); // awaited below
      await delay(500);
      const said = lines().find((line) => String(line.msg).includes('another migrate'));
      assert.ok(said, 'the migration says it waits for another one');
      assert.deepEqual(said.holders, [{ pid: rows[0]?.pid, application: 'the other migrate' }]);
      await other.query(`SELECT pg_advisory_unlock(hashtext('movies_etl.migrate'))`);
      await migrating;
    } finally {
      await other.end();
    }
  });

  it('waits for its locks without holding up the catalog, and says so', async () => {
    const lockSandbox = await createSandbox('migrate_lock');
    const dir = mkdtempSync(join(tmpdir(), 'migrations-'));
    const long = new pg.Client({ connectionString: lockSandbox.config.databaseUrl });
    const writer = new pg.Client({ connectionString: lockSandbox.config.databaseUrl });
    try {
      await migrate(lockSandbox.config.databaseUrl, MIGRATIONS, testLog());
      await lockSandbox.pg.query(
        `INSERT INTO content.genre (id, name) VALUES (gen_random_uuid(), 'G')`,
      );
      cpSync(MIGRATIONS, dir, { recursive: true });
      writeFileSync(
        join(dir, '0999_alter_genre.sql'),
        'ALTER TABLE content.genre ADD COLUMN IF NOT EXISTS note text;',
      );
      // The sandbox's clean-up ends their sessions should an assertion fail first: without a
      // listener, that error would be thrown as uncaught and hide the failure.
      for (const client of [long, writer]) client.on('error', () => undefined);
      await long.connect();
      await writer.connect();
      await long.query('BEGIN');
      await long.query('SELECT count(*) FROM content.genre'); // holds its lock until it ends
      const { log, lines } = capturingLog();
      const migrating = migrate(lockSandbox.config.databaseUrl, dir, log);
      migrating.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
      await delay(500); // the migration asks for its lock, and waits
      // A writer meanwhile: it must not queue behind the waiting migration for long.
      await writer.query(`SET statement_timeout = '5s'`);
      await writer.query(`UPDATE content.genre SET name = 'Edited while the migration waits'`);
      await eventually(
        () => lines().some((line) => String(line.msg).includes('waits for a lock')),
        10_000,
        'the migration says it waits',
      );
      await long.query('COMMIT');
      assert.deepEqual((await migrating).applied, ['0999_alter_genre']);
    } finally {
      await long.end().catch(() => undefined);
      await writer.end().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      await lockSandbox.cleanup();
    }
  });
});
