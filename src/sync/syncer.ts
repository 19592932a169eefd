/**
 * The syncer daemon, assembled: listener and poller feed the document queue (ChangeCapture), the
 * indexers drain it into the three indices (films, persons, genres: src/kinds), and a reaper
 * returns the claims of dead workers (and queues again documents PostgreSQL could not build, a few
 * times: queue/unreadableRetry.ts). All run as cooperating async loops in one process; several
 * processes may run against the same services.
 *
 * This file only wires and runs them; each concern lives with what it concerns: the full load's
 * progress bar and bulk-load mode (fullLoadWatch.ts), the reaper (queue/reaper.ts), metrics
 * (metrics/, which read the narrow SyncerView built here).
 */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import type { Client } from '@elastic/elasticsearch';
import { endAbandonedListener } from '../capture/abandonedListener.js';
import { CaptureLease } from '../capture/captureLease.js';
import { ChangeCapture } from '../capture/changeCapture.js';
import { Doorbell } from '../capture/doorbell.js';
import { FanOut } from '../capture/fanOut.js';
import { HandledTransactions } from '../capture/handledTransactions.js';
import { ChangeListener } from '../capture/listener.js';
import { Poller } from '../capture/poller.js';
import { evictionRisk } from '../queue/evictionPolicy.js';
import { Resolver } from '../capture/resolver.js';
import type { Config } from '../config.js';
import { Postgres } from '../db/postgres.js';
import { DocumentExtractor } from '../extract/extractor.js';
import type { DocumentKind, KindName } from '../kinds/documentKind.js';
import { KINDS } from '../kinds/kinds.js';
import type { Logger } from '../logger.js';
import { BulkLoadMode } from '../load/bulkLoadMode.js';
import { BulkWriter } from '../load/bulkWriter.js';
import { createElasticsearchClient } from '../load/elasticsearchClient.js';
import { IndexedDocumentIds } from '../load/indexedIds.js';
import { LiveRefresh } from '../load/liveRefresh.js';
import {
  bringMappingUpToDate,
  removeReindexLeftovers,
  type IndexTarget,
} from '../load/indexManager.js';
import { ReindexTarget } from '../load/reindexTarget.js';
import { readSearchHealth } from '../load/searchHealth.js';
import { ChangeClock } from '../metrics/changeClock.js';
import { FullLoadPlans } from '../queue/fullLoadPlan.js';
import { ReloadRequests } from '../queue/reloadRequests.js';
import { readStatus } from '../queue/statusReport.js';
import { startHttpServer } from '../metrics/httpServer.js';
import { sumStats, type IndexerStats } from '../metrics/indexerStats.js';
import { SyncerMetrics } from '../metrics/syncerMetrics.js';
import type { SyncerView } from '../metrics/syncerView.js';
import { DeadLetters } from '../queue/deadLetters.js';
import { DeploymentClaim, type DeploymentIdentity } from '../queue/deploymentClaim.js';
import * as sql from '../sql/queries.js';
import { DocumentQueue } from '../queue/documentQueue.js';
import { ReadLock } from '../queue/readLock.js';
import { Reaper } from '../queue/reaper.js';
import { type RetrySchedule, UnreadableRetry } from '../queue/unreadableRetry.js';
import { RedisStore } from '../queue/redisStore.js';
import { recordLastError } from '../queue/statusReport.js';
import { Watermarks } from '../queue/watermarks.js';
import { WorkerRegistry } from '../queue/workerRegistry.js';
import { settlesWithin } from '../util/timeouts.js';
import { FullLoadWatch } from './fullLoadWatch.js';
import { IndexWatch } from './indexWatch.js';
import { Indexer, type KindSink } from './indexer.js';
import { IndexPause } from './indexPause.js';

export interface SyncerOptions {
  /** Heartbeat of the listener (ms); tests shorten it. */
  listenerHeartbeatMs?: number;
  listenerHeartbeatTimeoutMs?: number;
  reapEveryMs?: number;
  /** How often every index is checked for being there (ms; indexWatch.ts). */
  indexCheckMs?: number;
  /** Ids per Elasticsearch page of the orphan sweep; tests shrink it to cross many pages. */
  sweepPageSize?: number;
  /** How long stop() waits for the loops before it stops without them (ms). */
  stopBoundMs?: number;
  /** When documents PostgreSQL could not build are read again (unreadableRetry.ts). */
  unreadableRetry?: RetrySchedule;
  /** How long work may wait with no batch done before /readyz says stalled (ms; 2 min). */
  stallMs?: number;
  /** The statement timeout of every query (ms, 15 s by default); tests shorten it. */
  queryTimeoutMs?: number;
}

/** Documents waiting (or claimed) this long with no batch acknowledged: the syncer is stuck. */
const STALL_MS = 120_000;
/** The indexers' grace for a batch in flight (10 s), plus room for giving a claim back. */
const STOP_BOUND_MS = 15_000;
/**
 * How long a pass that finds Redis restarted waits for the index look (IndexWatch.checkNow): long
 * enough for a healthy Elasticsearch, so that a load the pass begins serves what the look asks for.
 */
const REDIS_RESTART_LOOK_MS = 5_000;
/**
 * How long a write keeps retrying an index that refuses it as a whole (blocked, closed, no
 * privilege) before its documents are held back and the worker goes on with the other indices'.
 */
const INDEX_REFUSED_PATIENCE_MS = 3_000;

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
  /** Bulk requests retried, as they happen (SyncerView.bulkRetries). */
  private bulkRetries = 0;
  readonly startedAt = Date.now();
  readonly clock = new ChangeClock();
  metrics: SyncerMetrics | null = null;
  private server: Server | null = null;
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly reaper: Reaper;
  private readonly unreadableRetry: UnreadableRetry;
  private fullLoads: FullLoadWatch | null = null;
  private readonly doorbell: Doorbell;
  private readonly bulkLoadModes = new Map<KindName, BulkLoadMode>();
  private readonly refreshes: LiveRefresh[] = [];
  private readonly reloads: ReloadRequests;
  private readonly indexWatch: IndexWatch;
  private deployment: DeploymentClaim | null = null;
  private fail: (reason: string) => void = () => undefined;
  /**
   * Resolves with why this syncer must not go on (its Redis prefix claimed by another
   * deployment); `npm start` then stops it and exits 1. Never resolves otherwise.
   */
  readonly failed = new Promise<string>((resolve) => (this.fail = resolve));
  /** Whether this process is the one capturing changes (only one syncer at a time does). */
  readonly captureLease: CaptureLease;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly options: SyncerOptions = {},
  ) {
    this.db = new Postgres(
      config.databaseUrl,
      log.child({ component: 'postgres' }),
      undefined,
      options.queryTimeoutMs,
    );
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
    this.deadLetters = new DeadLetters(this.store, options.unreadableRetry);
    this.reaper = new Reaper(
      this.registry,
      this.queue,
      log.child({ component: 'reaper' }),
      (workerId) => this.indexers.find((i) => i.workerId === workerId)?.heldClaimId,
    );
    this.unreadableRetry = new UnreadableRetry(
      this.deadLetters,
      this.queue,
      log.child({ component: 'dead-letters' }),
      Math.min(5_000, options.unreadableRetry?.firstMs ?? 5_000),
    );
    this.doorbell = new Doorbell(this.db, log.child({ component: 'doorbell' }));
    this.reloads = new ReloadRequests(this.store);
    this.captureLease = new CaptureLease(
      this.store,
      this.processId,
      () => this.listener?.connected ?? false,
      log.child({ component: 'capture' }),
    );
    this.indexWatch = new IndexWatch(
      this.es,
      KINDS.map((kind) => ({ kind, alias: kind.indexName(config) })),
      this.reloads,
      log.child({ component: 'index' }),
      () => this.capture?.requestPoll(),
      async () => (await this.watermarks.epoch()) === null,
    );
  }

  /** Ensure the indices, prove LISTEN works, then run every loop in the background. */
  async start(): Promise<void> {
    const { config, log } = this;
    // First: a syncer of another deployment on this prefix must not touch its queue or leases.
    this.deployment = new DeploymentClaim(
      this.store,
      () => this.deploymentIdentity(),
      (message) => {
        log.fatal(message);
        this.fail(message);
      },
      (error) =>
        log.warn(
          { err: error },
          'could not claim the Redis prefix for this deployment yet (Postgres or Redis away); ' +
            'trying again every 10 s',
        ),
    );
    await this.deployment.claim();
    const eviction = await evictionRisk(this.store.redis);
    if (eviction) log.warn({ detail: eviction }, "redis may delete this syncer's keys when full");
    const targets = await this.ensureIndices();
    const fanOut = new FanOut(
      this.queue,
      new Resolver(this.db, this.lock, config.sizeLimit, config.sleepMs),
    );
    const handled = new HandledTransactions();
    const doorbell = this.doorbell;
    const fullLoads = this.fullLoads;
    const poller = new Poller({
      db: this.db,
      lock: this.lock,
      queue: this.queue,
      watermarks: this.watermarks,
      fanOut,
      kinds: KINDS.map((kind) => ({
        kind,
        indexed: new IndexedDocumentIds(this.es, targetOf(targets, kind)),
      })),
      log: log.child({ component: 'poller' }),
      sizeLimit: config.sizeLimit,
      ...(this.options.sweepPageSize ? { sweepPageSize: this.options.sweepPageSize } : {}),
      sleepMs: config.sleepMs,
      sidePassEveryMs: config.pollIntervalMs,
      owner: this.processId,
      handled,
      clock: this.clock,
      plans: new FullLoadPlans(this.store),
      reloads: this.reloads,
      deadLetters: this.deadLetters,
      // While a walk over every document waits for room, live changes still reach the queue.
      whileWaiting: () => this.capture?.drain() ?? Promise.resolve(),
      ...(fullLoads
        ? {
            onFullLoad: (documents, kinds) => fullLoads.began(documents, kinds),
            onFullLoadQueued: () => fullLoads.queued(),
          }
        : {}),
      // Bounded: an Elasticsearch that does not answer must not hold up capture. The look goes on.
      onRedisRestarted: async () => {
        await settlesWithin(this.indexWatch.checkNow(), REDIS_RESTART_LOOK_MS);
      },
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
      doorbell,
      this.captureLease,
    );
    this.capture = capture;
    this.listener = new ChangeListener(
      config.listenUrl,
      log.child({ component: 'listener' }),
      {
        onChange: (change) => capture.onChange(change),
        onMalformed: (txid) => capture.onMalformed(txid),
        // Writers ring only while a listener says it is there: LISTEN first, then say so, then
        // catch up. A writer that looked just before stays silent; the catch-up pass, or settling
        // after it, reads its change (changeCapture.onListenerConnected). The same when the
        // heartbeat's renewal of the lease failed for longer than the lease.
        onConnected: () => {
          void doorbell.listening().finally(() => capture.onListenerConnected());
        },
        onHeartbeat: () =>
          void doorbell.listening().then((lapsed) => lapsed && capture.onListeningAgain()),
        onBarrier: () => handled.barrier(),
        onDisconnected: () => capture.onListenerLost(),
        onAbandonedSession: (pid) =>
          void endAbandonedListener(this.db, pid, log.child({ component: 'listener' })),
      },
      {
        heartbeatMs: this.options.listenerHeartbeatMs ?? 5_000,
        heartbeatTimeoutMs: this.options.listenerHeartbeatTimeoutMs ?? 5_000,
      },
    );
    const sinks = this.sinks(targets);
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
          observe: (event) => this.metrics?.observeBatch(event),
        }),
    );
    await this.serveMetrics();

    await this.listener.start();
    const signal = this.stopping.signal;
    // Every indexer listens on the stop signal for good (its hard stop) and again while it sleeps
    // or waits for work, and on the queue's events while it waits: past ten listeners node
    // prints a leak warning to stderr, which six idle indexers reached. The bounds still catch a
    // real leak (one listener per batch).
    setMaxListeners(10 + 3 * this.indexers.length, signal);
    this.queue.events.setMaxListeners(10 + this.indexers.length);
    await this.reaper.start(this.options.reapEveryMs ?? 5_000);
    this.unreadableRetry.start();
    this.indexWatch.start(this.options.indexCheckMs);
    // The first look takes the lease if it is free; the capture loop starts with it either way.
    await this.captureLease.start();
    this.loops = [capture.run(signal), ...this.indexers.map((indexer) => indexer.run(signal))];
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
    this.deployment?.stop();
    this.captureLease.stopLooking();
    this.reaper.stop();
    this.unreadableRetry.stop();
    this.fullLoads?.stop();
    this.indexWatch.stop();
    for (const refresh of this.refreshes) refresh.stop();
    const server = this.server;
    if (server) {
      server.closeAllConnections(); // scrapers keep connections alive; close() alone would wait
      await new Promise((resolve) => server.close(resolve));
    }
    await this.listener?.stop();
    const bound = this.options.stopBoundMs ?? STOP_BOUND_MS;
    const until = performance.now() + bound;
    // Capturing first: while this process holds the capture lease no other syncer captures, so
    // it is handed over before the indexers' batches in flight are waited for.
    const [capturing, ...indexing] = this.loops;
    const captureStopped = await settlesWithin(capturing ?? Promise.resolve(), bound);
    // Writers that see our window open stay silent, and nobody would poll for them now.
    if (this.capture && this.capture.cadenceState !== 'asleep')
      await settlesWithin(this.doorbell.close(), 2_000);
    // Another syncer captures from its next look on, not only once the lease lapses.
    await settlesWithin(this.captureLease.release(), 2_000);
    const left = Math.max(0, until - performance.now());
    if (!captureStopped || !(await settlesWithin(Promise.allSettled(indexing), left))) {
      this.log.warn(
        { after_ms: bound, redis: this.store.redis.status },
        'stopping without waiting any longer (is Redis or Elasticsearch unreachable?); claims in ' +
          'hand come back through the reaper of the next syncer',
      );
    }
    // Whatever is indexed becomes searchable even if nobody starts a syncer again soon. Bounded:
    // with Elasticsearch away, stopping must not wait for it (the next start restores instead).
    if (this.fullLoads?.relaxing) await settlesWithin(this.fullLoads.leave(), 3_000);
    await settlesWithin(this.close(), 3_000);
    this.log.info('stopped');
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.db.end(), this.store.close(), this.es.close()]);
  }

  /** Every indexer's counters, summed. */
  get indexer(): { stats: IndexerStats } | null {
    return this.indexers.length === 0
      ? null
      : { stats: sumStats(this.indexers.map((i) => i.stats)) };
  }

  /** What metrics and health checks read (metrics/ never sees the syncer itself). */
  get view(): SyncerView {
    return {
      startedAt: this.startedAt,
      stallMs: this.options.stallMs ?? STALL_MS,
      indexerStats: () => this.indexer?.stats ?? null,
      bulkRetries: () => this.bulkRetries,
      oldestClaimAt: () => {
        const since = this.indexers.flatMap((i) =>
          i.holdingSince === null ? [] : [i.holdingSince],
        );
        return since.length === 0 ? null : Math.min(...since);
      },
      captureStats: () => this.capture?.stats ?? null,
      captureFailing: () => this.capture?.failing ?? null,
      listenerConnected: () => this.listener?.connected ?? false,
      deploymentConflict: () => this.deployment?.conflict ?? null,
      lockWaitedMs: () => this.lock.waitedMs,
      readLockHolder: () => this.lock.holder(),
      capturing: () => this.captureLease.leading,
      queue: this.queue,
      deadLetters: this.deadLetters,
      watermarks: this.watermarks,
      status: () =>
        readStatus({
          store: this.store,
          queue: this.queue,
          lock: this.lock,
          registry: this.registry,
          watermarks: this.watermarks,
          deadLetters: this.deadLetters,
        }),
      services: {
        postgres: () => this.db.pool.query('SELECT 1'),
        redis: () => this.store.redis.ping(),
      },
      searchHealth: () =>
        readSearchHealth(this.es, [
          this.config.index,
          this.config.personsIndex,
          this.config.genresIndex,
        ]),
    };
  }

  /** This deployment: its database, its three index names and its Elasticsearch cluster. */
  private async deploymentIdentity(): Promise<DeploymentIdentity> {
    const [row] = await this.db.query(sql.databaseIdentity);
    if (!row) throw new Error('the database did not say which it is');
    // Its uuid needs the `monitor` privilege, which a least-privilege key may lack: then unknown.
    const cluster = await this.es.info().then(
      (info) => info.cluster_uuid,
      () => null,
    );
    const { index, personsIndex, genresIndex } = this.config;
    return { ...row, indices: [index, personsIndex, genresIndex], cluster };
  }

  /**
   * Each kind's index, created when missing, with the settings a crashed full load left relaxed
   * put back first; and what watches full loads into them.
   */
  private async ensureIndices(): Promise<Map<KindName, IndexTarget>> {
    const indexLog = this.log.child({ component: 'index' });
    const targets = new Map<KindName, IndexTarget>();
    const modes = this.bulkLoadModes;
    for (const kind of KINDS) {
      const name = kind.indexName(this.config);
      targets.set(kind.name, await this.indexWatch.ensure(kind.name));
      await bringMappingUpToDate(this.es, name, indexLog, kind.definition);
      // Before the first pass, so that a load it begins serves what this asks for. Not fatal: a
      // Redis refusing writes now is waited for elsewhere, and the periodic look asks again.
      await this.indexWatch.askIfForgotten(kind.name).catch((err: unknown) => {
        indexLog.warn(
          { index: name, err: (err as Error).message },
          'could not check whether the index is owed a load; the next look does',
        );
      });
      const mode = new BulkLoadMode(this.es, name, indexLog, this.store, this.processId);
      await mode.restoreAbandoned();
      modes.set(kind.name, mode);
    }
    const plans = new FullLoadPlans(this.store);
    this.fullLoads = new FullLoadWatch(
      this.queue,
      modes,
      () => this.queue.doneCount(),
      this.log,
      async () => (await plans.current()) !== null,
      { backlogGoneAt: this.config.sizeLimit },
    );
    return targets;
  }

  /** Where each kind's documents go: its index, and the index a running reindex builds. */
  private sinks(targets: Map<KindName, IndexTarget>): Map<KindName, KindSink> {
    const { config, log } = this;
    const indexLog = log.child({ component: 'index' });
    return new Map(
      KINDS.map((kind) => {
        const alias = kind.indexName(config);
        const writer = new BulkWriter(
          this.es,
          targetOf(targets, kind),
          log.child({ component: 'loader' }),
          {
            onIndexMissing: async () => {
              await this.indexWatch.ensure(kind.name);
            },
            // Then its documents wait in the queue, and the other indices' are written (IndexPause).
            refusedPatienceMs: INDEX_REFUSED_PATIENCE_MS,
            onRetry: (reason) => {
              this.bulkRetries++;
              void recordLastError(this.store, 'loader', `bulk retry: ${reason}`).catch(
                () => undefined,
              );
            },
          },
        );
        const mode = this.bulkLoadModes.get(kind.name);
        const refresh = new LiveRefresh(
          this.es,
          alias,
          config.refreshMs,
          () => mode?.heldByAnyone() ?? Promise.resolve(false),
          indexLog,
        );
        this.refreshes.push(refresh);
        const reindexTarget = new ReindexTarget(
          this.store,
          this.es,
          log.child({ component: 'reindex-mirror', index: kind.name }),
          kind.name,
        );
        // In the background (it may wait a few seconds); it logs what it deletes and never throws.
        // The index look does it again every time (a reindex may die while this syncer runs).
        const leftovers = reindexTarget.leftoversOf(this.queue);
        void removeReindexLeftovers(this.es, leftovers, alias, indexLog);
        this.indexWatch.tidyAfterReindex(kind.name, leftovers);
        return [
          kind.name,
          {
            kind,
            writer,
            mirror: (fresh) => reindexTarget.mirror(fresh),
            refresh,
            pause: new IndexPause(),
          },
        ];
      }),
    );
  }

  private async serveMetrics(): Promise<void> {
    const { config, log } = this;
    this.metrics = new SyncerMetrics(this.view, this.clock);
    if (config.metricsPort === 0) return;
    try {
      this.server = await startHttpServer(
        config.metricsPort,
        this.view,
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
}

function targetOf(targets: ReadonlyMap<KindName, IndexTarget>, kind: DocumentKind): IndexTarget {
  const target = targets.get(kind.name);
  if (!target) throw new Error(`no index for ${kind.name}`);
  return target;
}
