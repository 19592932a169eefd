/** The metrics endpoint is scraped and shows the documented series; health and readiness answer. */
import assert from 'node:assert/strict';
import { freePort } from './helpers/freePort.js';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../src/sync/syncer.js';
import { insertFilm, seedCatalog } from './helpers/catalog.js';
import { eventually, waitForConvergence } from './helpers/convergence.js';
import { EsFaultProxy } from './helpers/esFaultProxy.js';
import { proxiedUrl, startFaultProxy, type FaultProxy } from './helpers/faultProxy.js';
import { createSandbox, type Sandbox } from './helpers/isolation.js';
import { migrateSandbox, startSyncer } from './helpers/syncerHarness.js';

describe('metrics and health', () => {
  let sandbox: Sandbox;
  let syncer: Syncer;
  let es: EsFaultProxy;
  let redis: FaultProxy;
  let base: string;

  before(async () => {
    sandbox = await createSandbox('metrics');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 50, 3, 10);
    es = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    redis = await startFaultProxy(sandbox.config.redisUrl);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    syncer = await startSyncer(sandbox, {
      metricsPort: port,
      elasticsearch: { ...sandbox.config.elasticsearch, url: es.url },
      redisUrl: proxiedUrl(sandbox.config.redisUrl, redis),
    });
    await waitForConvergence(sandbox);
  });

  after(async () => {
    await syncer.stop();
    await es.close();
    await redis.close();
    await sandbox.cleanup();
  });

  const value = (text: string, series: string) => {
    const line = text
      .split('\n')
      .find((l) => l.startsWith(series + ' ') || l.startsWith(series + '{'));
    return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
  };

  it('shows the documented series on /metrics', async () => {
    // Asleep, so that the first edit rings the doorbell (writers send no notification while the
    // syncer polls back to back, as it still may right after the load).
    await eventually(
      () => syncer.capture?.cadenceState === 'asleep',
      15_000,
      'the syncer to fall asleep',
    );
    await insertFilm(sandbox.pg, 'Measured');
    // Not the film just inserted (its random id may sort first): deleted before it was read, it
    // would never be indexed, and the count below would be one short.
    await sandbox.pg.query(
      `DELETE FROM content.film_work
        WHERE id = (SELECT id FROM content.film_work WHERE title <> 'Measured' ORDER BY id LIMIT 1)`,
    );
    await waitForConvergence(sandbox);
    let text = '';
    await eventually(
      async () => {
        text = await (await fetch(`${base}/metrics`)).text();
        return value(text, 'movies_etl_change_to_index_seconds_count') >= 2;
      },
      10_000,
      'latency observed',
    );
    assert.ok(value(text, 'movies_etl_documents_indexed_total{index="films"}') >= 51);
    // Broken down by index: the full load indexed every person and genre too.
    assert.ok(value(text, 'movies_etl_documents_indexed_total{index="persons"}') >= 10);
    assert.ok(value(text, 'movies_etl_documents_indexed_total{index="genres"}') >= 3);
    for (const index of ['films', 'persons', 'genres']) {
      assert.equal(value(text, `movies_etl_queue_depth_by_index{index="${index}"}`), 0, index);
      assert.equal(value(text, `movies_etl_dead_letters{index="${index}"}`), 0, index);
    }
    assert.ok(value(text, 'movies_etl_change_to_index_seconds_count{index="films"}') >= 1);
    assert.ok(value(text, 'movies_etl_documents_deleted_total') >= 1);
    assert.ok(value(text, 'movies_etl_batches_total') >= 1);
    assert.equal(value(text, 'movies_etl_listener_connected'), 1);
    assert.equal(value(text, 'movies_etl_queue_depth'), 0);
    assert.equal(value(text, 'movies_etl_dead_letters'), 0);
    // The insert rang; the delete right after it finds the syncer awake and stays quiet.
    assert.ok(value(text, 'movies_etl_notifications_total') >= 1);
    assert.ok(value(text, 'movies_etl_poll_passes_total') >= 1);
    assert.ok(value(text, 'movies_etl_read_lock_wait_seconds_total') >= 0);
    assert.ok(value(text, 'movies_etl_watermark_lag_seconds{table="film_work"}') >= 0);
    assert.match(text, /movies_etl_batch_duration_seconds_bucket/);
    assert.match(text, /movies_etl_process_resident_memory_bytes/);
    for (const name of [
      'movies_etl_bulk_retries_total',
      'movies_etl_documents_stale_total',
      'movies_etl_dead_lettered_total',
    ]) {
      assert.ok(Number.isFinite(value(text, name)), name);
    }
  });

  it('answers /healthz and /readyz, and /readyz turns 503 when Elasticsearch is away', async () => {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as {
      ready: boolean;
      problems: string[];
      elasticsearch: { status: string; nodes: number } | null;
    };
    assert.equal(body.ready, true);
    assert.deepEqual(body.problems, []);
    // What the cluster says of itself (one node here: green, or yellow for unplaced replicas).
    assert.equal(body.elasticsearch?.nodes, 1);
    assert.match(body.elasticsearch.status, /^(green|yellow)$/);
    es.down();
    try {
      const notReady = await fetch(`${base}/readyz`);
      assert.equal(notReady.status, 503);
      const body = (await notReady.json()) as { problems: string[] };
      assert.ok(body.problems.some((p) => p.startsWith('elasticsearch:')));
      assert.equal((await fetch(`${base}/healthz`)).status, 200, 'alive all the same');
    } finally {
      es.forward();
    }
    await eventually(
      async () => (await fetch(`${base}/readyz`)).status === 200,
      10_000,
      'ready again',
    );
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  });

  // Outside reading: the gauges read from Redis threw while it was away, and prom-client fails
  // the whole scrape on one: /metrics answered 500, Prometheus saw the syncer as down (the wrong
  // alert) and never scraped movies_etl_ready at 0 (so the right one never fired).
  it('answers /metrics while Redis is away, and says it is not ready', async () => {
    await redis.refuse();
    try {
      const scrape = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(15_000) });
      assert.equal(scrape.status, 200);
      const text = await scrape.text();
      assert.equal(value(text, 'movies_etl_ready'), 0);
      assert.ok(Number.isFinite(value(text, 'movies_etl_queue_depth')), 'the last depth kept');
    } finally {
      await redis.forward();
    }
    await eventually(
      async () => value(await (await fetch(`${base}/metrics`)).text(), 'movies_etl_ready') === 1,
      20_000,
      'ready again',
    );
  });

  // Outside test: with Redis away, /status.json answered a bare 500 ("Command timed out"), and the
  // status page could only call the syncer unreachable, while /readyz knew why.
  it('answers /status.json with why while Redis is away', async () => {
    await redis.refuse();
    try {
      const answer = await fetch(`${base}/status.json`, { signal: AbortSignal.timeout(20_000) });
      assert.equal(answer.status, 503);
      const body = (await answer.json()) as { error: string; ready: boolean; problems: string[] };
      assert.match(body.error, /^status unavailable: /);
      assert.equal(body.ready, false);
      assert.ok(
        body.problems.some((p) => p.startsWith('redis:')),
        body.problems.join('; '),
      );
    } finally {
      await redis.forward();
    }
    await eventually(
      async () => (await fetch(`${base}/status.json`)).status === 200,
      20_000,
      'status again',
    );
  });

  // Outside reading: readiness looked at the services, the listener and the indexers, not at the
  // capture. A capture whose every step failed (here a table it reads renamed away; in life a
  // schema the syncer was started ahead of) left the syncer "ready" while no change was read.
  it('turns /readyz 503 while every capture step fails', async () => {
    await sandbox.pg.query('ALTER TABLE etl.truncation RENAME TO truncation_away');
    try {
      await insertFilm(sandbox.pg, 'Not read while the capture fails');
      await eventually(
        async () => {
          const ready = await fetch(`${base}/readyz`);
          const body = (await ready.json()) as { problems: string[] };
          return ready.status === 503 && body.problems.some((p) => p.startsWith('capture:'));
        },
        20_000,
        'the capture named as failing',
      );
    } finally {
      await sandbox.pg.query('ALTER TABLE etl.truncation_away RENAME TO truncation');
    }
    await eventually(
      async () => (await fetch(`${base}/readyz`)).status === 200,
      30_000,
      'ready again',
    );
    await waitForConvergence(sandbox);
  });
});

// Outside test: readiness looked for a stall only in documents waiting in the queue. With
// Elasticsearch refusing every bulk and every change already claimed (a quiet catalog adds none),
// /readyz stayed 200, and the retry counter moved only once a write went through: no alert fired.
describe('readiness and retries while every bulk is refused', () => {
  let sandbox: Sandbox;
  let syncer: Syncer;
  let es: EsFaultProxy;
  let base: string;

  before(async () => {
    sandbox = await createSandbox('metrics-refused');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 20, 3, 10);
    es = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    syncer = await startSyncer(
      sandbox,
      { metricsPort: port, elasticsearch: { ...sandbox.config.elasticsearch, url: es.url } },
      undefined,
      { stallMs: 3_000 },
    );
    await waitForConvergence(sandbox);
  });

  after(async () => {
    await syncer.stop();
    await es.close();
    await sandbox.cleanup();
  });

  const retries = async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('movies_etl_bulk_retries_total '));
    return Number(line?.split(' ')[1]);
  };

  it('says stalled, and counts the retries as they happen', async () => {
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const before = await retries();
    es.rejectBulkItems(1, Number.MAX_SAFE_INTEGER);
    try {
      await insertFilm(sandbox.pg, 'Refused by every bulk');
      await eventually(
        async () => {
          const ready = await fetch(`${base}/readyz`);
          const body = (await ready.json()) as { problems: string[] };
          return ready.status === 503 && body.problems.some((p) => /a batch claimed/.test(p));
        },
        30_000,
        '/readyz naming the claim that is not done',
      );
      const during = await retries();
      assert.ok(during > before, `retries counted while refused (${before} -> ${during})`);
      assert.equal(await syncer.queue.depth(), 0, 'nothing waiting: the change is in the claim');
    } finally {
      es.forward();
    }
    await waitForConvergence(sandbox);
    await eventually(
      async () => (await fetch(`${base}/readyz`)).status === 200,
      10_000,
      'ready again',
    );
  });
});
