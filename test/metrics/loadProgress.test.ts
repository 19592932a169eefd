import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { LoadProgress } from '../../src/metrics/loadProgress.js';
import { Terminal } from '../../src/terminal.js';
import { Screen } from '../helpers/screen.js';
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

describe('progress bar and log lines on one terminal', () => {
  it('prints every log line whole above the bar, and leaves the bar whole on its own line', async () => {
    const screen = new Screen();
    const terminal = new Terminal(screen.stream, screen.stream);
    const { log } = capturingLog();
    let done = 0;
    const progress = new LoadProgress(
      'full load',
      1_000,
      { done: () => done, finished: () => Promise.resolve(false) },
      log,
      true,
      10_000,
      terminal,
    );
    progress.start();
    for (let i = 1; i <= 4; i++) {
      done += 150;
      await delay(300);
      terminal.write(`[12:00:0${i}.000] INFO: line ${i} while loading\n`);
    }
    await delay(1_100); // the bar redraws with the last count
    progress.stop();
    terminal.write('[12:00:09.000] INFO: after the load\n');

    const lines = screen.text();
    const logs = lines.filter((l) => l.includes('INFO:'));
    assert.deepEqual(
      logs,
      [1, 2, 3, 4]
        .map((i) => `[12:00:0${i}.000] INFO: line ${i} while loading`)
        .concat('[12:00:09.000] INFO: after the load'),
      lines.join('\n'),
    );
    const bars = lines.filter((l) => l.startsWith('full load ['));
    assert.equal(bars.length, 1, lines.join('\n'));
    assert.match(bars[0] ?? '', /\| 600\/1000 documents \| \d+\/s \| ETA/);
    // The bar's last state stays between the load's lines and what came after it.
    assert.ok(lines.indexOf(bars[0] ?? '') < lines.indexOf('[12:00:09.000] INFO: after the load'));
  });
});
