/**
 * A reindex names its new index after the second it began (`<alias>_<yyyymmddhhmmss>`). With the
 * wall clock stepped back (a VM restored from a snapshot, an NTP step) a second reindex can begin
 * in the second the serving index was named for, and choose that very name.
 *
 * Outside reading: creating it then failed ("already exists"), the clean-up after the failure
 * found the name behind the alias and took the swap for done, and the tidying that follows a swap
 * deleted the old indices: the one serving. Search answered 404 until a syncer made an empty index
 * and loaded everything again. A reindex now refuses a name already taken, before touching
 * anything.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Postgres } from '../../src/db/postgres.js';
import { createElasticsearchClient } from '../../src/load/elasticsearchClient.js';
import { ReindexTarget } from '../../src/load/reindexTarget.js';
import { reindex, type ReindexDeps } from '../../src/load/reindexer.js';
import { films } from '../../src/kinds/films.js';
import { DeadLetters } from '../../src/queue/deadLetters.js';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { ReadLock } from '../../src/queue/readLock.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { ReloadRequests } from '../../src/queue/reloadRequests.js';
import { seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';

describe('a reindex begun in the second the serving index was named for', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('reindex_same_name');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 40, 3, 10);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('refuses the name, and leaves the serving index alone', async (t) => {
    const syncer = await startSyncer(sandbox);
    await waitForConvergence(sandbox);
    await syncer.stop();

    const { config } = sandbox;
    const log = testLog();
    const db = new Postgres(config.databaseUrl, log, 2);
    const store = new RedisStore(config.redisUrl, config.redisPrefix, log);
    const es = createElasticsearchClient(config.elasticsearch);
    const deps = (): ReindexDeps => ({
      kind: films,
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
    });
    try {
      const first = await reindex(deps());
      const stamp = /_(\d{14})$/.exec(first.to)?.[1];
      assert.ok(stamp, `a stamped name: ${first.to}`);
      const [, y, mo, d, h, mi, s] = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)$/.exec(stamp) ?? [];
      // The clock stepped back into that second.
      t.mock.timers.enable({
        apis: ['Date'],
        now: Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)),
      });
      await assert.rejects(reindex(deps()), /already/);
      t.mock.timers.reset();

      const serving = Object.keys(await es.indices.getAlias({ name: config.index }));
      assert.deepEqual(serving, [first.to], 'the index that served still serves');
      await waitForConvergence(sandbox);
    } finally {
      await Promise.allSettled([db.end(), store.close(), es.close()]);
    }
  });
});
