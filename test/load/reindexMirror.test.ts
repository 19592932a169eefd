/**
 * The reindex mirror (src/load/reindexTarget.ts) is best effort: a syncer's claim waits for it, so
 * it must never hold one for long, and it must never create an index. A target that is gone (its
 * reindex failed or was killed, or someone deleted it) drops the batch at once; a target that keeps
 * refusing (429) is given up on after a short budget. Either way the films it did not write are
 * handed to the reindex (which queues them again after its swap), and no index appears. Nor is a
 * published target mirrored before its write alias exists (a delete would auto-create the name).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@elastic/elasticsearch';
import type { DocumentBatch } from '../../src/extract/documentBatch.js';
import { createElasticsearchClient } from '../../src/load/elasticsearchClient.js';
import { indexMappings, indexSettings } from '../../src/load/indexDefinition.js';
import type { LoadResult } from '../../src/load/bulkWriter.js';
import { ReindexTarget } from '../../src/load/reindexTarget.js';
import { RedisStore } from '../../src/queue/redisStore.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { testLog } from '../helpers/syncerHarness.js';

function batchOf(count: number): DocumentBatch {
  const ids = Array.from({ length: count }, () => randomUUID());
  return {
    claim: { workerId: 'test', ids, claimedAt: Date.now() },
    documents: ids.map((id) => ({ id, version: 1, json: JSON.stringify({ id, title: id }) })),
    deletions: [],
  };
}

/** The write's result, or null if it is still going after `ms` (it is then aborted). */
async function within(
  ms: number,
  write: (signal: AbortSignal) => Promise<LoadResult>,
): Promise<LoadResult | null> {
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  const result = await Promise.race([write(stop.signal).catch(() => null), timeout]);
  clearTimeout(timer);
  stop.abort();
  return result;
}

/** Withdraw a published target (tolerates a `set` that returned no lease). */
async function release(held: { release(): Promise<unknown> } | undefined): Promise<void> {
  await held?.release();
}

/** An index being built, as a reindex creates it: with its own write alias. */
async function createBuild(es: Client, index: string, writeAlias: string): Promise<void> {
  await es.indices.create({
    index,
    settings: indexSettings,
    mappings: indexMappings,
    aliases: { [writeAlias]: { is_write_index: true } },
  });
}

async function indicesOf(es: Client, prefix: string): Promise<string[]> {
  return Object.keys(await es.indices.get({ index: `${prefix}*`, allow_no_indices: true }));
}

describe('reindex mirror', () => {
  let sandbox: Sandbox;
  let store: RedisStore;

  before(async () => {
    sandbox = await createSandbox('reindex_mirror');
    store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
  });

  after(async () => {
    await store.close();
    await sandbox.cleanup();
  });

  it('does not mirror a published target until its write alias exists', async () => {
    const alias = sandbox.config.index;
    const early = `${alias}-reindex-20000101000002`; // published; the index comes later
    const target = new ReindexTarget(store, sandbox.es, testLog());
    const held = await target.set(early);
    try {
      // A mirror delete sent now would auto-create an index named like the alias-to-be.
      assert.equal(await target.mirror(), null);
    } finally {
      await release(held);
    }
  });

  // Found by an outside reading: the look was dated by the wall clock, so a clock stepped back
  // (NTP, a resumed VM) kept a look saying "no reindex" for as long as the step, and a reindex
  // begun meanwhile got none of this syncer's writes: after its swap the new index served the
  // edits its walk had read before them, stale for good.
  it('looks again after its cache time even when the wall clock steps back', async () => {
    const alias = sandbox.config.index;
    const build = `${alias}-reindex-20000101000003`;
    const writeAlias = `${build}-write`;
    const target = new ReindexTarget(store, sandbox.es, testLog(), 'films', 200);
    assert.equal(await target.mirror(), null, 'no reindex yet');
    const realNow = Date.now;
    Date.now = () => realNow() - 3_600_000;
    let held: Awaited<ReturnType<ReindexTarget['set']>> | undefined;
    try {
      held = await target.set(writeAlias);
      await createBuild(sandbox.es, build, writeAlias);
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal((await target.mirror())?.targetName, writeAlias, 'the reindex is seen');
    } finally {
      Date.now = realNow;
      await release(held);
      await sandbox.es.indices.delete({ index: build, ignore_unavailable: true });
    }
  });

  it('drops a batch for a target that is gone, at once, and creates no index', async () => {
    const alias = sandbox.config.index;
    const index = `${alias}_20000101000000`;
    const writeAlias = `${alias}-reindex-20000101000000`;
    await createBuild(sandbox.es, index, writeAlias);
    const target = new ReindexTarget(store, sandbox.es, testLog());
    const held = await target.set(writeAlias);
    try {
      const mirror = await target.mirror();
      assert.ok(mirror, 'a published target is mirrored');
      // Deleted within the syncer's cache time: the mirror still has the name.
      await sandbox.es.indices.delete({ index });
      const batch = batchOf(5);
      const started = Date.now();
      const result = await within(10_000, (signal) => mirror.write(batch, signal));
      assert.ok(result, 'the mirror write returned');
      assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
      assert.deepEqual(result.indexed, [], 'nothing written (before: into an auto-created index)');
      assert.deepEqual(await indicesOf(sandbox.es, alias), [], 'no index was auto-created');
      assert.deepEqual((await target.missed(writeAlias)).sort(), [...batch.claim.ids].sort());
    } finally {
      await release(held);
    }
  });

  it('hands over the documents the new index refuses for good', async () => {
    // A reindex for a mapping change: a change its new mapping refuses, mirrored while it runs, is
    // not in the new index; handed over, it is queued again after the swap, and then refused
    // there where the dead letters show it (before: only logged, and the new index kept the
    // older document with no letter).
    const alias = sandbox.config.index;
    const index = `${alias}_20000101000003`;
    const writeAlias = `${alias}-reindex-20000101000003`;
    await createBuild(sandbox.es, index, writeAlias);
    const target = new ReindexTarget(store, sandbox.es, testLog());
    const held = await target.set(writeAlias);
    try {
      const mirror = await target.mirror();
      assert.ok(mirror);
      const batch = batchOf(3);
      const [refused] = batch.documents;
      assert.ok(refused);
      refused.json = JSON.stringify({ id: refused.id, title: 'x', no_such_field: 1 });
      const result = await within(10_000, (signal) => mirror.write(batch, signal));
      assert.ok(result);
      assert.deepEqual(
        result.dead.map((d) => d.id),
        [refused.id],
      );
      assert.deepEqual(await target.missed(writeAlias), [refused.id]);
    } finally {
      await release(held);
    }
  });

  it('gives up on a target that keeps refusing (429) within its budget', async () => {
    const alias = sandbox.config.index;
    const index = `${alias}_20000101000001`;
    const writeAlias = `${alias}-reindex-20000101000001`;
    await createBuild(sandbox.es, index, writeAlias);
    const proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const es = createElasticsearchClient({ ...sandbox.config.elasticsearch, url: proxy.url });
    const target = new ReindexTarget(store, es, testLog());
    const held = await target.set(writeAlias);
    try {
      proxy.rejectBulkItems(1, Number.MAX_SAFE_INTEGER);
      const mirror = await target.mirror();
      assert.ok(mirror);
      const batch = batchOf(5);
      const started = Date.now();
      const result = await within(15_000, (signal) => mirror.write(batch, signal));
      const ms = Date.now() - started;
      assert.ok(result, 'the mirror gave up (before: it retried for as long as it took)');
      assert.ok(ms < 6_000, `gave up after ${ms} ms`);
      assert.ok(proxy.stats.requests > 1, 'it did retry first');
      assert.deepEqual(result.indexed, []);
      assert.deepEqual((await target.missed(writeAlias)).sort(), [...batch.claim.ids].sort());
    } finally {
      proxy.forward();
      await release(held);
      await es.close();
      await proxy.close();
    }
  });
});
