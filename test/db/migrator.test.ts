import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, cpSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { migrate, readMigrations } from '../../src/db/migrator.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { runCli } from '../helpers/runCli.js';
import { createSyncerRole, type SyncerRole } from '../helpers/syncerRole.js';
import { MIGRATIONS, testLog } from '../helpers/syncerHarness.js';

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
});
