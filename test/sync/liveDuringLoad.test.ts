/**
 * Edits made while a full load or an index reload runs reach the index at once, not when the load
 * ends (at ten million films, an hour later).
 *
 * The first notification used to wake the syncer's cadence: it then left every later one to "the
 * next poll pass" and told writers to stop notifying. But while a load runs, a pass is the load
 * (or, in every other syncer, a pass that finds the full-load lease taken and returns), never the
 * incremental pass that would read those edits; and with no incremental pass the cadence never
 * fell asleep again. Found by an outside reading of the live path.
 *
 * The test plays the other syncer: it holds the full-load lease and files a reload request, so
 * every pass of the syncer under test asks for a load and finds it taken.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LOAD_RESOLVE_GAP_MS } from '../../src/capture/changeCapture.js';
import type { HeldLease } from '../../src/queue/lease.js';
import { ReloadRequests } from '../../src/queue/reloadRequests.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import { seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence, waitForFullLoadDone } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';
import type { Syncer } from '../../src/sync/syncer.js';

/**
 * Hold the full-load lease as another syncer would and ask for a reload: see the header.
 * `nudge` (an edit) wakes a syncer whose next periodic pass is far off.
 */
async function playTheLoader(
  syncer: Syncer,
  lines: () => Record<string, unknown>[],
  nudge: () => Promise<unknown> = () => Promise.resolve(),
) {
  const held: { lease: HeldLease | null } = { lease: null };
  // Free once the syncer under test finished any load of its own.
  await eventually(
    async () => {
      held.lease = await new Watermarks(syncer.store).guardFullLoad('other-syncer');
      return held.lease !== null;
    },
    30_000,
    'the test holds the full-load lease',
  );
  await new ReloadRequests(syncer.store).request('persons');
  await nudge();
  await eventually(
    () => lines().some((l) => l.msg === 'another syncer is running the full load'),
    10_000,
    'the syncer asks for the reload and finds the lease taken',
  );
  return held.lease;
}

describe('edits while another syncer reloads an index', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('live_during_load');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 40, 4, 10);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('are indexed at once, each of them', async () => {
    const { log, lines } = capturingLog();
    // Passes every 300 ms while asleep: within the wait below, a stranded edit would have had
    // dozens of passes to be read in, had any of them been incremental.
    const syncer = await startSyncer(sandbox, { pollIntervalMs: 300 }, log);
    let other: HeldLease | null = null;
    try {
      await waitForFullLoadDone(sandbox);
      await waitForConvergence(sandbox);
      other = await playTheLoader(syncer, lines);

      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY id LIMIT 4',
      );
      for (const [i, { id }] of rows.entries()) {
        const title = `Edited during the reload ${i}`;
        await sandbox.pg.query('UPDATE content.film_work SET title = $1 WHERE id = $2', [
          title,
          id,
        ]);
        await eventually(
          async () => {
            const doc = await sandbox.es.get<{ title: string }>({
              index: sandbox.config.index,
              id,
            });
            return doc._source?.title === title;
          },
          10_000,
          `edit ${i + 1} of ${rows.length} searchable while the reload runs`,
        );
      }
    } finally {
      await other?.release();
      await syncer.stop();
    }
  });

  // A person's document shows their films' titles, so a film's new title is resolved to its
  // people with a read of Postgres. Resolved one edit at a time, as they came, those reads took
  // turns at the read lock with the load's own: 50 edits/s in one syncer made another syncer's
  // full load 2.4 times slower (the holder also pauses for every other process that knocks).
  it('are resolved together, with at most one read every LOAD_RESOLVE_GAP_MS', async () => {
    const { log, lines } = capturingLog();
    // Passes far apart: only the syncer's own timer can resolve what it held back last (a
    // pass would resolve it on its way, and hide a held-back read waiting for the next pass).
    const syncer = await startSyncer(sandbox, { pollIntervalMs: 60_000 }, log);
    let other: HeldLease | null = null;
    try {
      await waitForConvergence(sandbox);
      other = await playTheLoader(syncer, lines, () =>
        sandbox.pg.query(
          `UPDATE content.film_work SET description = 'nudge'
            WHERE id = (SELECT max(id::text)::uuid FROM content.film_work)`,
        ),
      );
      let resolveReads = 0;
      const withLock = syncer.lock.withLock.bind(syncer.lock);
      syncer.lock.withLock = (what, read, options) => {
        if (what.startsWith('resolve ')) resolveReads++;
        return withLock(what, read, options);
      };

      const { rows } = await sandbox.pg.query<{ id: string; person_id: string }>(
        `SELECT DISTINCT ON (fw.id) fw.id, pfw.person_id
           FROM content.film_work fw JOIN content.person_film_work pfw ON pfw.film_work_id = fw.id
          WHERE pfw.role IN ('actor', 'director', 'writer')
          ORDER BY fw.id LIMIT 20`,
      );
      assert.equal(rows.length, 20, 'twenty films with people');
      const started = performance.now();
      for (const [i, { id }] of rows.entries()) {
        await sandbox.pg.query('UPDATE content.film_work SET title = $1 WHERE id = $2', [
          `Renamed during the reload ${i}`,
          id,
        ]);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const editing = performance.now() - started;
      for (const [i, { id, person_id }] of rows.entries()) {
        await eventually(
          async () => {
            const doc = await sandbox.es.get<{ films: { id: string; title: string }[] }>({
              index: sandbox.config.personsIndex,
              id: person_id,
            });
            const film = doc._source?.films.find((f) => f.id === id);
            return film?.title === `Renamed during the reload ${i}`;
          },
          10_000,
          `the new title of film ${i + 1} in its person's document while the reload runs`,
        );
      }
      // One read per gap at most while the edits came, and the last of them after: one per edit
      // (twenty) before.
      const most = Math.ceil(editing / LOAD_RESOLVE_GAP_MS) + 2;
      assert.ok(most < rows.length, 'the edits came faster than one a gap');
      assert.ok(resolveReads >= 1, 'the edits were resolved by the live path');
      assert.ok(
        resolveReads <= most,
        `${resolveReads} reads to resolve 20 edits made in ${Math.round(editing)} ms (at most ${most})`,
      );
    } finally {
      await other?.release();
      await syncer.stop();
    }
  });
});
