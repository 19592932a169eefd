/** How the loader reads a `_bulk` answer: pure logic, no services. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BulkAnswerMismatch,
  classifyItem,
  matchOutcomes,
  overPressureAlone,
  refusalReason,
  type Operation,
} from '../../src/load/bulkItems.js';

const index: Operation = { kind: 'index', id: 'a', version: 1, json: '{}' };
const remove: Operation = { kind: 'delete', id: 'b', version: 1 };

describe('bulk answer', () => {
  it('classifies every kind of item', () => {
    assert.equal(classifyItem(index, { status: 201 }), 'indexed');
    assert.equal(classifyItem(index, { status: 200 }), 'indexed');
    assert.equal(classifyItem(remove, { status: 200 }), 'deleted');
    assert.equal(classifyItem(index, { status: 409 }), 'stale');
    assert.equal(classifyItem(remove, { status: 409 }), 'stale');
    // Deleting what is not there is done; a 404 that names an error is not.
    assert.equal(classifyItem(remove, { status: 404 }), 'deleted');
    const gone = { status: 404, error: { type: 'index_not_found_exception' } };
    assert.equal(classifyItem(remove, gone), 'index-missing');
    assert.equal(classifyItem(index, gone), 'index-missing');
    for (const status of [429, 500, 502, 503, 504])
      assert.equal(classifyItem(index, { status }), 'retry', String(status));
    const mapping = { status: 400, error: { type: 'document_parsing_exception', reason: 'bad' } };
    assert.equal(classifyItem(index, mapping), 'dead');
    // Refusals of the whole index, not of the document: tried again until it takes writes, its
    // documents held back meanwhile (src/sync/indexPause.ts).
    const closed = { status: 400, error: { type: 'index_closed_exception' } };
    const blocked = { status: 403, error: { type: 'cluster_block_exception' } };
    const denied = { status: 403, error: { type: 'security_exception' } };
    assert.equal(classifyItem(index, closed), 'index-refused');
    assert.equal(classifyItem(index, blocked), 'index-refused');
    assert.equal(classifyItem(remove, denied), 'index-refused');
    // A disk past its flood stage blocks the index with a 429: that index's, not the document's.
    const flood = { status: 429, error: { type: 'cluster_block_exception' } };
    assert.equal(classifyItem(index, flood), 'index-refused');
  });

  it('says why an item was refused, with its cause', () => {
    assert.equal(
      refusalReason({
        status: 400,
        error: {
          type: 'document_parsing_exception',
          reason: 'failed to parse',
          caused_by: { reason: 'year 20000' },
        },
      }),
      'document_parsing_exception: failed to parse (year 20000)',
    );
    assert.equal(refusalReason({ status: 400 }), 'error: no reason given');
  });

  it('matches items to operations in order, or trusts none of the answer', () => {
    const matched = matchOutcomes([index, remove], {
      items: [{ index: { status: 201 } }, { delete: { status: 200 } }],
    });
    assert.deepEqual(
      matched.map((m) => [m.op.id, m.outcome.status]),
      [
        ['a', 201],
        ['b', 200],
      ],
    );
    assert.throws(
      () => matchOutcomes([index, remove], { items: [{ index: { status: 201 } }] }),
      BulkAnswerMismatch,
    );
    assert.throws(() => matchOutcomes([index], {}), BulkAnswerMismatch);
    // An item under another action than the one sent answers nothing.
    assert.throws(
      () => matchOutcomes([index], { items: [{ delete: { status: 200 } }] }),
      BulkAnswerMismatch,
    );
  });

  it('tells a request too large for indexing pressure alone from one refused under load', () => {
    // As Elasticsearch 9.5 answered a bulk of one 12 MB document (on its primary shard) and one
    // of 75 MB (the whole request), at a 512 MB heap.
    const primary = (inFlight: number, part: number) =>
      `rejected execution of primary operation [coordinating_and_primary_bytes=${inFlight}, ` +
      `replica_bytes=0, all_bytes=${inFlight}, primary_operation_bytes=${part}, ` +
      'max_primary_bytes=53687091]';
    const coordinating = (inFlight: number, bytes: number) =>
      `rejected execution of coordinating operation [coordinating_and_primary_bytes=${inFlight}, ` +
      `replica_bytes=0, all_bytes=${inFlight}, coordinating_operation_bytes=${bytes}, ` +
      'max_coordinating_bytes=53687091]';
    assert.deepEqual(overPressureAlone(coordinating(0, 75_497_707), 75_497_700), {
      bytes: 75_497_707,
      limit: 53_687_091,
    });
    // The part counted four times, and the request's own bytes still in flight.
    assert.deepEqual(overPressureAlone(primary(12_000_209, 48_000_036), 12_000_071), {
      bytes: 60_000_107,
      limit: 53_687_091,
    });
    // Refused only because of what else was in flight: not now, but later.
    assert.equal(overPressureAlone(coordinating(40_000_000, 20_000_000), 20_000_000), null);
    assert.equal(overPressureAlone(primary(40_000_000, 20_000_000), 5_000_000), null);
    // An older wording of the limit.
    assert.ok(
      overPressureAlone(
        coordinating(0, 60_000_000).replace(
          'max_coordinating_bytes',
          'max_coordinating_and_primary_bytes',
        ),
        60_000_000,
      ),
    );
    assert.equal(overPressureAlone('rejected execution of org.elasticsearch.Task', 10), null);
    assert.equal(overPressureAlone(undefined, 10), null);
  });
});
