/**
 * `npm run reindex` on a catalog with documents that cannot be indexed: one Elasticsearch refuses
 * (a dead letter already) and one PostgreSQL cannot build. Both are normal in a catalog that runs
 * for long (README, failure modes), and neither is the new mapping's doing.
 *
 * Found by an outside reading: the reindex stopped at the first such document, deleted what it had
 * built and exited 1, every time, so such a catalog could never be reindexed (nor a mapping change
 * shipped) until someone fixed the data. With every index reindexed in one run, the persons and
 * genres were not reached either.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Postgres } from '../../src/db/postgres.js';
import type { DocumentKind } from '../../src/kinds/documentKind.js';
import { films } from '../../src/kinds/films.js';
import { createElasticsearchClient } from '../../src/load/elasticsearchClient.js';
import { ReindexTarget } from '../../src/load/reindexTarget.js';
import { reindex } from '../../src/load/reindexer.js';
import { DeadLetters } from '../../src/queue/deadLetters.js';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { ReadLock } from '../../src/queue/readLock.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { ReloadRequests } from '../../src/queue/reloadRequests.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { runCli } from '../helpers/runCli.js';
import { migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';
import { createSyncerRole, type SyncerRole } from '../helpers/syncerRole.js';

describe('reindex beside dead letters', () => {
  let sandbox: Sandbox;
  let role: SyncerRole;

  before(async () => {
    sandbox = await createSandbox('reindex_letters');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 60, 3, 10);
    role = await createSyncerRole(sandbox, 'etl_reindex');
  });

  after(async () => {
    await sandbox.cleanup();
    await role.drop();
  });

  it('swaps the index, and leaves those documents to the syncers after the swap', async () => {
    const { databaseUrl } = role;
    const syncer = await startSyncer(
      sandbox,
      { databaseUrl, listenUrl: databaseUrl, workers: 2 },
      testLog(),
      { unreadableRetry: { firstMs: 500, tries: 6 } },
    );
    try {
      await waitForConvergence(sandbox);
      // A film whose type is longer than a keyword holds: Elasticsearch refuses it.
      const refused = await insertFilm(sandbox.pg, 'Too long a type', { type: 'x'.repeat(33_000) });
      // A person the syncer's role cannot read: PostgreSQL cannot build their document.
      const { rows } = await sandbox.pg.query<{ id: string }>(
        `SELECT person_id::text AS id FROM content.person_film_work
          GROUP BY person_id ORDER BY count(*), person_id LIMIT 1`,
      );
      const person = rows[0]?.id ?? '';
      await sandbox.pg.query(`
        CREATE FUNCTION content.hidden(id uuid) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
          IF id = '${person}' THEN RAISE EXCEPTION 'person % cannot be read', id; END IF;
          RETURN true;
        END $$`);
      await sandbox.pg.query(`GRANT EXECUTE ON FUNCTION content.hidden(uuid) TO ${role.name}`);
      await sandbox.pg.query('ALTER TABLE content.person ENABLE ROW LEVEL SECURITY');
      await sandbox.pg.query('CREATE POLICY hidden ON content.person USING (content.hidden(id))');
      // Their films retitled: the films' documents and the person's change, and cannot be built.
      // (Not the person's row itself: the change capture reads that, under the same policy.)
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = title || ' (restored)'
          WHERE id IN (SELECT film_work_id FROM content.person_film_work WHERE person_id = $1)`,
        [person],
      );
      await eventually(
        async () => {
          const ids = new Set((await syncer.deadLetters.list()).map((l) => l.id));
          return ids.has(refused) && ids.has(`persons/${person}`);
        },
        20_000,
        'the film and the person lettered',
      );

      // The films index: it holds both (the person's films cannot be built). The persons index
      // cannot be walked at all under this policy: it raises on reading the person's id.
      const behind = async () =>
        Object.keys(await sandbox.es.indices.getAlias({ name: sandbox.config.index }));
      const before = await behind();
      const result = await runCli('reindex', { ...sandbox.env, DATABASE_URL: databaseUrl }, [
        '--index',
        'films',
      ]);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      assert.notDeepEqual(await behind(), before, 'the alias moved to a new index');
      const unreadable = (await syncer.deadLetters.list()).filter((l) => l.status === 0);
      assert.ok(
        unreadable.some((l) => !l.id.includes('/')),
        'a film postgres could not build',
      );

      // Still lettered (queued again after the swap, and failing again), the rest in step.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const letters = new Set((await syncer.deadLetters.list()).map((l) => l.id));
      assert.ok(letters.has(refused), 'the refused film is a dead letter of the new index');
      for (const letter of unreadable)
        assert.ok(letters.has(letter.id), `${letter.id} is still a dead letter`);

      // The causes fixed, and the letters re-driven (their own retries are seconds apart by now):
      // the new index takes them all.
      await sandbox.pg.query('DROP POLICY hidden ON content.person');
      await sandbox.pg.query('ALTER TABLE content.person DISABLE ROW LEVEL SECURITY');
      await sandbox.pg.query(`UPDATE content.film_work SET type = 'movie' WHERE id = $1`, [
        refused,
      ]);
      assert.equal((await runCli('deadLetters', sandbox.env, ['--retry'])).code, 0);
      await waitForConvergence(sandbox);
      await eventually(
        async () => (await syncer.deadLetters.count()) === 0,
        15_000,
        'no dead letter left',
      );
    } finally {
      await syncer.stop();
    }
  });
});

describe('reindex into a mapping that refuses what the index in service holds', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('reindex_refusing');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 30, 3, 10);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('stops before the swap: the new mapping is the cause', async () => {
    const syncer = await startSyncer(sandbox);
    await waitForConvergence(sandbox);
    await syncer.stop();
    const { config } = sandbox;
    const log = testLog();
    const db = new Postgres(config.databaseUrl, log, 2);
    const store = new RedisStore(config.redisUrl, config.redisPrefix, log);
    const es = createElasticsearchClient(config.elasticsearch);
    // A mapping change gone wrong: `type` as a boolean, which no film's type parses as.
    const { mappings } = films.definition;
    const broken: DocumentKind = {
      ...films,
      definition: {
        ...films.definition,
        mappings: {
          ...mappings,
          properties: { ...mappings.properties, type: { type: 'boolean' } },
        },
      },
    };
    try {
      const serving = Object.keys(await es.indices.getAlias({ name: config.index }));
      await assert.rejects(
        reindex({
          kind: broken,
          es,
          db,
          lock: new ReadLock(store, 'reindex', log),
          target: new ReindexTarget(store, es, log, films.name),
          queue: new DocumentQueue(store),
          deadLetters: new DeadLetters(store),
          reloads: new ReloadRequests(store),
          alias: config.index,
          sizeLimit: config.sizeLimit,
          bulkSize: config.bulkSize,
          sleepMs: 0,
          log,
          noticeMs: 0,
          settleMs: 0,
        }),
        /the new index refused \d+ documents that the index in service holds/,
      );
      assert.deepEqual(
        Object.keys(await es.indices.getAlias({ name: config.index })),
        serving,
        'the index in service still serves',
      );
      await waitForConvergence(sandbox);
    } finally {
      await Promise.allSettled([db.end(), store.close(), es.close()]);
    }
  });
});
