/**
 * Catch-up: whatever happens while the syncer is down (deletes and cascades included) reaches the
 * index when it starts again, and a Redis that comes back empty leads to a full catch-up rather
 * than a blind resume.
 */
import { after, before, describe, it } from 'node:test';
import { insertFilm, insertGenre, insertPerson, link, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('catch-up after downtime', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('catchup');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 400, 8, 60);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  const q = (text: string, params: unknown[] = []) => sandbox.pg.query(text, params);

  it('applies every kind of change made while the syncer was stopped', async () => {
    const first = await startSyncer(sandbox);
    await waitForConvergence(sandbox);
    await first.stop();

    // Every kind of write, with nobody listening.
    const film = await insertFilm(sandbox.pg, 'Written while down');
    const genre = await insertGenre(sandbox.pg, 'New while down');
    const person = await insertPerson(sandbox.pg, 'Actor while down');
    await link(sandbox.pg, film, { genre });
    await link(sandbox.pg, film, { person, role: 'actor' });
    await q(`UPDATE content.film_work SET title = title || ' (edited)' WHERE id IN
               (SELECT id FROM content.film_work ORDER BY id LIMIT 10)`);
    await q(`UPDATE content.genre SET name = 'Genre renamed while down' WHERE name = 'Genre 3'`);
    await q(
      `UPDATE content.person SET full_name = 'Person renamed while down' WHERE full_name = 'Person 7'`,
    );
    await q(`DELETE FROM content.person WHERE full_name = 'Person 8'`); // links cascade
    await q(`DELETE FROM content.genre WHERE name = 'Genre 4'`); // links cascade
    await q(
      `DELETE FROM content.film_work WHERE id IN (SELECT id FROM content.film_work ORDER BY id DESC LIMIT 5)`,
    );
    await q(`UPDATE content.person_film_work SET role = 'writer'
              WHERE id IN (SELECT id FROM content.person_film_work WHERE role = 'actor' ORDER BY id LIMIT 5)`);
    await q(`DELETE FROM content.person_film_work
              WHERE id IN (SELECT id FROM content.person_film_work ORDER BY id LIMIT 20)`);

    const second = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
    } finally {
      await second.stop();
    }
  });

  it('runs a full catch-up when Redis comes back empty, removing documents of deleted films', async () => {
    const syncer = await startSyncer(sandbox);
    await waitForConvergence(sandbox);
    await syncer.stop();

    // Redis restarted without persistence: every key of ours is gone.
    const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
    if (keys.length > 0) await sandbox.redis.del(...keys);
    // ... and meanwhile films were deleted: no watermark, no tombstone read; only the sweep finds them.
    await q(
      `DELETE FROM content.film_work WHERE id IN (SELECT id FROM content.film_work ORDER BY id LIMIT 7)`,
    );
    await q(
      `UPDATE content.film_work SET rating = 9.9 WHERE id IN (SELECT id FROM content.film_work ORDER BY id DESC LIMIT 7)`,
    );

    const restarted = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
    } finally {
      await restarted.stop();
    }
  });

  it('notices Redis being flushed while it runs', async () => {
    const syncer = await startSyncer(sandbox, { pollIntervalMs: 300 });
    try {
      await waitForConvergence(sandbox);
      const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
      await sandbox.redis.del(...keys);
      await q(`UPDATE content.film_work SET title = 'After flush' WHERE id IN
                 (SELECT id FROM content.film_work ORDER BY id LIMIT 3)`);
      // The next pass finds no state of ours: it rebuilds it with a full catch-up.
      await eventually(
        async () =>
          (await sandbox.redis.get(`${sandbox.config.redisPrefix}watermark:film_work`)) !== null,
        15_000,
        'watermarks rebuilt after the flush',
      );
      await waitForConvergence(sandbox);
    } finally {
      await syncer.stop();
    }
  });
});
