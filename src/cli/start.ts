/**
 * `npm start`: the syncer daemon. Ensures the index, catches up from the watermarks (a full load
 * when there are none), then follows changes live. SIGTERM or SIGINT stops it cleanly: the batch
 * in flight finishes or goes back to the queue, and the exit status is 0.
 */
import { loadConfigOrExit, redactUrl } from '../config.js';
import { checkServices } from '../health/checkServices.js';
import { createLogger } from '../logger.js';
import { Syncer } from '../sync/syncer.js';

const config = loadConfigOrExit();
const log = createLogger(config.logLevel);

const problems = await checkServices(config);
if (problems.length > 0) {
  for (const problem of problems) log.fatal(problem);
  process.exit(1);
}
log.info(
  {
    database: redactUrl(config.databaseUrl),
    redis: redactUrl(config.redisUrl),
    elasticsearch: redactUrl(config.elasticsearch.url),
    index: config.index,
    prefix: config.redisPrefix,
  },
  'starting',
);

const syncer = new Syncer(config, log);
try {
  await syncer.start();
} catch (err) {
  log.fatal({ err: (err as Error).message }, 'could not start');
  await syncer.close();
  process.exit(1);
}

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now; claims in flight return via the reaper');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'signal received');
    void syncer.stop().then(() => process.exit(0));
  });
}
