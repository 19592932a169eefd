/**
 * The body of `npm start`: validate config, check the services, start the syncer, and stop it
 * cleanly on request. `src/cli/start.ts` installs the signal handlers before loading this module.
 */
import { loadConfigOrExit, redactUrl } from '../config.js';
import { checkServices } from '../health/checkServices.js';
import { createLogger } from '../logger.js';
import { Syncer } from './syncer.js';

export interface StopRequests {
  /** Resolves when a stop is requested (SIGTERM or SIGINT). */
  requested: Promise<string>;
}

export async function runDaemon(stop: StopRequests): Promise<never> {
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
      ...(config.listenUrl === config.databaseUrl ? {} : { listen: redactUrl(config.listenUrl) }),
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
  const signal = await stop.requested;
  log.info({ signal }, 'signal received');
  await syncer.stop();
  process.exit(0);
}
