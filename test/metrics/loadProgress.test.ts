import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { LoadProgress } from '../../src/metrics/loadProgress.js';
import { capturingLog } from '../helpers/syncerHarness.js';

describe('progress of a full load', () => {
  it('logs done, total, rate and ETA when not in a terminal, then a summary', async () => {
    const { log, lines } = capturingLog();
    let done = 0;
    let finished = false;
    const progress = new LoadProgress(
      'full load',
      1_000,
      { done: () => done, finished: () => Promise.resolve(finished) },
      log,
      false,
      0,
    );
    progress.start();
    for (let i = 0; i < 3; i++) {
      done += 200;
      await delay(1_050);
    }
    finished = true;
    await delay(1_100);
    progress.stop();

    const updates = lines().filter((l) => l.msg === 'full load progress');
    assert.ok(updates.length >= 2, `${updates.length} progress lines`);
    const last = updates.at(-1);
    assert.ok(last);
    assert.equal(last.total, 1_000);
    assert.ok(typeof last.done === 'number' && last.done >= 400);
    assert.ok(typeof last.rate === 'number' && last.rate > 0);
    assert.ok(typeof last.eta_s === 'number' && last.eta_s > 0);
    const summary = lines().find((l) => l.msg === 'full load done');
    assert.equal(summary?.documents, 600);
  });
});
