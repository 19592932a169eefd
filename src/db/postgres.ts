/**
 * The one place that runs SQL against PostgreSQL. Every query is a named constant from
 * `src/sql/queries.ts`, so logs and errors say which query failed, and all SQL text lives together.
 */
import pg from 'pg';
import type { Logger } from '../logger.js';
import type { Query } from '../sql/queries.js';

// Return int8 (bigint, count(*)) as JS numbers: every int8 this program reads is a count or a
// version well under 2^53. xid8 and uuid stay strings.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/** How much later than the server's `statement_timeout` the driver stops waiting by itself. */
const DRIVER_BACKSTOP_MS = 5_000;

export class Postgres {
  readonly pool: pg.Pool;

  constructor(
    connectionString: string,
    private readonly log: Logger,
    max = 4,
    /** 0 for none: bulk work (the catalog generator) runs longer than any syncer query should. */
    readonly queryTimeoutMs = 15_000,
  ) {
    this.pool = new pg.Pool({
      connectionString,
      max,
      application_name: 'movies-etl',
      // A dead server or a half-open socket must fail a query, not hang the loop that awaits it.
      connectionTimeoutMillis: 10_000,
      // The driver's bound is a backstop, for a server that does not answer at all: the bound is
      // the server's (below).
      query_timeout: queryTimeoutMs > 0 ? queryTimeoutMs + DRIVER_BACKSTOP_MS : 0,
      keepAlive: true,
      // The bound is the server's: the driver's own timeout only stops waiting and drops the
      // connection, while PostgreSQL runs on, and a backend queued for a lock never notices its
      // client left: every retry behind an exclusive lock (an `ALTER TABLE`) left one more
      // backend, and its connection slot, until `max_connections` ran out. Set by a statement,
      // not in the start-up packet, which a pooler such as PgBouncer refuses ("unsupported
      // startup parameter"); behind a transaction-mode pooler it may reach only some server
      // connections (README, Troubleshooting: set it on the role there). The pool waits for it
      // before handing the connection out, and drops a connection where it failed.
      ...(queryTimeoutMs > 0
        ? {
            // pg-pool (3.14) waits for a promise returned here, though the type says void.
            // eslint-disable-next-line @typescript-eslint/no-misused-promises
            onConnect: (client: pg.ClientBase) =>
              client.query(`SET statement_timeout = ${Math.floor(queryTimeoutMs)}`),
          }
        : {}),
    });
    // An idle client that loses its connection emits here; without a listener it would crash the
    // process. The pool replaces the client on the next checkout.
    this.pool.on('error', (err) =>
      this.log.warn({ err: err.message }, 'idle postgres client failed'),
    );
  }

  /** Run one named query with bound parameters; nothing from outside is ever spliced into SQL. */
  query<Row extends pg.QueryResultRow>(query: Query<Row>, params: unknown[] = []): Promise<Row[]> {
    return run(this.pool, this.log, query, params);
  }

  /**
   * Run `fn` in one transaction on one connection: committed if it resolves, rolled back if it
   * throws (and the error rethrown).
   */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const tx = new Transaction(client, this.log);
    // A connection whose ROLLBACK failed is dropped, not pooled: after the driver's own timeout
    // the server may still be inside the transaction, with its locks and its local settings.
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async end(): Promise<void> {
    await this.pool.end();
  }
}

/** Queries inside `Postgres.transaction`. */
export class Transaction {
  constructor(
    private readonly client: pg.PoolClient,
    private readonly log: Logger,
  ) {}

  query<Row extends pg.QueryResultRow>(query: Query<Row>, params: unknown[] = []): Promise<Row[]> {
    return run(this.client, this.log, query, params);
  }

  /**
   * Try `fn` behind a savepoint: if it fails, its effects are undone and the transaction goes on.
   * For optional steps (a setting or a privilege not every role has). Resolves to whether it ran.
   */
  async attempt(fn: () => Promise<unknown>): Promise<boolean> {
    await this.client.query('SAVEPOINT attempt');
    try {
      await fn();
      await this.client.query('RELEASE SAVEPOINT attempt');
      return true;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'optional step skipped');
      await this.client.query('ROLLBACK TO SAVEPOINT attempt');
      return false;
    }
  }
}

async function run<Row extends pg.QueryResultRow>(
  runner: pg.Pool | pg.PoolClient,
  log: Logger,
  query: Query<Row>,
  params: unknown[],
): Promise<Row[]> {
  const started = performance.now();
  try {
    const result = await runner.query<Row>({ name: query.name, text: query.text, values: params });
    log.trace({ query: query.name, rows: result.rowCount, ms: performance.now() - started });
    return result.rows;
  } catch (err) {
    throw new QueryError(query.name, err);
  }
}

export class QueryError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly queryName: string,
    cause: unknown,
  ) {
    const message = cause instanceof Error ? cause.message : String(cause);
    super(`query ${queryName} failed: ${message}`, { cause });
    this.name = 'QueryError';
    this.code = (cause as { code?: string } | null)?.code;
  }
}
