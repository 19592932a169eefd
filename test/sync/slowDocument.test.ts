/**
 * A document PostgreSQL cannot build within the statement timeout (a person in a vast number of
 * films, a policy function that waits) is set apart like one it cannot build at all; a timeout
 * that holds for every read (a table locked by an `ALTER TABLE`) letters nothing.
 *
 * Found while reading what was left alone: a timeout is not an error of one document's data, so
 * the whole claim was given back and read again, for ever. The other documents claimed with the
 * slow one never reached the index, and every try held the single reader for the whole timeout.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { DocumentExtractor } from '../../src/extract/extractor.js';
import { films } from '../../src/kinds/films.js';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, indexDrifts, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { guardPersons, personInFewestFilms } from '../helpers/personGuard.js';
import { migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';
import { createSyncerRole, startSyncerAs, type SyncerRole } from '../helpers/syncerRole.js';

/** The syncer's statement timeout here; the slow person takes three times as long to read. */
const TIMEOUT_MS = 1_000;

describe('a document slower to build than the statement timeout', () => {
  let sandbox: Sandbox;
  let role: SyncerRole;

  before(async () => {
    sandbox = await createSandbox('slow_document');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 60, 3, 90);
    role = await createSyncerRole(sandbox, 'etl_slow');
    // A policy on person rows that takes 3 s for the persons listed in a table, for the syncer's
    // role only, which looks people up by index only.
    await guardPersons(sandbox, role, 'slow', 'PERFORM pg_sleep(3)', { lookupsOnly: true });
  });

  after(async () => {
    await sandbox.cleanup();
    await role.drop();
  });

  const start = () =>
    startSyncerAs(sandbox, role, {
      queryTimeoutMs: TIMEOUT_MS,
      unreadableRetry: { firstMs: 60_000, tries: 6 },
    });
  const letterIds = async (syncer: Syncer) =>
    (await syncer.deadLetters.list()).map((l) => l.id).sort();

  it('is lettered, and the documents claimed with it are indexed', async () => {
    const syncer = await start();
    try {
      await waitForConvergence(sandbox);
      // The person in the fewest films goes slow: the documents of those films (which list their
      // directors, actors and writers, not producers) and the person's own take 3 s to build,
      // every other as long as before.
      const { person, films: slowFilms } = await personInFewestFilms(sandbox.pg, {
        asProducer: false,
      });
      assert.ok(slowFilms.length > 0 && slowFilms.length < 10, 'a person of a few films');
      const slow = [...slowFilms, `persons/${person}`].sort();
      await sandbox.pg.query('INSERT INTO content.slow VALUES ($1)', [person]);
      // Every film retitled in one statement: they are claimed together with the slow ones, and
      // every person's document lists its films' titles.
      await sandbox.pg.query(`UPDATE content.film_work SET title = title || ' (remastered)'`);

      const behind = async () => {
        const drifts = await indexDrifts(sandbox.pg, sandbox.es, sandbox.config);
        return drifts.flatMap((d) =>
          [...d.drift.stale.map((s) => s.id), ...d.drift.missing, ...d.drift.extra].map((id) =>
            d.kind === 'films' ? id : `${d.kind}/${id}`,
          ),
        );
      };
      await eventually(
        async () =>
          (await behind()).every((id) => slow.includes(id)) &&
          JSON.stringify(await letterIds(syncer)) === JSON.stringify(slow),
        60_000,
        'every other document indexed, the slow ones lettered',
        {
          describe: async () =>
            `behind ${JSON.stringify((await behind()).filter((id) => !slow.includes(id)).length)} ` +
            `others, letters ${JSON.stringify(await letterIds(syncer))}, slow ${JSON.stringify(slow)}`,
        },
      );
      const letters = await syncer.deadLetters.list();
      for (const letter of letters) assert.match(letter.reason, /statement timeout/);

      // The person is quick again; an operator re-drives the letters (the scheduled retry, as
      // in unreadableRetry, would come a minute after).
      await sandbox.pg.query('TRUNCATE content.slow');
      assert.equal(await syncer.deadLetters.retry(syncer.queue), slow.length);
      await waitForConvergence(sandbox, 30_000);
      assert.deepEqual(await letterIds(syncer), [], 'no letter left');
    } finally {
      await syncer.stop();
    }
  });

  /**
   * Films queued while `content.person` is locked (as edits made just before the lock would have
   * queued them: an edit made now would not be, the capture reads the locked table too), the lock
   * released when `release` resolves, the reads waited for; returns the letters then.
   */
  async function queuedBehindLock(films: number, release: () => Promise<void>): Promise<string[]> {
    await sandbox.pg.query('TRUNCATE content.slow');
    const syncer = await start();
    const locker = await sandbox.pg.connect();
    try {
      await waitForConvergence(sandbox);
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE content.person IN ACCESS EXCLUSIVE MODE');
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id::text AS id FROM content.film_work ORDER BY id LIMIT $1',
        [films],
      );
      await syncer.queue.enqueue(rows.map((r) => r.id));
      await release();
      await locker.query('COMMIT');
      await eventually(
        async () =>
          (await syncer.queue.depth()) === 0 && (await syncer.queue.inFlight()).length === 0,
        30_000,
        'every queued film read',
      );
      await waitForConvergence(sandbox, 30_000);
      return await letterIds(syncer);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
      await syncer.stop();
    }
  }

  /** How long until `at` seconds after the film read waiting for the lock began; null if none. */
  async function untilReadWaited(at: number): Promise<number | null> {
    const { rows } = await sandbox.pg.query<{ ms: number }>(
      `SELECT (extract(epoch FROM a.query_start + make_interval(secs => $1) - clock_timestamp())
              * 1000)::float8 AS ms
         FROM pg_locks l JOIN pg_stat_activity a USING (pid)
        WHERE NOT l.granted AND l.relation = 'content.person'::regclass
          AND a.query LIKE '%requested AS%'`,
      [at],
    );
    return rows[0]?.ms ?? null;
  }

  it('is not what a table locked for longer than the timeout makes of every document', async () => {
    // Every film: their reads wait for the lock and run out of time, several timeouts' worth.
    const letters = await queuedBehindLock(1_000, async () => {
      await eventually(async () => (await untilReadWaited(0)) !== null, 10_000, 'a read waits');
      await delay(10 * TIMEOUT_MS);
    });
    assert.deepEqual(letters, [], 'nothing lettered');
  });

  // From a review: the probe ran after the read had given the reader up, behind the others, and
  // waited for the lock itself; a lock that went meanwhile let it answer, and the document, read
  // alone, was lettered as slow.
  it('is not what a lock released just after a lone read timed out makes of it', async () => {
    // One film: the lock goes a tenth of the timeout after its read ran out of time, as the
    // probe begins.
    const letters = await queuedBehindLock(1, async () => {
      const read = { waitMs: 0 };
      await eventually(
        async () => {
          const ms = await untilReadWaited((1.1 * TIMEOUT_MS) / 1000);
          if (ms !== null) read.waitMs = ms;
          return ms !== null;
        },
        10_000,
        "the film's read waits for the lock",
      );
      await delay(Math.max(0, read.waitMs));
    });
    assert.deepEqual(letters, [], 'nothing lettered');
  });

  // A fuzzer's finding: reads that time out one after the other went on after a stop's grace
  // (10 s), so the stop ran out its bound and left the claims for the next syncer's reaper.
  it('does not hold up a stop: the claim is given back within the grace', async () => {
    await sandbox.pg.query('TRUNCATE content.slow');
    // Reads of 20: a claim of every film is three reads, each with its own timeouts to spend.
    const syncer = await startSyncer(
      sandbox,
      { databaseUrl: role.databaseUrl, listenUrl: role.databaseUrl, workers: 2, bulkSize: 20 },
      testLog(),
      { queryTimeoutMs: TIMEOUT_MS, unreadableRetry: { firstMs: 60_000, tries: 6 } },
    );
    try {
      await waitForConvergence(sandbox);
      await sandbox.pg.query(
        `INSERT INTO content.slow SELECT id FROM content.person ORDER BY id LIMIT 15`,
      );
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id::text AS id FROM content.film_work',
      );
      await syncer.queue.enqueue(rows.map((r) => r.id));
      await eventually(
        async () =>
          (await untilReadWaited(0)) !== null || (await syncer.queue.inFlight()).length > 0,
        10_000,
        'the films claimed',
      );
      await delay(2 * TIMEOUT_MS);
    } finally {
      const stopping = performance.now();
      await syncer.stop();
      const ms = performance.now() - stopping;
      await sandbox.pg.query('TRUNCATE content.slow');
      const store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
      try {
        assert.deepEqual(await new DocumentQueue(store).inFlight(), [], 'no claim left');
      } finally {
        await store.close();
      }
      assert.ok(ms < 14_000, `stopped in ${Math.round(ms)} ms`);
    }
  });

  it('sets apart or reads at least one of a list at every call, however many are slow', async () => {
    await sandbox.pg.query('TRUNCATE content.slow');
    const syncer = await start();
    try {
      await waitForConvergence(sandbox);
      // Six of the people go slow, and with them about a sixth of the films.
      await sandbox.pg.query(
        `INSERT INTO content.slow SELECT id FROM content.person ORDER BY id LIMIT 6`,
      );
      const slowFilms = new Set(
        (
          await sandbox.pg.query<{ id: string }>(
            `SELECT DISTINCT film_work_id::text AS id FROM content.person_film_work
              WHERE person_id IN (SELECT id FROM content.slow) AND role <> 'producer'`,
          )
        ).rows.map((r) => r.id),
      );
      const all = (
        await sandbox.pg.query<{ id: string }>('SELECT id::text AS id FROM content.film_work')
      ).rows.map((r) => r.id);
      const extractor = new DocumentExtractor(syncer.db, syncer.lock, 200);
      const claim = { workerId: 'test', ids: all, claimedAt: Date.now() };
      const unreadable: string[] = [];
      let left = all;
      let calls = 0;
      while (left.length > 0) {
        calls++;
        const read = await extractor.readApart(films, claim, left);
        const got = read.batch.documents.map((d) => d.id);
        const apart = read.unreadable.map((u) => u.id);
        assert.ok(got.length + apart.length > 0, `call ${calls} made no progress`);
        assert.deepEqual(
          [...got, ...apart, ...read.unresolved].sort(),
          [...left].sort(),
          'every id read, set apart or left',
        );
        assert.ok(
          got.every((id) => !slowFilms.has(id)),
          `no slow film read: ${got.filter((id) => slowFilms.has(id)).join(',')} of ${got.length}`,
        );
        unreadable.push(...apart);
        left = read.unresolved;
      }
      assert.deepEqual(
        unreadable.sort(),
        [...slowFilms].sort(),
        'exactly the slow films set apart',
      );
      assert.ok(calls > 1, `the timeouts allowed per call ran out (${calls} calls)`);
    } finally {
      await sandbox.pg.query('TRUNCATE content.slow');
      await syncer.stop();
    }
  });
});
