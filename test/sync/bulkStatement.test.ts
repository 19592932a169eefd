/**
 * A bulk statement over 100,000 rows: the writer is slowed by a small factor at most, the syncer's
 * memory stays bounded, and the index converges. (Speed itself is measured by `npm run bench`.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox } from '../helpers/syncerHarness.js';
import { spawnSyncer, type SyncerProcess } from '../helpers/syncerProcess.js';

const FILMS = Number(process.env.BULK_TEST_FILMS ?? 100_000);

describe(`a bulk statement over ${FILMS} films`, () => {
  let sandbox: Sandbox;
  let syncer: SyncerProcess;

  before(async () => {
    sandbox = await createSandbox('bulk');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, FILMS, 30, Math.ceil(FILMS / 10));
    syncer = spawnSyncer(sandbox);
    await waitForConvergence(sandbox, 300_000);
  });

  after(async () => {
    const code = await syncer.stop();
    await sandbox.cleanup();
    assert.equal(code, 0, 'the syncer stops cleanly on SIGTERM');
  });

  it('slows the writer by a small factor at most', async () => {
    // The same table, same indexes and rows, without the sync triggers.
    await sandbox.pg.query(
      `CREATE TABLE public.film_work_plain (LIKE content.film_work INCLUDING ALL)`,
    );
    await sandbox.pg.query(`INSERT INTO public.film_work_plain SELECT * FROM content.film_work`);
    await sandbox.pg.query(`VACUUM ANALYZE public.film_work_plain, content.film_work`);
    const time = async (table: string) => {
      const started = performance.now();
      await sandbox.pg.query(`UPDATE ${table} SET rating = coalesce(rating, 0) + 0.5`);
      return performance.now() - started;
    };
    const plain: number[] = [];
    const synced: number[] = [];
    for (let round = 0; round < 3; round++) {
      plain.push(await time('public.film_work_plain'));
      synced.push(await time('content.film_work'));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1] ?? NaN;
    const ratio = median(synced) / median(plain);
    console.log(
      `# UPDATE of ${FILMS} rows: ${median(plain).toFixed(0)} ms plain, ` +
        `${median(synced).toFixed(0)} ms with sync triggers (x${ratio.toFixed(2)})`,
    );
    assert.ok(ratio < 3, `writer slowed x${ratio.toFixed(2)}`);
  });

  it('converges with bounded memory', async () => {
    await waitForConvergence(sandbox, 300_000);
    const peak = syncer.peakRssMb();
    console.log(`# syncer peak RSS ${peak.toFixed(0)} MB`);
    assert.ok(peak < 300, `peak RSS ${peak.toFixed(0)} MB`);
  });
});
