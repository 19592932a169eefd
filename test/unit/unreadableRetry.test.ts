/**
 * When a document PostgreSQL could not build is read again (src/queue/unreadableRetry.ts): 30 s
 * after the failure, each wait four times the one before, none after the sixth failure; and never
 * for a letter of status 0 that is no failed read.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeadLetter } from '../../src/queue/deadLetters.js';
import {
  retryDueAt,
  triesAfterFailure,
  UNREADABLE_RETRY,
} from '../../src/queue/unreadableRetry.js';

const at = '2026-12-07T00:00:00.000Z';
const letter = (fields: Partial<DeadLetter>): DeadLetter => ({
  id: 'f',
  status: 0,
  reason: 'postgres could not build the document',
  at,
  ...fields,
});

describe('unreadable retry schedule', () => {
  it('waits 30 s, then four times longer each time, six tries in all', () => {
    const waits = [1, 2, 3, 4, 5].map(
      (tries) => (retryDueAt(letter({ tries }), UNREADABLE_RETRY) ?? 0) - Date.parse(at),
    );
    assert.deepEqual(waits, [30_000, 120_000, 480_000, 1_920_000, 7_680_000]);
    assert.equal(retryDueAt(letter({ tries: 6 }), UNREADABLE_RETRY), null);
  });

  // From a review: a letter of status 0 for a queue member that names no document carries no
  // count, was queued again at every due time, and lettered again with no count: for ever.
  it('leaves letters that are no failed read alone', () => {
    assert.equal(retryDueAt(letter({ id: 'persons/not-a-uuid' }), UNREADABLE_RETRY), null);
    assert.equal(retryDueAt(letter({ status: 400, tries: 1 }), UNREADABLE_RETRY), null);
  });

  it('counts a failure as a try only at or after the retry was due', () => {
    const t0 = Date.parse(at);
    assert.equal(triesAfterFailure(undefined, t0, UNREADABLE_RETRY), 1, 'the first failure');
    const second = letter({ tries: 2 }); // due 2 min after `at`
    assert.equal(triesAfterFailure(second, t0 + 1_000, UNREADABLE_RETRY), 2, 'an edit read early');
    assert.equal(triesAfterFailure(second, t0 + 120_000, UNREADABLE_RETRY), 3, 'the retry');
    // Read by a syncer whose clock is 20 s behind the one that queued the retry.
    assert.equal(triesAfterFailure(second, t0 + 100_000, UNREADABLE_RETRY), 3, 'a clock behind');
    assert.equal(triesAfterFailure(letter({ tries: 6 }), t0, UNREADABLE_RETRY), 7, 'spent');
    assert.equal(triesAfterFailure(letter({}), t0, UNREADABLE_RETRY), 2, 'a letter with no count');
  });
});
