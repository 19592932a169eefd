/**
 * Run tasks at the same time, each with a signal that aborts when `signal` does or when another
 * task fails. Resolves once every task has ended; if any failed, rejects with the first failure
 * then, not before: a task left running after its caller gave up would go on using state (a
 * lease, a plan) that the caller no longer holds.
 */
export async function sideBySide(
  signal: AbortSignal,
  tasks: readonly ((signal: AbortSignal) => Promise<void>)[],
): Promise<void> {
  const failed = new AbortController();
  const both = AbortSignal.any([signal, failed.signal]);
  const failures: unknown[] = [];
  await Promise.all(
    tasks.map(async (task) => {
      try {
        await task(both);
      } catch (error) {
        failures.push(error);
        failed.abort();
      }
    }),
  );
  if (failures.length > 0) throw failures[0];
}
