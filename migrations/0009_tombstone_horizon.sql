-- How far tombstones were pruned, for every deployment that reads this database.
--
-- A syncer prunes tombstones older than a day that its own watermarks have read past
-- (src/capture/poller.ts, pruneTombstones). Another deployment on the same database (its own
-- Redis or REDIS_PREFIX, its own indices: a second cluster, a move to a new one) may not have read
-- them yet: stopped for more than a day, it would find the deletions gone and keep their documents
-- for good. So the pruning records the newest transaction whose tombstone it removed, and a poll
-- pass whose tombstone watermark is not past it loads every index again (the load's sweep deletes
-- the documents of rows that are gone).
CREATE TABLE IF NOT EXISTS etl.tombstone_horizon (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- The newest etl_txid of a pruned tombstone ('0': none pruned yet).
    pruned_up_to xid8    NOT NULL DEFAULT '0'
);
INSERT INTO etl.tombstone_horizon DEFAULT VALUES ON CONFLICT DO NOTHING;
-- Read by every poll pass, as whatever role the syncer is; moved by the pruning syncer's role
-- (README, Security).
GRANT SELECT ON etl.tombstone_horizon TO PUBLIC;
