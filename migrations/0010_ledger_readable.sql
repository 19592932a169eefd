-- The migration ledger, readable by every role.
--
-- A syncer refuses to start while a migration is pending, naming it (src/sync/daemon.ts): its
-- queries expect the schema the migrations build. The README's least-privilege role could not read
-- the ledger, so for it the check was skipped, and a syncer upgraded before `npm run migrate`
-- started and failed every poll pass on what the missing migration adds. The ledger holds the
-- migrations' names and checksums, nothing of the catalog. (From this migration on: a database
-- that lacks it is checked only by roles that could read the ledger before.)
GRANT SELECT ON etl.schema_migrations TO PUBLIC;
