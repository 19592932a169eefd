/**
 * The wall clock can step back (NTP correcting a fast clock, a VM resumed from a snapshot). The
 * syncer's own timing must not care: an asleep syncer polls every ETL_POLL_INTERVAL_MS, and those
 * passes are what read the edits of writers that stayed quiet because they saw it awake just before
 * it went to sleep. Found by an outside reading: the next pass was due at a wall-clock time, so a
 * step back by an hour held every periodic pass for an hour.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('the wall clock stepped back', () => {
  let sandbox: Sandbox;
  let syncer: Syncer;

  before(async () => {
    sandbox = await createSandbox('clock_step');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 20, 3, 5);
    syncer = await startSyncer(sandbox, { pollIntervalMs: 300 });
    await waitForConvergence(sandbox);
  });

  after(async () => {
    await syncer.stop();
    await sandbox.cleanup();
  });

  it('keeps the periodic passes coming', async () => {
    const capture = syncer.capture;
    assert.ok(capture, 'the syncer captures');
    const realNow = Date.now;
    try {
      Date.now = () => realNow() - 3_600_000;
      const before = capture.stats.passes;
      await eventually(
        () => capture.stats.passes >= before + 3,
        5_000,
        'three passes, 300 ms apart, after the step',
      );
    } finally {
      Date.now = realNow;
    }
  });
});
