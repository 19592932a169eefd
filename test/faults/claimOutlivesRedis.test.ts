/**
 * A claim whose write is held back (Elasticsearch refusing, retried) while Redis loses everything
 * (flushed, or restarted empty). The full load that follows cannot wait for that write (Redis no
 * longer knows of the claim) and may sweep the index before the write lands. If the film was
 * deleted meanwhile, and its deletion was only queued (lost with Redis), the late write leaves a
 * document whose film no longer exists. The indexer learns that its claim is gone when it
 * acknowledges it: it must then have its documents read again.
 */
import { after, before, describe, it } from 'node:test';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence, waitForFullLoadDone } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { proxiedUrl, startFaultProxy } from '../helpers/faultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('a claim in flight while Redis loses everything', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('claim_outlives_redis');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 30, 3, 10);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  /**
   * The shared part: a film's write held back by Elasticsearch, the film deleted (its deletion
   * queued behind the claim in hand), then every key of the syncer's Redis state deleted and the
   * full load after it run to its end while the write is still held. `beforeRelease` runs just
   * before the write is let through.
   */
  async function heldWriteThroughRedisLoss(
    redisUrl: string,
    beforeRelease: () => Promise<void>,
    afterRelease: () => Promise<void> = () => Promise.resolve(),
  ): Promise<void> {
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    // One indexer: while its claim is held, what is queued stays queued.
    const syncer = await startSyncer(
      sandbox,
      {
        workers: 1,
        pollIntervalMs: 200,
        redisUrl,
        elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url },
      },
      log,
    );
    const prefix = sandbox.config.redisPrefix;
    try {
      await waitForConvergence(sandbox);
      await waitForFullLoadDone(sandbox);
      const index = sandbox.config.index;
      proxy.rejectBulkItemsTo((name) => name === index || name.startsWith(`${index}_v`));
      const items = () => proxy.stats.indices.get(index)?.items ?? 0;
      const sent = items();
      const id = await insertFilm(sandbox.pg, 'Claimed before Redis lost everything');
      await eventually(() => items() > sent, 15_000, 'the new film read and its write refused');

      await sandbox.pg.query('DELETE FROM content.film_work WHERE id = $1', [id]);
      await eventually(
        async () => (await sandbox.redis.lrange(`${prefix}queue`, 0, -1)).includes(id),
        15_000,
        'the deletion queued',
      );
      const keys = await sandbox.redis.keys(`${prefix}*`);
      await sandbox.redis.del(...keys);
      await waitForFullLoadDone(sandbox);

      await beforeRelease();
      proxy.forward();
      await afterRelease();
      // Once every claim is done, the index must equal Postgres.
      await eventually(
        async () =>
          (await sandbox.redis.llen(`${prefix}queue`)) === 0 &&
          (await sandbox.redis.hlen(`${prefix}claims`)) === 0,
        30_000,
        'every claim done',
      );
      await waitForConvergence(sandbox, 30_000);
    } finally {
      await syncer.stop();
      await proxy.close();
    }
  }

  let log = capturingLog().log;

  it('leaves no document of a film deleted meanwhile', async () => {
    log = capturingLog().log;
    await heldWriteThroughRedisLoss(sandbox.config.redisUrl, () => Promise.resolve());
  });

  it('leaves none either when the acknowledgement itself times out', async () => {
    // Redis away when the write is done: the acknowledgement times out here (it still runs when
    // Redis is back, finding no claim), and the claim in hand is given back instead.
    const captured = capturingLog();
    log = captured.log;
    const redisProxy = await startFaultProxy(sandbox.config.redisUrl);
    try {
      await heldWriteThroughRedisLoss(
        proxiedUrl(sandbox.config.redisUrl, redisProxy),
        () => redisProxy.refuse(),
        async () => {
          await eventually(
            () =>
              captured
                .lines()
                .some(
                  (l) => l.msg === 'could not return the claim yet' || l.msg === 'batch failed',
                ),
            20_000,
            'the acknowledgement failed',
          );
          await redisProxy.forward();
        },
      );
    } finally {
      await redisProxy.close();
    }
  });
});
