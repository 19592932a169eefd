/**
 * A database that went back in time: restored from a backup, a standby promoted before it had
 * replayed everything, the catalog moved to another server by dump and restore. PostgreSQL's
 * transaction counter then stands below what this deployment already saw, which breaks what
 * relies on it only growing:
 *  - the poller's watermarks are ahead of it, so every row the new history writes looks already
 *    read, and the tombstone pruning would delete tombstones not read yet;
 *  - the versions in the index are ahead of every read, so Elasticsearch refuses each write as
 *    stale (409), which is how a late, older read is meant to end: the edit is dropped silently;
 *  - transaction ids the live path heard are used again by other transactions, which a pass must
 *    not skip as heard.
 *
 * Two signs, either enough: the server is another one or on another history than the one the
 * watermarks were taken on (its system identifier or its timeline changed: a new cluster, a
 * promotion, a point-in-time restore), or its counter is behind the watermarks (a server that
 * says neither, a backup restored in place). The identity catches a standby promoted a few
 * transactions behind, whose counter is not behind the watermarks (they are the last pass's
 * snapshot, older than what the indexers read since) but behind what the index holds.
 *
 * A logical backup restored on the same server (`pg_restore --clean`, or into another database
 * the syncer is then pointed at) shows neither: the counter goes on ahead, while the rows come
 * back with the stamps they were dumped with, below the watermarks, and no trigger fires as they
 * load. The identity therefore also holds the object ids of the database, of the catalog's tables
 * and of the capture's triggers on them: a restore makes all of them anew, the triggers after the
 * rows, so the last change comes when every row is in. The cost: a migration that drops and
 * makes the capture's triggers again (rather than `CREATE OR REPLACE` them) brings one load more.
 *
 * The first pass that sees it recovers: it raises the version base
 * (migrations/0008_version_base.sql) past every version the index can hold, forgets what the live
 * path heard, and drops the epoch and the watermarks, so every index is loaded again under a new
 * epoch (a load begun on the old history can no longer record its progress). The load rewrites
 * every document with a version that wins, sweeps the documents of rows this history does not
 * have, and sets new watermarks. Each step can be repeated, so a crash halfway through is
 * recovered by the next pass. A failover that lost nothing (a synchronous standby) is recovered
 * the same way: a load more, nothing wrong.
 *
 * A crash can rewind the counter too, a little, with nothing else to show for it: a transaction
 * that writes no WAL before its commit record (one that only took an id), one that aborts, and
 * any under `synchronous_commit = off` end without waiting for their record to be flushed, and a
 * snapshot sees them ended at once. Killed before the WAL writer flushes them (the postmaster, or
 * any backend: the postmaster then resets and recovers without restarting), the server gives
 * their ids out again, and the edits made under them are below the watermarks and in none of
 * their in-progress ids. Writers take the counter past the watermarks within moments, often
 * before the syncer's first pass (it may be down too), so the sign is the server's latest
 * checkpoint: one surely begun after a watermark was taken (the server started since, or its
 * time, in whole seconds, is later) read the counter after it, so its next id is at or past the
 * watermark's xmax unless ids it saw end were lost. After a crash that checkpoint is the one that
 * ended the recovery, and its next id is where the lost ids are given out again.
 * What it misses: a checkpoint after that one (timed, every 5 minutes by default) before the
 * syncer's first pass, whose next id is past them again; a backend's crash within the second of
 * the syncer's last pass; and a commit under `synchronous_commit = off` that the crash lost below
 * an id that survived (not given out again): its documents stay as that lost commit left them
 * until the next edit of their rows, or `npm run verify -- --repair` (README, Guarantees).
 *
 * What it cannot see: a rewind that Redis forgot too (no watermarks left to compare): the load
 * that follows any Redis loss then writes below the index's versions. `npm run reindex` builds
 * indices afresh, with no versions to beat.
 */
import type { Snapshot } from '../queue/watermarks.js';

/**
 * Headroom above the highest version the watermarks recorded: the indexers read ahead of the last
 * pass's snapshot (a pass every few seconds, and none during a full load), by far fewer
 * transactions than this. Small enough to keep versions exact where they are numbers: versions
 * are exact while xmax plus base stays below 2^37 (JavaScript's and Lua's 2^53 over the version's
 * 2^16), which two thousand rewinds alone do not reach. xmax itself reaches it after some 137
 * billion transactions of the whole cluster (the counter is the cluster's, epochs included);
 * past that, two reads of one document whose snapshots differ by one open transaction can get one
 * version, and an older read that lands last is then taken (`external_gte`).
 */
export const REWIND_HEADROOM = 2n ** 26n;

export interface Rewind {
  /**
   * How far the server's counter is (or after its last start was) behind the furthest watermark
   * (transactions); 0 if not.
   */
  behindBy: bigint;
  /** A crash since some watermark (its recovery's checkpoint) gave out again ids it saw end. */
  lostInCrash: boolean;
  /** The server is another one, or on another history, than some watermark's. */
  otherHistory: boolean;
  /** The catalog's tables (or the database) were made anew since some watermark: a restore. */
  otherTables: boolean;
  /** The version base that puts every new read above what the index holds; null when in force. */
  raiseBaseTo: bigint | null;
  /** Whether every index must be loaded again (the watermarks belong to a lost history). */
  reload: boolean;
}

/** Whether `now` (the server's snapshot) is behind the recorded watermarks, and what to do. */
export function rewindOf(now: Snapshot, marks: Iterable<Snapshot | null>): Rewind | null {
  const xmax = BigInt(now.xmax);
  const base = BigInt(now.base ?? '0');
  let furthest = -1n;
  let furthestVersion = -1n;
  let otherHistory = false;
  let otherTables = false;
  let lostInCrash = false;
  // Where the counter stood after a crash that lost ids watermarks had seen end.
  let restartedAt = xmax;
  for (const mark of marks) {
    if (!mark) continue;
    const markXmax = BigInt(mark.xmax);
    if (markXmax > furthest) furthest = markXmax;
    const gaveOutFrom = checkpointAfter(mark, now);
    if (gaveOutFrom !== null && gaveOutFrom < markXmax) {
      lostInCrash = true;
      if (gaveOutFrom < restartedAt) restartedAt = gaveOutFrom;
    }
    const reached = markXmax + BigInt(mark.base ?? '0');
    if (reached > furthestVersion) furthestVersion = reached;
    // Recorded before 0.3 without them (the relations: earlier builds): only the counter can tell.
    if (differs(mark.system, now.system) || differs(mark.timeline, now.timeline))
      otherHistory = true;
    if (differs(mark.relations, now.relations)) otherTables = true;
  }
  const behindBy = furthest > restartedAt ? furthest - restartedAt : 0n;
  const lost = behindBy > 0n || otherHistory;
  const reload = lost || otherTables;
  // The index may hold versions a little past the watermarks (the indexers read ahead of the
  // last pass): on a lost history, and whenever the base is below what the watermarks were taken
  // with (restored with an older one), it is raised past them with the headroom. Tables made anew
  // on the same history need no raise: the counter went on, every new read is newer.
  const behind = lost
    ? xmax + base < furthestVersion + REWIND_HEADROOM
    : xmax + base < furthestVersion;
  const raiseBaseTo = behind ? furthestVersion + REWIND_HEADROOM - xmax : null;
  return reload || raiseBaseTo !== null
    ? { behindBy, lostInCrash, otherHistory, otherTables, raiseBaseTo, reload }
    : null;
}

/**
 * The first id the server's latest checkpoint would give out, when that checkpoint surely began
 * after `mark` was taken: it then read the counter after the watermark's snapshot, so it is at or
 * past the watermark's xmax unless a crash lost ids the watermark saw end. Surely after: the
 * server started since (a clean shutdown's checkpoint is past every id; a crash's ends its
 * recovery), or the checkpoint's time (whole seconds) is not before the watermark's (a backend
 * killed, whose crash recovery the postmaster runs without restarting). Null otherwise, or for a
 * watermark recorded without these.
 */
function checkpointAfter(mark: Snapshot, now: Snapshot): bigint | null {
  if (now.checkpointNextXid === undefined || mark.started === undefined) return null;
  const restarted = differs(mark.started, now.started);
  const later = Number(now.checkpointAt) * 1000 > Date.parse(mark.at);
  return restarted || later ? BigInt(now.checkpointNextXid) : null;
}

function differs(recorded: string | undefined, now: string | undefined): boolean {
  return recorded !== undefined && now !== undefined && recorded !== now;
}
