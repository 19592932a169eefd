/**
 * Prometheus metrics of one syncer process (prom-client). Most values are read at scrape time from
 * the components' own counters and from Redis, so the hot path only pays for the latency
 * histograms.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Syncer } from '../sync/syncer.js';

export class SyncerMetrics {
  readonly registry = new Registry();
  readonly changeToIndex: Histogram;
  readonly batchDuration: Histogram;
  readonly bulkItemErrors: Counter<'kind'>;

  constructor(syncer: Syncer) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'movies_etl_' });
    this.changeToIndex = new Histogram({
      name: 'movies_etl_change_to_index_seconds',
      help: 'From hearing of a change (notification) to Elasticsearch acknowledging the film',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
    this.batchDuration = new Histogram({
      name: 'movies_etl_batch_duration_seconds',
      help: 'From claiming a batch of film ids to acknowledging it',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.bulkItemErrors = new Counter({
      name: 'movies_etl_bulk_item_errors_total',
      help: 'Bulk items Elasticsearch did not accept, by kind (transient: retried; permanent: dead letter)',
      labelNames: ['kind'],
      registers: [registry],
    });

    // Totals kept by the components, turned into counters at scrape time.
    const totals: [string, string, () => number][] = [
      ['documents_indexed_total', 'Documents indexed', () => syncer.indexer?.stats.indexed ?? 0],
      ['documents_deleted_total', 'Documents deleted', () => syncer.indexer?.stats.deleted ?? 0],
      [
        'documents_stale_total',
        'Writes refused because a newer version was indexed',
        () => syncer.indexer?.stats.stale ?? 0,
      ],
      [
        'dead_lettered_total',
        'Films sent to the dead letters',
        () => syncer.indexer?.stats.dead ?? 0,
      ],
      ['batches_total', 'Batches acknowledged', () => syncer.indexer?.stats.batches ?? 0],
      ['bulk_retries_total', 'Bulk request retries', () => syncer.indexer?.stats.retries ?? 0],
      [
        'notifications_total',
        'Change notifications received',
        () => syncer.capture?.stats.notifications ?? 0,
      ],
      ['poll_passes_total', 'Poll passes run', () => syncer.capture?.stats.passes ?? 0],
      [
        'read_lock_wait_seconds_total',
        'Time spent waiting for the Postgres read lock',
        () => syncer.lock.waitedMs / 1000,
      ],
    ];
    for (const [name, help, read] of totals) {
      let last = 0;
      new Counter({
        name: `movies_etl_${name}`,
        help,
        registers: [registry],
        collect() {
          const now = read();
          if (now > last) this.inc(now - last);
          last = now;
        },
      });
    }

    new Gauge({
      name: 'movies_etl_listener_connected',
      help: '1 while the LISTEN connection is up and answering heartbeats',
      registers: [registry],
      collect() {
        this.set(syncer.listener?.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'movies_etl_queue_depth',
      help: 'Film ids waiting in the Redis queue (all syncers)',
      registers: [registry],
      async collect() {
        this.set(await syncer.queue.depth());
      },
    });
    new Gauge({
      name: 'movies_etl_dead_letters',
      help: 'Films in the dead letters (all syncers)',
      registers: [registry],
      async collect() {
        this.set(await syncer.deadLetters.count());
      },
    });
    new Gauge({
      name: 'movies_etl_watermark_lag_seconds',
      help: 'How far behind now each table watermark is',
      labelNames: ['table'],
      registers: [registry],
      async collect() {
        const now = Date.now();
        for (const [table, mark] of await syncer.watermarks.getAll()) {
          if (mark) this.set({ table }, (now - Date.parse(mark.at)) / 1000);
        }
      },
    });
  }
}
