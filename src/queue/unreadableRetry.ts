/**
 * Documents PostgreSQL could not build (dead letters of status 0) are queued again by themselves,
 * a few times, further and further apart: 30 s after the first failure, then 2 min, 8 min, 32 min
 * and 2 h 8 min. After the sixth failure in a row the letter stays until someone re-drives it
 * (`npm run dead-letters -- --retry`).
 *
 * Why: the error classes that mark a document's own data (src/errors.ts, isDocumentError) are
 * also raised, for a while, by causes that hold for every document: an internal error (XX000)
 * while an operator alters a table, a guard function that raises (P0001) during maintenance. Every
 * document read meanwhile went to the dead letters and stayed out of the index, or stale there,
 * until someone noticed. A retry count per document tells the two apart without guessing: a
 * passing cause clears at the next try, a document's own bad data fails every try.
 *
 * A read that succeeds clears the letter (the queue's acknowledgement does), and so resets the
 * count; a failing one writes the letter again, with the count one higher if it was the retry
 * (`triesAfterFailure`: reads an edit made before the retry was due are no tries).
 * The schedule is a sorted set by due time (`dead-letters:retry`), written with each letter in one
 * step, so a pass costs what is due, not every letter: a database-wide error during a full load
 * can letter the whole catalog. Every syncer runs a pass every few seconds; taking an entry off
 * the schedule and queueing its document is one step, so each due document is queued once, and a
 * process that dies cannot take an entry and leave its document out. As it starts, a syncer puts
 * back on the schedule any letter missing from it (a Redis failover that lost the last writes).
 */
import type { Logger } from '../logger.js';
import type { DeadLetter, DeadLetters } from './deadLetters.js';
import type { DocumentQueue } from './documentQueue.js';

export interface RetrySchedule {
  /** The wait after the first failure (ms); each later wait is four times the one before. */
  firstMs: number;
  /** How many failures in a row end the retries. */
  tries: number;
}

export const UNREADABLE_RETRY: RetrySchedule = { firstMs: 30_000, tries: 6 };

/** Letters of PostgreSQL's errors carry status 0 (Elasticsearch's refusals carry its status). */
export function isUnreadableLetter(letter: DeadLetter): boolean {
  return letter.status === 0;
}

/**
 * When a letter's document is due to be read again (ms since the epoch), or null once its
 * retries are spent or it is not a letter of a failed read. Only those carry `tries`: a letter of
 * status 0 without it names no document (a queue member of no known index), or was written
 * before retries began, and waits for `retry` by hand as before.
 */
export function retryDueAt(letter: DeadLetter, schedule: RetrySchedule): number | null {
  const tries = letter.tries;
  if (!isUnreadableLetter(letter) || tries === undefined) return null;
  const at = Date.parse(letter.at);
  if (tries >= schedule.tries || !Number.isFinite(at)) return null;
  return at + schedule.firstMs * 4 ** (tries - 1);
}

/**
 * The count of failed reads a new failure of the document writes, after the letter `before` (if
 * any). Only a read at or after the retry's due time is a try: an edit, or a change to a person or
 * genre of a film, queues the document too, and such reads, a few during an outage of seconds,
 * used to spend every try at once, leaving only the last wait (hours), or none. Read earlier, the
 * failure keeps the count, and the retry waits as long again from it. A letter of an older
 * version without a count counts as one failure.
 *
 * "At the due time" by this process's clock, which the syncer that queued the retry read by its
 * own: a failure in the second half of the wait counts, so clocks apart by less than half the
 * first wait (15 s by default) do not keep a retry from counting (and bad data retried for ever).
 */
export function triesAfterFailure(
  before: DeadLetter | undefined,
  now: number,
  schedule: RetrySchedule,
): number {
  if (!before) return 1;
  const tries = before.tries ?? 1;
  const due = retryDueAt(before, schedule);
  if (due === null) return tries + 1;
  const wait = due - Date.parse(before.at);
  return now < due - wait / 2 ? tries : tries + 1;
}

/** Most documents queued again per step of a pass. */
const TAKE_AT_MOST = 500;

export class UnreadableRetry {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly deadLetters: DeadLetters,
    private readonly queue: DocumentQueue,
    private readonly log: Logger,
    /** How often to look for what is due (ms); the schedule itself is the letters' (DeadLetters). */
    private readonly everyMs = 5_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.pass(), this.everyMs);
    this.scheduleChecked = false;
  }

  /** Whether this start's check of the schedule against the letters is done (`pass`). */
  private scheduleChecked = false;

  /** Never throws: failed (Redis away), the next pass tries again. */
  private async scheduleMissing(): Promise<void> {
    try {
      const added = await this.deadLetters.scheduleMissing();
      this.scheduleChecked = true;
      if (added > 0)
        this.log.info(
          { letters: added },
          'letters of documents postgres could not build were missing from the retry schedule; put back',
        );
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message },
        'could not check the retry schedule against the dead letters; the next pass tries again',
      );
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Queue the documents that are due. Never throws: a failed pass is logged, the next retries. */
  async pass(now = Date.now()): Promise<number> {
    // A pass over many due documents can outlast the interval; two at once would only race.
    if (this.running) return 0;
    this.running = true;
    let queued = 0;
    try {
      if (!this.scheduleChecked) await this.scheduleMissing();
      for (;;) {
        const step = await this.deadLetters.queueDue(this.queue, now, TAKE_AT_MOST);
        queued += step.queued;
        if (step.taken < TAKE_AT_MOST) break;
      }
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message },
        'queueing unreadable documents again failed; the next pass tries again (their letters stay until a read succeeds)',
      );
    } finally {
      this.running = false;
    }
    if (queued > 0)
      this.log.info(
        { documents: queued },
        'documents postgres could not build are queued again (their letters stay until a read succeeds)',
      );
    return queued;
  }
}
