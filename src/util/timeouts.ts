/**
 * The one timeout helper. Neither function cancels the promise it waits for (most of what we wait
 * on cannot be cancelled): they only stop waiting. The timer is cleared as soon as the wait ends,
 * so it keeps the process up for no longer than the wait (and it must keep it up: a stopping
 * syncer waiting for loops that wait on nothing else would otherwise exit mid-stop).
 */

export class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** `promise`, or a TimeoutError once `ms` have passed. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Whether `promise` settled (fulfilled or rejected) within `ms`. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  try {
    await withTimeout(
      promise.catch(() => undefined),
      ms,
      'wait',
    );
    return true;
  } catch {
    return false;
  }
}
