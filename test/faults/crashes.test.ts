/**
 * The syncer process killed or stopped at awkward moments: nothing is lost, and nothing stays in
 * processing. The syncer runs as users run it (`src/cli/start.ts` in its own process).
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { runCli } from '../helpers/runCli.js';
import { migrateSandbox, testLog } from '../helpers/syncerHarness.js';
import { spawnSyncer } from '../helpers/syncerProcess.js';

/** Inserts, updates, deletes and cascades, as fast as one connection goes, until `until`. */
async function writeLoad(sandbox: Sandbox, until: number): Promise<number> {
  const q = (text: string, params: unknown[] = []) => sandbox.pg.query(text, params);
  let statements = 0;
  for (let i = 0; Date.now() < until; i++) {
    switch (i % 6) {
      case 0:
        await insertFilm(sandbox.pg, `load ${i}`);
        break;
      case 1:
        await q(
          `UPDATE content.film_work SET rating = $1 WHERE id = (SELECT id FROM content.film_work ORDER BY random() LIMIT 1)`,
          [i % 10],
        );
        break;
      case 2:
        await q(
          `DELETE FROM content.film_work WHERE id = (SELECT id FROM content.film_work ORDER BY random() LIMIT 1)`,
        );
        break;
      case 3:
        await q(
          `UPDATE content.person SET full_name = 'renamed ' || $1::int WHERE id = (SELECT id FROM content.person ORDER BY random() LIMIT 1)`,
          [i],
        );
        break;
      case 4:
        await q(
          `DELETE FROM content.person_film_work WHERE id = (SELECT id FROM content.person_film_work ORDER BY random() LIMIT 1)`,
        );
        break;
      case 5:
        // A person deleted with all their links (a cascade), then a new one linked to a film.
        await q(
          `DELETE FROM content.person WHERE id = (SELECT id FROM content.person ORDER BY random() LIMIT 1)`,
        );
        await q(
          `INSERT INTO content.person (id, full_name) VALUES (gen_random_uuid(), 'new ' || $1::int)`,
          [i],
        );
        break;
    }
    statements++;
  }
  return statements;
}

describe('crashes and stops', () => {
  let sandbox: Sandbox;
  let store: RedisStore;
  let queue: DocumentQueue;

  before(async () => {
    sandbox = await createSandbox('crash');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 20_000, 20, 2_000);
    store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
    queue = new DocumentQueue(store);
  });

  after(async () => {
    await store.close();
    await sandbox.cleanup();
  });

  it('kill -9 with claims in flight: another syncer gives them back and converges', async () => {
    const first = spawnSyncer(sandbox);
    // Mid full load: a claim is taken and not yet acknowledged.
    await eventually(
      async () => (await queue.inFlight()).some((c) => c.size > 0),
      60_000,
      'a claim in flight',
    );
    first.child.kill('SIGKILL');
    const orphaned = await queue.inFlight();
    assert.ok(orphaned.length > 0, 'the dead syncer left its claim in processing');

    const started = Date.now();
    const second = spawnSyncer(sandbox);
    try {
      await waitForConvergence(sandbox, 120_000);
      await eventually(async () => (await queue.inFlight()).length === 0, 30_000, 'no claims left');
      console.log(
        `# converged ${Date.now() - started} ms after the restart (claims reaped once the heartbeat lapsed)`,
      );
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });

  it('down under write load, then started: converges', async () => {
    const syncer = spawnSyncer(sandbox);
    await waitForConvergence(sandbox, 120_000);
    syncer.child.kill('SIGKILL');
    const statements = await writeLoad(sandbox, Date.now() + 10_000);
    const started = Date.now();
    const next = spawnSyncer(sandbox);
    try {
      await waitForConvergence(sandbox, 120_000);
      console.log(
        `# ${statements} statements while down; converged ${Date.now() - started} ms after start`,
      );
    } finally {
      assert.equal(await next.stop(), 0);
    }
  });

  it('killed again and again under write load: converges', async () => {
    const until = Date.now() + 12_000;
    const load = writeLoad(sandbox, until);
    while (Date.now() < until) {
      const syncer = spawnSyncer(sandbox);
      await delay(2_000 + Math.random() * 1_500);
      syncer.child.kill('SIGKILL');
    }
    await load;
    const last = spawnSyncer(sandbox);
    try {
      await waitForConvergence(sandbox, 120_000);
      await eventually(async () => (await queue.inFlight()).length === 0, 30_000, 'no claims left');
    } finally {
      assert.equal(await last.stop(), 0);
    }
  });

  it('SIGTERM during a large catch-up exits promptly with 0, and the next start resumes', async () => {
    // Forget everything: the next start is a full load of 20,000 films.
    const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
    if (keys.length > 0) await sandbox.redis.del(...keys);
    // One worker and small bulks: loading is slower than queueing, so a backlog builds up.
    const syncer = spawnSyncer(sandbox, {
      ETL_SIZE_LIMIT: '100',
      ETL_BULK_SIZE: '10',
      ETL_WORKERS: '1',
    });
    await eventually(
      async () =>
        // Indexing has begun and plenty is still queued (the watermarks may or may not be set yet).
        (await queue.history(1)).length > 0 && (await queue.depth()) > 1_000,
      60_000,
      'full load under way',
    );
    const signalled = Date.now();
    const code = await syncer.stop();
    const exitMs = Date.now() - signalled;
    assert.equal(code, 0);
    assert.ok(exitMs < 15_000, `exited in ${exitMs} ms`);
    assert.deepEqual(await queue.inFlight(), [], 'the claim went back to the queue');
    const left = await queue.depth();
    assert.ok(left > 0, 'work was left for the next start');

    const next = spawnSyncer(sandbox, { ETL_SIZE_LIMIT: '100', ETL_BULK_SIZE: '100' });
    try {
      // The index may already look right (earlier tests loaded it): wait for the resumed work.
      await eventually(
        async () => (await queue.depth()) === 0 && (await queue.inFlight()).length === 0,
        120_000,
        'the resumed queue drained',
      );
      await waitForConvergence(sandbox, 120_000);
      const history = await sandbox.redis.llen(`${sandbox.config.redisPrefix}history`);
      console.log(`# SIGTERM exit in ${exitMs} ms; ${left} films left queued; history ${history}`);
    } finally {
      assert.equal(await next.stop(), 0);
    }
  });

  it('an unreachable service stops the start with a clear message and no stack trace', async () => {
    await insertFilm(sandbox.pg, 'irrelevant');
    const result = await runCli('start', {
      ...sandbox.env,
      REDIS_URL: 'redis://127.0.0.1:1/0',
      LOG_LEVEL: 'info',
    });
    assert.equal(result.code, 1);
    assert.match(
      result.stdout + result.stderr,
      /Redis at redis:\/\/127\.0\.0\.1:1\/0 is not reachable/,
    );
    assert.doesNotMatch(result.stdout + result.stderr, /\n\s+at .+:\d+:\d+\)?\n/);
  });
});
