/**
 * SIGINT and SIGTERM for the commands that stop cleanly on the first and at once on a second.
 *
 * One Ctrl-C often arrives twice: the terminal sends SIGINT to the whole process group, and the
 * command's parent (`npm run`, or `tsx`, which sends it again when the program has not confirmed
 * it within 30 ms) relays it a moment later. Taken for a second Ctrl-C, it made a reindex exit
 * without cleaning up, and the syncer exit 1. A signal this soon after the first is the same one;
 * a person pressing Ctrl-C again to give up waiting does so later.
 */
export const SAME_SIGNAL_MS = 1_000;

export type StopSignal = 'SIGINT' | 'SIGTERM';

/** `first` at the first signal; `again` at a later one that is not a copy of it. */
export function onStopSignals(
  first: (signal: StopSignal) => void,
  again: (signal: StopSignal) => void,
): void {
  let firstAt: number | null = null;
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      const now = performance.now();
      if (firstAt === null) {
        firstAt = now;
        first(signal);
      } else if (now - firstAt >= SAME_SIGNAL_MS) again(signal);
    });
}
