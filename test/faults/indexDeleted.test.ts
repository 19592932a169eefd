/**
 * Someone deletes an index (by hand, a cleanup script, an Elasticsearch whose data was wiped): the
 * syncer creates it again, and must then load every document of that index again, not only the
 * ones that change from then on. Whether it was running or stopped when it happened.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { KINDS } from '../../src/kinds/kinds.js';
import { writeIndexOf } from '../../src/load/indexManager.js';
import { DocumentQueue } from '../../src/queue/documentQueue.js';
import { FullLoadPlans } from '../../src/queue/fullLoadPlan.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { ReloadRequests } from '../../src/queue/reloadRequests.js';
import { Watermarks } from '../../src/queue/watermarks.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence, waitForFullLoadDone } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';

/** Every reload asked for was served: none left to run again and again. */
async function reloadsServed(sandbox: Sandbox): Promise<void> {
  const key = `${sandbox.config.redisPrefix}full-load:reload`;
  await eventually(async () => (await sandbox.redis.hlen(key)) === 0, 10_000, 'reloads served');
}

/** The concrete indices behind an alias (or the index of that name), deleted. */
async function deleteIndex(sandbox: Sandbox, name: string): Promise<void> {
  const concrete = Object.keys(await sandbox.es.indices.get({ index: name }));
  await sandbox.es.indices.delete({ index: concrete });
}

/**
 * Full loads of the films index begun and finished by hand, as a pass's plan() and finish would:
 * the reload bookkeeping alone, in Redis, with no syncer.
 */
async function filmsLoads(store: RedisStore) {
  const reloads = new ReloadRequests(store);
  const watermarks = new Watermarks(store);
  const plans = new FullLoadPlans(store);
  const { epoch } = await watermarks.ensureEpoch(randomUUID());
  const serverRun = await watermarks.serverRun();
  /** Serves the films request pending now; `indices`: the index it fills, when it could read it. */
  const begin = async (indices?: Record<string, string>) => {
    const pending = await reloads.pending();
    const run = await plans.begin(
      {
        id: randomUUID(),
        epoch,
        snapshot: { xmin: '1', xmax: '1', xip: [], at: new Date().toISOString() },
        kinds: ['films'],
        tables: [],
        total: 0,
        began: new Date().toISOString(),
        reloads: pending.films === undefined ? {} : { films: pending.films },
        ...(indices ? { indices } : {}),
      },
      serverRun,
    );
    return { finish: () => run.finish(watermarks.epochKey, reloads, []) };
  };
  return { reloads, begin };
}

describe('an index deleted under the syncer', () => {
  let sandbox: Sandbox;

  beforeEach(async () => {
    sandbox = await createSandbox('index_deleted');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 60, 6, 25);
  });

  afterEach(async () => {
    await sandbox.cleanup();
  });

  it('is created again and reloaded when a change lands in it', async () => {
    const syncer = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
      await waitForFullLoadDone(sandbox);
      await deleteIndex(sandbox, sandbox.config.index);
      await insertFilm(sandbox.pg, 'Written after the films index was deleted');
      await waitForConvergence(sandbox, 30_000);
      await reloadsServed(sandbox);
    } finally {
      await syncer.stop();
    }
  });

  it('is created again and reloaded when the first change after is a deletion', async () => {
    // Elasticsearch creates a missing index for a versioned delete, under the name it was sent to
    // (the alias's), with no mapping: a concrete index that must not take the alias's place.
    const syncer = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
      await waitForFullLoadDone(sandbox);
      await deleteIndex(sandbox, sandbox.config.index);
      await sandbox.pg.query(
        'DELETE FROM content.film_work WHERE id = (SELECT min(id::text)::uuid FROM content.film_work)',
      );
      await insertFilm(sandbox.pg, 'Written after a deletion reached the deleted index');
      await waitForConvergence(sandbox, 30_000);
      await reloadsServed(sandbox);
      assert.equal(await sandbox.es.indices.existsAlias({ name: sandbox.config.index }), true);
    } finally {
      await syncer.stop();
    }
  });

  // Found by an outside reading. An index of the configured name made before the syncer's first
  // start (by hand, from the catalog's own schema) is used as it is, with no alias, so writes go
  // out without require_alias: one that lands after the index was deleted makes Elasticsearch
  // create it again from that one document, with a mapping guessed from it. No write failed, so
  // nothing asked for a reload: every document written before was gone for good, and the guessed
  // mapping (id as text) stopped every later orphan sweep.
  /** The films index as a plain index (no alias), made before the syncer's first start. */
  async function plainFilmsIndex(): Promise<void> {
    const kind = KINDS.find((k) => k.name === 'films');
    assert.ok(kind);
    await sandbox.es.indices.create({
      index: sandbox.config.index,
      settings: kind.definition.settings,
      mappings: kind.definition.mappings,
    });
  }

  it('is reloaded with its own mapping when it was a plain index, not an alias', async () => {
    await plainFilmsIndex();
    const { log, lines } = capturingLog();
    // Checks far enough apart that the write after a delete, not a check, meets the missing index.
    const syncer = await startSyncer(sandbox, {}, log, { indexCheckMs: 3_000 });
    try {
      await waitForConvergence(sandbox);
      await waitForFullLoadDone(sandbox);
      assert.equal(await sandbox.es.indices.existsAlias({ name: sandbox.config.index }), false);
      await deleteIndex(sandbox, sandbox.config.index);
      await insertFilm(sandbox.pg, 'Written after the plain films index was deleted');
      await waitForConvergence(sandbox, 30_000);
      await reloadsServed(sandbox);
      const mappings = await sandbox.es.indices.getMapping({ index: sandbox.config.index });
      const fields = Object.values(mappings)[0]?.mappings.properties ?? {};
      const type = (field: string) => fields[field]?.type;
      assert.equal(type('genres'), 'nested', 'the index has its own mapping again');
      assert.equal(type('id'), 'keyword');
      // The write made the index again before a check could: the path this case is about.
      const guessed = () => lines().filter((line) => String(line.msg).includes('guessed mapping'));
      assert.equal(guessed().length, 1, 'the index Elasticsearch made from a write was found');
      // Now an alias, deleted again: the syncer's writes say so (require_alias), and fail instead
      // of having Elasticsearch guess a mapping once more (they went on as if the index were
      // plain, and only the next check put it right).
      await deleteIndex(sandbox, sandbox.config.index);
      await insertFilm(sandbox.pg, 'Written after the films index was deleted again');
      await waitForConvergence(sandbox, 30_000);
      await reloadsServed(sandbox);
      assert.equal(guessed().length, 1, 'no mapping guessed the second time');
      assert.equal(await sandbox.es.indices.existsAlias({ name: sandbox.config.index }), true);
    } finally {
      await syncer.stop();
    }
  });

  it('is reloaded, and kept, when a plain index is made again with its own mapping', async () => {
    await plainFilmsIndex();
    const syncer = await startSyncer(sandbox, {}, undefined, { indexCheckMs: 1_000 });
    try {
      await waitForConvergence(sandbox);
      await waitForFullLoadDone(sandbox);
      // An operator's doing (a snapshot restored, the index made again by hand): its own mapping.
      await deleteIndex(sandbox, sandbox.config.index);
      await plainFilmsIndex();
      const made = (await writeIndexOf(sandbox.es, sandbox.config.index))?.uuid;
      await waitForConvergence(sandbox, 30_000);
      await reloadsServed(sandbox);
      assert.equal(await sandbox.es.indices.existsAlias({ name: sandbox.config.index }), false);
      assert.equal((await writeIndexOf(sandbox.es, sandbox.config.index))?.uuid, made);
    } finally {
      await syncer.stop();
    }
  });

  /** The films index is behind an alias, with its own mapping (the id a keyword). */
  async function filmsIndexMadeRight(): Promise<boolean> {
    const index = sandbox.config.index;
    if (!(await sandbox.es.indices.existsAlias({ name: index }))) return false;
    const mappings = await sandbox.es.indices.getMapping({ index });
    return Object.values(mappings)[0]?.mappings.properties?.id?.type === 'keyword';
  }

  // Found by an outside reading: the check deleted the guessed index and made the index again
  // behind an alias, having asked for its reload first; a write (still sent with no require_alias)
  // made a guessed index once more just before, and the creation failed. The pending reload then
  // "accounted for" that index at every later check, and it kept its guessed mapping for good.
  it('makes a plain index again with its own mapping when a write beats its creation', async () => {
    await plainFilmsIndex();
    const index = sandbox.config.index;
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const syncer = await startSyncer(
      sandbox,
      { elasticsearch: { ...sandbox.config.elasticsearch, url: proxy.url } },
      undefined,
      { indexCheckMs: 1_000 },
    );
    try {
      await waitForConvergence(sandbox);
      await waitForFullLoadDone(sandbox);
      // Its creation behind an alias is slow to reach Elasticsearch.
      proxy.holdRequests((method, path) => method === 'PUT' && path.startsWith(`/${index}_v`));
      await deleteIndex(sandbox, index);
      await insertFilm(sandbox.pg, 'Written after the plain films index was deleted');
      await eventually(() => proxy.requestsHeld > 0, 20_000, 'the index being made again');
      await insertFilm(sandbox.pg, 'Written while the index was being made again');
      await eventually(
        async () =>
          (await sandbox.es.indices.exists({ index })) &&
          !(await sandbox.es.indices.existsAlias({ name: index })),
        15_000,
        'a guessed index made by that write',
      );
      proxy.forward();
      await eventually(filmsIndexMadeRight, 30_000, 'the index made again with its own mapping');
      await waitForConvergence(sandbox, 30_000);
      await reloadsServed(sandbox);
    } finally {
      proxy.forward();
      await syncer.stop();
      await proxy.close();
    }
  });

  /**
   * A syncer in step with a plain films index, whose record of the index the last load filled
   * Redis then loses; `run` goes on from there, and the indices must then converge.
   */
  async function plainIndexUnrecorded(run: (loadedKey: string) => Promise<void>): Promise<void> {
    await plainFilmsIndex();
    const syncer = await startSyncer(sandbox, {}, undefined, { indexCheckMs: 1_000 });
    try {
      await waitForConvergence(sandbox);
      await waitForFullLoadDone(sandbox);
      const loadedKey = `${sandbox.config.redisPrefix}full-load:loaded`;
      await sandbox.redis.hdel(loadedKey, 'films');
      await run(loadedKey);
      await waitForConvergence(sandbox, 30_000);
      await reloadsServed(sandbox);
    } finally {
      await syncer.stop();
    }
  }

  // Found by an outside reading: Redis records which index the last full load filled only when a
  // load finishes, so with no record (a load finished by an older version, or Redis restored
  // without it) the check compared with nothing, and a plain index deleted and made again by a
  // write kept its guessed mapping and only what was written since.
  it('is made again with its own mapping when Redis has no record of the last load', () =>
    plainIndexUnrecorded(async () => {
      await deleteIndex(sandbox, sandbox.config.index);
      await insertFilm(sandbox.pg, 'Written after the plain films index was deleted');
      await eventually(filmsIndexMadeRight, 30_000, 'the index made again with its own mapping');
    }));

  it('takes the plain index it finds as the loaded one when Redis has no record', () =>
    plainIndexUnrecorded(async (loadedKey) => {
      const uuid = (await writeIndexOf(sandbox.es, sandbox.config.index))?.uuid;
      await eventually(
        async () => (await sandbox.redis.hget(loadedKey, 'films')) === uuid,
        10_000,
        'the index recorded by a check',
      );
      // So one made again by hand, with its own mapping, is found and loaded.
      await deleteIndex(sandbox, sandbox.config.index);
      await plainFilmsIndex();
    }));

  it('is created again and reloaded when nothing changes', async () => {
    const syncer = await startSyncer(sandbox, {}, undefined, { indexCheckMs: 1_000 });
    try {
      await waitForConvergence(sandbox);
      await waitForFullLoadDone(sandbox);
      await deleteIndex(sandbox, sandbox.config.genresIndex);
      await waitForConvergence(sandbox, 30_000);
    } finally {
      await syncer.stop();
    }
  });

  it('is created again and reloaded when it went while the syncer was stopped', async () => {
    let syncer = await startSyncer(sandbox);
    await waitForConvergence(sandbox);
    await waitForFullLoadDone(sandbox);
    await syncer.stop();
    await deleteIndex(sandbox, sandbox.config.personsIndex);
    syncer = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox, 30_000);
      await reloadsServed(sandbox);
    } finally {
      await syncer.stop();
    }
  });

  it('is loaded once: a reloaded index is not asked for again', async () => {
    // The index is marked born empty, and every look asks again for one Redis has no load on
    // record for (a Redis rollback loses requests): the load that filled it must be on record.
    const syncer = await startSyncer(sandbox, {}, undefined, { indexCheckMs: 200 });
    const queue = new DocumentQueue(syncer.store);
    const films = sandbox.config.index;
    const written = async () =>
      (await sandbox.es.indices.stats({ index: films, metric: 'indexing' }))._all.primaries
        ?.indexing?.index_total ?? 0;
    try {
      await waitForConvergence(sandbox);
      await waitForFullLoadDone(sandbox);
      await deleteIndex(sandbox, films);
      await waitForConvergence(sandbox, 30_000);
      await reloadsServed(sandbox);
      const index = await writeIndexOf(sandbox.es, films);
      assert.equal(index?.bornEmpty, true, 'marked born empty, still after bulk-load mode');
      // Born after its request, or filled by the load that served it: either is on record.
      assert.equal(await new ReloadRequests(syncer.store).accountedFor('films', index.uuid), true);
      await eventually(
        async () => (await queue.depth()) === 0 && (await queue.inFlight()).length === 0,
        10_000,
        'the queue drained',
      );
      const before = await written();
      await delay(2_000); // ten looks
      assert.equal(await sandbox.redis.hlen(`${sandbox.config.redisPrefix}full-load:reload`), 0);
      assert.equal(await written(), before, 'no document written again');
    } finally {
      await syncer.stop();
    }
  });

  it('Redis keeps track of the index each reload is for, and loses only what it loses', async () => {
    // What IndexWatch asks before it requests a reload again (src/queue/reloadRequests.ts).
    const store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
    try {
      const { reloads, begin: load } = await filmsLoads(store);
      const known = (uuid: string) => reloads.accountedFor('films', uuid);

      assert.equal(await known('u1'), false, 'nothing on record: a rollback lost it all');
      await reloads.request('films');
      assert.equal(await known('u1'), true, 'a request pending');
      const filling = await load({ films: 'u1' });
      assert.equal(await known('u1'), true, 'the load in force fills it');
      assert.equal(await filling.finish(), true);
      assert.equal(await known('u1'), true, 'a finished load filled it');
      assert.equal(await known('u2'), false, 'a newer index is not covered by that load');

      // A load that could not read the index (it began before the index was created), or a
      // syncer of an earlier version: the birth record answers.
      await reloads.born('films', await reloads.request('films'), 'u2');
      const blind = await load();
      assert.equal(await blind.finish(), true);
      assert.equal(await known('u2'), true, 'born after its request, which a load served');

      // A birth recorded after its request was lost (Redis restarted from an older save between
      // the two) would vouch for an index nobody loads: it is not recorded.
      await reloads.born('films', 'a request Redis lost', 'u4');
      assert.equal(await known('u4'), false, 'no birth recorded without its request');

      await reloads.requestAgain('films', 'u3');
      assert.deepEqual(Object.keys(await reloads.pending()), ['films']);
      assert.equal(await known('u3'), true);
    } finally {
      await store.close();
    }
  });

  it('a load serves only the requests made before it began', async () => {
    // The films index deleted again while its reload runs: documents that load wrote before the
    // second deletion are gone with it, so the second request must outlive the first load.
    const store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
    try {
      const { reloads, begin: films } = await filmsLoads(store);
      const pendingKinds = async () => Object.keys(await reloads.pending()).sort();

      await reloads.request('films');
      await reloads.request('genres');
      const first = await films();
      await reloads.request('films');
      assert.equal(await first.finish(), true);
      assert.deepEqual(await pendingKinds(), ['films', 'genres'], 'the newer films request stays');

      const second = await films();
      assert.equal(await second.finish(), true);
      assert.deepEqual(await pendingKinds(), ['genres'], 'served: gone; not in the load: stays');
    } finally {
      await store.close();
    }
  });
});
