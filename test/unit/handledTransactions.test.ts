/**
 * The handled-transactions ledger alone (the live path's use of it: test/capture/). A message of
 * a transaction that this syncer did not act on (another syncer captured by then) keeps the
 * transaction from being skipped; found by an outside reading: a capturer that lost its lease
 * between two messages of one transaction, then took it back, let a pass skip the second one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HandledTransactions } from '../../src/capture/handledTransactions.js';

/** The ledger's full cycle: seal what was heard, then a drain begun after the seal ends. */
function sealAndDrain(handled: HandledTransactions) {
  handled.barrier();
  handled.drained(handled.beginDrain());
}

describe('handled transactions', () => {
  it('skips a transaction whose every message was acted on', () => {
    const handled = new HandledTransactions();
    handled.heardFrom('7', true);
    handled.heardFrom('7', true);
    sealAndDrain(handled);
    assert.equal(handled.has('7'), true);
  });

  it('reads one of whose messages one was missed', () => {
    const handled = new HandledTransactions();
    handled.heardFrom('7', true);
    handled.missed('7');
    sealAndDrain(handled);
    assert.equal(handled.has('7'), false);
  });

  it('keeps nothing for a missed transaction it never heard', () => {
    const handled = new HandledTransactions();
    handled.missed('8');
    assert.equal(handled.unsealed, false, 'a standby ignoring every message grows no ledger');
    handled.heardFrom('9', true);
    sealAndDrain(handled);
    assert.equal(handled.has('8'), false);
    assert.equal(handled.has('9'), true);
  });

  // Found by an outside reading: a Redis restart forgot only what was handled. A transaction
  // heard, whose films a drain had sent to the old server, then sealed, became handled at the
  // next drain into the new one, which did not hold them: the poller skipped its rows, and its
  // edits waited for an unrelated later one.
  for (const sealedBefore of [true, false]) {
    it(`reads again after a Redis restart what was ${sealedBefore ? 'sealed' : 'heard'} before it`, () => {
      const handled = new HandledTransactions();
      handled.heardFrom('7', true);
      const before = handled.beginDrain(); // its films go to the server that restarts
      if (sealedBefore) handled.barrier();
      handled.drained(before);
      handled.forgetAll();
      sealAndDrain(handled);
      assert.equal(handled.has('7'), false);
    });
  }

  it('does not take the messages of a transaction heard after a Redis restart for all of it', () => {
    const handled = new HandledTransactions();
    handled.heardFrom('7', true);
    handled.drained(handled.beginDrain()); // the first message's films, to the server that restarts
    handled.forgetAll();
    handled.heardFrom('7', true);
    sealAndDrain(handled);
    assert.equal(handled.has('7'), false);
  });

  // Found by an outside reading: a (re)connect's reset came after the new connection's first
  // messages had been taken (it waits for the doorbell's "listening"), and dropped them: a
  // transaction's unlisted first message (`many`, left to a pass) was forgotten, its listed second
  // one made the transaction look whole, and the pass skipped the first statement's rows.
  it('keeps a transaction heard before a reset from looking whole after it', () => {
    const handled = new HandledTransactions();
    handled.heardFrom('7', false);
    handled.reset();
    handled.heardFrom('7', true);
    sealAndDrain(handled);
    assert.equal(handled.has('7'), false);
  });
});
