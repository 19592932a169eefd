/**
 * A lone syncer whose capture lease lapses in the middle of a long full load (a pause longer than
 * the lease: GC, a stopped VM, Redis slow) takes it back within a check, and what it heard in
 * between is not left for the end of the load.
 *
 * Found by an outside reading: only the capture loop looked after the lease, and it was inside the
 * load's pass; from the loss on, every notification was ignored ("another syncer captures"), so
 * every edit made during the rest of the load waited for the load's end (at ten million films,
 * an hour).
 *
 * Elasticsearch's realtime GET shows a written document before any refresh: the load keeps
 * refresh off, so search would not.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateInto } from '../../bench/catalog.js';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import { eventually } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

/** A film's title in the films index (a realtime GET), or null when it is not there. */
async function titleOf(sandbox: Sandbox, id: string): Promise<string | null> {
  const doc = await sandbox.es
    .get<{ title: string }>({ index: sandbox.config.index, id })
    .catch(() => null);
  return doc?._source?.title ?? null;
}

/** One of the first films that the load has written already: from then on only the live path
 * can change it. */
async function aFilmWritten(sandbox: Sandbox): Promise<string> {
  const { rows } = await sandbox.pg.query<{ id: string }>(
    'SELECT id FROM content.film_work ORDER BY id LIMIT 400',
  );
  let film = '';
  await eventually(
    async () => {
      for (const { id } of rows) {
        if ((await titleOf(sandbox, id)) !== null) {
          film = id;
          return true;
        }
      }
      return false;
    },
    30_000,
    'the load wrote one of the first films',
  );
  return film;
}

/** The capture lease lapsed and another process took it for two seconds (its holder paused). */
async function leaseTakenForTwoSeconds(sandbox: Sandbox): Promise<void> {
  const other = { holder: 'another-syncer', since: new Date().toISOString(), token: 'x' };
  await sandbox.redis.set(
    `${sandbox.config.redisPrefix}capture`,
    JSON.stringify(other),
    'PX',
    2_000,
  );
}

describe('a capture lease lost during a full load', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('capture_lost');
    await migrateSandbox(sandbox);
    await generateInto(sandbox.config.databaseUrl, 20_000);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('is taken back, and edits made meanwhile are indexed before the load ends', async () => {
    // Small pages: the load runs long enough to lose the lease and edit in the middle of it.
    const syncer = await startSyncer(sandbox, { sizeLimit: 50, bulkSize: 50 });
    const plans = new FullLoadPlans(syncer.store);
    try {
      const film = await aFilmWritten(sandbox);
      assert.ok(syncer.captureLease.leading);
      // The holder's next refresh finds the lease lost, and it cannot take it back before it is
      // free again.
      await leaseTakenForTwoSeconds(sandbox);
      await eventually(() => !syncer.captureLease.leading, 5_000, 'the loss noticed');
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = 'edited mid-load' WHERE id = $1`,
        [film],
      );
      await eventually(() => syncer.captureLease.leading, 5_000, 'the lease taken back');
      await eventually(
        async () => (await titleOf(sandbox, film)) === 'edited mid-load',
        20_000,
        'the edit written',
      );
      assert.notEqual(await plans.current(), null, 'written while the full load still runs');
    } finally {
      await syncer.stop();
    }
  });
});

describe("the capture lease taken over during another syncer's full load", () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('capture_handover');
    await migrateSandbox(sandbox);
    await generateInto(sandbox.config.databaseUrl, 20_000);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('queues at once what the new holder heard before it took over', async () => {
    // The new holder never ran a pass, and its first one resumes the other's load: no pass reads
    // changes before the load's end, so what it heard as a standby must be queued at once.
    const small = { sizeLimit: 50, bulkSize: 50 };
    const loader = await startSyncer(sandbox, small);
    let standby: Awaited<ReturnType<typeof startSyncer>> | null = null;
    try {
      standby = await startSyncer(sandbox, small);
      const plans = new FullLoadPlans(standby.store);
      const film = await aFilmWritten(sandbox);
      assert.ok(loader.captureLease.leading && !standby.captureLease.leading);
      // Nobody captures for two seconds; the edit is heard by both.
      await leaseTakenForTwoSeconds(sandbox);
      await eventually(() => !loader.captureLease.leading, 5_000, 'the loss noticed');
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = 'edited at the handover' WHERE id = $1`,
        [film],
      );
      await new Promise((resolve) => setTimeout(resolve, 300)); // the notification delivered
      await loader.stop(); // its load's lease goes with it: the standby resumes the load
      const next = standby;
      await eventually(() => next.captureLease.leading, 10_000, 'the standby taking over');
      await eventually(
        async () => (await titleOf(sandbox, film)) === 'edited at the handover',
        20_000,
        'the edit written',
      );
      assert.notEqual(await plans.current(), null, 'written while the full load still runs');
    } finally {
      await standby?.stop();
      await loader.stop();
    }
  });
});
