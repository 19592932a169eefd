/**
 * A full load holds a constant amount of Redis whatever the catalog's size, and one interrupted
 * half-way resumes where it stopped instead of starting over.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fullLoadQueueBound } from '../../src/capture/poller.js';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { runCli } from '../helpers/runCli.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

// Small reads, so that a catalog of a few thousand documents is many times the queue's bound.
const SMALL = { sizeLimit: 10, bulkSize: 10, sleepMs: 0, workers: 4 };
const BOUND = fullLoadQueueBound(SMALL.sizeLimit);
// What may sit in the queue at most: the bound, the page read just below it (a turn of the walk
// reads at least one), and the claims of a stopped syncer's workers, given back to the queue.
const MOST = BOUND + (1 + SMALL.workers) * SMALL.sizeLimit;

describe('a full load of a catalog many times the queue bound', () => {
  let sandbox: Sandbox;
  const syncers: Syncer[] = [];
  let proxy: EsFaultProxy | undefined;

  before(async () => {
    sandbox = await createSandbox('bounded');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 1_500, 5, 300);
  });

  after(async () => {
    proxy?.forward();
    for (const syncer of syncers) await syncer.stop();
    await proxy?.close();
    await sandbox.cleanup();
  });

  it('never queues more than the bound, and an interrupted load resumes where it stopped', async () => {
    // First syncer: Elasticsearch goes away right after start, so nothing drains the queue.
    proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const elasticsearch = { ...sandbox.config.elasticsearch, url: proxy.url };
    const first = await startSyncer(sandbox, { ...SMALL, elasticsearch });
    syncers.push(first);
    proxy.down();
    const plans = new FullLoadPlans(first.store);
    let deepest = 0;
    await eventually(
      async () => {
        deepest = Math.max(deepest, await first.queue.depth());
        return deepest >= BOUND;
      },
      30_000,
      'the queue to reach its bound',
    );
    // It stays there: the load waits for room instead of queueing the rest.
    for (let i = 0; i < 20; i++) {
      deepest = Math.max(deepest, await first.queue.depth());
      await delay(50);
    }
    assert.ok(deepest <= MOST, `queue reached ${deepest} (bound ${BOUND})`);
    const halfway = await plans.queued();
    assert.ok(halfway > 0 && halfway < 1_500, `${halfway} documents queued before the stop`);
    assert.notEqual(await plans.cursor('queue:films'), 'done');
    await first.stop();
    syncers.pop();
    // An operator sees the interrupted load waiting to be resumed.
    const status = await runCli('status', sandbox.env, ['--json']);
    assert.equal(status.code, 0, status.stderr);
    const { fullLoad } = JSON.parse(status.stdout) as {
      fullLoad: { queued: number; total: number; indices: string[] } | null;
    };
    assert.ok(fullLoad && fullLoad.queued >= halfway, status.stdout);
    assert.equal(fullLoad.total, 1_500 + 300 + 5);
    assert.deepEqual(fullLoad.indices, ['films', 'persons', 'genres']);

    // Second syncer, Elasticsearch reachable: it picks the plan up and finishes it.
    const { log, lines } = capturingLog();
    const second = await startSyncer(sandbox, SMALL, log);
    syncers.push(second);
    const plansNow = new FullLoadPlans(second.store);
    let peak = 0;
    const sampler = (async () => {
      while (syncers.includes(second) && (await plansNow.current()) !== null) {
        peak = Math.max(peak, await second.queue.depth());
        await delay(20);
      }
    })();
    await waitForConvergence(sandbox, 120_000);
    await sampler;
    const messages = lines().map((l) => l.msg);
    assert.ok(messages.includes('full load: resuming where it stopped'), messages.join('\n'));
    assert.ok(!messages.includes('full load: queueing every document'), 'it did not start over');
    const done = lines().find((l) => l.msg === 'full load queued');
    assert.ok(done, 'the resumed load finished');
    assert.ok(
      Number(done.read) < 1_500 + 300 + 5 && Number(done.resumed_after) > 0,
      `the second syncer read ${String(done.read)} documents, not all of them again`,
    );
    assert.ok(peak <= MOST, `queue reached ${peak} (bound ${BOUND})`);
    assert.equal(await plansNow.current(), null, 'the finished plan is gone');
  });
  it('resumes the load a TRUNCATE began, once interrupted, instead of starting over', async () => {
    // The load a TRUNCATE calls for begins after it: its plan serves the truncation, and one
    // interrupted (a restart, a lost lease) must be resumed, not begun again each time.
    for (const running of syncers.splice(0)) await running.stop();
    proxy ??= await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    proxy.forward();
    const elasticsearch = { ...sandbox.config.elasticsearch, url: proxy.url };
    const first = await startSyncer(sandbox, { ...SMALL, elasticsearch });
    syncers.push(first);
    await waitForConvergence(sandbox, 60_000);
    proxy.down();
    await sandbox.pg.query('TRUNCATE content.genre_film_work');
    const plans = new FullLoadPlans(first.store);
    await eventually(
      async () => (await plans.current()) !== null && (await first.queue.depth()) >= BOUND,
      30_000,
      'the load after the TRUNCATE under way',
    );
    await first.stop();
    syncers.pop();
    proxy.forward();

    const { log, lines } = capturingLog();
    const second = await startSyncer(sandbox, SMALL, log);
    syncers.push(second);
    await waitForConvergence(sandbox, 120_000);
    const messages = lines().map((l) => l.msg);
    assert.ok(messages.includes('full load: resuming where it stopped'), messages.join('\n'));
    assert.ok(!messages.includes('full load: queueing every document'), 'it did not start over');
  });
});
