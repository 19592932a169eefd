/**
 * /metrics (Prometheus), /healthz (the process answers) and /readyz (connected to PostgreSQL,
 * Redis and Elasticsearch, listener subscribed, and not stalled) on METRICS_PORT.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from '../logger.js';
import type { Syncer } from '../sync/syncer.js';
import type { SyncerMetrics } from './syncerMetrics.js';

/** A queue that has waited this long with no batch acknowledged means the syncer is stuck. */
const STALL_MS = 120_000;

export async function readiness(syncer: Syncer): Promise<string[]> {
  const problems: string[] = [];
  const timeout = <T>(p: Promise<T>) =>
    Promise.race([
      p,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), 3_000)),
    ]);
  const checks: [string, () => Promise<unknown>][] = [
    ['postgres', () => syncer.db.pool.query('SELECT 1')],
    ['redis', () => syncer.store.redis.ping()],
    ['elasticsearch', () => syncer.es.cluster.health({ timeout: '2s' })],
  ];
  await Promise.all(
    checks.map(async ([name, check]) => {
      try {
        await timeout(check());
      } catch (err) {
        problems.push(`${name}: ${(err as Error).message}`);
      }
    }),
  );
  if (!syncer.listener?.connected) problems.push('listener: not connected');
  const stats = syncer.indexer?.stats;
  if (stats && problems.length === 0) {
    const depth = await syncer.queue.depth();
    const last = stats.lastBatchAt ? Date.parse(stats.lastBatchAt) : syncer.startedAt;
    if (depth > 0 && Date.now() - last > STALL_MS) {
      problems.push(
        `indexer: ${depth} films waiting and no batch done for ${Math.round((Date.now() - last) / 1000)} s`,
      );
    }
  }
  return problems;
}

export function startHttpServer(
  port: number,
  syncer: Syncer,
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
