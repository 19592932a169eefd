/**
 * Which failures are worth retrying. The retry policies read this table; anything not listed is
 * permanent and surfaces (a dead letter for a document, a clear exit for configuration).
 */

/** SQLSTATEs that a retry can cure: serialization, deadlock, shutdown/restart, connection loss. */
const TRANSIENT_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, in recovery)
  '53300', // too_many_connections
  '08000', // connection_exception
  '08003', // connection_does_not_exist
  '08006', // connection_failure
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
]);

/** Node socket errors: the other side went away or never answered. */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/** Errors known by message only: pg's lost connections, ioredis's timeouts and closed connections. */
const TRANSIENT_MESSAGES =
  /Connection terminated|connection timeout|Client has encountered a connection error|Command timed out|Connection is closed/i;

/** HTTP statuses from Elasticsearch that mean "not now", not "never". */
export function isTransientStatus(status: number | undefined): boolean {
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

/** The HTTP status of an Elasticsearch client error (`ResponseError`); undefined for any other. */
export function httpStatusOf(err: unknown): number | undefined {
  return (err as { meta?: { statusCode?: number } } | null)?.meta?.statusCode;
}

/**
 * What to tell a person of an error: its message, and for an Elasticsearch error answer its HTTP
 * status too. An answer with an empty body (a proxy's 404 for a wrong path, a 502) has an empty
 * message, which said nothing; a page of HTML (some other server on that port) is cut short.
 */
export function describeError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const status = httpStatusOf(err);
  if (status === undefined) return message;
  const said = message.trim() === '' ? 'an empty answer' : message.replace(/\s+/g, ' ');
  return `HTTP ${status}: ${said.length > 300 ? `${said.slice(0, 300)}…` : said}`;
}

/** The `error` of an Elasticsearch error answer's body, if it has one. */
function answerError(err: unknown): { type?: unknown; reason?: unknown } | undefined {
  const body = (err as { meta?: { body?: unknown } } | null)?.meta?.body;
  return (body as { error?: { type?: unknown; reason?: unknown } } | null)?.error;
}

/** The reason an Elasticsearch error answer gives (`error.reason` of its body); undefined if none. */
export function errorReasonOf(err: unknown): string | undefined {
  const reason = answerError(err)?.reason;
  return typeof reason === 'string' ? reason : undefined;
}

/** The type of an Elasticsearch error answer (`index_not_found_exception`); undefined if none. */
export function errorTypeOf(err: unknown): string | undefined {
  const type = answerError(err)?.type;
  return typeof type === 'string' ? type : undefined;
}

export function isTransientError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (
    typeof code === 'string' &&
    (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_NETWORK_CODES.has(code))
  ) {
    return true;
  }
  // @elastic/transport: ConnectionError, TimeoutError, NoLivingConnectionsError; ResponseError has a status.
  if (['ConnectionError', 'TimeoutError', 'NoLivingConnectionsError'].includes(err.name))
    return true;
  if (err.name === 'ResponseError') return isTransientStatus(httpStatusOf(err));
  if (TRANSIENT_MESSAGES.test(err.message)) return true;
  return err.cause !== undefined && isTransientError(err.cause);
}

/**
 * SQLSTATE classes of an error a document's own data causes, which no retry cures: data exceptions
 * (22: a value out of range, an invalid cast), program limits (54: a value past a size limit),
 * errors raised by functions and policies the query runs (P0, 2F, 38, 39), and internal errors
 * (XX: XX001 data_corrupted, XX002 index_corrupted, e.g. a TOAST value missing a chunk). Not the
 * classes that say the database is unwell or misconfigured (resources, operator intervention such
 * as a statement timeout, permissions, a missing table): those hold for every document, and the
 * claim is retried instead.
 */
const DOCUMENT_ERROR_CLASSES = new Set(['22', '54', 'P0', '2F', '38', '39', 'XX']);

/** Whether a PostgreSQL error is one that a document's data can cause (see above). */
export function isDocumentError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    err instanceof Error &&
    typeof code === 'string' &&
    code.length === 5 &&
    DOCUMENT_ERROR_CLASSES.has(code.slice(0, 2))
  );
}

/**
 * Whether PostgreSQL cancelled a query at its `statement_timeout` (57014, which an operator's
 * `pg_cancel_backend` also raises, with another message). Not the driver's own backstop
 * (src/db/postgres.ts): that one fires when the server did not answer at all, or when the bound
 * never reached it (behind a pooler), and the query may still be running there.
 */
export function isStatementTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && code === '57014' && /statement timeout/i.test(err.message);
}
