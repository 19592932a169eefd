/**
 * A TRUNCATE leaves no tombstones: the full load that follows finds the documents of the rows it
 * removed by walking the index (the orphan sweep). A write that read a row before the TRUNCATE and
 * reaches Elasticsearch after that walk went by would leave its document there for good, so the
 * sweep must not begin while such writes are still under way, nor miss the ones just written.
 */
import { after, before, describe, it } from 'node:test';
import { seedCatalog, insertFilm } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import { RedisStore } from '../../src/queue/redisStore.js';

describe('TRUNCATE while a write of a removed film is under way', () => {
  let sandbox: Sandbox;
  let store: RedisStore;

  before(async () => {
    sandbox = await createSandbox('truncate_in_flight');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 200, 5, 20);
    store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
  });

  after(async () => {
    await store.close();
    await sandbox.cleanup();
  });

  it('removes the document that write leaves', async () => {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(
      sandbox,
      { elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url } },
      log,
    );
    const watermarks = new Watermarks(store);
    const complete = async () =>
      [...(await watermarks.getAll()).values()].every((mark) => mark !== null);
    try {
      await waitForConvergence(sandbox);
      await eventually(complete, 20_000, 'every watermark set');
      // The new film's document is read, then refused (429, retried) until forward().
      const films = (name: string) =>
        name === sandbox.config.index || name.startsWith(`${sandbox.config.index}_v`);
      proxy.rejectBulkItemsTo(films);
      const before = proxy.stats.indices.get(sandbox.config.index)?.items ?? 0;
      await insertFilm(sandbox.pg, 'Read before the truncate');
      await eventually(
        () => (proxy.stats.indices.get(sandbox.config.index)?.items ?? 0) > before,
        20_000,
        'its write refused once',
      );
      const loadsQueued = () =>
        lines().filter((l) => l.msg === 'full load queued' && l.complete === true).length;
      const loadsBefore = loadsQueued();
      await sandbox.pg.query('TRUNCATE content.film_work CASCADE');
      // The full load after the TRUNCATE either finished its sweep (the watermarks are back) or
      // waits for the write to end before sweeping; only then does the write go through.
      await eventually(
        () =>
          lines().some((l) => l.msg === 'full load: waiting for writes begun before it') ||
          loadsQueued() > loadsBefore,
        30_000,
        'the full load at its sweep',
      );
      proxy.forward();
      await waitForConvergence(sandbox, 30_000);
    } finally {
      await syncer.stop();
      await proxy.close();
    }
  });
});
