/**
 * A full-load plan that no pass will resume (two syncers saw the same TRUNCATE: one loaded and
 * moved the watermarks past it, the other began a fresh plan on that stale news and failed) is
 * dropped, instead of staying in Redis for good (`status` showed a load under way, and a later
 * load would have resumed its old cursor). Found by the chaos campaign (seed 90512347, round 3).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence, waitForFullLoadDone } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('a full-load plan that no pass needs', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('unneeded_plan');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 100, 4, 20);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('is dropped by the next incremental pass, and the index stays as it was', async () => {
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(sandbox, { pollIntervalMs: 300 }, log);
    try {
      await waitForConvergence(sandbox);
      // Searchable is not over: the load sets the watermarks once it has queued and swept all.
      await waitForFullLoadDone(sandbox);
      const watermarks = new Watermarks(syncer.store);
      const plans = new FullLoadPlans(syncer.store);
      const epoch = await watermarks.epoch();
      const mark = await watermarks.get('film_work');
      assert.ok(epoch && mark);
      // What the failed loader left: a plan of this epoch, begun, its walk part done.
      const id = randomUUID();
      const run = await plans.begin(
        {
          id,
          epoch,
          snapshot: mark,
          kinds: ['films', 'persons', 'genres'],
          tables: 'all',
          total: 124,
          began: new Date().toISOString(),
          earlierClaims: [],
          reloads: {},
        },
        '',
      );
      await run.advance('queue:films', ['00000000-0000-4000-8000-000000000000'], 10);
      await eventually(async () => (await plans.current()) === null, 30_000, 'the plan dropped');
      assert.equal(await plans.cursor('queue:films'), undefined, 'its cursor went with it');
      assert.ok(
        lines().some(
          (l) =>
            l.msg ===
              'dropped a full-load plan that no pass needs any more (its load was done by another)' &&
            l.plan === id,
        ),
      );
      await waitForConvergence(sandbox);
    } finally {
      await syncer.stop();
    }
  });
});
