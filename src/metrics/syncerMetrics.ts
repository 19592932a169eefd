/**
 * Prometheus metrics of one syncer process (prom-client), broken down by index (`index` label:
 * films, persons, genres) where a number belongs to one. Most values are read at scrape time from
 * the components' own counters and from Redis (through SyncerView), so the hot path only pays for
 * the latency histograms.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { KindName } from '../kinds/documentKind.js';
import { KIND_NAMES, parseMember } from '../kinds/kinds.js';
import type { ChangeClock } from './changeClock.js';
import { readiness } from './httpServer.js';
import type { IndexCounts } from './indexerStats.js';
import type { SyncerView } from './syncerView.js';
import { settlesWithin } from '../util/timeouts.js';

/** Longest a scrape waits for one gauge read from Redis. */
const REDIS_LOOK_MS = 1_000;

/**
 * A gauge's look at Redis. Failing or slow (Redis away), the gauge keeps its last value: prom-client
 * fails the whole scrape on one collector that throws, and a 500 on /metrics read as "syncer down"
 * (the wrong alert) while `movies_etl_ready`, which says Redis is away, was never scraped.
 */
async function fromRedis(look: () => Promise<void>): Promise<void> {
  await settlesWithin(look(), REDIS_LOOK_MS);
}

/** What the indexer reports of each acknowledged claim. */
export interface BatchEvent {
  claimedAt: number;
  /** Queue members done (indexed, deleted or stale). */
  done: string[];
  transientItems: number;
  dead: number;
}

export class SyncerMetrics {
  readonly registry = new Registry();
  private readonly changeToIndex: Histogram<'index'>;
  private readonly batchDuration: Histogram;
  private readonly bulkItemErrors: Counter<'kind'>;

  constructor(
    view: SyncerView,
    private readonly clock: ChangeClock,
  ) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'movies_etl_' });
    this.changeToIndex = new Histogram({
      name: 'movies_etl_change_to_index_seconds',
      help: 'From first learning of a change (its notification or a poll pass) to Elasticsearch acknowledging the document',
      labelNames: ['index'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
    this.batchDuration = new Histogram({
      name: 'movies_etl_batch_duration_seconds',
      help: 'From claiming a batch of documents to acknowledging it',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.bulkItemErrors = new Counter({
      name: 'movies_etl_bulk_item_errors_total',
      help: 'Bulk items Elasticsearch did not accept, by kind (transient: retried; permanent: dead letter)',
      labelNames: ['kind'],
      registers: [registry],
    });

    // Per-index totals kept by the indexers, turned into counters at scrape time.
    const perIndex: [string, string, keyof IndexCounts][] = [
      ['documents_indexed_total', 'Documents indexed', 'indexed'],
      ['documents_deleted_total', 'Documents deleted', 'deleted'],
      ['documents_stale_total', 'Writes refused because a newer version was indexed', 'stale'],
      ['dead_lettered_total', 'Documents sent to the dead letters', 'dead'],
    ];
    for (const [name, help, field] of perIndex) {
      const last = new Map<KindName, number>();
      new Counter({
        name: `movies_etl_${name}`,
        help,
        labelNames: ['index'],
        registers: [registry],
        collect() {
          const stats = view.indexerStats();
          for (const index of KIND_NAMES) {
            const now = stats?.byIndex[index][field] ?? 0;
            const before = last.get(index) ?? 0;
            // Every index appears from the first scrape on, at 0 until something happens.
            this.inc({ index }, Math.max(0, now - before));
            last.set(index, Math.max(now, before));
          }
        },
      });
    }
    // Process-wide totals, likewise.
    const totals: [string, string, () => number][] = [
      ['batches_total', 'Batches acknowledged', () => view.indexerStats()?.batches ?? 0],
      ['bulk_retries_total', 'Bulk request retries', () => view.bulkRetries()],
      [
        'notifications_total',
        'Change notifications received',
        () => view.captureStats()?.notifications ?? 0,
      ],
      ['poll_passes_total', 'Poll passes run', () => view.captureStats()?.passes ?? 0],
      [
        'read_lock_wait_seconds_total',
        'Time spent waiting for the Postgres read lock',
        () => view.lockWaitedMs() / 1000,
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
        this.set(view.listenerConnected() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'movies_etl_capturing',
      help: '1 while this syncer is the one capturing changes (one at a time; the others only index)',
      registers: [registry],
      collect() {
        this.set(view.capturing() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'movies_etl_ready',
      help: '1 when /readyz would answer 200 (services reachable, listener subscribed, capture going, not stalled), 0 otherwise',
      registers: [registry],
      // The same checks as /readyz, so an alert sees what the orchestrator's probe sees; a scrape
      // with a service away takes up to its 3 s ping timeout.
      async collect() {
        this.set((await readiness(view)).problems.length === 0 ? 1 : 0);
      },
    });
    new Gauge({
      name: 'movies_etl_claims_in_flight',
      help: 'Batches claimed from the queue and not yet acknowledged, all syncers',
      registers: [registry],
      async collect() {
        await fromRedis(async () => {
          this.set((await view.queue.inFlight()).length);
        });
      },
    });
    new Gauge({
      name: 'movies_etl_read_lock_held_seconds',
      help: 'How long the current holder (any process) has held the Postgres read lock; 0 when free',
      registers: [registry],
      async collect() {
        await fromRedis(async () => {
          const holder = await view.readLockHolder();
          this.set(holder ? holder.ageMs / 1000 : 0);
        });
      },
    });
    new Gauge({
      name: 'movies_etl_queue_depth',
      help: 'Documents waiting in the Redis queue, all indices (all syncers)',
      registers: [registry],
      async collect() {
        await fromRedis(async () => {
          this.set(await view.queue.depth());
        });
      },
    });
    new Gauge({
      name: 'movies_etl_queue_depth_by_index',
      help: 'Documents waiting in the Redis queue per index (estimated beyond 100,000 waiting)',
      labelNames: ['index'],
      registers: [registry],
      async collect() {
        await fromRedis(async () => {
          const { counts } = await view.queue.depthByKind();
          for (const index of KIND_NAMES) this.set({ index }, counts[index]);
        });
      },
    });
    new Gauge({
      name: 'movies_etl_dead_letters',
      help: 'Documents in the dead letters, per index (all syncers)',
      labelNames: ['index'],
      registers: [registry],
      async collect() {
        await fromRedis(async () => {
          const counts = await view.deadLetters.countByKind();
          for (const index of KIND_NAMES) this.set({ index }, counts[index]);
        });
      },
    });
    new Gauge({
      name: 'movies_etl_watermark_lag_seconds',
      help: 'How far behind now each table watermark is',
      labelNames: ['table'],
      registers: [registry],
      async collect() {
        await fromRedis(async () => {
          const now = Date.now();
          for (const [table, mark] of await view.watermarks.getAll()) {
            if (mark) this.set({ table }, (now - Date.parse(mark.at)) / 1000);
          }
        });
      },
    });
  }

  /** After every acknowledged claim. */
  observeBatch(event: BatchEvent): void {
    this.batchDuration.observe((Date.now() - event.claimedAt) / 1000);
    for (const member of event.done) {
      const [age] = this.clock.settle([member]);
      const index = parseMember(member)?.kind.name;
      if (age !== undefined && index) this.changeToIndex.observe({ index }, age);
    }
    if (event.transientItems > 0)
      this.bulkItemErrors.inc({ kind: 'transient' }, event.transientItems);
    if (event.dead > 0) this.bulkItemErrors.inc({ kind: 'permanent' }, event.dead);
  }

  /** The change-to-index histogram's cumulative bucket counts, all indices together. */
  async latencyBuckets(): Promise<Map<number, number>> {
    const buckets = new Map<number, number>();
    for (const { metricName, labels, value } of (await this.changeToIndex.get()).values) {
      if (!metricName?.endsWith('_bucket')) continue;
      // prom-client adds `le` to bucket values; its label type only knows ours.
      const bound = (labels as { le?: string | number }).le;
      const le = bound === '+Inf' ? Infinity : Number(bound);
      buckets.set(le, (buckets.get(le) ?? 0) + value);
    }
    return buckets;
  }
}
