/**
 * Leases are owned: a holder paused past its lease (GC, a stopped VM, Redis away) must neither
 * extend nor delete the lease of whoever took it next, and learns that it lost it. Shown on the
 * full-load guard, the lease that had no owner check.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { Lease } from '../../src/queue/lease.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import { sleep } from '../../src/util/sleep.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';

describe('leases', () => {
  let store: RedisStore;

  beforeEach(() => {
    const prefix = `test:lease:${randomBytes(6).toString('hex')}:`;
    store = new RedisStore(REDIS_URL, prefix, createLogger('silent', false));
  });

  afterEach(async () => {
    const keys = await store.redis.keys(`${store.prefix}*`);
    if (keys.length > 0) await store.redis.del(...keys);
    await store.close();
  });

  it("a full loader paused past its lease does not keep the next holder's lease alive", async () => {
    const key = store.key('full-load');
    const lost: string[] = [];
    const a = await new Watermarks(store, 900).guardFullLoad('syncer A', (r) => lost.push(r));
    assert.ok(a);
    // A's lease lapses while A is paused; B takes the guard, then dies without refreshing.
    await store.redis.del(key);
    // B's lease runs past A's next refresh (A refreshes every third of its lease).
    const b = await new Lease(store, key, 3_500).tryAcquire('syncer B');
    assert.ok(b);
    b.abandon();
    await sleep(5_000);
    assert.equal(await store.redis.exists(key), 0, "B's lease outlived B: A kept extending it");
    assert.ok(lost.length > 0, 'A was told it lost its lease');
    assert.equal(await a.release(), false);
  });

  it('a holder releases only its own lease', async () => {
    const key = store.key('full-load');
    const a = await new Watermarks(store, 60_000).guardFullLoad('syncer A');
    assert.ok(a);
    await store.redis.del(key);
    const b = await new Watermarks(store, 60_000).guardFullLoad('syncer B');
    assert.ok(b);
    assert.equal(await a.release(), false);
    assert.match((await new Lease(store, key, 1).holder())?.holder ?? '', /syncer B/);
    assert.equal(await b.release(), true);
    assert.equal(await store.redis.exists(key), 0);
  });

  it('one holder at a time, and the next one once it is released', async () => {
    const lease = new Lease(store, store.key('x'), 5_000);
    const first = await lease.tryAcquire('one');
    assert.ok(first);
    assert.equal(await lease.tryAcquire('two'), null);
    await first.release();
    const second = await lease.tryAcquire('two');
    assert.ok(second);
    assert.equal((await lease.holder())?.holder, 'two');
    await second.release();
  });
});
