/**
 * The claim on a Redis prefix (src/queue/deploymentClaim.ts): another deployment is refused, and
 * the same deployment stays itself when its database is restored in place under a running syncer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { DeploymentClaim, type DeploymentIdentity } from '../../src/queue/deploymentClaim.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { testLog } from '../helpers/syncerHarness.js';

describe('the claim on a Redis prefix', () => {
  let sandbox: Sandbox;
  let admin: pg.Client;
  const database = () => `${sandbox.name}_restored`;
  const stores: RedisStore[] = [];
  const claims: DeploymentClaim[] = [];

  before(async () => {
    sandbox = await createSandbox('deployment_claim');
    admin = new pg.Client({ connectionString: sandbox.config.databaseUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database()}`);
  });

  after(async () => {
    for (const claim of claims) claim.stop();
    for (const store of stores) await store.close();
    await admin.query(`DROP DATABASE IF EXISTS ${database()} WITH (FORCE)`);
    await admin.end();
    await sandbox.cleanup();
  });

  /** What a syncer of the catalog in `database()` with these indices says it is. */
  const identify = (indices: string[]) => async (): Promise<DeploymentIdentity> => {
    const url = new URL(sandbox.config.databaseUrl);
    url.pathname = `/${database()}`;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      const { rows } = await client.query<{ database: string; system: string; oid: string }>(
        `SELECT current_database() AS database,
                  (SELECT system_identifier::text FROM pg_control_system()) AS system,
                  (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS oid`,
      );
      const [row] = rows;
      assert.ok(row);
      return { ...row, indices, cluster: null };
    } finally {
      await client.end();
    }
  };

  const claimOf = (prefix: string, indices: string[]) => {
    const store = new RedisStore(sandbox.config.redisUrl, prefix, testLog());
    stores.push(store);
    const claim = new DeploymentClaim(store, identify(indices), () => undefined);
    claims.push(claim);
    return claim;
  };

  it('refuses a syncer of other indices on a prefix in use, and admits one of the same', async () => {
    const prefix = `${sandbox.config.redisPrefix}shared:`;
    await claimOf(prefix, ['m', 'm-persons', 'm-genres']).claim();
    await claimOf(prefix, ['m', 'm-persons', 'm-genres']).claim();
    await assert.rejects(
      claimOf(prefix, ['n', 'n-persons', 'n-genres']).claim(),
      /serves another deployment/,
    );
  });

  // Review: the running syncers kept the identity they read at start, so after the catalog was
  // restored in place (dropped and made again: a new object id) they renewed the old one, and a
  // syncer restarted then was refused as another deployment, for as long as they ran.
  it('follows its database restored in place, and admits a syncer started after', async () => {
    const prefix = `${sandbox.config.redisPrefix}restored:`;
    const running = claimOf(prefix, ['m', 'm-persons', 'm-genres']);
    await running.claim();
    await admin.query(`DROP DATABASE ${database()} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${database()}`);
    await running['check']();
    assert.equal(running.conflict, null, 'its own claim, renewed');
    await claimOf(prefix, ['m', 'm-persons', 'm-genres']).claim();
  });
});
