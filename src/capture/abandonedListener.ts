/**
 * A listener session we gave up on (half-open: the socket looked alive, heartbeats went
 * unanswered) may linger in Postgres holding its LISTEN; ending it keeps pg_stat_activity honest
 * and the notification queue drained. Only ever a session of ours (by application_name and pid).
 */
import type { Postgres } from '../db/postgres.js';
import type { Logger } from '../logger.js';
import * as sql from '../sql/queries.js';

export async function endAbandonedListener(db: Postgres, pid: number, log: Logger): Promise<void> {
  try {
    const [row] = await db.query(sql.endAbandonedListener, [pid]);
    if (row?.ended) log.info({ pid }, 'ended the abandoned listener session');
  } catch (err) {
    log.warn({ pid, err: (err as Error).message }, 'could not end the abandoned listener session');
  }
}
