/**
 * `npm run seed -- --films N` (default 1000): fills the catalog with realistic, deterministic data.
 * Run `npm run migrate` first. Seeding twice with the same N changes nothing. `--sample` adds the
 * 1000 films only to an empty catalog (the quick start uses it, and must never pad a real one).
 */
import { loadConfigOrExit } from '../config.js';
import { Postgres } from '../db/postgres.js';
import { createLogger } from '../logger.js';
import { generateCatalog } from '../seed/catalogGenerator.js';
import { countFilms } from '../sql/queries.js';
import { parseOptionsOrExit } from './options.js';

const values = parseOptionsOrExit('seed', {
  films: { type: 'string' },
  sample: { type: 'boolean', default: false },
});
const films = values.films === undefined ? 1_000 : Number(values.films);
if (!Number.isInteger(films) || films < 1 || films > 10_000_000) {
  process.stderr.write(
    `--films must be a whole number from 1 to 10000000, got ${values.films ?? ''}\n`,
  );
  process.exit(2);
}

const config = loadConfigOrExit();
const log = createLogger(config.logLevel);
// No query timeout: one statement inserts every link of the catalog (a minute's work at 1M films).
const db = new Postgres(config.databaseUrl, log, 1, 0);
try {
  const [{ count } = { count: 0 }] = values.sample ? await db.query(countFilms) : [];
  if (count > 0) {
    log.info({ films: count }, 'catalog is not empty: sample not added');
    process.exit(0);
  }
  const report = await generateCatalog(db, films);
  log.info({ ...report, ms: Math.round(report.ms) }, 'catalog seeded');
} catch (err) {
  log.fatal({ err: (err as Error).message }, 'seeding failed (did you run npm run migrate?)');
  process.exitCode = 1;
} finally {
  await db.end();
}
