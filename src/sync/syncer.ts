/**
 * The syncer daemon, assembled: listener and poller feed the film-id queue (ChangeCapture), the
 * indexer drains it into Elasticsearch, and a reaper returns the claims of dead workers. All run
 * as cooperating async loops in one process; several processes may run against the same services.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import type { Client } from '@elastic/elasticsearch';
import { ChangeCapture } from '../capture/changeCapture.js';
import { ChangeListener } from '../capture/listener.js';
import { Poller } from '../capture/poller.js';
import { FilmResolver } from '../capture/resolver.js';
import type { Config } from '../config.js';
import { Postgres } from '../db/postgres.js';
import { FilmExtractor } from '../extract/extractor.js';
import type { Logger } from '../logger.js';
import { BulkWriter } from '../load/bulkWriter.js';
import { createElasticsearchClient } from '../load/elasticsearchClient.js';
import { IndexedFilmIds } from '../load/indexedIds.js';
import { ensureIndex } from '../load/indexManager.js';
import { ReindexTarget } from '../load/reindexTarget.js';
import { DeadLetters } from '../queue/deadLetters.js';
import { FilmQueue } from '../queue/filmQueue.js';
import { ReadLock } from '../queue/readLock.js';
import { RedisStore } from '../queue/redisStore.js';
import { recordLastError } from '../queue/statusReport.js';
import { Watermarks } from '../queue/watermarks.js';
import { WorkerRegistry } from '../queue/workerRegistry.js';
import * as sql from '../sql/queries.js';
import { ChangeClock } from '../metrics/changeClock.js';
import { LoadProgress } from '../metrics/loadProgress.js';
import { startHttpServer } from '../metrics/httpServer.js';
import { SyncerMetrics } from '../metrics/syncerMetrics.js';
import { Indexer } from './indexer.js';

export interface SyncerOptions {
  /** Heartbeat of the listener (ms); tests shorten it. */
  listenerHeartbeatMs?: number;
  listenerHeartbeatTimeoutMs?: number;
  reapEveryMs?: number;
}

export class Syncer {
  readonly processId = `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
  readonly db: Postgres;
  readonly store: RedisStore;
  readonly es: Client;
  readonly queue: FilmQueue;
  readonly lock: ReadLock;
  readonly watermarks: Watermarks;
  readonly registry: WorkerRegistry;
  readonly deadLetters: DeadLetters;
  capture: ChangeCapture | null = null;
  listener: ChangeListener | null = null;
  indexer: Indexer | null = null;
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
    this.queue = new FilmQueue(this.store);
    this.lock = new ReadLock(this.store, this.processId, log.child({ component: 'read-lock' }));
    this.watermarks = new Watermarks(this.store);
    this.registry = new WorkerRegistry(this.store);
    this.deadLetters = new DeadLetters(this.store);
  }

  /** Ensure the index, prove LISTEN works, then run every loop in the background. */
  async start(): Promise<void> {
    const { config, log } = this;
    const target = await ensureIndex(this.es, config.index, log.child({ component: 'index' }));
    const resolver = new FilmResolver(this.db, this.lock, config.sizeLimit, config.sleepMs);
    const poller = new Poller({
      db: this.db,
      lock: this.lock,
      queue: this.queue,
      watermarks: this.watermarks,
      resolver,
      indexed: new IndexedFilmIds(this.es, target),
      log: log.child({ component: 'poller' }),
      sizeLimit: config.sizeLimit,
      sleepMs: config.sleepMs,
      owner: this.processId,
      onFullLoad: (films) => this.showProgress(films),
    });
    const capture = new ChangeCapture(
      this.queue,
      resolver,
      poller,
      log.child({ component: 'capture' }),
      config.pollIntervalMs,
      (message) => recordLastError(this.store, 'capture', message),
      this.clock,
    );
    this.capture = capture;
    this.listener = new ChangeListener(
      config.listenUrl,
      log.child({ component: 'listener' }),
      {
        onChange: (change) => capture.onChange(change),
        onConnected: () => capture.onListenerConnected(),
        onAbandonedSession: (pid) => void this.endAbandonedListener(pid),
      },
      {
        heartbeatMs: this.options.listenerHeartbeatMs ?? 5_000,
        heartbeatTimeoutMs: this.options.listenerHeartbeatTimeoutMs ?? 5_000,
      },
    );
    const writer = new BulkWriter(this.es, target, log.child({ component: 'loader' }), {
      onIndexMissing: async () => {
        await ensureIndex(this.es, config.index, log.child({ component: 'index' }));
      },
    });
    const reindexTarget = new ReindexTarget(
      this.store,
      this.es,
      log.child({ component: 'reindex-mirror' }),
    );
    this.indexer = new Indexer({
      workerId: `${this.processId}/indexer`,
      queue: this.queue,
      extractor: new FilmExtractor(this.db, this.lock, config.bulkSize),
      writer,
      deadLetters: this.deadLetters,
      registry: this.registry,
      log: log.child({ component: 'indexer' }),
      sizeLimit: config.sizeLimit,
      sleepMs: config.sleepMs,
      reportError: (message) => recordLastError(this.store, 'indexer', message),
      mirror: () => reindexTarget.mirror(),
      observe: ({ claim, done, transientItems, dead }) => {
        const metrics = this.metrics;
        if (!metrics) return;
        metrics.batchDuration.observe((Date.now() - claim.claimedAt) / 1000);
        for (const age of this.clock.settle(done)) metrics.changeToIndex.observe(age);
        if (transientItems > 0) metrics.bulkItemErrors.inc({ kind: 'transient' }, transientItems);
        if (dead > 0) metrics.bulkItemErrors.inc({ kind: 'permanent' }, dead);
      },
    });
    this.metrics = new SyncerMetrics(this);
    if (config.metricsPort > 0) {
      this.server = await startHttpServer(
        config.metricsPort,
        this,
        this.metrics,
        log.child({ component: 'http' }),
      );
    }

    await this.listener.start();
    await this.reap();
    const signal = this.stopping.signal;
    this.loops = [capture.run(signal), this.indexer.run(signal)];
    this.reaper = setInterval(() => void this.reap(), this.options.reapEveryMs ?? 5_000);
    log.info(
      {
        index: target.name,
        worker: this.processId,
        size_limit: config.sizeLimit,
        bulk_size: config.bulkSize,
      },
      'syncer started',
    );
  }

  /** Stop claiming, let the batch in flight finish (or give it back), close connections. */
  async stop(): Promise<void> {
    this.log.info('stopping');
    this.stopping.abort();
    if (this.reaper) clearInterval(this.reaper);
    this.progress?.stop();
    const server = this.server;
    if (server) {
      server.closeAllConnections(); // scrapers keep connections alive; close() alone would wait
      await new Promise((resolve) => server.close(resolve));
    }
    await this.listener?.stop();
    await Promise.allSettled(this.loops);
    await this.close();
    this.log.info('stopped');
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.db.end(), this.store.close(), this.es.close()]);
  }

  private progress: LoadProgress | null = null;

  private showProgress(films: number): void {
    this.progress?.stop();
    const indexer = this.indexer;
    if (!indexer) return;
    const processed = () => indexer.stats.indexed + indexer.stats.deleted + indexer.stats.stale;
    const base = processed();
    this.progress = new LoadProgress(
      'full load',
      films,
      {
        done: () => processed() - base,
        finished: async () =>
          (await this.queue.depth()) === 0 && (await this.queue.inFlight()).length === 0,
      },
      this.log.child({ component: 'progress' }),
    );
    this.progress.start();
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
