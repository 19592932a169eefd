/** The read lock's local queue: one at a time, in order, with the full load's walk allowed ahead. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Mutex } from '../../src/util/mutex.js';

/** A task that records when it starts and ends, and finishes when told to. */
function task(log: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    finish,
    run: async () => {
      log.push(`${name} start`);
      await done;
      log.push(`${name} end`);
      return name;
    },
  };
}

describe('Mutex', () => {
  it('runs one at a time, in the order asked, and `first` goes ahead of ordinary waiters', async () => {
    const mutex = new Mutex();
    const log: string[] = [];
    const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((name) => task(log, name));
    assert.ok(a && b && c && d && e);
    const results = [
      mutex.run(a.run),
      mutex.run(b.run),
      mutex.run(c.run),
      mutex.run(d.run, { first: true }),
      mutex.run(e.run, { first: true }),
    ];
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(log, ['a start'], 'the others wait while a holds it');
    for (const t of [a, d, e, b, c]) {
      t.finish();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(await Promise.all(results), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(log, [
      'a start',
      'a end',
      'd start',
      'd end',
      'e start',
      'e end',
      'b start',
      'b end',
      'c start',
      'c end',
    ]);
  });

  it('passes the turn on when a holder fails, and a free mutex is taken at once', async () => {
    const mutex = new Mutex();
    const failed = mutex.run(() => Promise.reject(new Error('query failed')));
    const next = mutex.run(() => Promise.resolve('next ran'));
    await assert.rejects(failed, /query failed/);
    assert.equal(await next, 'next ran');
    assert.equal(await mutex.run(() => Promise.resolve('again'), { first: true }), 'again');
  });
});
