/**
 * What the syncers left in Redis, read straight from the private server (not through any proxy),
 * and what of it is stranded once everything should be quiet: ids still queued, claims in the
 * claims hash, processing or claim lists (both key layouts, `processing:*` and `claim:*`, since
 * the claim layout is changing), leases whose holder process is gone, and workers or heartbeats of
 * dead processes that will never expire.
 *
 * How holders are recognised: every syncer names itself `<hostname>-<pid>-<4 hex>` in what it
 * writes (lock values, the full-load guard, worker ids), so a pid is read from the value and
 * checked against the campaign's live syncers. A lease of a dead holder that still has a TTL is a
 * problem too: quiescence waits for it to expire (a live process that keeps refreshing a lease it
 * does not hold would keep it forever), and only the deadline makes it a finding.
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

export interface LeaseState {
  key: string;
  value: string;
  ttlMs: number;
  holderPid: number | null;
}

export interface RedisState {
  queue: number;
  queued: number;
  claims: Record<string, string>;
  /** Each claim's holder as the syncers see it: the worker, its heartbeat's TTL, its state. */
  claimHolders: Record<string, string>;
  /** processing:* and claim:* (any type) that exist: with their sizes. */
  lists: { key: string; size: number }[];
  leases: LeaseState[];
  workers: { id: string; pid: number }[];
  /** alive:* heartbeats with no TTL (they would mark a dead worker alive forever). */
  immortalHeartbeats: string[];
  deadLetters: Record<string, string>;
  keys: number;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const HOLDER = new RegExp(`${escape(hostname())}-(\\d+)-[0-9a-f]{4}`);
/** String keys that are state, not leases, even when their value names a process. */
const NOT_LEASES = /^(epoch|last-error|deployment|done|watermark:.*|alive:.*|reindex-target)$/;

export function holderPid(text: string): number | null {
  const match = HOLDER.exec(text);
  return match ? Number(match[1]) : null;
}

export async function inspectRedis(redis: Redis, prefix: string): Promise<RedisState> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  // One snapshot for the counts that must agree with each other.
  const [queue, queued, claims] = (
    (await redis
      .multi()
      .llen(`${prefix}queue`)
      .scard(`${prefix}queued`)
      .hgetall(`${prefix}claims`)
      .exec()) ?? []
  ).map(([err, value]) => {
    if (err) throw err;
    return value;
  }) as [number, number, Record<string, string>];
  const state: RedisState = {
    queue,
    queued,
    claims,
    claimHolders: await describeHolders(redis, prefix, claims),
    lists: [],
    leases: [],
    workers: [],
    immortalHeartbeats: [],
    deadLetters: await redis.hgetall(`${prefix}dead-letters`),
    keys: keys.length,
  };
  for (const key of keys) {
    const name = key.slice(prefix.length);
    const type = await redis.type(key);
    if (/^(processing|claim|claims):/.test(name)) {
      state.lists.push({ key: name, size: await size(redis, key, type) });
    } else if (name.startsWith('alive:')) {
      if ((await redis.pttl(key)) === -1) state.immortalHeartbeats.push(name);
    } else if (type === 'string' && !NOT_LEASES.test(name)) {
      const value = (await redis.get(key)) ?? '';
      const pid = holderPid(value);
      if (pid !== null || /lock|lease|full-load|bulk-load/.test(name)) {
        state.leases.push({ key: name, value, ttlMs: await redis.pttl(key), holderPid: pid });
      }
    }
  }
  for (const [id, raw] of Object.entries(await redis.hgetall(`${prefix}workers`))) {
    let pid = holderPid(id) ?? -1;
    try {
      pid = (JSON.parse(raw) as { pid?: number }).pid ?? pid;
    } catch {
      // keep the pid from the id
    }
    state.workers.push({ id, pid });
  }
  return state;
}

/**
 * Who holds each claim, and why the reapers leave it there: a claim is given back only once its
 * worker's heartbeat lapses, so a stranded claim with a live heartbeat means a worker that beats
 * but never finishes its batch.
 */
async function describeHolders(
  redis: Redis,
  prefix: string,
  claims: Record<string, string>,
): Promise<Record<string, string>> {
  const holders: Record<string, string> = {};
  for (const [claimId, raw] of Object.entries(claims)) {
    let worker = '?';
    let at = Number.NaN;
    try {
      ({ worker, at } = JSON.parse(raw) as { worker: string; at: number });
    } catch {
      // an old layout's value: the field is the worker
      worker = claimId;
    }
    const [ttl, state] = await Promise.all([
      redis.pttl(`${prefix}alive:${worker}`),
      redis.hget(`${prefix}workers`, worker),
    ]);
    const age = Number.isNaN(at) ? '?' : `${Math.round((Date.now() - at) / 1000)} s ago`;
    holders[claimId] =
      `worker ${worker}, claimed ${age}, heartbeat ttl ${ttl} ms, state ${state ?? 'none'}`;
  }
  return holders;
}

async function size(redis: Redis, key: string, type: string): Promise<number> {
  if (type === 'list') return redis.llen(key);
  if (type === 'hash') return redis.hlen(key);
  if (type === 'set') return redis.scard(key);
  if (type === 'zset') return redis.zcard(key);
  if (type === 'stream') return redis.xlen(key);
  return 1;
}

/** What is wrong with `state` if everything should be quiet; empty when nothing is. */
export function strandedProblems(state: RedisState, live: Set<number>): string[] {
  const problems: string[] = [];
  if (state.queue > 0) problems.push(`${state.queue} ids still queued`);
  if (state.queued > 0) problems.push(`${state.queued} ids in the queued set`);
  for (const [claimId, holder] of Object.entries(state.claimHolders))
    problems.push(`claims hash holds ${claimId} (${holder})`);
  for (const list of state.lists) problems.push(`${list.key} exists (${list.size} entries)`);
  for (const lease of state.leases) {
    const holderLive = lease.holderPid !== null && live.has(lease.holderPid);
    if (holderLive) continue;
    const who =
      lease.holderPid === null ? 'no recognisable holder' : `dead holder pid ${lease.holderPid}`;
    const ttl = lease.ttlMs === -1 ? 'no TTL' : `ttl ${lease.ttlMs} ms`;
    problems.push(`lease ${lease.key} (${who}, ${ttl}): ${lease.value}`);
  }
  for (const worker of state.workers) {
    if (!live.has(worker.pid)) problems.push(`worker ${worker.id} of dead pid ${worker.pid}`);
  }
  for (const key of state.immortalHeartbeats) problems.push(`heartbeat ${key} has no TTL`);
  const dead = Object.keys(state.deadLetters);
  if (dead.length > 0) problems.push(`${dead.length} dead letters: ${dead.slice(0, 5).join(', ')}`);
  return problems;
}
