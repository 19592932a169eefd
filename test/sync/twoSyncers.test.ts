/**
 * Two syncers on the same Postgres, Redis and index, racing on the same films: every film ends up
 * indexed from its latest state (external versions refuse stale writes), with nothing left in
 * flight.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { sleep } from '../../src/util/sleep.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('two syncers at once', () => {
  let sandbox: Sandbox;
  let syncers: Syncer[];
  const logs = [capturingLog(), capturingLog()];

  before(async () => {
    sandbox = await createSandbox('two');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 500, 5, 30);
    // Small batches and frequent polls: the two read and write the same films often.
    syncers = await Promise.all(
      logs.map(({ log }) =>
        startSyncer(sandbox, { sizeLimit: 20, bulkSize: 10, pollIntervalMs: 200 }, log),
      ),
    );
  });

  after(async () => {
    await Promise.all(syncers.map((s) => s.stop()));
    await sandbox.cleanup();
  });

  // Outside test: the loader counted only its own indexers' documents, so with two syncers it
  // logged "full load done" at well under half the catalog.
  it("count every syncer's documents in the first load's progress", async () => {
    const { rows } = await sandbox.pg.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM content.film_work)::int + (SELECT count(*) FROM content.person)::int
              + (SELECT count(*) FROM content.genre)::int AS n`,
    );
    const documents = rows[0]?.n ?? 0;
    const done = () =>
      logs.flatMap(({ lines }) => lines()).find((line) => line.msg === 'full load done');
    await eventually(() => done() !== undefined, 60_000, 'the load reported done');
    const shares = syncers.map((s) => (s.indexer?.stats.indexed ?? 0) > 0);
    assert.deepEqual(shares, [true, true], 'both syncers indexed part of it');
    assert.ok(
      Number(done()?.documents) >= documents,
      `reported ${String(done()?.documents)} documents done of ${documents}`,
    );
  });

  it('converge on the latest state of every film', async () => {
    await waitForConvergence(sandbox, 60_000);
    const { rows } = await sandbox.pg.query<{ id: string }>(
      `SELECT id FROM content.film_work ORDER BY id LIMIT 20`,
    );
    for (let round = 0; round < 30; round++) {
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = 'round ' || $1::int, rating = $1::int % 10 WHERE id = ANY ($2)`,
        [round, rows.map((r) => r.id)],
      );
      await sandbox.pg.query(
        `UPDATE content.person SET full_name = 'P' || $1::int || ' ' || full_name
                               WHERE id IN (SELECT id FROM content.person ORDER BY id LIMIT 2)`,
        [round],
      );
    }
    await waitForConvergence(sandbox, 60_000);
    // Redundant work (the same film re-queued by a poll pass) drains too.
    const queue = syncers[0]?.queue;
    await eventually(
      async () => (await queue?.depth()) === 0 && (await queue?.inFlight())?.length === 0,
      30_000,
      'queue drained',
    );
    await waitForConvergence(sandbox, 5_000);
    const workers = (await syncers[0]?.registry.list()) ?? [];
    for (const syncer of syncers) {
      assert.ok(
        workers.some((w) => w.alive && w.id.startsWith(syncer.processId)),
        'both syncers have indexers registered and alive',
      );
    }
  });

  // Outside test: a syncer paused past its workers' 15 s heartbeat had them forgotten by the
  // other's reaper; idle, they wrote no new state, so status left them out while they ran on.
  it('lists again the idle workers of a syncer whose entries the other one forgot', async () => {
    const [first, second] = syncers;
    assert.ok(first && second);
    await waitForConvergence(sandbox, 60_000);
    await eventually(async () => (await first.queue.depth()) === 0, 30_000, 'queue drained');
    await sleep(1_000); // every worker idle, and its idle state written
    const ofSecond = async () =>
      (await first.registry.list()).filter((w) => w.alive && w.id.startsWith(second.processId));
    const before = await ofSecond();
    assert.ok(before.length > 0);
    // What a reaper does once their heartbeats lapsed: the alive keys gone, the entries removed.
    const prefix = sandbox.config.redisPrefix;
    for (const worker of before)
      await sandbox.redis
        .multi()
        .hdel(`${prefix}workers`, worker.id)
        .del(`${prefix}alive:${worker.id}`)
        .exec();
    assert.equal((await ofSecond()).length, 0);
    await eventually(
      async () => (await ofSecond()).length === before.length,
      15_000,
      'every worker of the second syncer listed again',
    );
  });
});
