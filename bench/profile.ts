/**
 * Where a spawned syncer's time went: the totals profileHook.ts writes, summed up per batch and as
 * shares of the indexer loop's wall time.
 */
import { existsSync, readFileSync } from 'node:fs';

export interface ProfileStat {
  calls: number;
  ms: number;
  maxMs: number;
  items: number;
}

export interface ProfileFile {
  pid: number;
  startedAt: number;
  at: number;
  stats: Record<string, ProfileStat>;
}

export interface ProfileSummary {
  /** Claims processed by the indexer, extract reads (batches of at most ETL_BULK_SIZE), films read. */
  claims: number;
  batches: number;
  films: number;
  /** Mean per batch, ms. */
  perBatch: {
    lockWait: number;
    extractQuery: number;
    extractTotal: number;
    bulkClient: number;
    bulkServerTook: number;
    writeTotal: number;
    redis: number;
  };
  /** Indexing workers in the process (ETL_WORKERS). */
  workers: number;
  /** Share of the indexers' time (lifetime x workers) spent in each step, percent. */
  shares: { extract: number; write: number; redis: number; idle: number; other: number };
  /** Time spent waiting for the read lock, by kind of read, ms in total. */
  lockWaitMs: Record<string, number>;
  /** Every timed step, most expensive first. */
  steps: { name: string; calls: number; totalMs: number; meanMs: number; maxMs: number }[];
}

export function readProfile(path: string): ProfileFile | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ProfileFile;
  } catch {
    return null;
  }
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export function summariseProfile(profile: ProfileFile, workers = 1): ProfileSummary {
  const s = profile.stats;
  const get = (name: string): ProfileStat => s[name] ?? { calls: 0, ms: 0, maxMs: 0, items: 0 };
  const mean = (name: string, per: number) => (per > 0 ? round(get(name).ms / per) : 0);
  const extract = get('extract: read (lock + query)');
  const batches = extract.calls;
  const redisNames = Object.keys(s).filter((name) => name.startsWith('redis: '));
  const claimRedis = redisNames
    .filter((name) => name !== 'redis: enqueue' && name !== 'redis: heartbeat')
    .reduce((sum, name) => sum + get(name).ms, 0);
  const wall = Math.max(1, profile.at - profile.startedAt) * Math.max(1, workers);
  const write = get('load: write (bulk + retries)').ms;
  const idle = get('indexer: idle (queue empty)').ms;
  const pct = (ms: number) => round((100 * ms) / wall);
  const lockWaitMs: Record<string, number> = {};
  for (const name of Object.keys(s)) {
    if (name.startsWith('lock wait: '))
      lockWaitMs[name.slice('lock wait: '.length)] = round(get(name).ms);
  }
  return {
    workers,
    claims: get('indexer: claim processed').calls,
    batches,
    films: extract.items,
    perBatch: {
      lockWait: mean('lock wait: extract', batches),
      extractQuery: mean('pg: film_documents', batches),
      extractTotal: mean('extract: read (lock + query)', batches),
      bulkClient: mean('es: _bulk request (client)', batches),
      bulkServerTook: mean('es: _bulk took (server)', batches),
      writeTotal: mean('load: write (bulk + retries)', batches),
      redis: batches > 0 ? round(claimRedis / batches) : 0,
    },
    shares: {
      extract: pct(extract.ms),
      write: pct(write),
      redis: pct(claimRedis),
      idle: pct(idle),
      other: pct(Math.max(0, wall - extract.ms - write - claimRedis - idle)),
    },
    lockWaitMs,
    steps: Object.entries(s)
      .map(([name, stat]) => ({
        name,
        calls: stat.calls,
        totalMs: round(stat.ms),
        meanMs: stat.calls > 0 ? round(stat.ms / stat.calls, 2) : 0,
        maxMs: round(stat.maxMs),
      }))
      .sort((a, b) => b.totalMs - a.totalMs),
  };
}
