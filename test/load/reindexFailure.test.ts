/**
 * A reindex in trouble while a syncer indexes a steady stream of edits. One that does not finish:
 * it fails mid-load (the new index refuses writes), its new index is deleted under it, or it is
 * stopped with SIGTERM or killed with SIGKILL. Whatever the step, afterwards the syncer writes to the alias and only to it,
 * its claims drain, the edits converge through the alias, and no index other than the alias's is
 * left: neither the unfinished one nor one that a late write auto-created (dynamic mapping).
 * One whose mirrors give up (the new index overloaded): the films they missed reach it anyway.
 *
 * What can go wrong in these tests themselves: the reindex's load must last long enough to be
 * caught mid-way (small pages, a pause between them), and the edits must keep the syncer busy
 * mirroring while the reindex goes away, or a late mirror write would go unseen.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { runCli, spawnCli, type CliProcess } from '../helpers/runCli.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

/** Small pages with a pause between them: 2,000 films take the reindex about 8 s to load. */
const SLOW_LOAD = { ETL_SIZE_LIMIT: '50', ETL_BULK_SIZE: '50', ETL_SLEEP_MS: '150' };
/** The reindex lease (10 s) lapses at most that long after its holder died; syncers re-read it
 * every second. One second of slack on top. */
const MIRROR_STOPS_WITHIN_MS = 12_000;

interface Edits {
  stop(): Promise<number>;
}

/** An editor's steady stream: a new film, a retitled one and a deleted one, every ~30 ms. */
function startEdits(sandbox: Sandbox): Edits {
  const stopping = new AbortController();
  let rounds = 0;
  const running = (async () => {
    while (!stopping.signal.aborted) {
      await insertFilm(sandbox.pg, `added during a reindex ${rounds}`);
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = 'edited during a reindex ' || $1::int
          WHERE id = (SELECT id FROM content.film_work ORDER BY random() LIMIT 1)`,
        [rounds],
      );
      await sandbox.pg.query(
        `DELETE FROM content.film_work
          WHERE id = (SELECT id FROM content.film_work ORDER BY random() LIMIT 1)`,
      );
      rounds++;
      await delay(30);
    }
  })();
  return {
    async stop() {
      stopping.abort();
      await running;
      return rounds;
    },
  };
}

/** These tests reindex the films index; the others go the same way (test/reindex.test.ts). */
const FILMS = ['--index', 'films'];

type ReindexProcess = CliProcess;

/** `npm run reindex` in its own process, so that it can be killed. */
const spawnReindex = (env: Record<string, string>): ReindexProcess =>
  spawnCli('reindex', env, FILMS);

/** The films index's indices: the persons and genres indices share the name's beginning. */
async function indicesOf(sandbox: Sandbox): Promise<string[]> {
  const found = await sandbox.es.indices.get({
    index: `${sandbox.config.index}*`,
    allow_no_indices: true,
  });
  const { personsIndex, genresIndex } = sandbox.config;
  return Object.keys(found)
    .filter((name) => !name.startsWith(personsIndex) && !name.startsWith(genresIndex))
    .sort();
}

async function aliasIndices(sandbox: Sandbox): Promise<string[]> {
  return Object.keys(await sandbox.es.indices.getAlias({ name: sandbox.config.index })).sort();
}

/** The index a running reindex builds, once it has loaded a few pages into it. */
async function midLoad(sandbox: Sandbox, reindex: ReindexProcess): Promise<string> {
  let building = '';
  await eventually(
    async () => {
      if (reindex.child.exitCode !== null) throw new Error(`reindex exited:\n${reindex.output()}`);
      const live = new Set(await aliasIndices(sandbox));
      const others = (await indicesOf(sandbox)).filter((name) => !live.has(name));
      for (const index of others) {
        const stats = await sandbox.es.indices.stats({ index, metric: 'indexing' });
        const written = stats.indices?.[index]?.primaries?.indexing?.index_total ?? 0;
        if (written >= 150) building = index;
      }
      return building !== '';
    },
    30_000,
    'the reindex loading its new index',
  );
  return building;
}

async function backlog(syncer: Syncer): Promise<{ queued: number; claimed: number }> {
  const [queued, claims] = await Promise.all([syncer.queue.depth(), syncer.queue.inFlight()]);
  return { queued, claimed: claims.reduce((sum, c) => sum + c.size, 0) };
}

/** The syncer's claims drain: nothing waits, nothing is held. */
async function drained(syncer: Syncer): Promise<void> {
  await eventually(
    async () => {
      const now = await backlog(syncer);
      return now.queued === 0 && now.claimed === 0;
    },
    20_000,
    'empty queue and no claims in flight',
  ).catch(async (err: unknown) => {
    throw new Error(`${(err as Error).message}: ${JSON.stringify(await backlog(syncer))}`);
  });
}

/** Only the alias's index exists, with the strict mapping the syncer created. */
async function onlyTheAliasIndex(sandbox: Sandbox, expected?: string[]): Promise<void> {
  const behind = await aliasIndices(sandbox);
  if (expected) assert.deepEqual(behind, expected, 'the alias still points at the old index');
  assert.deepEqual(await indicesOf(sandbox), behind, 'no index other than the alias’s');
  const mappings = await sandbox.es.indices.getMapping({ index: behind });
  for (const [index, body] of Object.entries(mappings)) {
    assert.equal(body.mappings.dynamic, 'strict', `${index} has the strict mapping`);
  }
  const targets = await sandbox.redis.keys(`${sandbox.config.redisPrefix}reindex-target*`);
  assert.deepEqual(targets, [], 'no reindex target is published');
}

/** A sandbox with 2,000 films and a syncer (optionally through a proxy) that has indexed them. */
function rig(label: string, options: { proxied?: boolean } = {}) {
  const ctx = {} as { sandbox: Sandbox; syncer: Syncer; proxy: EsFaultProxy | null };
  const start = async () => {
    const url = ctx.proxy?.url ?? ctx.sandbox.config.elasticsearch.url;
    const elasticsearch = { ...ctx.sandbox.config.elasticsearch, url };
    return startSyncer(ctx.sandbox, { elasticsearch });
  };
  before(async () => {
    ctx.sandbox = await createSandbox(label);
    await migrateSandbox(ctx.sandbox);
    await seedCatalog(ctx.sandbox.pg, 2_000, 6, 100);
    ctx.proxy = options.proxied
      ? await EsFaultProxy.start(ctx.sandbox.config.elasticsearch.url)
      : null;
    ctx.syncer = await start();
    await waitForConvergence(ctx.sandbox, 60_000);
  });
  after(async () => {
    ctx.proxy?.forward();
    await ctx.syncer.stop();
    await ctx.proxy?.close();
    await ctx.sandbox.cleanup();
  });
  return ctx;
}

describe('a reindex that fails mid-load', () => {
  const ctx = rig('reindex_fails');

  it('leaves the syncer writing to the alias only, its claims drained, nothing else', async () => {
    const { sandbox } = ctx;
    const before = await aliasIndices(sandbox);
    // The reindex reaches Elasticsearch through a proxy that refuses its bulks after a few pages.
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    try {
      proxy.failBulk(8);
      const edits = startEdits(sandbox);
      const result = await runCli(
        'reindex',
        { ...sandbox.env, ...SLOW_LOAD, ELASTICSEARCH_URL: proxy.url },
        FILMS,
        120_000,
      );
      await delay(2_000); // edits go on after the failure, into the syncer's mirror cache time
      const rounds = await edits.stop();
      assert.equal(result.code, 1, result.stdout + result.stderr);
      assert.ok(rounds > 20, `${rounds} rounds of edits`);
    } finally {
      await proxy.close();
    }
    await waitForConvergence(sandbox, 30_000);
    await drained(ctx.syncer);
    await onlyTheAliasIndex(sandbox, before);
  });
});

describe('a reindex whose new index is deleted under it', () => {
  const ctx = rig('reindex_deleted');

  it('fails, nothing re-creates the index, and the syncer’s claims drain', async () => {
    const { sandbox } = ctx;
    const before = await aliasIndices(sandbox);
    const edits = startEdits(sandbox);
    const reindex = spawnReindex({ ...sandbox.env, ...SLOW_LOAD });
    const building = await midLoad(sandbox, reindex);
    await sandbox.es.indices.delete({ index: building });
    const code = await reindex.exited;
    await delay(2_000);
    await edits.stop();
    // Before: the next write auto-created it (dynamic mapping) and the alias was swapped onto it.
    assert.equal(code, 1, reindex.output());
    assert.match(reindex.output(), /does not exist \(index_not_found_exception\)/);
    await waitForConvergence(sandbox, 30_000);
    await drained(ctx.syncer);
    await onlyTheAliasIndex(sandbox, before);
  });
});

describe('a reindex killed with SIGKILL mid-load', () => {
  const ctx = rig('reindex_killed', { proxied: true });

  /** When the syncer last sent a bulk item to the films reindex's write alias: a mirror write. */
  const lastMirrorWrite = () => {
    const mirror = `${ctx.sandbox.config.index}-reindex-`;
    const stats = ctx.proxy?.stats.indices ?? new Map<string, { lastAt: number }>();
    const writes = [...stats].filter(([i]) => i.startsWith(mirror));
    return Math.max(0, ...writes.map(([, s]) => s.lastAt));
  };

  it('stops being mirrored within the lease, and the running syncer removes its index', async (t) => {
    const { sandbox } = ctx;
    const before = await aliasIndices(sandbox);
    const edits = startEdits(sandbox);
    const reindex = spawnReindex({ ...sandbox.env, ...SLOW_LOAD });
    const building = await midLoad(sandbox, reindex);
    await eventually(() => lastMirrorWrite() > 0, 10_000, 'the syncer mirroring');
    // Killed while it does not hold the Postgres read lock: killed holding it, it would keep the
    // syncer from reading (and so from mirroring) until that lease lapsed too, at about the same
    // time as its own. Stopped first, so that it cannot take the lock between the look and the kill.
    const readLock = `${sandbox.config.redisPrefix}lock:postgres-read`;
    for (;;) {
      reindex.child.kill('SIGSTOP');
      const holder = await sandbox.redis.get(readLock);
      if (!holder || !(JSON.parse(holder) as { holder: string }).holder.startsWith('reindex'))
        break;
      reindex.child.kill('SIGCONT');
      await delay(20);
    }
    reindex.child.kill('SIGKILL');
    const killedAt = Date.now();
    await reindex.exited;
    await delay(MIRROR_STOPS_WITHIN_MS + 4_000);
    const rounds = await edits.stop();
    const stoppedAfter = lastMirrorWrite() - killedAt;
    t.diagnostic(`last mirror write ${stoppedAfter} ms after the kill; ${rounds} rounds of edits`);
    assert.ok(stoppedAfter > 0, 'the syncer mirrored until the lease lapsed');
    assert.ok(stoppedAfter < MIRROR_STOPS_WITHIN_MS, `still mirrored ${stoppedAfter} ms later`);
    // No restart: the running syncer's index look (every 15 s) cleans up after the dead reindex.
    await eventually(
      async () => !(await sandbox.es.indices.exists({ index: building })),
      30_000,
      `the running syncer deleting ${building}`,
    );
    await waitForConvergence(sandbox, 30_000);
    await drained(ctx.syncer);
    await onlyTheAliasIndex(sandbox, before);
  });

  it('the next reindex removes what a killed one left, and succeeds', async () => {
    const { sandbox } = ctx;
    const before = await aliasIndices(sandbox);
    const reindex = spawnReindex({ ...sandbox.env, ...SLOW_LOAD });
    const building = await midLoad(sandbox, reindex);
    reindex.child.kill('SIGKILL');
    await reindex.exited;
    const target = `${sandbox.config.redisPrefix}reindex-target`;
    await eventually(
      async () => (await sandbox.redis.exists(target)) === 0,
      MIRROR_STOPS_WITHIN_MS,
      'the killed reindex’s lease lapsing',
    );

    const result = await runCli('reindex', sandbox.env, FILMS, 120_000);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(await sandbox.es.indices.exists({ index: building }), false, 'leftover deleted');
    const now = await aliasIndices(sandbox);
    assert.equal(now.length, 1);
    assert.ok(!before.includes(now[0] ?? ''), 'the alias moved to a new index');
    await onlyTheAliasIndex(sandbox);
    await waitForConvergence(sandbox, 30_000);
  });
});

describe('a reindex stopped with SIGTERM mid-load', () => {
  const ctx = rig('reindex_sigterm');

  it('withdraws its target, deletes its own index and exits 1', async () => {
    const { sandbox } = ctx;
    const before = await aliasIndices(sandbox);
    const edits = startEdits(sandbox);
    const reindex = spawnReindex({ ...sandbox.env, ...SLOW_LOAD });
    const building = await midLoad(sandbox, reindex);
    reindex.child.kill('SIGTERM');
    const stoppedAt = Date.now();
    const code = await reindex.exited;
    const tookMs = Date.now() - stoppedAt;
    await edits.stop();
    // Before: the default handler ended it on the spot, its index and its target left behind.
    assert.equal(code, 1, reindex.output());
    assert.ok(tookMs < 20_000, `cleaning up took ${tookMs} ms`);
    assert.match(reindex.output(), /reindex interrupted/);
    assert.equal(await sandbox.es.indices.exists({ index: building }), false, 'its index is gone');
    await onlyTheAliasIndex(sandbox, before);
    await waitForConvergence(sandbox, 30_000);
    await drained(ctx.syncer);
  });

  // Found by a randomized run of operator commands: a Ctrl-C reaches the command from the
  // terminal and again, a moment later, from `npm` or `tsx` relaying it, and the second was taken
  // for a second Ctrl-C: exit at once, the new index left behind.
  it('takes one Ctrl-C delivered twice for one', async () => {
    const { sandbox } = ctx;
    const before = await aliasIndices(sandbox);
    const reindex = spawnReindex({ ...sandbox.env, ...SLOW_LOAD });
    const building = await midLoad(sandbox, reindex);
    reindex.child.kill('SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 30));
    reindex.child.kill('SIGINT');
    assert.equal(await reindex.exited, 1, reindex.output());
    assert.match(reindex.output(), /reindex interrupted/);
    assert.equal(await sandbox.es.indices.exists({ index: building }), false, 'its index is gone');
    await onlyTheAliasIndex(sandbox, before);
  });
});

describe('a reindex whose mirrors give up', () => {
  const ctx = rig('reindex_missed', { proxied: true });

  it('queues the films they missed again after the swap, so the new index has them', async () => {
    const { sandbox } = ctx;
    const alias = sandbox.config.index;
    // The syncer reaches the alias, but every mirror write is answered 429 until it gives up
    // (Only the films reindex's own write alias: persons and genres go on as usual.)
    ctx.proxy?.rejectBulkItemsTo((index) => index.startsWith(`${alias}-reindex-`));
    const edits = startEdits(sandbox);
    const result = await runCli('reindex', { ...sandbox.env, ...SLOW_LOAD }, FILMS, 120_000);
    await delay(1_000);
    await edits.stop();
    ctx.proxy?.forward();
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.ok((ctx.proxy?.stats.rejected ?? 0) > 0, 'mirror writes were refused');
    assert.match(result.stdout, /documents the mirrors missed are queued again/);
    // Without the re-queue, films edited after the reindex read them stay stale in the new index.
    await waitForConvergence(sandbox, 30_000);
    await drained(ctx.syncer);
    await onlyTheAliasIndex(sandbox);
  });
});
