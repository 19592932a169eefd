/**
 * The queue of documents waiting to be indexed, of every kind: the seed's LPUSH/RPOP list, made
 * crash-safe. Its members name a kind and an id (src/kinds/kinds.ts: a film id as it is,
 * `persons/<id>`, `genres/<id>`), so one queue, one claim and one reaper serve all indices.
 *
 *   enqueue ──LPUSH──▶ [queue] ──RPOP (claim)──▶ [claim:<id>] ──ack──▶ [history]
 *                         ▲                            │
 *                         └──── release / reaper ──────┘
 *
 * A document waits at most once (the `queued` set). Every claim is its own unit: its own id, its own
 * list, its own entry in the `claims` hash (which names the worker). Ack and release touch exactly
 * one claim, so no failure can make one claim's acknowledgement drop another's films. A claim
 * stays until Elasticsearch acknowledged its films, and goes back to the head of the queue if the
 * worker gives it up or dies (its heartbeat key expires; the reaper checks that atomically).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { KindName } from '../kinds/documentKind.js';
import { parseMember } from '../kinds/kinds.js';
import { deadLettersKey } from './deadLetters.js';
import type { RedisStore } from './redisStore.js';

const HISTORY_CAP = 10_000;
const DEPTH_CHUNK = 10_000;
const ENQUEUE_CHUNK = 1_000;

export interface Claim {
  /** Unique per claim: never reused, whatever the worker. */
  id: string;
  workerId: string;
  ids: string[];
  claimedAt: number;
}

/** A claim as Redis holds it, read back by status, metrics and the reaper. */
export interface ClaimInFlight {
  claimId: string;
  /** Where its ids are: `claim:<id>`, or `processing:<worker>` for a claim of version 0.1. */
  key: string;
  workerId: string;
  since: number;
  size: number;
}

/** ack.lua's answers. */
const ACK_ANSWERS = ['gone', 'done', 'earlier run'] as const;

interface ClaimRecord {
  worker: string;
  at: number;
}

export class DocumentQueue {
  /** Emits 'enqueued' when this process queued something, so its own workers wake at once. */
  readonly events = new EventEmitter();

  constructor(private readonly store: RedisStore) {}

  private get keys() {
    return {
      queue: this.store.key('queue'),
      queued: this.store.key('queued'),
      claims: this.store.key('claims'),
      history: this.store.key('history'),
      done: this.store.key('done'),
    };
  }

  /** The list and the set an enqueue writes, for scripts that enqueue as part of their step. */
  get waitingKeys(): [queue: string, queued: string] {
    return [this.keys.queue, this.keys.queued];
  }

  /** For scripts that enqueued: wake this process's workers. */
  notifyEnqueued(added: number): void {
    if (added > 0) this.events.emit('enqueued', added);
  }

  claimKey(claimId: string): string {
    return this.store.key('claim', claimId);
  }

  /** Returns how many ids were not already waiting. */
  async enqueue(ids: Iterable<string>): Promise<number> {
    const all = [...ids];
    let added = 0;
    for (let i = 0; i < all.length; i += ENQUEUE_CHUNK) {
      const chunk = all.slice(i, i + ENQUEUE_CHUNK);
      const { queue, queued } = this.keys;
      added += Number(await this.store.run('enqueue', [queue, queued], chunk));
    }
    // Queued means queued for good: the callers move watermarks and forget transactions next.
    if (all.length > 0) await this.store.confirm(this.keys.queue);
    if (added > 0) this.events.emit('enqueued', added);
    return added;
  }

  /**
   * Claim up to `count` members under `id` (see `newClaimId`). When this throws, the claim may
   * still exist, or come to exist: a command that timed out here stays queued in the client and
   * runs when the connection comes back. A caller must then treat `id` as claimed and give it back
   * (`release` is queued behind the claim on the same connection, so it runs after it).
   */
  async claim(workerId: string, count: number, id = newClaimId()): Promise<Claim | null> {
    const { queue, queued, claims } = this.keys;
    const claimedAt = Date.now();
    const record: ClaimRecord = { worker: workerId, at: claimedAt };
    const ids = (await this.store.run(
      'claim',
      [queue, queued, this.claimKey(id), claims],
      [count, id, JSON.stringify(record)],
    )) as string[];
    return ids.length > 0 ? { id, workerId, ids, claimedAt } : null;
  }

  /**
   * The claim is done: Elasticsearch acknowledged every id (or it went to the dead letters).
   * `done` (the members indexed, deleted, or found newer there) go to the history, and their dead
   * letters, if any, are cleared: only a letter whose refused read is no newer than the read done
   * (`versions`, member -> version; without one, the letter goes). Resolves to 'done'; or
   * acknowledges nothing and resolves to 'gone' when the claim is not there (the reaper gave it
   * back meanwhile, a worker paused past its heartbeat: harmless, its films are queued again; or
   * Redis lost it), or to 'earlier run' when Redis has restarted since the claim and holds it
   * (ack.lua). Either way the caller gives the claim back (`release`).
   */
  async ack(
    claim: Claim,
    done: readonly string[],
    versions: ReadonlyMap<string, number> = new Map(),
  ): Promise<'done' | 'gone' | 'earlier run'> {
    const { claims, history, done: doneCount } = this.keys;
    const answer = await this.store.run(
      'ack',
      [this.claimKey(claim.id), claims, history, deadLettersKey(this.store), doneCount],
      [
        claim.id,
        HISTORY_CAP,
        new Date().toISOString(),
        ...done,
        ...done.map((member) => String(versions.get(member) ?? '')),
      ],
    );
    // An acknowledgement lost in a failover would leave the claim to a worker that forgot it.
    await this.store.confirm(claims);
    return ACK_ANSWERS[Number(answer)] ?? 'gone';
  }

  /**
   * Give one claim back to the head of the queue; returns how many ids went back. With
   * `unlessAlive` (a heartbeat key), nothing happens while that key exists, and -1 is returned.
   * `claim.ids` (the worker's own call): the ids it holds, given back from its hand when Redis no
   * longer has the claim's list (release.lua).
   */
  async release(
    claim: { id: string; key?: string; ids?: readonly string[] },
    unlessAlive?: string,
  ): Promise<number> {
    const { queue, queued, claims } = this.keys;
    const keys = [claim.key ?? this.claimKey(claim.id), queue, queued, claims];
    if (unlessAlive !== undefined) keys.push(unlessAlive);
    return Number(await this.store.run('release', keys, [claim.id, ...(claim.ids ?? [])]));
  }

  /**
   * Documents acknowledged (indexed, deleted or refused as stale) by every syncer on this prefix,
   * ever (from 0 again after Redis lost it): a full load's progress is the difference.
   */
  async doneCount(): Promise<number> {
    return Number((await this.store.redis.get(this.keys.done)) ?? 0);
  }

  async depth(): Promise<number> {
    return this.store.redis.llen(this.keys.queue);
  }

  /**
   * What is waiting, per index. Exact up to `exactUpTo` members (read in chunks); beyond that,
   * estimated from the oldest and newest chunk, so a backlog of millions costs two reads.
   */
  async depthByKind(
    exactUpTo = 100_000,
  ): Promise<{ counts: Record<KindName, number>; exact: boolean }> {
    const { redis } = this.store;
    const depth = await redis.llen(this.keys.queue);
    const counts: Record<KindName, number> = { films: 0, persons: 0, genres: 0 };
    const tally = (members: string[]) => {
      for (const member of members) {
        const kind = parseMember(member)?.kind.name;
        if (kind) counts[kind]++;
      }
    };
    if (depth <= exactUpTo) {
      for (let start = 0; start < depth; start += DEPTH_CHUNK)
        tally(await redis.lrange(this.keys.queue, start, start + DEPTH_CHUNK - 1));
      return { counts, exact: true };
    }
    tally(await redis.lrange(this.keys.queue, 0, DEPTH_CHUNK - 1));
    tally(await redis.lrange(this.keys.queue, -DEPTH_CHUNK, -1));
    const sampled = counts.films + counts.persons + counts.genres;
    for (const kind of Object.keys(counts) as KindName[])
      counts[kind] = sampled === 0 ? 0 : Math.round((counts[kind] / sampled) * depth);
    return { counts, exact: false };
  }

  /** Claims in flight, whoever holds them. */
  async inFlight(): Promise<ClaimInFlight[]> {
    const claims = await this.store.redis.hgetall(this.keys.claims);
    return Promise.all(
      Object.entries(claims).map(async ([claimId, raw]) => {
        const record = parseRecord(raw);
        // Version 0.1 kept one list per worker: field = worker id, value = claimed-at. A syncer
        // upgraded after a crash still returns those films.
        const legacy = record === null;
        const key = legacy ? this.store.key('processing', claimId) : this.claimKey(claimId);
        return {
          claimId,
          key,
          workerId: record?.worker ?? claimId,
          since: record?.at ?? Number(raw),
          size: await this.store.redis.llen(key),
        };
      }),
    );
  }

  async history(limit = 20): Promise<{ id: string; at: string }[]> {
    const raw = await this.store.redis.lrange(this.keys.history, 0, limit - 1);
    return raw.map((entry) => JSON.parse(entry) as { id: string; at: string });
  }
}

/** A claim id that no claim ever had: chosen before claiming, so a failed claim can be undone. */
export function newClaimId(): string {
  return randomBytes(8).toString('hex');
}

function parseRecord(raw: string): ClaimRecord | null {
  try {
    const record = JSON.parse(raw) as Partial<ClaimRecord>;
    return typeof record.worker === 'string' && typeof record.at === 'number'
      ? { worker: record.worker, at: record.at }
      : null;
  } catch {
    return null;
  }
}
