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
import { reindex } from '../../src/load/reindexer.js';
import { films } from '../../src/kinds/films.js';
import { seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { inProcessReindex } from '../helpers/inProcessReindex.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

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

    const reindexing = inProcessReindex(sandbox.config);
    const deps = () => reindexing.deps(films);
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

      const serving = Object.keys(
        await sandbox.es.indices.getAlias({ name: sandbox.config.index }),
      );
      assert.deepEqual(serving, [first.to], 'the index that served still serves');
      await waitForConvergence(sandbox);
    } finally {
      await reindexing.close();
    }
  });
});
