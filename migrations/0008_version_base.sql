-- Versions that survive a database that went back in time.
--
-- Every document is written to Elasticsearch with an external version made of the reading
-- snapshot's transaction counter (src/sql/queries.ts, SNAPSHOT_VERSION), so that a read that lands
-- late never overwrites a newer one. That counter only grows, except when the database itself goes
-- back: restored from a backup (point in time or not), a standby promoted that had not replayed
-- everything, the catalog moved to another server by dump and restore. Then every read is "older"
-- than what the index holds, Elasticsearch refuses each write as stale, and edits vanish; and the
-- poller's watermarks, ahead of the counter, skip the new timeline's rows.
--
-- The base is added to the counter in every version. The syncer notices a counter below what its
-- watermarks saw (src/capture/rewind.ts), raises the base past every version the index may hold,
-- and loads every index again: the new reads win, and documents of rows this timeline does not
-- have are swept. It lives here, beside the data, so that every reader (syncers, `npm run
-- reindex`, `npm run verify`) adds the same base to the snapshot it reads in the same statement.
CREATE TABLE IF NOT EXISTS etl.version_base (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    base bigint  NOT NULL DEFAULT 0 CHECK (base >= 0)
);
INSERT INTO etl.version_base DEFAULT VALUES ON CONFLICT DO NOTHING;
-- Read by every document query, as whatever role the syncer is; raised by the syncer's role
-- (README, Security).
GRANT SELECT ON etl.version_base TO PUBLIC;
