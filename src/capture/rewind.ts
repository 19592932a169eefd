/**
 * A database that went back in time: restored from a backup, a standby promoted before it had
 * replayed everything, the catalog moved to another server by dump and restore. PostgreSQL's
 * transaction counter then stands below what this deployment already saw, which breaks two things
 * that rely on it only growing:
 *  - the poller's watermarks are ahead of it, so every row the new timeline writes looks already
 *    read, and the tombstone pruning would delete tombstones not read yet;
 *  - the versions in the index are ahead of every read, so Elasticsearch refuses each write as
 *    stale (409), which is how a late, older read is meant to end: the edit is dropped silently.
 *
 * The first pass that sees it (the watermarks' xmax above the server's) recovers: it raises the
 * version base (migrations/0008_version_base.sql) past every version the index can hold, forgets
 * the watermarks' epoch and loads every index again. The load rewrites every document with a
 * version that wins, sweeps the documents of rows this timeline does not have, and sets new
 * watermarks. Each step can be repeated, so a crash halfway through is recovered by the next
 * pass: the base is raised first, and a base already raised is recognised (xmax plus base above
 * the watermarks'), the watermarks still ahead reset all the same.
 *
 * What it cannot see: a rewind that Redis forgot too (no watermarks left to compare): the load
 * that follows any Redis loss then writes below the index's versions. `npm run reindex` builds
 * indices afresh, with no versions to beat.
 */
import type { Snapshot } from '../queue/watermarks.js';

/**
 * Headroom above the highest version the watermarks recorded: reads can be a little ahead of the
 * last pass's snapshot (they run between passes), by far fewer transactions than this. Versions
 * stay below Elasticsearch's limit (2^63) for thousands of rewinds: (xmax + base) * 2^16 < 2^63.
 */
export const REWIND_HEADROOM = 2n ** 32n;

export interface Rewind {
  /** How far the server's counter is behind the furthest watermark (transactions); 0 if not. */
  behindBy: bigint;
  /** The version base that puts every new read above what the index holds; null when in force. */
  raiseBaseTo: bigint | null;
}

/**
 * Whether `now` (the server's snapshot) is behind the recorded watermarks, in its counter or in
 * its versions (the counter plus the base: a database restored with an older base), and what
 * to do; null when neither.
 */
export function rewindOf(now: Snapshot, marks: Iterable<Snapshot | null>): Rewind | null {
  const xmax = BigInt(now.xmax);
  const base = BigInt(now.base ?? '0');
  let furthest = -1n;
  let furthestVersion = -1n;
  for (const mark of marks) {
    if (!mark) continue;
    const markXmax = BigInt(mark.xmax);
    if (markXmax > furthest) furthest = markXmax;
    const reached = markXmax + BigInt(mark.base ?? '0');
    if (reached > furthestVersion) furthestVersion = reached;
  }
  const behindBy = furthest > xmax ? furthest - xmax : 0n;
  // Raised already (a recovery interrupted after this step): the load is what is left to do.
  const raiseBaseTo =
    xmax + base >= furthestVersion ? null : furthestVersion - xmax + REWIND_HEADROOM;
  return behindBy === 0n && raiseBaseTo === null ? null : { behindBy, raiseBaseTo };
}
