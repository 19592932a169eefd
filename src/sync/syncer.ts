/**
 * The syncer daemon, assembled: listener and poller feed the document queue (ChangeCapture), the
 * indexers drain it into the three indices (films, persons, genres: src/kinds), and a reaper
 * returns the claims of dead workers. All run
 * as cooperating async loops in one process; several processes may run against the same services.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import type { Client } from '@elastic/elasticsearch';
import { ChangeCapture } from '../capture/changeCapture.js';
import { HandledTransactions } from '../capture/handledTransactions.js';
import { ChangeListener } from '../capture/listener.js';
import { FanOut } from '../capture/fanOut.js';
import { Poller, type LoadedKind } from '../capture/poller.js';
import { Resolver } from '../capture/resolver.js';
import type { Config } from '../config.js';
import { Postgres } from '../db/postgres.js';
import { DocumentExtractor } from '../extract/extractor.js';
import type { Logger } from '../logger.js';
import { BulkWriter } from '../load/bulkWriter.js';
import { createElasticsearchClient } from '../load/elasticsearchClient.js';
import { BulkLoadMode } from '../load/bulkLoadMode.js';
import { IndexedDocumentIds } from '../load/indexedIds.js';
import { ensureIndex, removeReindexLeftovers, type IndexTarget } from '../load/indexManager.js';
import type { DocumentKind, KindName } from '../kinds/documentKind.js';
import { KINDS } from '../kinds/kinds.js';
import { ReindexTarget } from '../load/reindexTarget.js';
import { DeadLetters } from '../queue/deadLetters.js';
import { DocumentQueue } from '../queue/documentQueue.js';
import { ReadLock } from '../queue/readLock.js';
import { RedisStore } from '../queue/redisStore.js';
import { recordLastError } from '../queue/statusReport.js';
import { Watermarks } from '../queue/watermarks.js';
import { WorkerRegistry } from '../queue/workerRegistry.js';
import * as sql from '../sql/queries.js';
import { sleep } from '../util/sleep.js';
import { ChangeClock } from '../metrics/changeClock.js';
import { LoadProgress } from '../metrics/loadProgress.js';
import { startHttpServer } from '../metrics/httpServer.js';
import { SyncerMetrics } from '../metrics/syncerMetrics.js';
import type { Claim } from '../queue/documentQueue.js';
import { Indexer, noCounts, type IndexerStats, type KindSink } from './indexer.js';

export interface SyncerOptions {
  /** Heartbeat of the listener (ms); tests shorten it. */
  listenerHeartbeatMs?: number;
  listenerHeartbeatTimeoutMs?: number;
  reapEveryMs?: number;
  /** How long stop() waits for the loops before it stops without them (ms). */
  stopBoundMs?: number;
}

/** The indexers' grace for a batch in flight (10 s), plus room for giving a claim back. */
const STOP_BOUND_MS = 15_000;

/** Whether `promise` settled within `ms`; it is not cancelled either way. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const timeout = new AbortController();
  const settled = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    sleep(ms, timeout.signal).then(() => false),
  ]);
  timeout.abort(); // clears the timer, which would keep the process up
  return settled;
}

export class Syncer {
  readonly processId = `${hostname()}-${process.pid}-${randomBytes(6).toString('hex')}`;
  readonly db: Postgres;
  readonly store: RedisStore;
  readonly es: Client;
  readonly queue: DocumentQueue;
  readonly lock: ReadLock;
  readonly watermarks: Watermarks;
  readonly registry: WorkerRegistry;
  readonly deadLetters: DeadLetters;
  capture: ChangeCapture | null = null;
  listener: ChangeListener | null = null;
  indexers: Indexer[] = [];
  readonly startedAt = Date.now();
  readonly clock = new ChangeClock();
  metrics: SyncerMetrics | null = null;
  private server: Server | null = null;
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private reaper: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly options: SyncerOptions = {},
  ) {
    this.db = new Postgres(config.databaseUrl, log.child({ component: 'postgres' }));
    this.store = new RedisStore(
      config.redisUrl,
      config.redisPrefix,
      log.child({ component: 'redis' }),
    );
    this.es = createElasticsearchClient(config.elasticsearch);
    this.queue = new DocumentQueue(this.store);
    this.lock = new ReadLock(this.store, this.processId, log.child({ component: 'read-lock' }));
    this.watermarks = new Watermarks(this.store);
    this.registry = new WorkerRegistry(this.store);
    this.deadLetters = new DeadLetters(this.store);
  }

  /** Ensure the indices, prove LISTEN works, then run every loop in the background. */
  async start(): Promise<void> {
    const { config, log } = this;
    const indexLog = log.child({ component: 'index' });
    const targets = new Map<KindName, IndexTarget>();
    for (const kind of KINDS) {
      const name = kind.indexName(config);
      targets.set(kind.name, await ensureIndex(this.es, name, indexLog, kind.definition));
      const mode = new BulkLoadMode(this.es, name, indexLog, this.store, this.processId);
      // A syncer that died mid full load left the index relaxed: put its settings back first.
      await mode.restoreAbandoned();
      this.bulkLoads.set(kind.name, mode);
    }
    const targetOf = (kind: DocumentKind): IndexTarget => {
      const target = targets.get(kind.name);
      if (!target) throw new Error(`no index for ${kind.name}`);
      return target;
    };
    const fanOut = new FanOut(
      this.queue,
      new Resolver(this.db, this.lock, config.sizeLimit, config.sleepMs),
    );
    const handled = new HandledTransactions();
    const loaded: LoadedKind[] = KINDS.map((kind) => ({
      kind,
      indexed: new IndexedDocumentIds(this.es, targetOf(kind)),
    }));
    const poller = new Poller({
      db: this.db,
      lock: this.lock,
      queue: this.queue,
      watermarks: this.watermarks,
      fanOut,
      kinds: loaded,
      log: log.child({ component: 'poller' }),
      sizeLimit: config.sizeLimit,
      sleepMs: config.sleepMs,
      owner: this.processId,
      handled,
      onFullLoad: async (documents, kinds) => {
        this.showProgress(documents);
        for (const kind of kinds) {
          await this.bulkLoads
            .get(kind.name)
            ?.enter()
            .catch((err: unknown) => {
              log.warn(
                { index: kind.name, err: (err as Error).message },
                'could not relax the index for the full load',
              );
            });
        }
      },
      onFullLoadQueued: () => this.leaveBulkLoadWhenDrained(),
    });
    const capture = new ChangeCapture(
      this.queue,
      fanOut,
      poller,
      log.child({ component: 'capture' }),
      config.pollIntervalMs,
      (message) => recordLastError(this.store, 'capture', message),
      this.clock,
      { handled, barrier: () => this.listener?.barrier() ?? Promise.resolve(false) },
    );
    this.capture = capture;
    this.listener = new ChangeListener(
      config.listenUrl,
      log.child({ component: 'listener' }),
      {
        onChange: (change) => capture.onChange(change),
        onConnected: () => capture.onListenerConnected(),
        onBarrier: () => handled.barrier(),
        onAbandonedSession: (pid) => void this.endAbandonedListener(pid),
      },
      {
        heartbeatMs: this.options.listenerHeartbeatMs ?? 5_000,
        heartbeatTimeoutMs: this.options.listenerHeartbeatTimeoutMs ?? 5_000,
      },
    );
    const reindexTarget = new ReindexTarget(
      this.store,
      this.es,
      log.child({ component: 'reindex-mirror' }),
    );
    // In the background (it may wait a few seconds); it logs what it deletes and never throws.
    void removeReindexLeftovers(this.es, reindexTarget, config.index, indexLog);
    const sinks = new Map<KindName, KindSink>(
      KINDS.map((kind) => {
        const writer = new BulkWriter(this.es, targetOf(kind), log.child({ component: 'loader' }), {
          onIndexMissing: async () => {
            await ensureIndex(this.es, kind.indexName(config), indexLog, kind.definition);
          },
        });
        // Only the films index is rebuilt by `npm run reindex` so far: only it has a mirror.
        const mirror = kind.name === 'films' ? () => reindexTarget.mirror() : undefined;
        return [kind.name, { kind, writer, ...(mirror ? { mirror } : {}) }];
      }),
    );
    // Several indexers per process: the read lock still admits one reader at a time, but one
    // indexer's bulk request overlaps another's read.
    this.indexers = Array.from(
      { length: config.workers },
      (_, i) =>
        new Indexer({
          workerId: `${this.processId}/indexer-${i + 1}`,
          queue: this.queue,
          extractor: new DocumentExtractor(this.db, this.lock, config.bulkSize),
          sinks,
          deadLetters: this.deadLetters,
          registry: this.registry,
          log: log.child({ component: 'indexer', worker: i + 1 }),
          sizeLimit: config.sizeLimit,
          sleepMs: config.sleepMs,
          reportError: (message) => recordLastError(this.store, 'indexer', message),
          observe: (event) => this.observeBatch(event),
        }),
    );
    this.metrics = new SyncerMetrics(this);
    if (config.metricsPort > 0) {
      try {
        this.server = await startHttpServer(
          config.metricsPort,
          this,
          this.metrics,
          log.child({ component: 'http' }),
        );
      } catch (err) {
        // Syncing matters more than metrics: a second syncer on the same host lands here.
        log.error(
          { port: config.metricsPort, err: (err as Error).message },
          'metrics port unavailable; running without /metrics (set METRICS_PORT to a free port, or 0)',
        );
      }
    }

    await this.listener.start();
    await this.reap();
    const signal = this.stopping.signal;
    this.loops = [capture.run(signal), ...this.indexers.map((indexer) => indexer.run(signal))];
    this.reaper = setInterval(() => void this.reap(), this.options.reapEveryMs ?? 5_000);
    log.info(
      {
        indices: [...targets.values()].map((t) => t.name),
        worker: this.processId,
        indexers: config.workers,
        size_limit: config.sizeLimit,
        bulk_size: config.bulkSize,
      },
      'syncer started',
    );
  }

  /**
   * Stop claiming, let the batch in flight finish (or give it back), close connections. Bounded:
   * with Redis, Postgres or Elasticsearch away, the loops may not finish; after `stopBoundMs` the
   * syncer stops anyway. A claim still in hand then stays in Redis, and any syncer's reaper
   * returns it once this process's heartbeats have lapsed: nothing is lost by not waiting.
   */
  async stop(): Promise<void> {
    this.log.info('stopping');
    this.stopping.abort();
    if (this.reaper) clearInterval(this.reaper);
    if (this.drainWatch) clearInterval(this.drainWatch);
    this.progress?.stop();
    const server = this.server;
    if (server) {
      server.closeAllConnections(); // scrapers keep connections alive; close() alone would wait
      await new Promise((resolve) => server.close(resolve));
    }
    await this.listener?.stop();
    const bound = this.options.stopBoundMs ?? STOP_BOUND_MS;
    if (!(await settlesWithin(Promise.allSettled(this.loops), bound))) {
      this.log.warn(
        { after_ms: bound, redis: this.store.redis.status },
        'stopping without waiting any longer (is Redis or Elasticsearch unreachable?); claims in ' +
          'hand come back through the reaper of the next syncer',
      );
    }
    // Whatever is indexed becomes searchable even if nobody starts a syncer again soon. Bounded:
    // with Elasticsearch away, stopping must not wait for it (the next start restores instead).
    const relaxed = [...this.bulkLoads.values()].filter((mode) => mode.active);
    if (relaxed.length > 0)
      await settlesWithin(Promise.allSettled(relaxed.map((mode) => mode.leave())), 3_000);
    await settlesWithin(this.close(), 3_000);
    this.log.info('stopped');
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.db.end(), this.store.close(), this.es.close()]);
  }

  private progress: LoadProgress | null = null;
  private readonly bulkLoads = new Map<KindName, BulkLoadMode>();
  private drainWatch: NodeJS.Timeout | null = null;

  /** Once the full load's films are all indexed (queue and claims empty), end bulk-load mode. */
  private leaveBulkLoadWhenDrained(): void {
    if (this.drainWatch) clearInterval(this.drainWatch);
    let busy = false;
    const check = async () => {
      if ((await this.queue.depth()) > 0 || (await this.queue.inFlight()).length > 0) return;
      for (const mode of this.bulkLoads.values()) if (mode.active) await mode.leave();
      if (this.drainWatch) clearInterval(this.drainWatch);
      this.drainWatch = null;
    };
    this.drainWatch = setInterval(() => {
      if (busy) return;
      busy = true;
      check()
        .catch((err: unknown) =>
          this.log.warn({ err: (err as Error).message }, 'bulk-load mode: check failed; retrying'),
        )
        .finally(() => (busy = false));
    }, 250);
  }

  private showProgress(documents: number): void {
    this.progress?.stop();
    const processed = () => {
      const stats = this.indexer?.stats;
      return stats ? stats.indexed + stats.deleted + stats.stale : 0;
    };
    const base = processed();
    this.progress = new LoadProgress(
      'full load',
      documents,
      {
        done: () => processed() - base,
        finished: async () =>
          (await this.queue.depth()) === 0 && (await this.queue.inFlight()).length === 0,
      },
      this.log.child({ component: 'progress' }),
    );
    this.progress.start();
  }

  /** Every indexer's counters, summed. */
  get indexer(): { stats: IndexerStats } | null {
    if (this.indexers.length === 0) return null;
    const stats = this.indexers.map((i) => i.stats);
    const sum = (key: 'batches' | 'indexed' | 'deleted' | 'stale' | 'dead' | 'retries') =>
      stats.reduce((total, s) => total + s[key], 0);
    const latest = (key: 'lastBatchAt' | 'lastError') =>
      stats
        .map((s) => s[key])
        .reduce<string | null>((a, b) => (b !== null && (a === null || b > a) ? b : a), null);
    const byIndex = Object.fromEntries(
      KINDS.map((kind) => {
        const total = noCounts();
        for (const s of stats) {
          const counts = s.byIndex[kind.name];
          total.indexed += counts.indexed;
          total.deleted += counts.deleted;
          total.stale += counts.stale;
          total.dead += counts.dead;
        }
        return [kind.name, total];
      }),
    ) as IndexerStats['byIndex'];
    return {
      stats: {
        byIndex,
        batches: sum('batches'),
        indexed: sum('indexed'),
        deleted: sum('deleted'),
        stale: sum('stale'),
        dead: sum('dead'),
        retries: sum('retries'),
        lastBatchAt: latest('lastBatchAt'),
        lastError: stats.map((s) => s.lastError).find((e) => e !== null) ?? null,
      },
    };
  }

  private observeBatch(event: {
    claim: Claim;
    done: string[];
    transientItems: number;
    dead: number;
  }): void {
    const metrics = this.metrics;
    if (!metrics) return;
    metrics.batchDuration.observe((Date.now() - event.claim.claimedAt) / 1000);
    for (const age of this.clock.settle(event.done)) metrics.changeToIndex.observe(age);
    if (event.transientItems > 0)
      metrics.bulkItemErrors.inc({ kind: 'transient' }, event.transientItems);
    if (event.dead > 0) metrics.bulkItemErrors.inc({ kind: 'permanent' }, event.dead);
  }

  private async endAbandonedListener(pid: number): Promise<void> {
    try {
      const [row] = await this.db.query(sql.endAbandonedListener, [pid]);
      if (row?.ended) this.log.info({ pid }, 'ended the abandoned listener session');
    } catch (err) {
      this.log.warn(
        { pid, err: (err as Error).message },
        'could not end the abandoned listener session',
      );
    }
  }

  private async reap(): Promise<void> {
    try {
      const { workers, ids } = await this.registry.reapDead(this.queue);
      if (workers.length > 0)
        this.log.warn({ workers, ids }, 'returned the claims of dead workers');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'reaper failed');
    }
  }
}
