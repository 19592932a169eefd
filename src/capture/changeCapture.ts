/**
 * Builds the queue of changed film ids (the seed's "separate class that builds the ID queue").
 *
 * Two inputs feed it: notifications from the listener (live, within milliseconds) and poll passes
 * (the durable fallback: at start, after reconnects, on a timer, and when a statement was too big
 * to list its keys). Notifications that arrive while a batch is being resolved are merged, so a
 * burst of edits becomes a few resolutions rather than one per statement.
 */
import type { Logger } from '../logger.js';
import type { ChangeClock } from '../metrics/changeClock.js';
import type { FilmQueue } from '../queue/filmQueue.js';
import { sleep } from '../util/sleep.js';
import type { HandledTransactions } from './handledTransactions.js';
import type { ChangeNotification } from './notification.js';
import type { Poller } from './poller.js';
import type { FilmResolver } from './resolver.js';

export interface CaptureStats {
  notifications: number;
  passes: number;
  lastPassAt: string | null;
  lastError: string | null;
}

export class ChangeCapture {
  private films = new Set<string>();
  private persons = new Set<string>();
  private genres = new Set<string>();
  private pollRequested = true; // the first pass is the start-up catch-up
  private wakeUp: (() => void) | null = null;
  /** Cuts a failure backoff short: Postgres is evidently back once the listener reconnected. */
  private backoff = new AbortController();
  readonly stats: CaptureStats = { notifications: 0, passes: 0, lastPassAt: null, lastError: null };

  constructor(
    private readonly queue: FilmQueue,
    private readonly resolver: FilmResolver,
    private readonly poller: Poller,
    private readonly log: Logger,
    private readonly pollIntervalMs: number,
    private readonly reportError?: (message: string) => Promise<void>,
    private readonly clock?: ChangeClock,
    /** What lets a poll pass skip transactions the live path has queued (handledTransactions.ts). */
    private readonly live?: { handled: HandledTransactions; barrier: () => Promise<unknown> },
  ) {}

  /** From the listener. Never throws and never waits: the work happens in run(). */
  onChange(change: ChangeNotification): void {
    this.stats.notifications++;
    if (change.x !== undefined)
      this.live?.handled.heardFrom(change.x, !change.many && change.op !== 'T');
    if (change.op === 'T' || change.many) {
      this.requestPoll();
      return;
    }
    switch (change.t) {
      case 'film_work':
        for (const id of change.ids ?? []) this.films.add(id);
        this.clock?.heard(change.ids ?? []);
        break;
      case 'genre_film_work':
      case 'person_film_work':
        for (const id of change.films ?? []) this.films.add(id);
        this.clock?.heard(change.films ?? []);
        break;
      case 'person':
      case 'genre':
        // A new person or genre has no films yet, and a deleted one's links cascade away (the
        // link tables report those films). Only an update changes documents through this table.
        if (change.op === 'U') {
          const target = change.t === 'person' ? this.persons : this.genres;
          for (const id of change.ids ?? []) target.add(id);
        }
        break;
    }
    this.wake();
  }

  requestPoll(): void {
    this.pollRequested = true;
    this.wake();
  }

  /** From the listener after every (re)connect: catch up now, even in the middle of a backoff. */
  onListenerConnected(): void {
    this.live?.handled.reset();
    this.backoff.abort();
    this.backoff = new AbortController();
    this.requestPoll();
  }

  /** The loop: drain notifications, run requested and periodic polls, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let nextPoll = Date.now();
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.drain();
        if (this.pollRequested || Date.now() >= nextPoll) {
          this.pollRequested = false;
          nextPoll = Date.now() + this.pollIntervalMs;
          // Seal what the live path has heard and queue it, so the pass can skip it.
          await this.live?.barrier();
          await this.drain();
          const result = await this.poller.pass(signal);
          this.stats.passes++;
          this.stats.lastPassAt = new Date().toISOString();
          if (result.kind !== 'incremental' || result.queued > 0) {
            this.log.debug({ ...result }, 'poll pass');
          }
        }
        failures = 0;
      } catch (err) {
        // Postgres or Redis went away mid-step: nothing was acknowledged, so retrying is safe.
        failures++;
        this.stats.lastError = (err as Error).message;
        await this.reportError?.((err as Error).message).catch(() => undefined);
        this.pollRequested = true;
        this.log.warn(
          { err: (err as Error).message, failures },
          'change capture step failed; retrying',
        );
        // Not cut short by notifications: with a broken pool that would retry once per edit.
        await sleep(
          Math.min(10_000, 250 * 2 ** Math.min(failures, 6)),
          AbortSignal.any([signal, this.backoff.signal]),
        );
        continue;
      }
      if (this.idle()) await this.waitForWork(nextPoll - Date.now(), signal);
    }
  }

  private idle(): boolean {
    return (
      !this.pollRequested &&
      this.films.size === 0 &&
      this.persons.size === 0 &&
      this.genres.size === 0
    );
  }

  private async drain(): Promise<void> {
    const drain = this.live?.handled.beginDrain() ?? 0;
    await this.drainPending();
    this.live?.handled.drained(drain);
  }

  private async drainPending(): Promise<void> {
    if (this.films.size > 0) {
      const films = this.films;
      this.films = new Set();
      try {
        await this.queue.enqueue(films);
      } catch (err) {
        for (const id of films) this.films.add(id);
        throw err;
      }
    }
    for (const table of ['person', 'genre'] as const) {
      const pending = table === 'person' ? this.persons : this.genres;
      if (pending.size === 0) continue;
      const ids = [...pending];
      if (table === 'person') this.persons = new Set();
      else this.genres = new Set();
      try {
        for await (const films of this.resolver.filmsOf(table, ids))
          await this.queue.enqueue(films);
      } catch (err) {
        // Resolve the whole set again: re-queueing a film twice is harmless, dropping one is not.
        const target = table === 'person' ? this.persons : this.genres;
        for (const id of ids) target.add(id);
        throw err;
      }
    }
  }

  private wake(): void {
    this.wakeUp?.();
  }

  private waitForWork(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal.addEventListener('abort', done, { once: true });
      this.wakeUp = done;
    });
  }
}
