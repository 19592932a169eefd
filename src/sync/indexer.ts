/**
 * The indexing worker: claim up to ETL_SIZE_LIMIT queue members (documents of any kind), read
 * each kind's documents (ETL_BULK_SIZE per query), bulk them into that kind's index, then
 * acknowledge the claim.
 *
 * Whatever throws, the claim is either acknowledged (every film indexed, deleted, refused as stale
 * or dead-lettered) or given back to the head of the queue: never dropped. If this process dies
 * instead, its heartbeat lapses and another syncer's reaper gives the claim back.
 */
import type { DocumentExtractor } from '../extract/extractor.js';
import type { DocumentKind, KindName } from '../kinds/documentKind.js';
import { memberOf, parseMember } from '../kinds/kinds.js';
import type { Logger } from '../logger.js';
import { IndexRefusing, type BulkWriter, type LoadResult } from '../load/bulkWriter.js';
import type { LiveRefresh } from '../load/liveRefresh.js';
import type { DeadLetter, DeadLetters } from '../queue/deadLetters.js';
import { newClaimId, type Claim, type DocumentQueue } from '../queue/documentQueue.js';
import type { WorkerRegistry, WorkerState } from '../queue/workerRegistry.js';
import { triesAfterFailure } from '../queue/unreadableRetry.js';
import { isTransientError } from '../errors.js';
import { emptyStats, type IndexerStats } from '../metrics/indexerStats.js';
import type { BatchEvent } from '../metrics/syncerMetrics.js';
import { RetryDelays } from '../util/backoff.js';
import { sleep } from '../util/sleep.js';
import type { IndexPause } from './indexPause.js';
import { isUuid } from '../util/uuid.js';

/** Where one kind's documents go. */
export interface KindSink {
  kind: DocumentKind;
  writer: BulkWriter;
  /**
   * The index a running reindex of this kind is building: it gets every batch too. `fresh` asks
   * Redis now instead of trusting a look up to a second old.
   */
  mirror?: (fresh?: boolean) => Promise<BulkWriter | null>;
  /** Makes live batches searchable sooner than the index's refresh interval. */
  refresh?: LiveRefresh;
  /** Holds the index's documents back while it refuses writes as a whole (indexPause.ts). */
  pause?: IndexPause;
}

/** How often a busy worker's switches between reading and writing are written to Redis. */
const STATE_EVERY_MS = 1_000;

export interface IndexerDeps {
  workerId: string;
  queue: DocumentQueue;
  extractor: DocumentExtractor;
  sinks: ReadonlyMap<KindName, KindSink>;
  deadLetters: DeadLetters;
  registry: WorkerRegistry;
  log: Logger;
  sizeLimit: number;
  sleepMs: number;
  /** How long a batch in flight may take to finish after stop() before it is given back. */
  gracefulMs?: number;
  /** Where failures are reported for `npm run status`. */
  reportError?: (message: string) => Promise<void>;
  /** After every acknowledged claim: for metrics. */
  observe?: (event: BatchEvent) => void;
}

export class Indexer {
  readonly stats: IndexerStats = emptyStats();
  private state: WorkerState = 'starting';
  /** When the state was last written to Redis. */
  private stateWrittenAt = 0;
  /** The claim this worker holds: claimed, and neither acknowledged nor given back yet. */
  private held: Claim | null = null;
  /** Claims Redis no longer held when they were done, to be given back from this worker's hand. */
  private readonly lostByRedis = new WeakSet<Claim>();
  /**
   * When this worker's last read of Postgres ended (performance.now(), which no clock step moves):
   * ETL_SLEEP_MS counts from it.
   */
  private lastReadAt = 0;
  private readonly hardStop = new AbortController();

  constructor(private readonly deps: IndexerDeps) {}

  get workerId(): string {
    return this.deps.workerId;
  }

  /** The claim this worker holds (or is asking Redis for); null when none. */
  get heldClaimId(): string | null {
    return this.held?.id ?? null;
  }

  /** When this worker claimed the documents it holds (ms since the epoch); null when none. */
  get holdingSince(): number | null {
    return this.held && this.held.ids.length > 0 ? this.held.claimedAt : null;
  }

  /** Runs until `signal` aborts; a batch in flight then gets `gracefulMs` to finish. */
  async run(signal: AbortSignal): Promise<void> {
    const { registry, workerId, log } = this.deps;
    const onStop = () =>
      setTimeout(() => this.hardStop.abort(), this.deps.gracefulMs ?? 10_000).unref();
    signal.addEventListener('abort', onStop, { once: true });
    const heartbeat = setInterval(
      () =>
        void registry
          .heartbeat(workerId, { state: this.state, since: this.stateWrittenAt || Date.now() })
          .catch(() => undefined),
      5_000,
    );
    let failures = 0;
    const delays = new RetryDelays({ initialMs: 200, maxMs: 10_000 });
    try {
      while (!signal.aborted) {
        try {
          // Inside the try: a syncer that starts while Redis refuses writes must wait, not die.
          if (this.state === 'starting') await this.setState('idle');
          // Never claim while an earlier claim is neither acknowledged nor given back: two claims
          // in hand would be two chances to lose track of one.
          if (this.held && !(await this.giveBack())) throw new Error('claim not returned yet');
          // Held before Redis answers: a claim whose answer is lost (Redis away past the command
          // timeout; the client still sends it when Redis is back) may exist all the same, and
          // this worker's heartbeat would keep any reaper off it for good. The failure path gives
          // the id back like any claim in hand; releasing a claim that never came to be is a no-op.
          const id = newClaimId();
          this.held = { id, workerId, ids: [], claimedAt: Date.now() };
          const claim = await this.deps.queue.claim(workerId, this.deps.sizeLimit, id);
          this.held = claim;
          if (!claim) {
            await this.setState('idle');
            await this.waitForWork(signal);
            continue;
          }
          const pause = await this.process(claim);
          failures = 0;
          delays.reset();
          if (pause > 0) await sleep(pause, signal);
          // ETL_SLEEP_MS apart from this worker's last read, not after its write: the write
          // (longer than the pause in a full load) already kept it off the database. Slept after
          // the write, the pause idled every worker once a batch (a full load's idle CPU went
          // from 15 % to 11 % without it).
          await sleep(
            Math.max(0, this.deps.sleepMs - (performance.now() - this.lastReadAt)),
            signal,
          );
        } catch (err) {
          failures++;
          await this.deps.reportError?.((err as Error).message).catch(() => undefined);
          const back = this.held ? await this.giveBack() : false;
          if (this.hardStop.signal.aborted) break;
          log.warn(
            {
              err: (err as Error).message,
              transient: isTransientError(err),
              failures,
              returned: back,
            },
            back ? 'batch failed; claim returned to the queue' : 'batch failed',
          );
          await sleep(delays.next(), signal);
        }
      }
      // Stopping: one more try to return a claim that a failure left in hand.
      if (this.held && !this.hardStop.signal.aborted) await this.giveBack();
    } finally {
      clearInterval(heartbeat);
      signal.removeEventListener('abort', onStop);
      if (this.held && this.lostByRedis.has(this.held)) {
        // Redis lost it, and was away when it was to be given back: no reaper can return what
        // Redis does not hold, and nothing else here remembers these documents.
        log.error(
          {
            claim: this.held.id,
            documents: this.held.ids.length,
            ids: this.held.ids.slice(0, 100),
          },
          'stopped with a claim Redis had lost, not given back (Redis away): these documents may ' +
            'lack their last change; run `npm run verify -- --repair` once Redis is back',
        );
      } else if (this.held) {
        log.warn(
          { claim: this.held.id, documents: this.held.ids.length },
          "claim left in Redis; the reaper returns it once this worker's heartbeat lapses",
        );
      } else {
        await registry.remove(workerId).catch(() => undefined);
      }
    }
  }

  /** Index the claim's documents; resolves to how long to wait before the next claim. */
  private async process(claim: Claim): Promise<number> {
    const { deadLetters, log } = this.deps;
    const batchLog = log.child({ batch: this.stats.batches + 1, documents: claim.ids.length });
    const groups = new Map<KindName, string[]>();
    const invalid: string[] = [];
    for (const member of claim.ids) {
      const parsed = parseMember(member);
      if (!parsed || !isUuid(parsed.id) || !this.deps.sinks.has(parsed.kind.name)) {
        invalid.push(member);
        continue;
      }
      const ids = groups.get(parsed.kind.name) ?? [];
      ids.push(parsed.id);
      groups.set(parsed.kind.name, ids);
    }
    if (invalid.length > 0) {
      await deadLetters.add(
        invalid.map((id) => ({
          id,
          status: 0,
          reason: 'not a document of a known index (a film uuid, persons/<uuid> or genres/<uuid>)',
          at: new Date().toISOString(),
        })),
      );
    }
    const done: string[] = [];
    const versions = new Map<string, number>();
    let transientItems = 0;
    let dead = 0;
    // Documents of an index that refuses writes as a whole: queued again, not waited for.
    const held: string[] = [];
    let holdMs = Infinity;
    for (const [name, ids] of groups) {
      const sink = this.deps.sinks.get(name);
      if (!sink) continue;
      if (sink.pause?.holding) {
        held.push(...ids.map((id) => memberOf(name, id)));
        holdMs = Math.min(holdMs, sink.pause.remainingMs);
        continue;
      }
      const counted = await this.load(sink, claim, ids, batchLog, versions);
      done.push(...counted.done);
      transientItems += counted.transientItems;
      dead += counted.dead;
      if (counted.held.length > 0) {
        held.push(...counted.held);
        holdMs = Math.min(holdMs, sink.pause?.remainingMs ?? 0);
      }
    }
    // Queued before the claim is acknowledged: a crash between the two queues them twice (the
    // reaper gives the claim back), never not at all.
    if (held.length > 0) await this.deps.queue.enqueue(held);
    const acked = await this.deps.queue.ack(claim, done, versions);
    if (acked === 'done') {
      this.held = null;
    } else {
      // The claim was gone: a reaper gave it back (its documents are queued again already), or
      // Redis lost it (restarted empty, flushed, rolled back to an older save). Then the full load
      // that follows could not wait for this write, may have swept the index before it landed,
      // and a change of these documents queued meanwhile (a deletion) is lost with the queue:
      // give them back from this worker's hand, so that they are read once more (release.lua).
      // Or Redis restarted since the claim (from a save that holds it, or a replica took over):
      // the dead letters and the ids queued again above may be gone, and the claim is given back
      // whole (release.lua queues its list). Twice queued is one extra read. Should that fail,
      // the claim stays in hand and is given back before the next claim, as after any failure.
      batchLog.info(
        acked === 'gone'
          ? 'claim was no longer in redis when done; its documents are queued again'
          : 'redis restarted since the claim was taken (what it wrote since may be gone); its ' +
              'documents are queued again',
      );
      // Redis holds a claim of an earlier run: the reaper can give it back if this cannot.
      if (acked === 'gone') this.lostByRedis.add(claim);
      await this.giveBack();
    }
    this.deps.observe?.({ claimedAt: claim.claimedAt, done, transientItems, dead });
    this.stats.batches++;
    this.stats.lastBatchAt = new Date().toISOString();
    batchLog.debug({ indexed: done.length, held: held.length }, 'batch done');
    // Only documents held back: claimed again at once, they would go round and round.
    return done.length === 0 && held.length > 0 && Number.isFinite(holdMs) ? holdMs : 0;
  }

  /**
   * One kind's part of a claim; returns the queue members done (indexed, deleted or stale), and
   * records in `versions` the version each member was read at.
   */
  private async load(
    { kind, writer, mirror, refresh, pause }: KindSink,
    claim: Claim,
    ids: string[],
    batchLog: Logger,
    versions: Map<string, number>,
  ): Promise<{ done: string[]; transientItems: number; dead: number; held: string[] }> {
    const { extractor, deadLetters } = this.deps;
    const member = (id: string) => memberOf(kind.name, id);
    const done: string[] = [];
    // Not read in their turn (extractor.ts: too many reads of the chunk ran out of time): queued
    // again, behind what waits, and read in another claim.
    const unresolved: string[] = [];
    let transientItems = 0;
    let dead = 0;
    for (let i = 0; i < ids.length; i += extractor.bulkSize) {
      await this.setState('reading');
      const read = await extractor.readApart(
        kind,
        claim,
        ids.slice(i, i + extractor.bulkSize),
        this.hardStop.signal,
      );
      const { batch, unreadable } = read;
      if (read.unresolved.length > 0)
        batchLog.warn(
          { index: kind.name, documents: read.unresolved.length },
          'reads ran out of time too often; the documents not read yet are queued again',
        );
      this.lastReadAt = performance.now();
      if (unreadable.length > 0) {
        // Not done: the acknowledgement leaves their letters, and a later read clears them.
        const now = Date.now();
        const at = new Date(now).toISOString();
        // The count of failed reads goes on from the letter before (unreadableRetry.ts). Two
        // workers failing on one document at once may count one failure once: a retry more.
        const failed = await deadLetters.failedReads(unreadable.map(({ id }) => member(id)));
        await deadLetters.add(
          unreadable.map(({ id, version, reason }) => {
            const before = failed.get(member(id));
            return {
              id: member(id),
              status: 0,
              reason,
              at,
              version,
              tries: triesAfterFailure(before, now, deadLetters.schedule),
            };
          }),
        );
        for (const counts of [this.stats, this.stats.byIndex[kind.name]])
          counts.dead += unreadable.length;
        dead += unreadable.length;
        batchLog.warn(
          { index: kind.name, dead: unreadable.map((u) => ({ id: u.id, reason: u.reason })) },
          'documents postgres could not build',
        );
      }
      for (const read of [...batch.documents, ...batch.deletions])
        versions.set(member(read.id), read.version);
      await this.setState('writing');
      // Whether a reindex runs is asked before the write as well as after it: a write can take
      // long (items retried), and a reindex that read these documents earlier may swap its alias
      // and end meanwhile. The write then landed in the index the alias left, the new one holds
      // the older read, and the question asked after it alone would say "no reindex".
      const mirroredBefore = await mirror?.();
      let result: LoadResult;
      try {
        result = await writer.write(batch, this.hardStop.signal);
        pause?.accepted();
      } catch (err) {
        if (!(err instanceof IndexRefusing) || !pause) throw err;
        const ms = pause.refused();
        batchLog.warn(
          { index: kind.name, reason: err.reason, retry_in_ms: ms },
          'the index refuses writes as a whole (blocked, closed, or no privilege): its documents ' +
            'wait in the queue, the other indices go on',
        );
        // This chunk's unresolved ids are among ids.slice(i): held once.
        return { done, transientItems, dead, held: [...unresolved, ...ids.slice(i).map(member)] };
      }
      unresolved.push(...read.unresolved.map(member));
      const target = await mirror?.();
      let mirroredAfter = target;
      if (target) {
        // Refusals there are the reindex's to report; the alias's result decides the claim.
        const mirrored = await target.write(batch, this.hardStop.signal);
        if (mirrored.dead.length > 0)
          batchLog.warn(
            { index: target.targetName, dead: mirrored.dead.length },
            'reindex target refused documents',
          );
        // The mirror write can go out late (this process paused after the question, say), once
        // its reindex has swapped and ended: what it missed then goes to a list that reindex has
        // already read, and the alias write went to the index the alias left. Asked afresh: a
        // reindex still running reads that list after this, at its swap.
        mirroredAfter = await mirror?.(true);
      }
      if (
        (mirroredBefore && mirroredBefore.targetName !== target?.targetName) ||
        (target && target.targetName !== mirroredAfter?.targetName)
      ) {
        // That reindex ended while this batch was written (another may have begun since): once
        // more through the alias, to the index that serves now (versions make a repeat that was
        // not needed a no-op). Its answer is the one that counts: the index that serves now may
        // refuse what the old one took (a reindex for a stricter mapping).
        const again = await writer.write(batch, this.hardStop.signal);
        result = {
          ...again,
          retries: result.retries + again.retries,
          transientItems: result.transientItems + again.transientItems,
        };
      }
      // A claim short of ETL_SIZE_LIMIT emptied the queue: live changes, worth a refresh now.
      // Every batch counts towards the rate that decides whether refreshing is worth it.
      refresh?.landed(
        result.indexed.length + result.deleted.length,
        claim.ids.length < this.deps.sizeLimit,
      );
      // Letters of the documents done are cleared by the acknowledgement, in the same round trip.
      await deadLetters.add(result.dead.map((letter) => ({ ...letter, id: member(letter.id) })));
      await this.clearSuperseded(kind, claim, writer, result.dead);
      for (const counts of [this.stats, this.stats.byIndex[kind.name]]) {
        counts.indexed += result.indexed.length;
        counts.deleted += result.deleted.length;
        counts.stale += result.stale.length;
        counts.dead += result.dead.length;
      }
      transientItems += result.transientItems;
      dead += result.dead.length;
      done.push(...[...result.indexed, ...result.deleted, ...result.stale].map(member));
      if (result.dead.length > 0) {
        batchLog.warn(
          { index: kind.name, dead: result.dead.map((d) => ({ id: d.id, reason: d.reason })) },
          'documents refused',
        );
      }
    }
    return { done, transientItems, dead, held: unresolved };
  }

  /**
   * A refused read can be written late (held back by retries) after a newer read of its document
   * has loaded and been acknowledged: its letter then says the document is refused while the
   * index holds a newer one, and no acknowledgement is left to clear it. So the index is asked,
   * after the letters are written: a newer write that lands after this look is acknowledged after
   * them, and that acknowledgement clears them. A document the index does not hold may be one
   * deleted since (the newer read was its deletion), or one never indexed: Postgres says which,
   * read again like any claim (a deletion read after the letter has a newer version).
   */
  private async clearSuperseded(
    kind: DocumentKind,
    claim: Claim,
    writer: BulkWriter,
    dead: readonly DeadLetter[],
  ): Promise<void> {
    const refused = dead.filter((letter) => letter.version !== undefined);
    if (refused.length === 0) return;
    const held = await writer.versionsHeld(refused.map((letter) => letter.id));
    const absent = refused.map((letter) => letter.id).filter((id) => !held.has(id));
    if (absent.length > 0) {
      try {
        const reread = await this.deps.extractor.read(kind, claim, absent);
        for (const gone of reread.deletions) held.set(gone.id, gone.version);
      } catch (err) {
        // Best effort, like the look at the index: the letters stay, and the batch goes on.
        this.deps.log.warn(
          { err: (err as Error).message },
          'could not read again the refused documents the index does not hold',
        );
      }
    }
    const newer = new Map<string, number>();
    for (const letter of refused) {
      const version = held.get(letter.id);
      if (version !== undefined && letter.version !== undefined && version >= letter.version)
        newer.set(memberOf(kind.name, letter.id), version);
    }
    const cleared = await this.deps.deadLetters.clearSuperseded(newer);
    if (cleared > 0)
      this.deps.log.info(
        { documents: [...newer.keys()] },
        'refused reads older than what the index holds, or of documents deleted since: no letter kept',
      );
  }

  /** Return the claim in hand; false when Redis refused (the claim stays in hand, retried). */
  private async giveBack(): Promise<boolean> {
    const claim = this.held;
    if (!claim) return true;
    try {
      await this.deps.queue.release(claim);
      this.held = null;
      return true;
    } catch (err) {
      // Redis is away or refuses writes: keep the claim in hand and try again before claiming
      // anything else. If this process dies meanwhile, the reaper returns it.
      this.deps.log.warn(
        { err: (err as Error).message, claim: claim.id },
        'could not return the claim yet',
      );
      return false;
    }
  }

  /**
   * Record what this worker does, for `npm run status`. Reading and writing alternate every few
   * milliseconds under load, faster than anyone reads them: between those two, a change is
   * written at most every STATE_EVERY_MS (two Redis round trips a batch cost a full load ~5 % of
   * its speed). Becoming idle, or busy again, is always written.
   */
  private async setState(state: WorkerState): Promise<void> {
    if (state === this.state) return;
    const previous = this.state;
    const busy = (s: WorkerState) => s === 'reading' || s === 'writing';
    this.state = state;
    if (busy(state) && busy(previous) && Date.now() - this.stateWrittenAt < STATE_EVERY_MS) return;
    try {
      await this.deps.registry.setState(this.deps.workerId, state);
      this.stateWrittenAt = Date.now();
    } catch (err) {
      this.state = previous; // not recorded: the next call tries again
      throw err;
    }
  }

  /** Until something is queued here, or 250 ms for queues fed by other syncers. */
  private waitForWork(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.deps.queue.events.off('enqueued', done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, 250);
      this.deps.queue.events.once('enqueued', done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
