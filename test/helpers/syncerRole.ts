/**
 * A least-privilege role for the syncer, granted exactly what README.md's Security section lists,
 * and the URL to connect with it. The test process itself stays a superuser (row-level security,
 * for one, does not apply to it).
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../../src/config.js';
import type { Syncer, SyncerOptions } from '../../src/sync/syncer.js';
import type { Sandbox } from './isolation.js';
import { startSyncer, testLog } from './syncerHarness.js';

export interface SyncerRole {
  name: string;
  /** The sandbox's database, as this role (no password: the test server trusts local logins). */
  databaseUrl: string;
  /** Drop the role; call after the sandbox is cleaned up (its database held the grants). */
  drop(): Promise<void>;
}

export async function createSyncerRole(sandbox: Sandbox, prefix: string): Promise<SyncerRole> {
  const name = `${prefix}_${randomBytes(3).toString('hex')}`;
  await sandbox.pg.query(`CREATE ROLE ${name} LOGIN`);
  await sandbox.pg.query(`GRANT CONNECT ON DATABASE ${sandbox.name} TO ${name}`);
  await sandbox.pg.query(`GRANT USAGE ON SCHEMA content, etl TO ${name}`);
  await sandbox.pg.query(`GRANT SELECT ON ALL TABLES IN SCHEMA content TO ${name}`);
  const tombstones = 'etl.film_tombstone, etl.person_tombstone, etl.genre_tombstone';
  await sandbox.pg.query(`GRANT SELECT ON ${tombstones}, etl.truncation TO ${name}`);
  await sandbox.pg.query(`GRANT DELETE ON ${tombstones} TO ${name}`);
  await sandbox.pg.query(`GRANT UPDATE ON etl.doorbell TO ${name}`);
  await sandbox.pg.query(`GRANT UPDATE ON etl.version_base TO ${name}`);
  await sandbox.pg.query(`GRANT UPDATE ON etl.tombstone_horizon TO ${name}`);
  const url = new URL(sandbox.config.databaseUrl);
  url.username = name;
  return {
    name,
    databaseUrl: url.toString(),
    drop: async () => {
      const admin = new URL(sandbox.config.databaseUrl);
      admin.pathname = '/postgres';
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: admin.toString() });
      await client.connect();
      await client.query(`DROP ROLE IF EXISTS ${name}`);
      await client.end();
    },
  };
}

/** A syncer connected as `role` (two indexers unless `config` says), in the test's process. */
export function startSyncerAs(
  sandbox: Sandbox,
  role: SyncerRole,
  options: SyncerOptions = {},
  config: Partial<Config> = {},
): Promise<Syncer> {
  const { databaseUrl } = role;
  return startSyncer(
    sandbox,
    { databaseUrl, listenUrl: databaseUrl, workers: 2, ...config },
    testLog(),
    options,
  );
}
