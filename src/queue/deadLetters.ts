/**
 * Documents Elasticsearch refused for good (a mapping conflict, a value it cannot parse), and
 * documents PostgreSQL could not build (status 0; queued again a few times by themselves,
 * unreadableRetry.ts), with the reason, under their queue member (a film id, persons/<id>, genres/<id>). One entry per document:
 * one that fails again replaces its entry rather than piling up, unless the entry is of a newer
 * read.
 * The rest of the batch goes on; `retry` puts them back in the queue once the cause is fixed.
 */
import type { KindName } from '../kinds/documentKind.js';
import { parseMember } from '../kinds/kinds.js';
import type { DocumentQueue } from './documentQueue.js';
import type { RedisStore } from './redisStore.js';
import { retryDueAt, UNREADABLE_RETRY, type RetrySchedule } from './unreadableRetry.js';

/** Letters per HSCAN call: the re-drive's Lua step takes a chunk at a time. */
const SCAN_CHUNK = 500;

export interface DeadLetter {
  id: string;
  reason: string;
  status: number;
  at: string;
  /**
   * The version of the read Elasticsearch refused (absent for letters of 0.3 and before, and for
   * queue members that name no document). Only a write of this version or newer clears it: an
   * older read that loads later leaves the refusal in view.
   */
  version?: number;
  /**
   * For a document PostgreSQL could not build (status 0): how many reads of it in a row failed.
   * Such letters are queued again by themselves a few times (unreadableRetry.ts).
   */
  tries?: number;
}

/**
 * Documents of one index with a letter, by what failed (`DeadLetters.ofKind`): id -> the version
 * of the read the letter is of (undefined for letters of 0.3 and before).
 */
export interface LetteredIds {
  refused: Map<string, number | undefined>;
  unreadable: Map<string, number | undefined>;
}

/** Every id of `lettered`, whatever failed. */
export function letteredIds(lettered: LetteredIds): string[] {
  return [...lettered.refused.keys(), ...lettered.unreadable.keys()];
}

/** The hash of dead letters; the queue's acknowledgement clears letters there too. */
export function deadLettersKey(store: RedisStore): string {
  return store.key('dead-letters');
}

export class DeadLetters {
  constructor(
    private readonly store: RedisStore,
    /** When documents PostgreSQL could not build are read again (unreadableRetry.ts). */
    readonly schedule: RetrySchedule = UNREADABLE_RETRY,
  ) {}

  private get key(): string {
    return deadLettersKey(this.store);
  }

  /** The retry schedule: member -> when it is due (ms since the epoch). */
  private get retryKey(): string {
    return this.store.key('dead-letters', 'retry');
  }

  async add(letters: DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    // Not over a letter of a newer read (addLetters.lua): a late refusal of an older one would
    // hide the newer refusal, and could then be cleared as superseded. Documents PostgreSQL could
    // not build are read again by themselves (unreadableRetry.ts), from a schedule by due time
    // (what is due costs what is due, not every letter), written in the same step.
    await this.store.run(
      'addLetters',
      [this.key, this.retryKey],
      letters.flatMap((letter) => [
        letter.id,
        JSON.stringify(letter),
        String(retryDueAt(letter, this.schedule) ?? ''),
      ]),
    );
    // No WAIT here: the indexer acknowledges the claim next, and that acknowledgement waits for a
    // replica on the same connection (the prefix is hash-tagged, so one node holds both keys),
    // which covers these letters too. A letter lost in a failover would lose its document.
  }

  /**
   * Put back on the retry schedule the letters that should be there and are not: what a Redis
   * failover that lost the schedule's last writes leaves, or a syncer of an earlier version that
   * died between writing a letter and scheduling it. Walks every letter in chunks; a syncer does
   * it once, as it starts. An entry already there keeps its time. Returns how many were put back.
   */
  async scheduleMissing(): Promise<number> {
    let added = 0;
    for await (const flat of this.chunks()) {
      const due: (number | string)[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const at = retryDueAt(JSON.parse(flat[i + 1] ?? '{}') as DeadLetter, this.schedule);
        if (at !== null) due.push(at, flat[i] ?? '');
      }
      // NX: a letter written again meanwhile was scheduled with it, at its new time.
      if (due.length > 0) added += await this.store.redis.zadd(this.retryKey, 'NX', ...due);
    }
    return added;
  }

  /**
   * Clear the letters of documents the index holds in a version at least as new as the refused
   * read's (member -> the version the index holds). Returns how many were cleared.
   */
  async clearSuperseded(held: ReadonlyMap<string, number>): Promise<number> {
    if (held.size === 0) return 0;
    const args = [...held].flatMap(([member, version]) => [member, version]);
    return Number(await this.store.run('clearSuperseded', [this.key], args));
  }

  /**
   * The letters of PostgreSQL's errors (status 0) of these members, whose count of failed reads
   * the next failed read of each goes on from (`tries`). Asked only when reads fail, so rarely.
   */
  async failedReads(members: string[]): Promise<Map<string, DeadLetter>> {
    const letters = await this.letters(members);
    for (const [member, letter] of letters) if (letter.status !== 0) letters.delete(member);
    return letters;
  }

  /** The letters of these members, those that have one. */
  async letters(members: string[]): Promise<Map<string, DeadLetter>> {
    const found = new Map<string, DeadLetter>();
    if (members.length === 0) return found;
    const raws = await this.store.redis.hmget(this.key, ...members);
    members.forEach((member, i) => {
      const raw = raws[i];
      if (raw) found.set(member, JSON.parse(raw) as DeadLetter);
    });
    return found;
  }

  /**
   * Queue again the documents PostgreSQL could not build whose retry is due (unreadableRetry.ts),
   * at most `most` entries of the schedule, taken off it in the same step: those still lettered
   * go into the queue. Returns how many entries were taken (fewer than `most`: nothing more is
   * due) and how many documents were new to the queue.
   */
  async queueDue(
    queue: DocumentQueue,
    now: number,
    most: number,
  ): Promise<{ taken: number; queued: number }> {
    const [taken, added] = (await this.store.run(
      'dueLetters',
      [this.retryKey, this.key, ...queue.waitingKeys],
      [now, most],
    )) as [number, number];
    if (added > 0) {
      // Queued means queued for good, as for every other enqueue (DocumentQueue.enqueue).
      await this.store.confirm(queue.waitingKeys[0]);
      queue.notifyEnqueued(added);
    }
    return { taken, queued: added };
  }

  async list(): Promise<DeadLetter[]> {
    const all = await this.store.redis.hgetall(this.key);
    return Object.values(all)
      .map((raw) => JSON.parse(raw) as DeadLetter)
      .sort((a, b) => a.at.localeCompare(b.at));
  }

  async count(): Promise<number> {
    return this.store.redis.hlen(this.key);
  }

  /**
   * The ids of one index's documents with a letter, by what failed: Elasticsearch refused them, or
   * PostgreSQL could not build them. Walked in chunks; the ids and versions alone are kept.
   */
  async ofKind(kind: KindName): Promise<LetteredIds> {
    const found: LetteredIds = { refused: new Map(), unreadable: new Map() };
    for await (const flat of this.chunks()) {
      for (let i = 0; i < flat.length; i += 2) {
        const named = parseMember(flat[i] ?? '');
        if (named?.kind.name !== kind) continue;
        const letter = JSON.parse(flat[i + 1] ?? '{}') as DeadLetter;
        (letter.status === 0 ? found.unreadable : found.refused).set(named.id, letter.version);
      }
    }
    return found;
  }

  /** Letters per index (dead letters are few: read whole, in chunks). */
  async countByKind(): Promise<Record<KindName, number>> {
    const counts: Record<KindName, number> = { films: 0, persons: 0, genres: 0 };
    for await (const flat of this.chunks()) {
      for (let i = 0; i < flat.length; i += 2) {
        const kind = parseMember(flat[i] ?? '')?.kind.name;
        if (kind) counts[kind]++;
      }
    }
    return counts;
  }

  /**
   * Re-drive: queue every dead film again and clear its letter, unless the letter changed since it
   * was read (the film was refused again meanwhile: its new reason stays). Chunked, so a hash of
   * any size is walked without one huge read. Returns how many films were queued.
   */
  async retry(queue: DocumentQueue): Promise<number> {
    let queued = 0;
    for await (const flat of this.chunks()) {
      await this.store.run('redrive', [this.key, ...queue.waitingKeys], flat);
      queued += flat.length / 2;
      queue.notifyEnqueued(flat.length / 2);
    }
    return queued;
  }

  /**
   * Every letter, a chunk at a time (HSCAN), as field, value, field, value... (HSCAN NOVALUES
   * needs Redis 7.4); empty chunks are skipped. A letter written or removed meanwhile may be seen
   * or not, and one may be seen twice (HSCAN's guarantee): every caller tolerates that.
   */
  private async *chunks(): AsyncGenerator<string[]> {
    let cursor = '0';
    do {
      const [next, flat] = await this.store.redis.hscan(this.key, cursor, 'COUNT', SCAN_CHUNK);
      cursor = next;
      if (flat.length > 0) yield flat;
    } while (cursor !== '0');
  }
}
