/**
 * Telling a database that went back in time from one that did not (src/capture/rewind.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REWIND_HEADROOM, rewindOf } from '../../src/capture/rewind.js';
import type { Snapshot } from '../../src/queue/watermarks.js';

const at = (xmax: number, base?: number): Snapshot => ({
  xmin: String(xmax - 5),
  xmax: String(xmax),
  xip: [],
  at: '2026-12-06T00:00:00.000Z',
  ...(base === undefined ? {} : { base: String(base) }),
});

describe('rewindOf', () => {
  it('is null while the server is at or past every watermark', () => {
    assert.equal(rewindOf(at(1_000, 0), [at(1_000, 0), at(900, 0), null]), null);
    assert.equal(rewindOf(at(1_001), [at(1_000)]), null, 'snapshots from before 0.3: no base');
    assert.equal(rewindOf(at(1_000, 0), []), null, 'nothing recorded');
  });

  it('raises the base past the furthest version when the counter went back', () => {
    const rewind = rewindOf(at(400, 0), [at(1_000, 0), at(990, 0)]);
    assert.deepEqual(rewind, { behindBy: 600n, raiseBaseTo: 600n + REWIND_HEADROOM });
  });

  it('counts the base the watermarks were taken with', () => {
    // The lost timeline had raised its base once already; the backup still has base 0.
    const rewind = rewindOf(at(400, 0), [at(1_000, 5_000)]);
    assert.deepEqual(rewind, { behindBy: 600n, raiseBaseTo: 5_600n + REWIND_HEADROOM });
  });

  it('asks only for the load when the base was raised already (an interrupted recovery)', () => {
    const raised = Number(600n + REWIND_HEADROOM);
    assert.deepEqual(rewindOf(at(400, raised), [at(1_000, 0)]), {
      behindBy: 600n,
      raiseBaseTo: null,
    });
  });

  it('raises the base alone when only the versions are behind (restored with an older base)', () => {
    assert.deepEqual(rewindOf(at(1_200, 0), [at(1_000, 5_000)]), {
      behindBy: 0n,
      raiseBaseTo: 4_800n + REWIND_HEADROOM,
    });
  });
});
