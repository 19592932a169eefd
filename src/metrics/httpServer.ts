/**
 * On METRICS_PORT: /metrics (Prometheus), /healthz (the process answers), /readyz (connected to
 * PostgreSQL, Redis and Elasticsearch, none of our indices red, listener subscribed, and not
 * stalled; it also says how the Elasticsearch cluster looks), and for people the
 * status page at / with what it shows at /status.json. All of it is read-only.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { describeSearchHealth, type SearchHealth } from '../load/searchHealth.js';
import type { Logger } from '../logger.js';
import { withTimeout } from '../util/timeouts.js';
import { StatusHistory } from './statusHistory.js';
import type { SyncerMetrics } from './syncerMetrics.js';
import type { SyncerView } from './syncerView.js';

/** One file, no build step and no external assets: it fetches /status.json and draws it. */
const STATUS_PAGE = readFileSync(new URL('./statusPage.html', import.meta.url), 'utf8');

export interface Readiness {
  /** Why the syncer cannot do its work now; empty when ready. */
  problems: string[];
  /** What is worth knowing but does not stop it (a cluster running yellow, a node down). */
  warnings: string[];
  /** What Elasticsearch said of itself; null when it did not answer. */
  elasticsearch: SearchHealth | null;
}

export async function readiness(syncer: SyncerView): Promise<Readiness> {
  const problems: string[] = [];
  const warnings: string[] = [];
  let elasticsearch: SearchHealth | null = null;
  const ask = async (name: string, check: () => Promise<unknown>) => {
    try {
      await withTimeout(check(), 3_000, 'ping');
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
    }
  };
  await Promise.all([
    ...Object.entries(syncer.services).map(([name, check]) => ask(name, check)),
    ask('elasticsearch', async () => {
      elasticsearch = await syncer.searchHealth();
    }),
  ]);
  // A function's result, not the variable: narrowing cannot see the assignment in the callback.
  const seen = (): SearchHealth | null => elasticsearch;
  const health = seen();
  if (health) {
    if (health.redIndices.length > 0)
      problems.push(
        `elasticsearch: ${health.redIndices.join(', ')} red (a primary shard has no copy on any node up): writes to it fail until that node is back`,
      );
    const note = describeSearchHealth(health);
    if (note) warnings.push(note);
  }
  if (!syncer.listenerConnected()) problems.push('listener: not connected');
  const conflict = syncer.deploymentConflict();
  if (conflict) problems.push(conflict);
  const capture = syncer.captureFailing();
  if (capture)
    problems.push(
      `capture: ${capture.steps} steps in a row failed, the last with: ${capture.error}`,
    );
  const stats = syncer.indexerStats();
  if (stats && problems.length === 0) {
    const depth = await syncer.queue.depth();
    const last = stats.lastBatchAt ? Date.parse(stats.lastBatchAt) : syncer.startedAt;
    const idle = Date.now() - last;
    const claimedAt = syncer.oldestClaimAt();
    if (depth > 0 && idle > syncer.stallMs) {
      problems.push(
        `indexer: ${depth} documents waiting and no batch done for ${Math.round(idle / 1000)} s`,
      );
    } else if (
      claimedAt !== null &&
      Date.now() - claimedAt > syncer.stallMs &&
      idle > syncer.stallMs
    ) {
      // Nothing waiting does not mean nothing stuck: every change may be in a claim that cannot
      // be written (Elasticsearch refusing every bulk), and a quiet catalog adds none to the queue.
      problems.push(
        `indexer: a batch claimed ${Math.round((Date.now() - claimedAt) / 1000)} s ago is not done, and no batch done for ${Math.round(idle / 1000)} s`,
      );
    }
  }
  return { problems, warnings, elasticsearch: health };
}

export function startHttpServer(
  port: number,
  syncer: SyncerView,
  metrics: SyncerMetrics,
  log: Logger,
): Promise<Server> {
  const history = new StatusHistory({
    done: () => {
      const stats = syncer.indexerStats();
      return stats ? stats.indexed + stats.deleted + stats.stale + stats.dead : 0;
    },
    queueDepth: () => syncer.queue.depth(),
    latencyBuckets: () => metrics.latencyBuckets(),
  });
  const server = createServer((req, res) => {
    const reply = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, {
        'content-type': type,
        'cache-control': 'no-store',
        // The page runs only its own inline script and talks only to this server.
        'content-security-policy':
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
      });
      res.end(body);
    };
    const route = async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return reply(405, JSON.stringify({ error: 'read-only: GET only' }));
      switch (req.url?.split('?')[0]) {
        case '/':
          return reply(200, STATUS_PAGE, 'text/html; charset=utf-8');
        case '/status.json': {
          const [status, ready] = await Promise.all([
            syncer.status().catch((err: unknown) => new Error((err as Error).message)),
            readiness(syncer),
          ]);
          // What status reads lives in Redis: with Redis away, say so and what readiness sees,
          // rather than a bare 500 the page can only call "unreachable".
          if (status instanceof Error)
            return reply(
              503,
              JSON.stringify({
                error: `status unavailable: ${status.message}`,
                ready: false,
                ...ready,
              }),
            );
          const memory = process.memoryUsage();
          return reply(
            200,
            JSON.stringify({
              status,
              ready: ready.problems.length === 0,
              ...ready,
              indexer: syncer.indexerStats(),
              history: history.list(),
              process: {
                pid: process.pid,
                uptimeSeconds: Math.round(process.uptime()),
                rssBytes: memory.rss,
                startedAt: new Date(syncer.startedAt).toISOString(),
              },
            }),
          );
        }
        case '/metrics':
          return reply(200, await metrics.registry.metrics(), metrics.registry.contentType);
        case '/healthz':
          return reply(200, JSON.stringify({ status: 'ok' }));
        case '/readyz': {
          const ready = await readiness(syncer);
          return reply(
            ready.problems.length === 0 ? 200 : 503,
            JSON.stringify({ ready: ready.problems.length === 0, ...ready }),
          );
        }
        default:
          return reply(404, JSON.stringify({ error: 'not found' }));
      }
    };
    route().catch((err: unknown) => reply(500, JSON.stringify({ error: (err as Error).message })));
  });
  server.on('close', () => history.stop());
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      history.stop();
      reject(err);
    });
    server.listen(port, () => {
      log.info({ port }, 'status page on /, metrics and health on /metrics, /healthz, /readyz');
      resolve(server);
    });
  });
}
