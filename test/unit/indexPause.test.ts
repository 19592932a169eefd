import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IndexPause } from '../../src/sync/indexPause.js';

describe('the pause of an index that refuses writes', () => {
  it('doubles once per refusal after it ran out, not once per worker that met the same one', () => {
    const pause = new IndexPause();
    const first = pause.refused();
    // Every worker that was inside a write when the index refused reports it too.
    for (let worker = 0; worker < 5; worker++) pause.refused();
    assert.ok(pause.holding);
    assert.ok(pause.remainingMs <= first, `${pause.remainingMs} ms left of a ${first} ms pause`);
  });

  it('starts over once the index takes a write', () => {
    const pause = new IndexPause();
    pause.refused();
    pause.accepted();
    assert.equal(pause.holding, false);
    assert.equal(pause.remainingMs, 0);
  });
});
