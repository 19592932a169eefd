/**
 * The body of `npm start`: validate config, check the services, start the syncer, and stop it
 * cleanly on request. `src/cli/start.ts` installs the signal handlers before loading this module.
 */
import { fileURLToPath } from 'node:url';
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

  // A syncer of a newer version on a database migrated by an older one would fail on its first
  // read of what the missing migration adds, and then retry forever: say so instead.
  const pending = await pendingMigrations(config.databaseUrl, MIGRATIONS).catch(() => null);
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
  const signal = await stop.requested;
  log.info({ signal }, 'signal received');
  await syncer.stop();
  process.exit(0);
}
