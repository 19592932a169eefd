/**
 * Telling a database that went back in time, or another server or history, from one that did
 * not (src/capture/rewind.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REWIND_HEADROOM, rewindOf } from '../../src/capture/rewind.js';
import type { Snapshot } from '../../src/queue/watermarks.js';

const at = (
  xmax: number,
  more: {
    base?: number;
    system?: string;
    timeline?: string;
    relations?: string;
    started?: string;
    checkpointNextXid?: number;
    checkpointAt?: number;
  } = {},
): Snapshot => ({
  xmin: String(xmax - 5),
  xmax: String(xmax),
  xip: [],
  at: '2026-12-06T00:00:00.000Z',
  ...(more.base === undefined ? {} : { base: String(more.base) }),
  ...(more.system === undefined ? {} : { system: more.system }),
  ...(more.timeline === undefined ? {} : { timeline: more.timeline }),
  ...(more.relations === undefined ? {} : { relations: more.relations }),
  ...(more.started === undefined ? {} : { started: more.started }),
  ...(more.checkpointNextXid === undefined
    ? {}
    : { checkpointNextXid: String(more.checkpointNextXid) }),
  ...(more.checkpointAt === undefined ? {} : { checkpointAt: String(more.checkpointAt) }),
});
const here = { base: 0, system: '7716', timeline: '00000001' };

describe('rewindOf', () => {
  it('is null while the server is the same, at or past every watermark', () => {
    assert.equal(rewindOf(at(1_000, here), [at(1_000, here), at(900, here), null]), null);
    assert.equal(rewindOf(at(1_001, here), [at(1_000)]), null, 'recorded before 0.3');
    assert.equal(rewindOf(at(1_000, here), []), null, 'nothing recorded');
  });

  it('raises the base past the furthest version and reloads when the counter went back', () => {
    assert.deepEqual(rewindOf(at(400, here), [at(1_000, here), at(990, here)]), {
      behindBy: 600n,
      lostInCrash: false,
      otherHistory: false,
      otherTables: false,
      raiseBaseTo: 600n + REWIND_HEADROOM,
      reload: true,
    });
  });

  it('reloads after a crash that gave out again ids a watermark saw end', () => {
    // Watermarks are taken at 2026-12-06T00:00:00Z (1796515200 s); the server started before.
    const before = { ...here, started: '1796500000.113256', checkpointNextXid: 500 };
    const restarted = (next: number) => ({
      ...here,
      started: '1796516000.5',
      checkpointNextXid: next,
      checkpointAt: 1796516001,
    });
    // Writers took the counter past the watermark again; the restart's first id is below it.
    const crashed = rewindOf(at(1_030, restarted(990)), [at(1_000, before), at(995, before)]);
    assert.deepEqual(crashed, {
      behindBy: 10n,
      lostInCrash: true,
      otherHistory: false,
      otherTables: false,
      raiseBaseTo: 1_000n + REWIND_HEADROOM - 1_030n,
      reload: true,
    });
    assert.equal(rewindOf(at(1_030, restarted(1_000)), [at(1_000, before)]), null, 'none lost');
    assert.equal(rewindOf(at(1_030, restarted(990)), [at(1_000, here)]), null, 'recorded before');
    // A backend killed: the postmaster runs the recovery without restarting, and its checkpoint
    // began after the watermark.
    const recovered = { ...before, checkpointNextXid: 990, checkpointAt: 1796515201 };
    assert.equal(rewindOf(at(1_030, recovered), [at(1_000, before)])?.lostInCrash, true);
    // The same run, its latest checkpoint older than the watermarks: its id says nothing.
    const older = { ...before, checkpointNextXid: 990, checkpointAt: 1796515100 };
    assert.equal(rewindOf(at(1_030, older), [at(1_000, before)]), null, 'an older checkpoint');
    const sameSecond = { ...before, checkpointNextXid: 990, checkpointAt: 1796515200 };
    assert.equal(rewindOf(at(1_030, sameSecond), [at(1_000, before)]), null, 'not surely after');
  });

  it('reloads on another timeline or server even when the counter is not behind', () => {
    // A standby promoted a few transactions behind what the indexers had read.
    const promoted = rewindOf(at(1_010, { ...here, timeline: '00000002' }), [at(1_000, here)]);
    assert.deepEqual(promoted, {
      behindBy: 0n,
      lostInCrash: false,
      otherHistory: true,
      otherTables: false,
      raiseBaseTo: REWIND_HEADROOM - 10n,
      reload: true,
    });
    const moved = rewindOf(at(5_000, { ...here, system: '9999' }), [at(1_000, here)]);
    assert.equal(moved?.reload, true);
    // Its counter is past the watermarks, not surely past what the indexers read after them.
    assert.equal(moved.raiseBaseTo, 1_000n + REWIND_HEADROOM - 5_000n);
  });

  it('counts the base the watermarks were taken with', () => {
    // The lost history had raised its base once already; the backup still has base 0.
    const rewind = rewindOf(at(400, here), [at(1_000, { ...here, base: 5_000 })]);
    assert.equal(rewind?.raiseBaseTo, 5_600n + REWIND_HEADROOM);
  });

  it('asks only for the load when the base was raised already (an interrupted recovery)', () => {
    const raised = Number(600n + REWIND_HEADROOM);
    assert.deepEqual(rewindOf(at(400, { ...here, base: raised }), [at(1_000, here)]), {
      behindBy: 600n,
      lostInCrash: false,
      otherHistory: false,
      otherTables: false,
      raiseBaseTo: null,
      reload: true,
    });
  });

  // With the headroom: the index may hold versions a little past the watermarks.
  it('raises the base alone when only it is behind (restored with an older base)', () => {
    assert.deepEqual(rewindOf(at(1_200, here), [at(1_000, { ...here, base: 5_000 })]), {
      behindBy: 0n,
      lostInCrash: false,
      otherHistory: false,
      otherTables: false,
      raiseBaseTo: 4_800n + REWIND_HEADROOM,
      reload: false,
    });
  });

  it('reloads without raising the base when the tables were made anew (a restore in place)', () => {
    const tables = { ...here, relations: '16384:1,2' };
    assert.deepEqual(
      rewindOf(at(1_200, { ...here, relations: '16384:3,4' }), [at(1_000, tables)]),
      {
        behindBy: 0n,
        lostInCrash: false,
        otherHistory: false,
        otherTables: true,
        raiseBaseTo: null,
        reload: true,
      },
    );
    assert.equal(
      rewindOf(at(1_200, here), [at(1_000, tables)]),
      null,
      'recorded by an older build',
    );
  });
});
