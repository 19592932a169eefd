/**
 * Preloaded into the syncer the bench spawns (`node --import tsx --import <this file>
 * src/cli/start.ts`): wraps the steps of the indexer, the read lock, Postgres, Redis and `_bulk`
 * with timers and writes the totals as JSON to BENCH_PROFILE_FILE every second and at exit.
 * Behaviour is unchanged; the cost is two performance.now() calls per wrapped call.
 *
 * ES modules are singletons per URL, so the prototypes patched here are the ones start.ts loads.
 */
import { writeFileSync } from 'node:fs';
import { Client } from '@elastic/elasticsearch';
import { Postgres } from '../src/db/postgres.js';
import { DocumentExtractor } from '../src/extract/extractor.js';
import { BulkWriter } from '../src/load/bulkWriter.js';
import { DeadLetters } from '../src/queue/deadLetters.js';
import { DocumentQueue } from '../src/queue/documentQueue.js';
import { ReadLock } from '../src/queue/readLock.js';
import { WorkerRegistry } from '../src/queue/workerRegistry.js';
import { Indexer } from '../src/sync/indexer.js';
import type { ProfileFile, ProfileStat } from './profile.js';

type Method = (this: unknown, ...args: unknown[]) => Promise<unknown>;

const started = Date.now();
const stats: Record<string, ProfileStat> = {};

function add(key: string, ms: number, items = 0): void {
  const stat = (stats[key] ??= { calls: 0, ms: 0, maxMs: 0, items: 0 });
  stat.calls++;
  stat.ms += ms;
  stat.items += items;
  if (ms > stat.maxMs) stat.maxMs = ms;
}

function original(proto: object, method: string): Method {
  const fn = (proto as Record<string, unknown>)[method];
  if (typeof fn !== 'function') throw new Error(`profile hook: no method ${method} to wrap`);
  return fn as Method;
}

/** Time every call of an async method under `key(args)`; `items` counts what it handled. */
function wrap(
  proto: object,
  method: string,
  key: (args: unknown[]) => string,
  items?: (args: unknown[], result: unknown) => number,
): void {
  const fn = original(proto, method);
  (proto as Record<string, unknown>)[method] = async function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    let result: unknown;
    try {
      result = await fn.apply(this, args);
      return result;
    } finally {
      add(key(args), performance.now() - t0, items?.(args, result) ?? 0);
    }
  };
}

const length = (value: unknown): number => (Array.isArray(value) ? value.length : 0);
const fixed = (name: string) => () => name;

wrap(Indexer.prototype, 'process', fixed('indexer: claim processed'), (args) =>
  length((args[0] as { ids?: unknown } | undefined)?.ids),
);
wrap(Indexer.prototype, 'waitForWork', fixed('indexer: idle (queue empty)'));
wrap(Indexer.prototype, 'setState', fixed('redis: worker state'));
// readApart(kind, claim, ids), the indexer's read: the films read, for "films indexed per edit"
// (persons and genres documents are the fan-out of those edits, not edits of their own).
wrap(DocumentExtractor.prototype, 'readApart', fixed('extract: read (lock + query)'), (args) =>
  (args[0] as { name?: string } | undefined)?.name === 'films' ? length(args[2]) : 0,
);
wrap(BulkWriter.prototype, 'write', fixed('load: write (bulk + retries)'), (_args, result) => {
  const r = result as { indexed?: unknown; deleted?: unknown } | undefined;
  return length(r?.indexed) + length(r?.deleted);
});
wrap(DocumentQueue.prototype, 'claim', fixed('redis: claim'), (_args, result) =>
  length((result as { ids?: unknown } | null | undefined)?.ids),
);
wrap(DocumentQueue.prototype, 'ack', fixed('redis: ack'), (args) => length(args[1]));
wrap(DocumentQueue.prototype, 'enqueue', fixed('redis: enqueue'), (_args, result) =>
  Number(result),
);
wrap(DeadLetters.prototype, 'add', fixed('redis: dead letters add'));
wrap(WorkerRegistry.prototype, 'heartbeat', fixed('redis: heartbeat'));
wrap(Postgres.prototype, 'query', (args) => `pg: ${(args[0] as { name: string }).name}`);
// _bulk: the client's time, and what Elasticsearch itself reports (took).
const bulk = original(Client.prototype, 'bulk');
(Client.prototype as unknown as Record<string, unknown>).bulk = async function (
  this: unknown,
  ...args: unknown[]
) {
  const t0 = performance.now();
  const result = (await bulk.apply(this, args)) as { took?: unknown; items?: unknown } | undefined;
  add('es: _bulk request (client)', performance.now() - t0, length(result?.items));
  if (typeof result?.took === 'number') add('es: _bulk took (server)', result.took);
  return result;
};

// The read lock: time waiting for it, and time holding it, per kind of read.
const withLock = original(ReadLock.prototype, 'withLock');
(ReadLock.prototype as unknown as Record<string, unknown>).withLock = function (
  this: unknown,
  what: string,
  read: () => Promise<unknown>,
  options?: unknown,
) {
  const asked = performance.now();
  const kind = what.replace(/^(poll|resolve) .*/, '$1');
  return withLock.call(
    this,
    what,
    async () => {
      const got = performance.now();
      add(`lock wait: ${kind}`, got - asked);
      try {
        return await read();
      } finally {
        add(`lock held: ${kind}`, performance.now() - got);
      }
    },
    options,
  );
};

const file = process.env.BENCH_PROFILE_FILE;
function flush(): void {
  if (!file) return;
  const out: ProfileFile = { pid: process.pid, startedAt: started, at: Date.now(), stats };
  try {
    writeFileSync(file, JSON.stringify(out));
  } catch {
    // the bench went away; nothing to report to
  }
}
setInterval(flush, 1_000).unref();
process.on('exit', flush);
