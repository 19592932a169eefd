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

export class Postgres {
  readonly pool: pg.Pool;

  constructor(
    connectionString: string,
    private readonly log: Logger,
    max = 4,
  ) {
    this.pool = new pg.Pool({
      connectionString,
      max,
      application_name: 'movies-etl',
      // A dead server or a half-open socket must fail a query, not hang the loop that awaits it.
      connectionTimeoutMillis: 10_000,
      query_timeout: 15_000,
      keepAlive: true,
    });
    // An idle client that loses its connection emits here; without a listener it would crash the
    // process. The pool replaces the client on the next checkout.
    this.pool.on('error', (err) =>
      this.log.warn({ err: err.message }, 'idle postgres client failed'),
    );
  }

  /** Run one named query with bound parameters; nothing from outside is ever spliced into SQL. */
  async query<Row extends pg.QueryResultRow>(
    query: Query<Row>,
    params: unknown[] = [],
  ): Promise<Row[]> {
    const started = performance.now();
    try {
      const result = await this.pool.query<Row>({
        name: query.name,
        text: query.text,
        values: params,
      });
      this.log.trace({ query: query.name, rows: result.rowCount, ms: performance.now() - started });
      return result.rows;
    } catch (err) {
      throw new QueryError(query.name, err);
    }
  }

  async end(): Promise<void> {
    await this.pool.end();
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
