/**
 * Wait for every promise to settle, then reject with the first failure, if any. Unlike
 * Promise.all, nothing is still running when the caller hears of an error: work it started (under
 * a lease, on a plan) has ended before it gives them up.
 */
export async function allSettled(promises: readonly Promise<unknown>[]): Promise<void> {
  const failure = (await Promise.allSettled(promises)).find((r) => r.status === 'rejected');
  if (failure) throw failure.reason;
}
