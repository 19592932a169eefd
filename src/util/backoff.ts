/**
 * The one backoff policy: cockatiel's exponential backoff with decorrelated jitter, capped. Every
 * retry loop uses it, either through a cockatiel `retry` policy (the bulk loader) or, for loops
 * that own their own control flow (indexer, change capture, listener, Redis reconnects), through
 * RetryDelays: the delay before the next attempt, reset after a success.
 *
 * Jitter matters: several syncers that lost the same service at the same moment must not come
 * back at the same moment.
 */
import { ExponentialBackoff, type IBackoff, type IBackoffFactory } from 'cockatiel';

export interface BackoffOptions {
  /** The first delay, about (ms). */
  initialMs: number;
  /** No delay is longer (ms). */
  maxMs: number;
}

export function backoff({ initialMs, maxMs }: BackoffOptions): IBackoffFactory<unknown> {
  return new ExponentialBackoff({ initialDelay: initialMs, maxDelay: maxMs });
}

export class RetryDelays {
  private readonly factory: IBackoffFactory<unknown>;
  private current: IBackoff<unknown> | undefined;

  constructor(options: BackoffOptions) {
    this.factory = backoff(options);
  }

  /** The delay before the next attempt; each call after a failure grows it, up to the cap. */
  next(): number {
    this.current = this.current ? this.current.next(undefined) : this.factory.next(undefined);
    return this.current.duration;
  }

  /** After a success: the next failure starts from the first delay again. */
  reset(): void {
    this.current = undefined;
  }
}
