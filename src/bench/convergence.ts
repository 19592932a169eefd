/**
 * Cheap convergence checks for big catalogs: the syncer's Redis state (queue and claims empty,
 * watermarks set) plus an Elasticsearch `_count`, polled; the document comparison runs only on a
 * sample (spotCheck.ts), never on every poll.
 */
import type { estypes } from '@elastic/elasticsearch';
import { sleep } from '../util/sleep.js';
import type { BenchSandbox } from './sandbox.js';

export interface SyncerState {
  queue: number;
  claims: number;
  /** The first full load (or a previous run) has set the watermarks. */
  watermarks: boolean;
}

export async function syncerState(sb: BenchSandbox): Promise<SyncerState> {
  const result = await sb.redis
    .multi()
    .llen(sb.key('queue'))
    .hlen(sb.key('claims'))
    .exists(sb.key('watermark:film_work'))
    .exec();
  const value = (i: number) => Number(result?.[i]?.[1] ?? 0);
  return { queue: value(0), claims: value(1), watermarks: value(2) === 1 };
}

export const isIdle = (s: SyncerState) => s.watermarks && s.queue === 0 && s.claims === 0;

/** Documents matching `query` that search sees now (refreshed ones only). */
export async function countDocuments(
  sb: BenchSandbox,
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

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  what: string;
  /** Called now and then with a line for the operator. */
  progress?: (line: string) => void;
  describe?: () => Promise<string>;
}

/** Poll `check` until it holds; returns performance.now() of the poll that saw it hold. */
export async function waitFor(
  check: () => Promise<boolean>,
  options: WaitOptions,
): Promise<number> {
  const started = performance.now();
  let lastReport = started;
  for (;;) {
    if (await check()) return performance.now();
    const now = performance.now();
    if (now - started > options.timeoutMs) {
      const detail = options.describe ? `: ${await options.describe()}` : '';
      throw new Error(`${options.what} not reached in ${options.timeoutMs} ms${detail}`);
    }
    if (options.progress && options.describe && now - lastReport >= 10_000) {
      lastReport = now;
      options.progress(`${options.what}: ${await options.describe()}`);
    }
    await sleep(options.intervalMs ?? 200);
  }
}

/** The syncer has nothing queued or claimed and search shows `expected` documents for `query`. */
export function waitForIndex(
  sb: BenchSandbox,
  expected: number,
  options: WaitOptions & { query?: estypes.QueryDslQueryContainer },
): Promise<number> {
  let last = { state: { queue: -1, claims: -1, watermarks: false }, count: -1 };
  return waitFor(
    async () => {
      const state = await syncerState(sb);
      // Count only when the queue is drained, or now and then for progress reports.
      const count = isIdle(state) ? await countDocuments(sb, options.query) : last.count;
      last = { state, count };
      return isIdle(state) && count === expected;
    },
    {
      ...options,
      describe: async () => {
        const count = await countDocuments(sb, options.query);
        return `${count}/${expected} searchable, queue ${last.state.queue}, claims ${last.state.claims}`;
      },
    },
  );
}
