/**
 * `npm start`: the syncer daemon. Ensures the index, catches up from the watermarks (a full load
 * when there are none), then follows changes live. SIGTERM or SIGINT stops it cleanly: the batch
 * in flight finishes or goes back to the queue, and the exit status is 0.
 *
 * The signal handlers go in before anything else is loaded: a SIGTERM that lands while the syncer
 * is still starting (a quick rollback) must stop it cleanly too, not kill it by the signal's
 * default action. A second signal exits at once; claims in flight then return via the reaper.
 */
let requested = false;
let resolveStop: (signal: string) => void = () => undefined;
const stopRequested = new Promise<string>((resolve) => (resolveStop = resolve));
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (requested) process.exit(1);
    requested = true;
    resolveStop(signal);
  });
}

const { runDaemon } = await import('../sync/daemon.js');
await runDaemon({ requested: stopRequested });
