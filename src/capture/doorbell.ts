/**
 * The syncer's side of the doorbell (migrations/0005_doorbell.sql): it tells writers whether a
 * notification is worth sending. A notifying commit holds a cluster-wide lock through its WAL
 * flush, so under a steady stream of edits the notifications, not the capture, are what slows the
 * writers; while this syncer polls back to back they are not needed.
 *
 * Two leases on one row, both against the server's clock:
 *  - listening_until: a listener is connected (refreshed with every heartbeat). Past it, nobody
 *    hears notifications, so writers send none; the start-up catch-up reads their changes.
 *  - awake_until: a syncer polls back to back until then (src/capture/pollCadence.ts). Writers send
 *    none; the next poll pass reads their changes.
 *
 * Neither can lose a change: notifications are hints, the record is in the tables. A failed update
 * here costs latency only, so failures are logged and the next call tries again.
 */
import type { Postgres } from '../db/postgres.js';
import type { Logger } from '../logger.js';
import * as sql from '../sql/queries.js';

/** Three listener heartbeats (5 s each): one missed heartbeat does not silence the writers. */
export const LISTENING_LEASE_MS = 15_000;

const CANNOT_UPDATE =
  'cannot update etl.doorbell (is UPDATE on it granted to this role?): writers may not notify, ' +
  'and changes are then seen by the poller only, every ETL_POLL_INTERVAL_MS';

export class Doorbell {
  private warned = false;
  /** When the last `listening()` that went through began (performance.now()); null before one. */
  private listenedFrom: number | null = null;

  constructor(
    private readonly db: Postgres,
    private readonly log: Logger,
  ) {}

  /**
   * A listener is connected: writers ring (when nobody is awake) for the next lease. True when the
   * lease may have run out before this call renewed it (the first call, or the last one that went
   * through began more than a lease ago, a second's margin for the clocks): writers that looked
   * meanwhile saw nobody listening and sent nothing, so the caller settles (changeCapture). False
   * when this call failed; the next one that goes through says whether the lease ran out.
   */
  async listening(): Promise<boolean> {
    const began = performance.now();
    if (!(await this.set(sql.doorbellListening, LISTENING_LEASE_MS))) return false;
    const last = this.listenedFrom;
    this.listenedFrom = began;
    return last === null || performance.now() - last > LISTENING_LEASE_MS - 1_000;
  }

  /** This syncer polls back to back for `ms`: writers need not ring meanwhile. */
  async awake(ms: number): Promise<void> {
    await this.set(sql.doorbellAwake, ms);
  }

  /** This syncer stops polling back to back: writers ring again. */
  async close(): Promise<void> {
    await this.set(sql.doorbellClose);
  }

  /**
   * A transaction id given out now: settling's reference (src/capture/pollCadence.ts). Without
   * UPDATE on the doorbell (or without its row) a bare one, which a crash may lose; null if even
   * that fails (settling then ends at its deadline). Never throws: a step that failed on it would
   * be retried before any pass, and settling would never end.
   */
  async newTransactionId(): Promise<string | null> {
    try {
      const [row] = await this.db.query(sql.newTransactionId);
      if (row) return row.txid;
    } catch (err) {
      this.warnOnce(CANNOT_UPDATE, (err as Error).message);
    }
    try {
      const [row] = await this.db.query(sql.bareTransactionId);
      return row?.txid ?? null;
    } catch {
      return null;
    }
  }

  /** True when the row was updated. */
  private async set(query: typeof sql.doorbellAwake, ms?: number): Promise<boolean> {
    const params = ms === undefined ? [] : [ms];
    try {
      if ((await this.db.query(query, params)).length === 0) {
        // Someone deleted the row: without it no writer ever rings.
        await this.db.query(sql.restoreDoorbell);
        if ((await this.db.query(query, params)).length === 0) {
          // Not put back while the table has no primary key (sql.restoreDoorbell): a restore
          // under way, which brings its own row; or the table made again without it.
          this.warnOnce(
            'etl.doorbell has no row, and none is put back while it has no primary key (a ' +
              'restore under way?): writers do not notify, and changes are seen by the poller ' +
              'only, every ETL_POLL_INTERVAL_MS',
          );
          return false;
        }
      }
      this.warned = false;
      return true;
    } catch (err) {
      this.warnOnce(CANNOT_UPDATE, (err as Error).message);
      return false;
    }
  }

  /** Once until an update works again: the heartbeat calls every 5 s. */
  private warnOnce(msg: string, err?: string): void {
    if (this.warned) return;
    this.warned = true;
    this.log.warn(err === undefined ? {} : { err }, msg);
  }
}
