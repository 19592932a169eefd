/** `npm run migrate`: apply pending migrations; safe to run twice or from two processes at once. */
import { fileURLToPath } from 'node:url';
import { loadConfigOrExit, redactUrl } from '../config.js';
import { migrate } from '../db/migrator.js';
import { createLogger } from '../logger.js';
import { parseOptionsOrExit } from './options.js';

// No options: `npm run migrate -- --help` (or a typo) must not migrate anything.
parseOptionsOrExit('migrate', {});
const config = loadConfigOrExit();
const log = createLogger(config.logLevel);
const dir = fileURLToPath(new URL('../../migrations', import.meta.url));

try {
  const { applied } = await migrate(config.databaseUrl, dir, log);
  log.info(
    { database: redactUrl(config.databaseUrl), applied: applied.length },
    applied.length > 0 ? 'migrations applied' : 'database already up to date',
  );
} catch (err) {
  log.fatal({ err: (err as Error).message }, 'migration failed');
  process.exitCode = 1;
}
