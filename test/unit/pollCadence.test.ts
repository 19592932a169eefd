/** When the poller runs: asleep, awake while changes come, and the careful way back to sleep. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  PollCadence,
  SETTLE_AT_MOST_MS,
  type PassSighting,
} from '../../src/capture/pollCadence.js';

const INTERVAL = 5_000;
const AWAKE = 500;
const FAST = 25;

const pass = (over: Partial<PassSighting> = {}): PassSighting => ({
  rows: 0,
  xmin: '100',
  awake: false,
  ...over,
});

describe('poll cadence', () => {
  it('sleeps until it hears something, then polls back to back', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    assert.equal(cadence.state, 'asleep');
    assert.equal(cadence.nextDelay(), INTERVAL);
    assert.equal(cadence.toArm(0), null, 'asleep: nothing to hold open');
    cadence.heard(1_000);
    assert.equal(cadence.state, 'awake');
    assert.equal(cadence.nextDelay(), FAST);
    assert.equal(cadence.toArm(1_000), AWAKE);
  });

  it('holds the window open with about two updates a second, not one per pass', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.heard(0);
    let arms = 0;
    for (let now = 0; now < 10_000; now += FAST) {
      if (cadence.toArm(now) !== null) arms++;
      cadence.passed(now, pass({ rows: 3, awake: true }));
    }
    assert.equal(cadence.state, 'awake');
    assert.ok(arms >= 19 && arms <= 41, `${arms} arms in 10 s`);
  });

  it('stays awake while the server still shows the window open', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.heard(0);
    cadence.toArm(0);
    cadence.passed(600, pass({ awake: true }));
    assert.equal(cadence.state, 'awake');
  });

  it('settles until every writer that saw the window open has ended', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.heard(0);
    cadence.toArm(0);
    assert.equal(cadence.needsReference, false, 'awake: no reference');
    cadence.passed(600, pass({ awake: false, xmin: '90' }));
    assert.equal(cadence.state, 'settling');
    assert.equal(cadence.nextDelay(), FAST, 'settling polls back to back');
    assert.equal(cadence.needsReference, true, 'an id given out after the window closed');
    // No pass ends settling before the reference is taken, whatever its snapshot.
    cadence.passed(620, pass({ xmin: '200' }));
    assert.equal(cadence.state, 'settling');
    // Transaction 104 saw the window open and is still running; 105 is the reference. A snapshot
    // taken now may have xmin = xmax = 104 (104 is above every ended one): not an end.
    cadence.referenced('105');
    assert.equal(cadence.needsReference, false);
    cadence.passed(650, pass({ xmin: '104' }));
    assert.equal(cadence.state, 'settling');
    cadence.passed(700, pass({ xmin: '105' }));
    assert.equal(cadence.state, 'settling', 'the reference itself must have ended too');
    cadence.passed(800, pass({ xmin: '106' }));
    assert.equal(cadence.state, 'asleep');
    assert.equal(cadence.nextDelay(), INTERVAL);
  });

  it('leaves a writer open past the poll interval to the periodic pass', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.heard(0);
    cadence.passed(600, pass({ xmin: '100' }));
    cadence.referenced('120');
    cadence.passed(650, pass({ xmin: '100' }));
    cadence.passed(600 + INTERVAL - 1, pass({ xmin: '101' }));
    assert.equal(cadence.state, 'settling');
    cadence.passed(600 + INTERVAL, pass({ xmin: '101' }));
    assert.equal(cadence.state, 'asleep');
  });

  it('wakes up again from settling when changes come', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.heard(0);
    cadence.toArm(0);
    cadence.passed(600, pass({ xmin: '100' }));
    assert.equal(cadence.state, 'settling');
    cadence.passed(650, pass({ rows: 1, xmin: '100' }));
    assert.equal(cadence.state, 'awake');
    assert.equal(cadence.needsReference, false);
    cadence.referenced('130');
    assert.equal(cadence.toArm(650), AWAKE, 'the window is opened again');
    // Back to sleep later takes a reference of its own, not the one offered while awake.
    cadence.passed(1_200, pass({ xmin: '140' }));
    assert.equal(cadence.state, 'settling');
    assert.equal(cadence.needsReference, true);
  });

  it('settles for at most SETTLE_AT_MOST_MS when the poll interval is longer', () => {
    const cadence = new PollCadence(600_000, AWAKE, FAST);
    cadence.heard(0);
    cadence.passed(600, pass({ xmin: '100' }));
    cadence.referenced('120');
    cadence.passed(650, pass({ xmin: '100' }));
    cadence.passed(600 + SETTLE_AT_MOST_MS - 1, pass({ xmin: '101' }));
    assert.equal(cadence.state, 'settling');
    cadence.passed(600 + SETTLE_AT_MOST_MS, pass({ xmin: '101' }));
    assert.equal(cadence.state, 'asleep');
  });

  it('compares transaction ids as numbers, past 2^53', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.heard(0);
    cadence.passed(600, pass({ xmin: '9007199254740993' }));
    cadence.referenced('9007199254741000');
    cadence.passed(700, pass({ xmin: '9007199254741000' }));
    assert.equal(cadence.state, 'settling', '...1000 is not above ...1000');
    cadence.passed(800, pass({ xmin: '9007199254741001' }));
    assert.equal(cadence.state, 'asleep');
  });

  it("takes over settling: the last capturer's writers may have sent nothing", () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.takeOver(0);
    assert.equal(cadence.state, 'settling');
    assert.equal(cadence.nextDelay(), FAST, 'polls back to back at once');
    assert.equal(cadence.toArm(0), null, 'holds no window of its own');
    assert.equal(cadence.needsReference, false, 'not before a pass has seen its window closed');
    cadence.passed(30, pass({ xmin: '100' }));
    assert.equal(cadence.needsReference, true);
    cadence.referenced('120');
    cadence.passed(60, pass({ xmin: '110' }));
    assert.equal(cadence.state, 'settling', 'a writer below the reference still runs');
    cadence.passed(90, pass({ xmin: '121' }));
    assert.equal(cadence.state, 'asleep');
  });

  it('wakes when it finds a window open that it did not open', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.passed(0, pass({ awake: true }));
    assert.equal(cadence.state, 'awake', "another syncer's window: its writers are quiet");
    const takenOver = new PollCadence(INTERVAL, AWAKE, FAST);
    takenOver.takeOver(0);
    takenOver.passed(30, pass({ awake: true }));
    assert.equal(takenOver.state, 'awake', 'the last capturer left its window open');
  });

  it('holds no window while steps fail, and settles once a pass goes through', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    assert.equal(cadence.failed(0), false, 'asleep: no window of ours to close');
    assert.equal(cadence.state, 'asleep');
    cadence.heard(0);
    assert.equal(cadence.toArm(0), AWAKE);
    assert.equal(cadence.failed(100), true, 'awake: the window may be open, close it');
    assert.equal(cadence.state, 'settling');
    assert.equal(cadence.toArm(100), null, 'no window held open while failing');
    assert.equal(cadence.failed(20_000), false, 'settling holds no window');
    // Failing longer than the settling cap: the cap counts from the last failure.
    cadence.passed(20_030, pass({ xmin: '100' }));
    assert.equal(cadence.state, 'settling', 'the first pass through only sees the window closed');
    assert.equal(cadence.needsReference, true);
    cadence.referenced('120');
    cadence.passed(20_060, pass({ xmin: '121' }));
    assert.equal(cadence.state, 'asleep');
    // Woken again while the window it armed before the failure (closed by the caller) would
    // still run: armed again at once.
    const again = new PollCadence(INTERVAL, AWAKE, FAST);
    again.heard(0);
    assert.equal(again.toArm(0), AWAKE);
    again.failed(100);
    again.heard(150);
    assert.equal(again.toArm(150), AWAKE, 'the failure forgot the arm');
  });
});
