/** `npm start`: the syncer daemon. */
import { loadConfigOrExit, redactUrl } from '../config.js';
import { createLogger } from '../logger.js';
import { checkServices } from '../health/checkServices.js';

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
  },
  'all services reachable',
);
