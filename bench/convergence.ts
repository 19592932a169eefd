/**
 * Cheap convergence checks for big catalogs: the syncer's Redis state (queue and claims empty,
 * watermarks set) plus an Elasticsearch `_count`, polled; the document comparison runs only on a
 * sample (spotCheck.ts), never on every poll. The test suite's waitForConvergence compares every
 * document, which is right for a test and far too slow at 100,000 films.
 */
import type { estypes } from '@elastic/elasticsearch';
import { eventually } from '../test/helpers/convergence.js';
import type { Sandbox } from '../test/helpers/isolation.js';

export interface SyncerState {
  queue: number;
  claims: number;
  /** The first full load (or a previous run) has set the watermarks. */
  watermarks: boolean;
}

export async function syncerState(sb: Sandbox): Promise<SyncerState> {
  const key = (name: string) => `${sb.config.redisPrefix}${name}`;
  const result = await sb.redis
    .multi()
    .llen(key('queue'))
    .hlen(key('claims'))
    .exists(key('watermark:film_work'))
    .exec();
  const value = (i: number) => Number(result?.[i]?.[1] ?? 0);
  return { queue: value(0), claims: value(1), watermarks: value(2) === 1 };
}

export const isIdle = (s: SyncerState) => s.watermarks && s.queue === 0 && s.claims === 0;

/** Until the syncer has loaded and has nothing queued or claimed (before a timed phase). */
export async function waitForIdle(sb: Sandbox, what: string): Promise<void> {
  await eventually(async () => isIdle(await syncerState(sb)), 120_000, what, { intervalMs: 200 });
}

/** Documents matching `query` that search sees now (refreshed ones only). */
export async function countDocuments(
  sb: Sandbox,
  query?: estypes.QueryDslQueryContainer,
): Promise<number> {
  try {
    const response = await sb.es.count({ index: sb.config.index, ...(query ? { query } : {}) });
    return response.count;
  } catch (err) {
    // The syncer has not created the index yet.
    if ((err as { meta?: { statusCode?: number } }).meta?.statusCode === 404) return 0;
    throw err;
  }
}

export interface IndexWait {
  what: string;
  timeoutMs: number;
  intervalMs: number;
  /** Called every 10 s with a line for the operator. */
  progress: (line: string) => void;
  query?: estypes.QueryDslQueryContainer;
}

/**
 * The syncer has nothing queued or claimed and search shows `expected` documents for `query`;
 * returns performance.now() of the poll that saw it.
 */
export function waitForIndex(sb: Sandbox, expected: number, wait: IndexWait): Promise<number> {
  let last = { queue: -1, claims: -1, watermarks: false };
  return eventually(
    async () => {
      last = await syncerState(sb);
      // Count only when the queue is drained: a count per poll would load Elasticsearch.
      return isIdle(last) && (await countDocuments(sb, wait.query)) === expected;
    },
    wait.timeoutMs,
    wait.what,
    {
      intervalMs: wait.intervalMs,
      progress: wait.progress,
      describe: async () => {
        const count = await countDocuments(sb, wait.query);
        return `${count}/${expected} searchable, queue ${last.queue}, claims ${last.claims}`;
      },
    },
  );
}
