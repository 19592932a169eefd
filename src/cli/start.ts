/**
 * `npm start`: the syncer daemon. Ensures the index, catches up from the watermarks (a full load
 * when there are none), then follows changes live. SIGTERM or SIGINT stops it cleanly: the batch
 * in flight finishes or goes back to the queue, and the exit status is 0.
 *
 * The signal handlers go in before anything else is loaded: a SIGTERM that lands while the syncer
 * is still starting (a quick rollback) must stop it cleanly too, not kill it by the signal's
 * default action (the module imported first holds nothing else). A second signal exits at once
 * (one a moment after the first is the same Ctrl-C relayed: stopSignals.ts); claims in flight then
 * return via the reaper.
 */
import { onStopSignals } from './stopSignals.js';

let resolveStop: (signal: string) => void = () => undefined;
const stopRequested = new Promise<string>((resolve) => (resolveStop = resolve));
onStopSignals(resolveStop, () => process.exit(1));

const { runDaemon } = await import('../sync/daemon.js');
await runDaemon({ requested: stopRequested });
