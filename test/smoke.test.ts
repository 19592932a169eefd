import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { checkServices } from '../src/health/checkServices.js';
import { createSandbox, type Sandbox } from './helpers/isolation.js';

describe('the real services', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await createSandbox('smoke');
  });
  after(async () => {
    await sandbox.cleanup();
  });

  it('reaches PostgreSQL, Redis and Elasticsearch', async () => {
    assert.deepEqual(await checkServices(sandbox.config), []);
    const { rows } = await sandbox.pg.query<{ db: string }>('SELECT current_database() AS db');
    assert.equal(rows[0]?.db, sandbox.name);
    await sandbox.redis.set(`${sandbox.config.redisPrefix}smoke`, 'ok');
    assert.equal(await sandbox.redis.get(`${sandbox.config.redisPrefix}smoke`), 'ok');
    const health = await sandbox.es.cluster.health();
    assert.ok(['green', 'yellow'].includes(health.status));
  });

  it('talks to Elasticsearch 9', async () => {
    const nodes = await sandbox.es.nodes.info({ filter_path: 'nodes.*.version' });
    const versions = Object.values(nodes.nodes).map((n) => n.version);
    assert.ok(versions.length > 0);
    for (const version of versions) assert.match(version, /^9\./);
  });

  it('names the service that is down', async () => {
    const problems = await checkServices({
      ...sandbox.config,
      redisUrl: 'redis://127.0.0.1:1/0',
    });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /Redis at redis:\/\/127\.0\.0\.1:1\/0 is not reachable/);
  });
});
