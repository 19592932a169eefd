/**
 * /metrics (Prometheus), /healthz (the process answers) and /readyz (connected to PostgreSQL,
 * Redis and Elasticsearch, listener subscribed, and not stalled) on METRICS_PORT.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from '../logger.js';
import type { SyncerMetrics } from './syncerMetrics.js';
import type { SyncerView } from './syncerView.js';
import { withTimeout } from '../util/timeouts.js';

/** A queue that has waited this long with no batch acknowledged means the syncer is stuck. */
const STALL_MS = 120_000;

export async function readiness(syncer: SyncerView): Promise<string[]> {
  const problems: string[] = [];
  await Promise.all(
    Object.entries(syncer.services).map(async ([name, check]) => {
      try {
        await withTimeout(check(), 3_000, 'ping');
      } catch (err) {
        problems.push(`${name}: ${(err as Error).message}`);
      }
    }),
  );
  if (!syncer.listenerConnected()) problems.push('listener: not connected');
  const stats = syncer.indexerStats();
  if (stats && problems.length === 0) {
    const depth = await syncer.queue.depth();
    const last = stats.lastBatchAt ? Date.parse(stats.lastBatchAt) : syncer.startedAt;
    if (depth > 0 && Date.now() - last > STALL_MS) {
      problems.push(
        `indexer: ${depth} documents waiting and no batch done for ${Math.round((Date.now() - last) / 1000)} s`,
      );
    }
  }
  return problems;
}

export function startHttpServer(
  port: number,
  syncer: SyncerView,
  metrics: SyncerMetrics,
  log: Logger,
): Promise<Server> {
  const server = createServer((req, res) => {
    const reply = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const route = async () => {
      switch (req.url?.split('?')[0]) {
        case '/metrics':
          return reply(200, await metrics.registry.metrics(), metrics.registry.contentType);
        case '/healthz':
          return reply(200, JSON.stringify({ status: 'ok' }));
        case '/readyz': {
          const problems = await readiness(syncer);
          return reply(
            problems.length === 0 ? 200 : 503,
            JSON.stringify({ ready: problems.length === 0, problems }),
          );
        }
        default:
          return reply(404, JSON.stringify({ error: 'not found' }));
      }
    };
    route().catch((err: unknown) => reply(500, JSON.stringify({ error: (err as Error).message })));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      log.info({ port }, 'metrics and health on /metrics, /healthz, /readyz');
      resolve(server);
    });
  });
}
