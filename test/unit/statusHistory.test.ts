/** The status page's latency quantiles, estimated from histogram buckets as Prometheus does. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quantile } from '../../src/metrics/statusHistory.js';

/** Cumulative counts, the way a histogram keeps them: upper bound → observations at or below. */
const buckets = (entries: [number, number][]) => new Map(entries);

describe('quantile from histogram buckets', () => {
  it('interpolates inside the bucket the rank falls in', () => {
    // 100 observations: 50 up to 0.1 s, 40 more up to 0.5 s, 10 more up to 1 s.
    const b = buckets([
      [0.1, 50],
      [0.5, 90],
      [1, 100],
      [Infinity, 100],
    ]);
    assert.equal(quantile(0.5, b), 0.1);
    assert.ok(Math.abs((quantile(0.7, b) ?? 0) - 0.3) < 1e-9);
    assert.ok(Math.abs((quantile(0.99, b) ?? 0) - 0.95) < 1e-9);
  });

  it('is null with nothing observed, and the largest finite bound past it', () => {
    assert.equal(
      quantile(
        0.5,
        buckets([
          [0.1, 0],
          [Infinity, 0],
        ]),
      ),
      null,
    );
    assert.equal(
      quantile(
        0.99,
        buckets([
          [0.1, 1],
          [1, 1],
          [Infinity, 10],
        ]),
      ),
      1,
    );
  });
});
