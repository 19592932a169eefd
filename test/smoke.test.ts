import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

  // From an outside test: a database the server does not have was warned of once, and the syncer
  // then kept its state in database 0.
  it('names a Redis database the server does not have', async () => {
    const url = new URL(sandbox.config.redisUrl);
    url.pathname = '/99';
    const problems = await checkServices({ ...sandbox.config, redisUrl: url.toString() });
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0] ?? '', /did not select database 99/);
  });

  // From an outside test: an answer with an empty body (a proxy's 404 for a wrong path) said
  // "is not reachable: " and nothing more.
  it('says the status of an Elasticsearch URL that answers with an error and no body', async () => {
    const server = createServer((_req, res) => res.writeHead(404).end()).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const problems = await checkServices({
        ...sandbox.config,
        elasticsearch: { ...sandbox.config.elasticsearch, url: `http://127.0.0.1:${port}` },
      });
      assert.equal(problems.length, 1);
      assert.match(problems[0] ?? '', /is not reachable: HTTP 404: an empty answer$/);
    } finally {
      server.close();
    }
  });
});
