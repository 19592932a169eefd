/**
 * The Postgres read lock on a real Redis: one reader at a time across processes (two stores on one
 * prefix) and coroutines, what others see of the holder, crashed holders, and safe release.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createLogger, type Logger } from '../../src/logger.js';
import { ReadLock, type LockHolder } from '../../src/queue/readLock.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { sleep } from '../../src/util/sleep.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const silent = createLogger('silent', false);

interface LogLine {
  msg: string;
  holder?: string;
}

/** A pino logger whose JSON lines land in `lines`. */
function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as LogLine);
      }
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

describe('postgres read lock', () => {
  let prefix: string;
  const stores: RedisStore[] = [];

  /** A new connection on the test's prefix: another "process" sharing the lock. */
  const connect = () => {
    const store = new RedisStore(REDIS_URL, prefix, silent);
    stores.push(store);
    return store;
  };

  beforeEach(() => {
    prefix = `test:lock:${randomBytes(6).toString('hex')}:`;
  });

  afterEach(async () => {
    const [first] = stores;
    if (first) {
      const keys = await first.redis.keys(`${prefix}*`);
      if (keys.length > 0) await first.redis.del(...keys);
    }
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });

  it('lets one reader in at a time across processes and concurrent calls', async () => {
    const a = new ReadLock(connect(), 'proc-a', silent);
    const b = new ReadLock(connect(), 'proc-b', silent);
    let inside = 0;
    let most = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).withLock(`read ${i}`, async () => {
          inside++;
          most = Math.max(most, inside);
          await sleep(2);
          await new Promise((resolve) => setImmediate(resolve));
          assert.equal(inside, 1, 'another reader came in');
          inside--;
          done++;
        }),
      ),
    );
    assert.equal(done, 20);
    assert.equal(most, 1);
    assert.equal(await a.holder(), null);
  });

  it("gives another process a turn soon while this one's readers keep the lock busy", async () => {
    // A full load: four indexers each reading back to back (5 ms queries), for as long as it takes.
    const busy = new ReadLock(connect(), 'proc-a', silent);
    const other = new ReadLock(connect(), 'proc-b', silent);
    const stop = new AbortController();
    let busyReads = 0;
    const indexers = Array.from({ length: 4 }, async () => {
      while (!stop.signal.aborted)
        await busy.withLock('extract', async () => {
          await sleep(5);
          busyReads++;
        });
    });
    try {
      await sleep(200);
      // The other process's live path needs a few reads meanwhile.
      const waits: number[] = [];
      for (let i = 0; i < 10; i++) {
        const asked = Date.now();
        await other.withLock('live extract', () => Promise.resolve());
        waits.push(Date.now() - asked);
      }
      const slowest = Math.max(...waits);
      assert.ok(slowest < 400, `the other process waited ${waits.join(', ')} ms for its turns`);
      assert.ok(busyReads > 20, `the busy process read only ${busyReads} times meanwhile`);
    } finally {
      stop.abort();
      await Promise.all(indexers);
    }
  });

  // Found by an outside reading: a run's length was measured by the wall clock, so a clock
  // stepped back (NTP, a resumed VM) let the busy process hand the lease among its own readers for
  // as long as the step, and every other process's reads waited that long.
  it('gives another process its turn when the wall clock steps back', async () => {
    const busy = new ReadLock(connect(), 'proc-a', silent);
    const other = new ReadLock(connect(), 'proc-b', silent);
    const stop = new AbortController();
    const indexers = Array.from({ length: 4 }, async () => {
      while (!stop.signal.aborted) await busy.withLock('extract', () => sleep(5));
    });
    const realNow = Date.now;
    try {
      await sleep(200);
      Date.now = () => realNow() - 3_600_000;
      const asked = performance.now();
      const turn = other.withLock('live extract', () => Promise.resolve(true));
      const waited = await Promise.race([turn, sleep(3_000).then(() => false)]);
      assert.ok(waited, 'the other process got no turn within 3 s');
      assert.ok(performance.now() - asked < 1_000, 'the other process waited a second or more');
    } finally {
      Date.now = realNow;
      stop.abort();
      await Promise.all(indexers);
    }
  });

  it('hands one lease on among the readers of a busy process, for a short run at a time', async () => {
    const store = connect();
    const lock = new ReadLock(store, 'proc-a', silent);
    const tokens: string[] = [];
    const until = Date.now() + 400;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < until)
          await lock.withLock('extract', async () => {
            const raw = await store.redis.get(lock.key);
            tokens.push((JSON.parse(raw ?? '{}') as LockHolder).token);
            await sleep(2);
          });
      }),
    );
    const leases = new Set(tokens).size;
    // Without handing on, every read took a lease of its own; runs last 50 ms at most.
    assert.ok(tokens.length >= 40, `only ${tokens.length} reads`);
    assert.ok(leases <= tokens.length / 3, `${leases} leases for ${tokens.length} reads`);
    assert.ok(leases >= 4, `${leases} leases in 400 ms: a run outlasted its 50 ms`);
    assert.equal(await lock.holder(), null, 'the last reader released the lock');
  });

  it('shows who holds the lock and since when, and nothing once released', async () => {
    const lock = new ReadLock(connect(), 'proc-a', silent, { leaseMs: 10_000 });
    const observer = new ReadLock(connect(), 'proc-b', silent);
    const before = Date.now();
    const seen = await lock.withLock('films batch', () => observer.holder());
    assert.ok(seen);
    assert.equal(seen.holder, 'proc-a films batch');
    const since = Date.parse(seen.since);
    assert.ok(since >= before - 5 && since <= Date.now(), `since ${seen.since}`);
    assert.ok(seen.ageMs >= 0 && seen.ageMs < 5_000);
    assert.ok(seen.leaseLeftMs > 0 && seen.leaseLeftMs <= 10_000);
    assert.equal(await observer.holder(), null);
  });

  it('holds a lease of 10 s: a crashed holder keeps the others waiting no longer', async () => {
    const lock = new ReadLock(connect(), 'proc-a', silent);
    const observer = new ReadLock(connect(), 'proc-b', silent);
    const seen = await lock.withLock('films batch', () => observer.holder());
    assert.ok(seen);
    assert.ok(seen.leaseLeftMs > 9_000 && seen.leaseLeftMs <= 10_000, `${seen.leaseLeftMs} ms`);
  });

  it('waits at most about one lease for a holder that crashed, logging who holds it', async () => {
    const store = connect();
    const { log, lines } = capturingLogger();
    const lock = new ReadLock(store, 'proc-b', log, { logEveryMs: 50 });
    const crashed: LockHolder = {
      holder: 'proc-crashed films batch',
      since: new Date().toISOString(),
      token: 'crashed-token',
    };
    const started = Date.now();
    await store.redis.set(lock.key, JSON.stringify(crashed), 'PX', 300);
    const enteredAfter = await lock.withLock('catch-up', () =>
      Promise.resolve(Date.now() - started),
    );
    assert.ok(enteredAfter >= 250, `got in after ${enteredAfter} ms, before the lease ran out`);
    assert.ok(enteredAfter < 3_000, `got in only after ${enteredAfter} ms`);
    assert.ok(lock.waitedMs >= 250);
    const waiting = lines.filter((line) => line.msg === 'waiting for the postgres read lock');
    assert.ok(waiting.length > 0, 'the waiter logged nothing');
    assert.ok(waiting.some((line) => line.holder === 'proc-crashed films batch'));
  });

  // Outside test: the wait was added only once the lock was taken, so the read-lock wait metric
  // stayed flat while a reader sat behind a stuck holder, then jumped.
  it('counts a wait under way, before the lock is taken', async () => {
    const store = connect();
    const lock = new ReadLock(store, 'proc-b', silent);
    const stuck: LockHolder = {
      holder: 'proc-stuck films batch',
      since: new Date().toISOString(),
      token: 'stuck-token',
    };
    await store.redis.set(lock.key, JSON.stringify(stuck), 'PX', 1_500);
    const reading = lock.withLock('catch-up', () => Promise.resolve());
    await sleep(700);
    const during = lock.waitedMs;
    assert.ok(during >= 500, `counted ${during} ms of a wait of 700 ms so far`);
    await reading;
    assert.ok(lock.waitedMs >= 1_200 && lock.waitedMs >= during, `${lock.waitedMs} ms in all`);
    await sleep(200);
    assert.ok(lock.waitedMs < during + 1_500, 'no wait counted once it ended');
  });

  it('takes back at once a lease of its own that Redis brought back, and no other process does', async () => {
    // Redis restarted from a save made while this process read: the lease is there again, with
    // most of its time left, and nobody reads under it. (A release lost on its way leaves the
    // same.) Another process must wait it out; this one knows the lease is a ghost of its own.
    const store = connect();
    const { log, lines } = capturingLogger();
    const lock = new ReadLock(store, 'proc-a', log);
    const other = new ReadLock(connect(), 'proc-b', silent);
    const ghost = await lock.withLock('snapshot', () => store.redis.get(lock.key));
    assert.ok(ghost);
    await store.redis.set(lock.key, ghost, 'PX', 1_500);
    const otherStarted = Date.now();
    const otherWaited = await other.withLock('catch-up', () =>
      Promise.resolve(Date.now() - otherStarted),
    );
    assert.ok(otherWaited >= 1_000, `another process got in after ${otherWaited} ms`);
    await store.redis.set(lock.key, ghost, 'PX', 10_000);
    const started = Date.now();
    const waited = await lock.withLock('catch-up', () => Promise.resolve(Date.now() - started));
    assert.ok(waited < 500, `waited ${waited} ms for a lease of its own`);
    assert.equal(await lock.holder(), null, 'the lease taken back was released');
    assert.ok(lines.some((line) => line.msg.startsWith('took back a postgres read lock lease')));
  });

  it('releases the lock when the read throws', async () => {
    const lock = new ReadLock(connect(), 'proc-a', silent);
    const other = new ReadLock(connect(), 'proc-b', silent);
    await assert.rejects(
      lock.withLock('broken read', () => Promise.reject(new Error('query failed'))),
      /query failed/,
    );
    assert.equal(await lock.holder(), null);
    const started = Date.now();
    assert.equal(await other.withLock('next', () => Promise.resolve('read')), 'read');
    assert.ok(Date.now() - started < 1_000);
    assert.equal(await lock.withLock('again', () => Promise.resolve(1)), 1);
  });

  it('neither frees nor extends a lock that another holder took after our lease lapsed', async () => {
    const store = connect();
    const { log, lines } = capturingLogger();
    const lock = new ReadLock(store, 'proc-a', log, { leaseMs: 300 });
    const theirs = JSON.stringify({
      holder: 'proc-b films batch',
      since: new Date().toISOString(),
      token: 'their-token',
    } satisfies LockHolder);
    await lock.withLock('slow read', async () => {
      // As if our lease had run out and proc-b had taken the lock.
      await store.redis.set(lock.key, theirs, 'PX', 10_000);
      await sleep(250); // the refresh (every lease / 3) runs meanwhile
    });
    assert.equal(await store.redis.get(lock.key), theirs);
    assert.ok((await store.redis.pttl(lock.key)) > 5_000, 'our refresh reset their lease');
    assert.ok(lines.some((line) => line.msg === 'postgres read lock lease expired while reading'));
  });
});
