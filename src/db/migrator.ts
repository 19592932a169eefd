/**
 * Applies `migrations/NNNN_name.sql` in order, each in its own transaction, recording it in
 * `etl.schema_migrations`. A session-level advisory lock makes two migrators queue instead of
 * racing; the second finds the work done. A landed migration that was edited afterwards is an
 * error, since the databases that already ran it would silently differ from new ones.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../logger.js';
import * as sql from '../sql/queries.js';

export interface Migration {
  version: string;
  name: string;
  text: string;
  checksum: string;
}

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;
/**
 * How long a migration waits for one lock before it gives up and tries again. A migration that
 * alters a catalog table waits behind every open transaction that has read it, and while it waits
 * every other reader and writer of that table queues behind it: unbounded, the catalog stalled for
 * as long as the oldest transaction ran. Bounded, they wait this long at most per attempt.
 */
const LOCK_WAIT_MS = 1_000;
const LOCK_RETRY_MS = 1_000;
/** Said at the first attempt, then every this many (about a minute). */
const LOCK_WAIT_SAID_EVERY = 30;
/** SQLSTATE: lock_timeout elapsed. */
const LOCK_NOT_AVAILABLE = '55P03';
/** SQLSTATE: no such table (the ledger, before the first migration). */
const UNDEFINED_TABLE = '42P01';

export function readMigrations(dir: string): Migration[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => {
      const match = FILE_PATTERN.exec(file);
      if (!match) throw new Error(`migration file name ${file} is not NNNN_name.sql`);
      const text = readFileSync(join(dir, file), 'utf8');
      return {
        version: match[1] ?? '',
        name: match[2] ?? '',
        text,
        checksum: createHash('sha256').update(text).digest('hex'),
      };
    });
}

/**
 * The migrations applied, the ledger made first if there is none. Made only then: its
 * `CREATE SCHEMA IF NOT EXISTS` asks for the database's CREATE privilege even when the schema is
 * there, and `npm run migrate` with nothing to apply must succeed under a role without it (the
 * syncer's own, in a `migrate && start` container).
 */
async function readLedger(
  client: pg.Client,
): Promise<{ version: string; checksum: string; name: string }[]> {
  try {
    return (
      await client.query<{ version: string; checksum: string; name: string }>(
        sql.appliedMigrations.text,
      )
    ).rows;
  } catch (err) {
    if ((err as { code?: string } | null)?.code !== UNDEFINED_TABLE) throw err;
    await client.query(sql.createMigrationLedger.text);
    return [];
  }
}

/**
 * The migration lock, saying who holds it when another migrator does: a `migrate` that waits on
 * a forgotten session (a console left open in the middle of one) otherwise looks hung.
 */
async function takeLock(client: pg.Client, log: Logger): Promise<void> {
  const [tried] = (await client.query<{ taken: boolean }>(sql.tryMigrationLock.text)).rows;
  if (tried?.taken) return;
  const { rows: holders } = await client.query<{ pid: number; application: string }>(
    sql.migrationLockHolders.text,
  );
  log.warn(
    { holders },
    'another migrate holds the migration lock: waiting for it to end (pg_stat_activity shows it)',
  );
  await client.query(sql.takeMigrationLock.text);
  log.info('migration lock taken');
}

export async function migrate(
  databaseUrl: string,
  dir: string,
  log: Logger,
): Promise<{ applied: string[] }> {
  const migrations = readMigrations(dir);
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: 'movies-etl migrate',
  });
  await client.connect();
  try {
    await takeLock(client, log);
    const done = new Map((await readLedger(client)).map((row) => [row.version, row]));
    const applied: string[] = [];
    for (const migration of migrations) {
      const previous = done.get(migration.version);
      if (previous) {
        if (previous.checksum !== migration.checksum) {
          throw new Error(
            `migration ${migration.version}_${migration.name} changed after it was applied; ` +
              'migrations are append-only: add a new one instead',
          );
        }
        continue;
      }
      const name = `${migration.version}_${migration.name}`;
      log.info({ migration: name }, 'applying migration');
      for (let attempt = 1; ; attempt++) {
        await client.query('BEGIN');
        try {
          // See LOCK_WAIT_MS. Local: the migration's own statements may set their own.
          await client.query(`SET LOCAL lock_timeout = ${LOCK_WAIT_MS}`);
          await client.query(migration.text);
          await client.query(sql.recordMigration.text, [
            migration.version,
            migration.name,
            migration.checksum,
          ]);
          await client.query('COMMIT');
          break;
        } catch (err) {
          await client.query('ROLLBACK');
          if ((err as { code?: string } | null)?.code === LOCK_NOT_AVAILABLE) {
            if (attempt % LOCK_WAIT_SAID_EVERY === 1)
              log.warn(
                { migration: name, attempts: attempt },
                'migration waits for a lock an open transaction holds on the catalog; it lets go ' +
                  'every second, so writers wait at most that long; trying again',
              );
            await delay(LOCK_RETRY_MS);
            continue;
          }
          throw new Error(`migration ${name} failed: ${(err as Error).message}`, { cause: err });
        }
      }
      applied.push(name);
    }
    await client.query(sql.releaseMigrationLock.text);
    return { applied };
  } finally {
    await client.end();
  }
}

/**
 * Migrations in `dir` that the database has not applied; null when this role may not read the
 * ledger (a least-privilege role need not: the check is a courtesy, not a guarantee).
 */
export async function pendingMigrations(
  databaseUrl: string,
  dir: string,
): Promise<string[] | null> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'movies-etl' });
  await client.connect();
  try {
    const applied = await client
      .query<{ version: string }>(sql.appliedMigrations.text)
      .then((result) => new Set(result.rows.map((row) => row.version)))
      .catch((err: unknown) => {
        // 42P01: no ledger at all (never migrated); 42501: not ours to read.
        const code = (err as { code?: string } | null)?.code;
        if (code === UNDEFINED_TABLE) return new Set<string>();
        if (code === '42501') return null;
        throw err;
      });
    if (applied === null) return null;
    return readMigrations(dir)
      .filter((m) => !applied.has(m.version))
      .map((m) => `${m.version}_${m.name}`);
  } finally {
    await client.end();
  }
}
