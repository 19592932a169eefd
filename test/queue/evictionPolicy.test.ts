/**
 * A Redis that may delete keys on its own (maxmemory with an eviction policy) loses changes
 * silently: an evicted queue entry or claim is an edit that never reaches the index, and the
 * watermarks have moved past it. The syncer says so at start, naming the setting.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { evictionRisk } from '../../src/queue/evictionPolicy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { startRedisServer, type RedisServer } from '../helpers/redisServer.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('a Redis configured to evict keys', () => {
  let server: RedisServer;
  let sandbox: Sandbox;

  before(async () => {
    server = await startRedisServer();
    sandbox = await createSandbox('eviction');
    await migrateSandbox(sandbox);
  });

  after(async () => {
    await sandbox.cleanup();
    await server.stop();
  });

  const set = async (maxmemory: string, policy: string) => {
    await server.admin().config('SET', 'maxmemory', maxmemory);
    await server.admin().config('SET', 'maxmemory-policy', policy);
  };

  it('is named: any key for allkeys-*, keys with a time to live for volatile-*', async () => {
    await set('100mb', 'allkeys-lru');
    const allKeys = await evictionRisk(server.admin());
    assert.match(allKeys ?? '', /maxmemory-policy allkeys-lru/);
    assert.match(allKeys ?? '', /queue/);
    await set('100mb', 'volatile-ttl');
    assert.match((await evictionRisk(server.admin())) ?? '', /leases/);
  });

  it('is not reported for noeviction, or when no memory limit is set', async () => {
    await set('100mb', 'noeviction');
    assert.equal(await evictionRisk(server.admin()), null);
    await set('0', 'allkeys-lru');
    assert.equal(await evictionRisk(server.admin()), null);
  });

  it('is logged by a syncer starting on it', async () => {
    await set('100mb', 'allkeys-lfu');
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(sandbox, { redisUrl: server.url }, log);
    await syncer.stop();
    const warning = lines().find((l) => l.msg === "redis may delete this syncer's keys when full");
    assert.match(String(warning?.detail), /allkeys-lfu/);
  });
});
