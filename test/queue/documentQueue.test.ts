/**
 * The film queue on a real Redis: order, dedupe, claims, ack, release, the reaper and the dead
 * letters. Each test works under its own key prefix and deletes its keys afterwards.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { DeadLetters } from '../../src/queue/deadLetters.js';
import { DocumentQueue, type Claim } from '../../src/queue/documentQueue.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { WorkerRegistry } from '../../src/queue/workerRegistry.js';
import { sleep } from '../../src/util/sleep.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';

const films = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => `film-${String(from + i).padStart(5, '0')}`);

describe('film queue', () => {
  let store: RedisStore;
  let queue: DocumentQueue;

  beforeEach(() => {
    const prefix = `test:queue:${randomBytes(6).toString('hex')}:`;
    store = new RedisStore(REDIS_URL, prefix, createLogger('silent', false));
    queue = new DocumentQueue(store);
  });

  afterEach(async () => {
    const keys = await store.redis.keys(`${store.prefix}*`);
    if (keys.length > 0) await store.redis.del(...keys);
    await store.close();
  });

  const claimIds = async (workerId: string, count: number) =>
    (await queue.claim(workerId, count))?.ids ?? [];

  it('hands films out in the order they were enqueued', async () => {
    await queue.enqueue(['a', 'b', 'c']);
    await queue.enqueue(['d', 'e']);
    assert.equal(await queue.depth(), 5);
    assert.deepEqual(await claimIds('w1', 2), ['a', 'b']);
    assert.deepEqual(await claimIds('w2', 10), ['c', 'd', 'e']);
    assert.equal(await queue.claim('w3', 10), null);
    assert.equal(await queue.depth(), 0);
  });

  it('queues a film once while it waits, and again once it was claimed', async () => {
    assert.equal(await queue.enqueue(['a', 'b', 'a']), 2);
    for (let i = 0; i < 5; i++) assert.equal(await queue.enqueue(['a', 'b']), 0);
    assert.equal(await queue.depth(), 2);
    assert.deepEqual(await claimIds('w1', 10), ['a', 'b']);
    assert.equal(await queue.enqueue(['a']), 1);
    assert.deepEqual(await claimIds('w1', 10), ['a']);
  });

  it('moves claimed films into a list of its own and reports the claim', async () => {
    await queue.enqueue(films(5));
    const before = Date.now();
    const claim = await queue.claim('w1', 3);
    assert.ok(claim);
    assert.equal(claim.workerId, 'w1');
    assert.deepEqual(claim.ids, films(3));
    assert.ok(claim.claimedAt >= before && claim.claimedAt <= Date.now());
    assert.deepEqual(await store.redis.lrange(queue.claimKey(claim.id), 0, -1), films(3));
    assert.equal(await queue.depth(), 2);
    const other = await queue.claim('w2', 10);
    assert.ok(other);
    assert.notEqual(other.id, claim.id);
    const inFlight = (await queue.inFlight()).sort((x, y) => x.workerId.localeCompare(y.workerId));
    assert.deepEqual(inFlight, [
      {
        claimId: claim.id,
        key: queue.claimKey(claim.id),
        workerId: 'w1',
        since: claim.claimedAt,
        size: 3,
      },
      {
        claimId: other.id,
        key: queue.claimKey(other.id),
        workerId: 'w2',
        since: other.claimedAt,
        size: 2,
      },
    ]);
  });

  it('ack drops the claim and records the loaded films in history, newest first', async () => {
    await queue.enqueue(['a', 'b', 'c', 'd']);
    const first = await queue.claim('w1', 3);
    assert.ok(first);
    assert.equal(await queue.ack(first, first.ids), 'done');
    assert.equal(await store.redis.exists(queue.claimKey(first.id)), 0);
    assert.deepEqual(await queue.inFlight(), []);
    const second = await queue.claim('w1', 3);
    assert.ok(second);
    await queue.ack(second, second.ids);
    const history = await queue.history(10);
    assert.deepEqual(
      history.map((h) => h.id),
      ['d', 'c', 'b', 'a'],
    );
    for (const entry of history) assert.ok(!Number.isNaN(Date.parse(entry.at)));
    assert.deepEqual(
      (await queue.history(2)).map((h) => h.id),
      ['d', 'c'],
    );
  });

  it('history keeps only the newest 10,000 entries', async () => {
    const loaded = films(10_005);
    const claim: Claim = { id: 'c1', workerId: 'w1', ids: loaded, claimedAt: Date.now() };
    await queue.ack(claim, loaded);
    const key = store.key('history');
    assert.equal(await store.redis.llen(key), 10_000);
    assert.deepEqual(
      (await queue.history(1)).map((h) => h.id),
      ['film-10004'],
    );
    const oldest = await store.redis.lindex(key, -1);
    assert.equal((JSON.parse(oldest ?? '{}') as { id?: string }).id, 'film-00005');
  });

  it('release puts a claim back at the head of the queue in its original order', async () => {
    await queue.enqueue(['a', 'b', 'c', 'd', 'e']);
    const claim = await queue.claim('w1', 3);
    assert.ok(claim);
    assert.equal(await queue.release(claim), 3);
    assert.equal(await store.redis.exists(queue.claimKey(claim.id)), 0);
    assert.deepEqual(await queue.inFlight(), []);
    assert.deepEqual(await claimIds('w2', 10), ['a', 'b', 'c', 'd', 'e']);
  });

  it('release does not duplicate films that were enqueued again meanwhile', async () => {
    await queue.enqueue(['a', 'b', 'c']);
    const claim = await queue.claim('w1', 3);
    assert.ok(claim);
    assert.equal(await queue.enqueue(['b', 'x']), 2);
    assert.equal(await queue.release(claim), 2);
    assert.equal(await queue.depth(), 4);
    assert.deepEqual(await claimIds('w2', 10), ['a', 'c', 'b', 'x']);
  });

  it('claims more than 8,000 films in one call', async () => {
    const ids = films(12_000);
    assert.equal(await queue.enqueue(ids), 12_000);
    const claim = await queue.claim('w1', 10_000);
    assert.ok(claim);
    assert.deepEqual(claim.ids, ids.slice(0, 10_000));
    assert.equal(await store.redis.llen(queue.claimKey(claim.id)), 10_000);
    assert.equal(await queue.depth(), 2_000);
    assert.equal(await queue.release(claim), 10_000);
    assert.deepEqual(await claimIds('w2', 12_000), ids);
  });

  it("gives back more than 8,000 films from the worker's hand when Redis lost the claim", async () => {
    const ids = films(10_000);
    await queue.enqueue(ids);
    const claim = await queue.claim('w1', 10_000);
    assert.ok(claim);
    await store.redis.del(queue.claimKey(claim.id)); // as after a flush or a rollback
    assert.equal(await queue.release(claim), 10_000);
    assert.deepEqual(await claimIds('w2', 10_000), ids);
  });

  describe('claims never merge', () => {
    it('a second claim by the same worker leaves the first one whole when acknowledged', async () => {
      // A worker whose give-back failed (Redis refusing writes) claims again once Redis is back;
      // a restarted process may reuse a worker id. Acking the new claim must not drop the old one.
      const registry = new WorkerRegistry(store, 200);
      await queue.enqueue(films(4));
      const first = await queue.claim('w1', 2);
      const second = await queue.claim('w1', 2);
      assert.ok(first && second);
      await queue.ack(second, second.ids);
      assert.deepEqual(
        (await queue.inFlight()).map((c) => c.size),
        [2],
        'the first claim is still in flight',
      );
      // w1 never registered a heartbeat: the reaper gives its remaining claim back.
      await registry.reapDead(queue);
      assert.deepEqual(await claimIds('w2', 10), films(2));
    });

    it('ack removes exactly the acknowledged claim', async () => {
      await queue.enqueue(films(6));
      const a = await queue.claim('w1', 2);
      const b = await queue.claim('w2', 2);
      const c = await queue.claim('w1', 2);
      assert.ok(a && b && c);
      await queue.ack(a, a.ids);
      const left = (await queue.inFlight()).map((x) => `${x.workerId}:${x.size}`).sort();
      assert.deepEqual(left, ['w1:2', 'w2:2']);
      await queue.ack(b, b.ids);
      await queue.ack(c, c.ids);
      assert.deepEqual(await queue.inFlight(), []);
      assert.deepEqual(await store.redis.keys(`${store.prefix}claim:*`), []);
    });
  });

  describe('reaper', () => {
    it('returns the claim of a worker whose heartbeat lapsed, not a live one', async () => {
      const registry = new WorkerRegistry(store, 200);
      await queue.enqueue(films(6));
      await registry.setState('dead', 'writing');
      await registry.setState('live', 'writing');
      await queue.claim('dead', 3);
      const live = await queue.claim('live', 3);
      assert.ok(live);
      const beat = setInterval(() => void registry.heartbeat('live'), 50);
      try {
        await sleep(400);
        assert.deepEqual(await registry.reapDead(queue), {
          workers: ['dead'],
          ids: 3,
          orphans: [],
        });
      } finally {
        clearInterval(beat);
      }
      assert.deepEqual(await store.redis.lrange(queue.claimKey(live.id), 0, -1), films(3, 3));
      assert.deepEqual(
        (await queue.inFlight()).map((c) => c.workerId),
        ['live'],
      );
      assert.deepEqual(
        (await registry.list()).map((w) => w.id),
        ['live'],
      );
      assert.deepEqual(await claimIds('other', 10), films(3));
    });

    it('returns the claim of a worker that died before it registered', async () => {
      const registry = new WorkerRegistry(store, 200);
      await queue.enqueue(films(2));
      await queue.claim('ghost', 2);
      assert.deepEqual(await registry.reapDead(queue), { workers: ['ghost'], ids: 2, orphans: [] });
      assert.deepEqual(await claimIds('other', 10), films(2));
    });

    it('returns a claim left by version 0.1 (one processing list per worker)', async () => {
      const registry = new WorkerRegistry(store, 200);
      await store.redis.rpush(store.key('processing', 'old-worker'), 'a', 'b');
      await store.redis.hset(store.key('claims'), 'old-worker', String(Date.now()));
      assert.deepEqual(await registry.reapDead(queue), {
        workers: ['old-worker'],
        ids: 2,
        orphans: [],
      });
      assert.deepEqual(await queue.inFlight(), []);
      assert.deepEqual(await claimIds('other', 10), ['a', 'b']);
    });

    it('an ack after the reaper returned the claim changes nothing and says so', async () => {
      const registry = new WorkerRegistry(store, 200);
      await queue.enqueue(films(2));
      const claim = await queue.claim('paused', 2);
      assert.ok(claim);
      await registry.reapDead(queue);
      assert.equal(await queue.ack(claim, claim.ids), 'gone');
      assert.equal(await queue.depth(), 2, 'the films wait to be indexed again');
    });

    it('leaves everything alone while every worker is alive', async () => {
      const registry = new WorkerRegistry(store, 10_000);
      await queue.enqueue(films(2));
      await registry.setState('w1', 'reading');
      await queue.claim('w1', 2);
      assert.deepEqual(await registry.reapDead(queue), { workers: [], ids: 0, orphans: [] });
      assert.equal((await queue.inFlight())[0]?.size, 2);
    });

    it("returns a live worker's claim that it does not hold, and keeps the one it does", async () => {
      const registry = new WorkerRegistry(store, 10_000);
      await queue.enqueue(films(4));
      await registry.setState('w1', 'writing');
      const lost = await queue.claim('w1', 2); // its answer lost: the worker went on
      const held = await queue.claim('w1', 2);
      assert.ok(lost && held);
      const heldHere = (worker: string) => (worker === 'w1' ? held.id : undefined);
      assert.deepEqual(await registry.reapDead(queue, heldHere), {
        workers: [],
        ids: 2,
        orphans: [lost.id],
      });
      assert.deepEqual(
        (await queue.inFlight()).map((c) => c.claimId),
        [held.id],
      );
      assert.deepEqual(await claimIds('other', 10), films(2));
    });
  });

  describe('dead letters', () => {
    const letter = (id: string, reason: string, at: string) => ({ id, reason, status: 400, at });

    it('keeps one entry per film, oldest first, and counts them', async () => {
      const dead = new DeadLetters(store);
      await dead.add([letter('a', 'mapping conflict', '2024-01-01T00:00:02Z')]);
      await dead.add([letter('b', 'bad date', '2024-01-01T00:00:01Z')]);
      await dead.add([letter('a', 'still broken', '2024-01-01T00:00:03Z')]);
      await dead.add([]);
      assert.equal(await dead.count(), 2);
      assert.deepEqual(await dead.list(), [
        letter('b', 'bad date', '2024-01-01T00:00:01Z'),
        letter('a', 'still broken', '2024-01-01T00:00:03Z'),
      ]);
    });

    it('a film refused again while a retry runs keeps its new letter', async () => {
      // A syncer indexes the re-driven films as the retry goes, and one still broken comes back
      // with a new reason before the retry is done. That letter must survive the retry.
      const dead = new DeadLetters(store);
      const ids = films(6_000);
      for (let i = 0; i < ids.length; i += 1_000) {
        await dead.add(
          ids.slice(i, i + 1_000).map((id) => letter(id, 'first', '2024-01-01T00:00:00Z')),
        );
      }
      const refusedAgain = new Set<string>();
      const retrying = { done: false };
      const indexer = (async () => {
        while (!retrying.done || (await queue.depth()) > 0) {
          const claim = await queue.claim('w1', 50);
          if (!claim) {
            await sleep(1);
            continue;
          }
          await dead.add(claim.ids.map((id) => letter(id, 'again', '2024-01-02T00:00:00Z')));
          for (const id of claim.ids) refusedAgain.add(id);
          await queue.ack(claim, []);
        }
      })();
      await dead.retry(queue);
      retrying.done = true;
      await indexer;
      assert.ok(refusedAgain.size > 0);
      const letters = new Map((await dead.list()).map((l) => [l.id, l.reason]));
      const lost = [...refusedAgain].filter((id) => letters.get(id) !== 'again');
      assert.deepEqual(lost.slice(0, 5), [], `${lost.length} new letters deleted by the retry`);
    });

    it('an acknowledgement clears a letter only when its read is as new as the refused one', async () => {
      const dead = new DeadLetters(store);
      const versioned = (id: string, version: number) => ({
        ...letter(id, 'refused', '2024-01-01T00:00:00Z'),
        version,
      });
      // older: a read before the refused one; same/newer: at or after it; legacy: a letter of an
      // older version (no version: any acknowledgement clears it); unknown: no read version.
      await dead.add([
        versioned('older', 20),
        versioned('same', 20),
        versioned('newer', 20),
        letter('legacy', 'refused', '2024-01-01T00:00:00Z'),
        versioned('unknown', 20),
      ]);
      await queue.enqueue(['older', 'same', 'newer', 'legacy', 'unknown']);
      const claim = await queue.claim('w1', 10);
      assert.ok(claim);
      const versions = new Map([
        ['older', 19],
        ['same', 20],
        ['newer', 21],
        ['legacy', 5],
      ]);
      assert.equal(await queue.ack(claim, claim.ids, versions), 'done');
      assert.deepEqual(
        (await dead.list()).map((l) => l.id),
        ['older'],
      );
    });

    it('retry queues every dead film again and clears the list', async () => {
      const dead = new DeadLetters(store);
      assert.equal(await dead.retry(queue), 0);
      await queue.enqueue(['b']);
      await dead.add([
        letter('a', 'x', '2024-01-01T00:00:00Z'),
        letter('b', 'y', '2024-01-01T00:00:00Z'),
      ]);
      assert.equal(await dead.retry(queue), 2);
      assert.equal(await dead.count(), 0);
      assert.deepEqual(await dead.list(), []);
      assert.deepEqual((await claimIds('w1', 10)).sort(), ['a', 'b']);
    });
  });
});
