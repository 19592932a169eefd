/**
 * Documents PostgreSQL could not build are read again by themselves, a few times.
 *
 * Found while reading what was left alone: the error classes that mark a document's own bad data
 * are raised for every document while some passing cause lasts (here a guard that raises for every
 * person, as a maintenance window's might; an internal error during an `ALTER TABLE` is another).
 * Every document read meanwhile went to the dead letters and stayed there, out of the index or
 * stale in it, until someone ran `npm run dead-letters -- --retry`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DeadLetter } from '../../src/queue/deadLetters.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { guardPersons, personInFewestFilms } from '../helpers/personGuard.js';
import { migrateSandbox } from '../helpers/syncerHarness.js';
import { createSyncerRole, startSyncerAs, type SyncerRole } from '../helpers/syncerRole.js';

describe('documents postgres could not build', () => {
  let sandbox: Sandbox;
  let role: SyncerRole;

  before(async () => {
    sandbox = await createSandbox('unreadable_retry');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 40, 3, 8);
    role = await createSyncerRole(sandbox, 'etl_retry');
    // A guard on person rows that raises for the ids in a table, for the syncer's role only.
    await guardPersons(
      sandbox,
      role,
      'guarded',
      "RAISE EXCEPTION 'person % is under maintenance', id",
    );
  });

  after(async () => {
    await sandbox.cleanup();
    await role.drop();
  });

  const letters = async (syncer: Syncer) =>
    new Map((await syncer.deadLetters.list()).map((l): [string, DeadLetter] => [l.id, l]));

  it('are queued again once the cause passes, with no one re-driving them', async () => {
    const syncer = await startSyncerAs(sandbox, role, {
      unreadableRetry: { firstMs: 500, tries: 6 },
    });
    try {
      await waitForConvergence(sandbox);
      // Every person guarded, then every film retitled: no film document and no person document
      // can be built while the guard holds.
      await sandbox.pg.query('INSERT INTO content.guarded SELECT id FROM content.person');
      await sandbox.pg.query(`UPDATE content.film_work SET title = title || ' (restored)'`);
      const { rows } = await sandbox.pg.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM content.film_work',
      );
      await eventually(
        async () =>
          [...(await letters(syncer)).keys()].filter((id) => !id.includes('/')).length >=
          (rows[0]?.n ?? 0),
        20_000,
        'every film lettered while the guard holds',
      );
      // The maintenance ends. Nobody runs `dead-letters --retry`.
      await sandbox.pg.query('TRUNCATE content.guarded');
      await waitForConvergence(sandbox, 30_000);
      assert.deepEqual([...(await letters(syncer)).keys()], [], 'no letter left');
    } finally {
      await syncer.stop();
    }
  });

  it('stay lettered once their tries are spent, when the data itself is bad', async () => {
    const syncer = await startSyncerAs(sandbox, role, {
      unreadableRetry: { firstMs: 200, tries: 3 },
    });
    try {
      await waitForConvergence(sandbox);
      const { person: id } = await personInFewestFilms(sandbox.pg, { asProducer: true });
      const person = `persons/${id}`;
      await sandbox.pg.query('INSERT INTO content.guarded VALUES ($1)', [id]);
      await sandbox.pg.query(`UPDATE content.person SET full_name = full_name || ' Jr.'`);
      // Read at 0, again 0.2 s after, then 0.8 s after that: three failures, then no more.
      await eventually(
        async () => (await letters(syncer)).get(person)?.tries === 3,
        20_000,
        'the person failed three reads',
      );
      const spent = (await letters(syncer)).get(person);
      // The next wait would be 3.2 s: twice that, and the letter is still the third failure's.
      await new Promise((resolve) => setTimeout(resolve, 6_400));
      const later = (await letters(syncer)).get(person);
      assert.equal(later?.tries, 3, 'no fourth read');
      assert.equal(later.at, spent?.at, 'the letter was not written again');
      assert.match(later.reason, /under maintenance/);
    } finally {
      await syncer.stop();
    }
  });

  it('are read again after a restart when the process died before scheduling them', async () => {
    // What a process killed between writing a letter and scheduling its retry leaves (or between
    // taking it off the schedule and queueing it): the letter, no entry on the schedule. Written
    // here by hand, with the index stale, so nothing but the retry can bring it back in step.
    await sandbox.pg.query('TRUNCATE content.guarded');
    let syncer = await startSyncerAs(sandbox, role, {
      unreadableRetry: { firstMs: 200, tries: 6 },
    });
    await waitForConvergence(sandbox);
    await syncer.stop();
    const { rows } = await sandbox.pg.query<{ id: string }>(
      'SELECT id::text AS id FROM content.film_work ORDER BY id LIMIT 1',
    );
    const film = rows[0]?.id ?? '';
    // Written at the version it holds (the syncer writes `external_gte`), so the same read
    // writes over it.
    const held = await sandbox.es.get<Record<string, unknown>>({
      index: sandbox.config.index,
      id: film,
    });
    await sandbox.es.index({
      index: sandbox.config.index,
      id: film,
      document: { ...held._source, title: 'a stale title' },
      version: held._version,
      version_type: 'external_gte',
      refresh: true,
    });
    const letter: DeadLetter = {
      id: film,
      reason: 'person under maintenance',
      status: 0,
      at: new Date(Date.now() - 60_000).toISOString(),
      tries: 1,
    };
    await sandbox.redis.hset(
      `${sandbox.config.redisPrefix}dead-letters`,
      film,
      JSON.stringify(letter),
    );

    syncer = await startSyncerAs(sandbox, role, { unreadableRetry: { firstMs: 200, tries: 6 } });
    try {
      await waitForConvergence(sandbox, 20_000);
      assert.deepEqual([...(await letters(syncer)).keys()], [], 'no letter left');
    } finally {
      await syncer.stop();
    }
  });

  // Found by an outside reading: every failed read counted as a try, so a few edits during a short
  // outage spent the tries at once; the last wait (hours) or none was left when the cause passed.
  it('count only the reads their schedule made, not those edits made meanwhile', async () => {
    await sandbox.pg.query('TRUNCATE content.guarded');
    const syncer = await startSyncerAs(sandbox, role, {
      unreadableRetry: { firstMs: 3_000, tries: 3 },
    });
    try {
      await waitForConvergence(sandbox);
      const { rows } = await sandbox.pg.query<{ film: string; person: string }>(
        `SELECT film_work_id::text AS film, person_id::text AS person
           FROM content.person_film_work ORDER BY film_work_id, person_id LIMIT 1`,
      );
      const film = rows[0]?.film ?? '';
      await sandbox.pg.query('INSERT INTO content.guarded VALUES ($1)', [rows[0]?.person]);
      // A short outage: five edits of the film, each read and failed, well within the first wait.
      for (let i = 1; i <= 5; i++) {
        await sandbox.pg.query('UPDATE content.film_work SET title = $2 WHERE id = $1', [
          film,
          `Edited ${i}`,
        ]);
        await eventually(
          async () => (await letters(syncer)).get(film)?.reason !== undefined,
          10_000,
          'the edit read and failed',
        );
        await new Promise((resolve) => setTimeout(resolve, 400));
      }
      const during = (await letters(syncer)).get(film);
      assert.equal(during?.tries, 1, 'one try: the reads of edits are no retries');
      await sandbox.pg.query('TRUNCATE content.guarded');
      // The retry comes 3 s after the last failure; nobody edits or re-drives.
      await waitForConvergence(sandbox, 20_000);
      assert.deepEqual([...(await letters(syncer)).keys()], [], 'no letter left');
    } finally {
      await syncer.stop();
    }
  });
});
