/** The one table of transient errors and the one backoff policy every retry uses. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTransientError, isTransientStatus } from '../../src/errors.js';
import { RetryDelays } from '../../src/util/backoff.js';
import { settlesWithin, TimeoutError, withTimeout } from '../../src/util/timeouts.js';

const withCode = (code: string) => Object.assign(new Error(code), { code });

describe('transient errors', () => {
  it('retries what a retry can cure', () => {
    for (const code of [
      '40001',
      '40P01',
      '57P01',
      '08006',
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
    ])
      assert.equal(isTransientError(withCode(code)), true, code);
    assert.equal(
      isTransientError(Object.assign(new Error('x'), { name: 'ConnectionError' })),
      true,
    );
    assert.equal(isTransientError(new Error('Connection terminated unexpectedly')), true);
    assert.equal(isTransientError(new Error('outer', { cause: withCode('ECONNRESET') })), true);
  });

  it('does not retry what will fail again', () => {
    for (const code of ['23505', '42P01', '22P02', 'EACCES'])
      assert.equal(isTransientError(withCode(code)), false, code);
    assert.equal(isTransientError('not an error'), false);
    const refused = Object.assign(new Error('bad'), {
      name: 'ResponseError',
      meta: { statusCode: 400 },
    });
    assert.equal(isTransientError(refused), false);
  });

  it('treats 408, 429, 5xx and no answer as not now', () => {
    for (const status of [undefined, 408, 429, 500, 503])
      assert.equal(isTransientStatus(status), true);
    for (const status of [200, 400, 401, 404, 409]) assert.equal(isTransientStatus(status), false);
  });
});

describe('backoff', () => {
  it('grows, stays under its cap, and starts over after a success', () => {
    const delays = new RetryDelays({ initialMs: 100, maxMs: 2_000 });
    const first = Array.from({ length: 30 }, () => delays.next());
    for (const ms of first) assert.ok(ms >= 0 && ms <= 2_000, `${ms} ms`);
    const early = first.slice(0, 3).reduce((a, b) => a + b, 0) / 3;
    const late = first.slice(-10).reduce((a, b) => a + b, 0) / 10;
    assert.ok(late > early * 2, `late delays (${late}) grow past early ones (${early})`);
    delays.reset();
    assert.ok(delays.next() < late, 'a reset starts from the first delay again');
  });
});

describe('timeouts', () => {
  it('rejects a promise that does not settle in time, and says what', async () => {
    const never = new Promise<never>(() => undefined);
    await assert.rejects(withTimeout(never, 20, 'ping'), (err: unknown) => {
      assert.ok(err instanceof TimeoutError);
      assert.match(err.message, /ping timed out after 20 ms/);
      return true;
    });
    assert.equal(await withTimeout(Promise.resolve(7), 1_000, 'ping'), 7);
  });

  it('tells whether a promise settled in time, failing ones included', async () => {
    assert.equal(await settlesWithin(Promise.reject(new Error('x')), 100), true);
    assert.equal(await settlesWithin(new Promise(() => undefined), 20), false);
  });
});
