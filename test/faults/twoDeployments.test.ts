/**
 * Two deployments on one database: each its own Redis prefix and its own indices (a second
 * cluster, or a move to a new one), both fed from the same tables and tombstones.
 *
 * Outside reading: a syncer prunes the tombstones older than a day that its own watermarks have
 * read past. The other deployment, stopped for longer, found those deletions gone when it came
 * back, and kept the deleted films' documents for good. The pruning now records how far it went
 * (etl.tombstone_horizon), and a deployment whose watermarks are not past it loads again.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Config } from '../../src/config.js';
import type { Snapshot } from '../../src/queue/watermarks.js';
import { pruneTombstones } from '../../src/sql/queries.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';
import { runCli } from '../helpers/runCli.js';
import { spawnSyncer } from '../helpers/syncerProcess.js';
import { once } from 'node:events';
import { readiness } from '../../src/metrics/httpServer.js';

const TOMBSTONE_TABLES = ['film_tombstone', 'person_tombstone', 'genre_tombstone'];

describe('two deployments on one database', () => {
  let sandbox: Sandbox;
  let second: Sandbox;

  before(async () => {
    sandbox = await createSandbox('two_deployments');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 40, 3, 10);
    // Under the sandbox's prefix and index name, so its clean-up removes them too.
    const config: Config = {
      ...sandbox.config,
      redisPrefix: `${sandbox.config.redisPrefix}second:`,
      index: `${sandbox.config.index}-second`,
      personsIndex: `${sandbox.config.index}-second-persons`,
      genresIndex: `${sandbox.config.index}-second-genres`,
    };
    second = { ...sandbox, config };
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('one stopped for long misses no deletion the other pruned meanwhile', async () => {
    const other = await startSyncer(second);
    await waitForConvergence(second);
    await other.stop();

    let first = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
      const [film] = (
        await sandbox.pg.query<{ id: string }>(
          'SELECT id FROM content.film_work ORDER BY id LIMIT 1',
        )
      ).rows;
      assert.ok(film);
      await sandbox.pg.query('DELETE FROM content.film_work WHERE id = $1', [film.id]);
      await waitForConvergence(sandbox);
      // A day goes by; the first deployment's next start prunes (its first pass does).
      for (const table of ['film_tombstone', 'person_tombstone', 'genre_tombstone'])
        await sandbox.pg.query(`UPDATE etl.${table} SET created = now() - interval '2 days'`);
      await first.stop();
      first = await startSyncer(sandbox);
      await eventually(
        async () =>
          (await sandbox.pg.query('SELECT 1 FROM etl.film_tombstone WHERE film_id = $1', [film.id]))
            .rowCount === 0,
        20_000,
        'the tombstone pruned by the first deployment',
      );
    } finally {
      await first.stop();
    }

    const back = await startSyncer(second);
    try {
      await waitForConvergence(second, 30_000);
    } finally {
      await back.stop();
    }
  });

  // Outside reading, reproduced: the check came at the start of a pass, and the tombstones were
  // read at its end. A prune by the other deployment in between (a catch-up pass after a day away
  // reads for a while) took tombstones the pass had not read; it then moved its watermarks past
  // them, and no later pass noticed.
  it('one whose pass is under way when the other prunes misses no deletion', async () => {
    const other = await startSyncer(second);
    await waitForConvergence(second);
    await other.stop();

    const first = await startSyncer(sandbox, { pollIntervalMs: 500 });
    let film: string;
    try {
      await waitForConvergence(sandbox);
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY id LIMIT 1',
      );
      film = rows[0]?.id ?? '';
      await sandbox.pg.query('DELETE FROM content.film_work WHERE id = $1', [film]);
      await waitForConvergence(sandbox);
      // A few more passes: the first deployment's tombstone watermarks past the deletion.
      await delay(2_000);
    } finally {
      await first.stop();
    }
    // A day goes by.
    for (const table of TOMBSTONE_TABLES)
      await sandbox.pg.query(`UPDATE etl.${table} SET created = now() - interval '2 days'`);

    // The second deployment comes back; its first pass is held on a table it reads before the
    // tombstones, after its check of the horizon.
    const locker = await sandbox.pg.connect();
    let back: Syncer | null = null;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE content.person_film_work IN ACCESS EXCLUSIVE MODE');
      const starting = startSyncer(second, { pollIntervalMs: 500 });
      await eventually(
        async () =>
          (
            await sandbox.pg.query(
              `SELECT 1 FROM pg_locks
                WHERE NOT granted AND relation = 'content.person_film_work'::regclass`,
            )
          ).rowCount !== 0,
        10_000,
        "the second deployment's pass waits on the table",
      );
      // Meanwhile the first deployment prunes, with its own statement and its own watermarks
      // (its passes would wait on the same table first).
      const marks = await sandbox.redis.mget(
        ...TOMBSTONE_TABLES.map((t) => `${sandbox.config.redisPrefix}watermark:${t}`),
      );
      const oldest = marks
        .map((mark) => BigInt((JSON.parse(mark ?? '{}') as Snapshot).xmin))
        .reduce((a, b) => (b < a ? b : a));
      await sandbox.pg.query(pruneTombstones.text, [oldest.toString()]);
      const left = await sandbox.pg.query('SELECT 1 FROM etl.film_tombstone WHERE film_id = $1', [
        film,
      ]);
      assert.equal(left.rowCount, 0, 'the tombstone pruned by the first deployment');
      await locker.query('COMMIT');
      back = await starting;
      await waitForConvergence(second, 30_000);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
      await back?.stop();
    }
  });

  // An outside reading: a dump of another cluster brings that cluster's horizon, far past this
  // server's counter. It was ignored only while the counter stayed below it: once past it, it
  // read as a pruning of this history that every watermark had missed, and every index was
  // loaded again for nothing.
  it("drops another history's horizon, and loads nothing when the counter passes it", async () => {
    const indexed = async () =>
      (await sandbox.es.indices.stats({ index: sandbox.config.index, metric: 'indexing' }))._all
        .primaries?.indexing?.index_total ?? 0;
    let syncer = await startSyncer(sandbox, { pollIntervalMs: 200 });
    try {
      await waitForConvergence(sandbox);
      await syncer.stop();
      await sandbox.pg.query(
        `UPDATE etl.tombstone_horizon
            SET pruned_up_to = (pg_snapshot_xmax(pg_current_snapshot())::text::numeric + 40)::text::xid8`,
      );
      // Its first pass prunes (and every hundredth after it).
      syncer = await startSyncer(sandbox, { pollIntervalMs: 200 });
      await eventually(() => (syncer.capture?.stats.passes ?? 0) >= 2, 10_000, 'two passes');
      const before = await indexed();
      for (let i = 0; i < 50; i++) await sandbox.pg.query('SELECT pg_current_xact_id()');
      const passes = syncer.capture?.stats.passes ?? 0;
      await eventually(
        () => (syncer.capture?.stats.passes ?? 0) >= passes + 5,
        10_000,
        'five passes past the horizon',
      );
      await sandbox.es.indices.refresh({ index: sandbox.config.index });
      assert.equal(await indexed(), before, 'no film indexed again');
      const { rows } = await sandbox.pg.query<{ pruned: string }>(
        'SELECT pruned_up_to::text AS pruned FROM etl.tombstone_horizon',
      );
      assert.equal(rows[0]?.pruned, '0', "the other history's horizon is gone");
    } finally {
      await syncer.stop();
    }
  });
});

// Outside test: two deployments given one Redis and the same REDIS_PREFIX (two stacks with the
// default prefix) shared one queue and one capture lease: one never captured, its workers took the
// other's documents, found no row of theirs, deleted them from their own index and acknowledged
// them. Edits of both were lost, and neither said a word.
describe('two deployments given one Redis prefix', () => {
  let sandbox: Sandbox;
  let first: Syncer;

  before(async () => {
    sandbox = await createSandbox('shared_prefix');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 20, 3, 10);
    first = await startSyncer(sandbox);
    await waitForConvergence(sandbox);
  });

  after(async () => {
    await first.stop();
    await sandbox.cleanup();
  });

  it('the second does not start, and names both', async () => {
    const other = `${sandbox.config.index}-other`;
    const result = await runCli('start', {
      ...sandbox.env,
      ES_INDEX: other,
      ES_PERSONS_INDEX: `${other}-persons`,
      ES_GENRES_INDEX: `${other}-genres`,
      METRICS_PORT: '0',
    });
    const said = result.stdout + result.stderr;
    assert.equal(result.code, 1, said);
    assert.match(said, /serves another deployment/);
    assert.match(said, new RegExp(`indices ${sandbox.config.index}, `), 'the deployment it serves');
    assert.match(said, new RegExp(`indices ${other}, `), 'and this one');
    assert.equal(await sandbox.es.indices.exists({ index: other }), false, 'nothing of it made');
  });

  it('a syncer that finds its prefix claimed by another deployment says it is not ready', async () => {
    const key = `${sandbox.config.redisPrefix}deployment`;
    const ours = await sandbox.redis.get(key);
    assert.ok(ours, 'the running syncer claimed its prefix');
    // As when both started while Redis was empty, or this one was paused past its claim.
    const theirs = { ...(JSON.parse(ours) as object), indices: ['a', 'b', 'c'], by: 'elsewhere' };
    await sandbox.redis.set(key, JSON.stringify(theirs), 'PX', 60_000);
    const problems = async () => (await readiness(first.view)).problems;
    await eventually(
      async () => (await problems()).some((p) => /claimed by another deployment/.test(p)),
      20_000,
      '/readyz naming the other deployment',
    );
    await sandbox.redis.del(key);
    await eventually(async () => (await problems()).length === 0, 20_000, 'ready again');
  });

  it('a running syncer that finds its prefix claimed by another deployment stops, exit 1', async () => {
    const prefix = `${sandbox.config.redisPrefix}running:`;
    const syncer = spawnSyncer(sandbox, { REDIS_PREFIX: prefix, METRICS_PORT: '0' });
    try {
      await syncer.started;
      const key = `${prefix}deployment`;
      const ours = await sandbox.redis.get(key);
      assert.ok(ours, 'it claimed its prefix');
      // As when this one started while it could not claim, or was paused past its claim.
      const theirs = { ...(JSON.parse(ours) as object), indices: ['a', 'b', 'c'], by: 'elsewhere' };
      await sandbox.redis.set(key, JSON.stringify(theirs), 'PX', 60_000);
      const [code] = (await once(syncer.child, 'exit')) as [number | null];
      assert.equal(code, 1, syncer.output());
      assert.match(syncer.output(), /claimed by another deployment/);
    } finally {
      await syncer.stop();
    }
  });
});
