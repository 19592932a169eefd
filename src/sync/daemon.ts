/**
 * The body of `npm start`: validate config, check the services, start the syncer, and stop it
 * cleanly on request. `src/cli/start.ts` installs the signal handlers before loading this module.
 */
import { fileURLToPath } from 'node:url';
import { parseOptionsOrExit } from '../cli/options.js';
import { loadConfigOrExit, redactUrl } from '../config.js';
import { pendingMigrations } from '../db/migrator.js';
import { checkServices } from '../health/checkServices.js';
import { createLogger } from '../logger.js';
import { Syncer } from './syncer.js';

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface StopRequests {
  /** Resolves when a stop is requested (SIGTERM or SIGINT). */
  requested: Promise<string>;
}

export async function runDaemon(stop: StopRequests): Promise<never> {
  // No options: `npm start -- --help` (or a typo) must not start a syncer.
  parseOptionsOrExit('start', {});
  const config = loadConfigOrExit();
  const log = createLogger(config.logLevel);
  // The checks below wait for a service up to their timeout (one that accepts a connection and
  // never answers, a server still starting): a stop meanwhile must not wait for them and then
  // exit 1 as if they had failed. Nothing is started yet, so there is nothing to stop.
  const stopped = stop.requested.then((signal) => ({ signal }));
  const unlessStopped = async <T>(work: Promise<T>): Promise<T> => {
    const outcome = await Promise.race([work.then((value) => ({ value })), stopped]);
    if ('value' in outcome) return outcome.value;
    log.info({ signal: outcome.signal }, 'signal received while starting: nothing to stop');
    process.exit(0);
  };

  const problems = await unlessStopped(checkServices(config));
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

  // A syncer of a newer version on a database migrated by an older one would fail on its first
  // read of what the missing migration adds, and then retry forever: say so instead.
  const pending = await unlessStopped(
    pendingMigrations(config.databaseUrl, MIGRATIONS).catch(() => null),
  );
  if (pending && pending.length > 0) {
    log.fatal(
      { pending },
      'the database lacks migrations this version needs: run `npm run migrate` ' +
        '(`node dist/cli/migrate.js` in production) as the catalog owner, then start again',
    );
    process.exit(1);
  }

  const syncer = new Syncer(config, log);
  try {
    await syncer.start();
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'could not start');
    await syncer.close();
    process.exit(1);
  }
  const ending = await Promise.race([
    stop.requested.then((signal) => ({ signal })),
    syncer.failed.then((reason) => ({ reason })),
  ]);
  if ('reason' in ending) {
    await syncer.stop();
    process.exit(1);
  }
  log.info({ signal: ending.signal }, 'signal received');
  await syncer.stop();
  process.exit(0);
}
