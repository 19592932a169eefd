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
  xmax: '110',
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
    cadence.passed(600, pass({ awake: false, xmin: '90', xmax: '100' }));
    assert.equal(cadence.state, 'settling');
    assert.equal(cadence.nextDelay(), FAST, 'settling polls back to back');
    // The next pass's snapshot is the reference (taken surely after the window closed).
    cadence.passed(650, pass({ xmin: '100', xmax: '120' }));
    assert.equal(cadence.state, 'settling', 'the reference pass itself never ends settling');
    // Transaction 105 is still running: below the xmax of the reference snapshot.
    cadence.passed(700, pass({ xmin: '105', xmax: '125' }));
    assert.equal(cadence.state, 'settling');
    cadence.passed(800, pass({ xmin: '120', xmax: '126' }));
    assert.equal(cadence.state, 'asleep');
    assert.equal(cadence.nextDelay(), INTERVAL);
  });

  it('leaves a writer open past the poll interval to the periodic pass', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.heard(0);
    cadence.passed(600, pass({ xmin: '100', xmax: '120' }));
    cadence.passed(650, pass({ xmin: '100', xmax: '120' }));
    cadence.passed(600 + INTERVAL - 1, pass({ xmin: '101', xmax: '130' }));
    assert.equal(cadence.state, 'settling');
    cadence.passed(600 + INTERVAL, pass({ xmin: '101', xmax: '130' }));
    assert.equal(cadence.state, 'asleep');
  });

  it('wakes up again from settling when changes come', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.heard(0);
    cadence.toArm(0);
    cadence.passed(600, pass({ xmin: '100', xmax: '120' }));
    assert.equal(cadence.state, 'settling');
    cadence.passed(650, pass({ rows: 1, xmin: '100', xmax: '121' }));
    assert.equal(cadence.state, 'awake');
    assert.equal(cadence.toArm(650), AWAKE, 'the window is opened again');
  });

  it('settles for at most SETTLE_AT_MOST_MS when the poll interval is longer', () => {
    const cadence = new PollCadence(600_000, AWAKE, FAST);
    cadence.heard(0);
    cadence.passed(600, pass({ xmin: '100', xmax: '120' }));
    cadence.passed(650, pass({ xmin: '100', xmax: '120' }));
    cadence.passed(600 + SETTLE_AT_MOST_MS - 1, pass({ xmin: '101', xmax: '130' }));
    assert.equal(cadence.state, 'settling');
    cadence.passed(600 + SETTLE_AT_MOST_MS, pass({ xmin: '101', xmax: '130' }));
    assert.equal(cadence.state, 'asleep');
  });

  it('compares transaction ids as numbers, past 2^53', () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.heard(0);
    cadence.passed(600, pass({ xmin: '9007199254740993', xmax: '9007199254741000' }));
    cadence.passed(650, pass({ xmin: '9007199254740993', xmax: '9007199254741000' }));
    cadence.passed(700, pass({ xmin: '9007199254740999', xmax: '9007199254741001' }));
    assert.equal(cadence.state, 'settling', '...999 < ...1000');
    cadence.passed(800, pass({ xmin: '9007199254741000', xmax: '9007199254741001' }));
    assert.equal(cadence.state, 'asleep');
  });

  it("takes over settling: the last capturer's writers may have sent nothing", () => {
    const cadence = new PollCadence(INTERVAL, AWAKE, FAST);
    cadence.takeOver(0);
    assert.equal(cadence.state, 'settling');
    assert.equal(cadence.nextDelay(), FAST, 'polls back to back at once');
    assert.equal(cadence.toArm(0), null, 'holds no window of its own');
    cadence.passed(30, pass({ xmin: '100', xmax: '120' }));
    cadence.passed(60, pass({ xmin: '110', xmax: '125' }));
    assert.equal(cadence.state, 'settling', 'a writer of the reference snapshot still runs');
    cadence.passed(90, pass({ xmin: '120', xmax: '130' }));
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
});
