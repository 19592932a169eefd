/**
 * One bulk whose items Elasticsearch partly rejects with 429 (its write queue full): the writer
 * retries only the rejected items, each until it is accepted, and never re-sends an accepted one.
 * Driven straight through the bulk writer (no queue, no capture), so every offer the proxy counts
 * is this writer's: a film queued twice by the syncer cannot blur the count, as it can in the
 * whole-syncer test (test/faults/elasticsearch.test.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { DocumentBatch } from '../../src/extract/documentBatch.js';
import { BulkWriter } from '../../src/load/bulkWriter.js';
import { createElasticsearchClient } from '../../src/load/elasticsearchClient.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { testLog } from '../helpers/syncerHarness.js';

describe('a bulk that Elasticsearch partly rejects (429)', () => {
  let sandbox: Sandbox;
  let proxy: EsFaultProxy;

  before(async () => {
    sandbox = await createSandbox('bulk_retry');
    proxy = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    await sandbox.es.indices.create({ index: sandbox.config.index });
  });

  after(async () => {
    await proxy.close();
    await sandbox.cleanup();
  });

  it('re-sends exactly the rejected items until each is accepted', async (t) => {
    const index = sandbox.config.index;
    const written = Array.from({ length: 200 }, () => randomUUID());
    const deleted = Array.from({ length: 20 }, () => randomUUID());
    await sandbox.es.bulk({
      operations: deleted.flatMap((id) => [{ index: { _index: index, _id: id } }, { old: true }]),
      refresh: true,
    });
    const batch: DocumentBatch = {
      claim: { workerId: 'test', ids: [...written, ...deleted], claimedAt: Date.now() },
      documents: written.map((id) => ({ id, version: 2, json: JSON.stringify({ title: id }) })),
      deletions: deleted.map((id) => ({ id, version: 2 })),
    };
    const es = createElasticsearchClient({ ...sandbox.config.elasticsearch, url: proxy.url });
    const writer = new BulkWriter(es, { name: index, isAlias: false }, testLog(), {
      initialDelayMs: 10,
      maxDelayMs: 50,
    });
    try {
      // Three requests in a row lose a third of their items: the retry of a retry, too.
      proxy.rejectBulkItems(0.3, 3);
      const result = await writer.write(batch);

      assert.deepEqual([...result.indexed].sort(), [...written].sort());
      assert.deepEqual([...result.deleted].sort(), [...deleted].sort());
      assert.deepEqual(result.dead, []);
      assert.deepEqual(result.stale, []);
      const { stats } = proxy;
      assert.ok(stats.rejected > 0, 'the proxy rejected items');
      for (const id of [...written, ...deleted]) {
        const rejected = stats.rejections.get(id) ?? 0;
        assert.equal(stats.sent.get(id), 1, `${id} reached Elasticsearch once`);
        assert.equal(stats.offered.get(id), 1 + rejected, `${id} offered once more per rejection`);
      }
      assert.equal(result.retries, stats.requests - 1, 'one retry per partly rejected request');
      t.diagnostic(`${stats.requests} requests, ${stats.rejected} items rejected`);

      await sandbox.es.indices.refresh({ index });
      assert.equal((await sandbox.es.count({ index })).count, written.length);
    } finally {
      await es.close();
    }
  });

  // Outside reading: the writer of an index is shared by the syncer's indexers, and so was its
  // retry policy, on which each write listened for retries: every retry was counted (and logged)
  // by every write in flight, so `bulk_retries_total` ran several times too fast.
  it("counts only a write's own retries while others write beside it", async () => {
    const index = sandbox.config.index;
    const es = createElasticsearchClient({ ...sandbox.config.elasticsearch, url: proxy.url });
    const writer = new BulkWriter(es, { name: index, isAlias: false }, testLog(), {
      initialDelayMs: 1,
      maxDelayMs: 2,
    });
    const batchOf = (ids: string[]): DocumentBatch => ({
      claim: { workerId: 'test', ids, claimedAt: Date.now() },
      documents: ids.map((id) => ({ id, version: 1, json: JSON.stringify({ title: id }) })),
      deletions: [],
    });
    const stuck = randomUUID();
    try {
      proxy.rejectBulkItemsTo((_index, id) => id === stuck);
      const retrying = writer.write(batchOf([stuck]));
      const others = [];
      for (let i = 0; i < 20; i++) others.push(await writer.write(batchOf([randomUUID()])));
      proxy.forward();
      const own = await retrying;
      assert.ok(own.retries > 0, 'the rejected write was retried');
      assert.deepEqual(
        others.map((result) => result.retries),
        others.map(() => 0),
        'the writes beside it were never retried',
      );
    } finally {
      proxy.forward();
      await es.close();
    }
  });
});
