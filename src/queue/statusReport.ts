/**
 * Everything `npm run status` shows, read from Redis: what is waiting (per index), what is in
 * flight and for how long, who holds the Postgres read lock, which syncer captures changes, what
 * each worker does, how far each table's watermark is behind, dead letters (per index), the last
 * batch and the last error.
 */
import type { KindName } from '../kinds/documentKind.js';
import type { DeadLetters } from './deadLetters.js';
import type { DocumentQueue } from './documentQueue.js';
import { captureLease } from '../capture/captureLease.js';
import { FullLoadPlans } from './fullLoadPlan.js';
import type { ReadLock } from './readLock.js';
import type { RedisStore } from './redisStore.js';
import type { Watermarks } from './watermarks.js';
import type { WorkerRegistry } from './workerRegistry.js';

export interface StatusReport {
  at: string;
  /** `byIndex` is exact up to 100,000 waiting, estimated beyond (`exact` false). */
  queue: { depth: number; byIndex: Record<KindName, number>; exact: boolean };
  inFlight: { worker: string; documents: number; ageMs: number }[];
  readLock: { holder: string; since: string; heldMs: number; leaseLeftMs: number } | null;
  /** The syncer capturing changes (the others only index); null: none now (one takes over soon). */
  capture: { holder: string; since: string; heldMs: number } | null;
  workers: { id: string; state: string; since: string; forMs: number; alive: boolean }[];
  watermarks: { table: string; at: string | null; lagMs: number | null }[];
  deadLetters: number;
  deadLettersByIndex: Record<KindName, number>;
  lastBatch: { id: string; at: string } | null;
  lastError: { message: string; at: string; component: string } | null;
  /** A full load under way (or interrupted, waiting for a syncer to resume it). */
  fullLoad: { began: string; indices: string[]; queued: number; total: number } | null;
}

export async function readStatus(parts: {
  store: RedisStore;
  queue: DocumentQueue;
  lock: ReadLock;
  registry: WorkerRegistry;
  watermarks: Watermarks;
  deadLetters: DeadLetters;
}): Promise<StatusReport> {
  const now = Date.now();
  const plans = new FullLoadPlans(parts.store);
  const [plan, planQueued, capturer] = await Promise.all([
    plans.current(),
    plans.queued(),
    captureLease(parts.store).holder(),
  ]);
  const [depth, byKind, inFlight, holder, workers, marks, dead, deadByKind, history, lastError] =
    await Promise.all([
      parts.queue.depth(),
      parts.queue.depthByKind(),
      parts.queue.inFlight(),
      parts.lock.holder(),
      parts.registry.list(),
      parts.watermarks.getAll(),
      parts.deadLetters.count(),
      parts.deadLetters.countByKind(),
      parts.queue.history(1),
      readLastError(parts.store),
    ]);
  return {
    at: new Date(now).toISOString(),
    queue: { depth, byIndex: byKind.counts, exact: byKind.exact },
    inFlight: inFlight.map((c) => ({
      worker: c.workerId,
      documents: c.size,
      ageMs: now - c.since,
    })),
    readLock: holder && {
      holder: holder.holder,
      since: holder.since,
      heldMs: holder.ageMs,
      leaseLeftMs: holder.leaseLeftMs,
    },
    capture: capturer && {
      holder: capturer.holder,
      since: capturer.since,
      heldMs: capturer.ageMs,
    },
    workers: workers.map((w) => ({
      id: w.id,
      state: w.state,
      since: w.since,
      forMs: now - Date.parse(w.since),
      alive: w.alive,
    })),
    watermarks: [...marks].map(([table, mark]) => ({
      table,
      at: mark?.at ?? null,
      lagMs: mark ? now - Date.parse(mark.at) : null,
    })),
    deadLetters: dead,
    deadLettersByIndex: deadByKind,
    lastBatch: history[0] ?? null,
    lastError,
    fullLoad: plan && {
      began: plan.began,
      indices: plan.kinds,
      queued: planQueued,
      total: plan.total,
    },
  };
}

export async function recordLastError(
  store: RedisStore,
  component: string,
  message: string,
): Promise<void> {
  await store.redis.set(
    store.key('last-error'),
    JSON.stringify({ message, component, at: new Date().toISOString() }),
  );
}

async function readLastError(store: RedisStore): Promise<StatusReport['lastError']> {
  const raw = await store.redis.get(store.key('last-error'));
  return raw === null ? null : (JSON.parse(raw) as StatusReport['lastError']);
}
