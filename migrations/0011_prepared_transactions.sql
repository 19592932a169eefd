-- Writers that use two-phase commit (PREPARE TRANSACTION: an XA transaction manager, a job that
-- commits across two databases).
--
-- PostgreSQL refuses to prepare a transaction that has run NOTIFY. The capturing statements notify
-- whenever the doorbell rings (0005: a syncer listens and is asleep), so such a writer failed at
-- random, depending on the syncer's state; and a TRUNCATE notified always, so it could never be
-- prepared.
--
-- Now:
--   * a transaction that sets `etl.notify` to `off` (`SET LOCAL etl.notify = off`, before its first
--     write) sends nothing, as if the doorbell were silent: its rows are stamped and its deletions
--     leave tombstones as always, and the syncer reads them at its next poll pass (at most
--     ETL_POLL_INTERVAL_MS later while it sleeps) instead of being woken at the commit. Set after
--     a statement that rang, it changes nothing: once a transaction rang, it rings whole (0006);
--   * a TRUNCATE notifies only when the doorbell rings, like every other statement: a syncer
--     awake reads `etl.truncation` at its next pass anyway, and one starting reads it first.
CREATE OR REPLACE FUNCTION etl.doorbell_rings() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('etl.rang', true) = 'on' THEN
        RETURN true;
    END IF;
    IF current_setting('etl.notify', true) IS DISTINCT FROM 'off'
       AND EXISTS (SELECT 1 FROM etl.doorbell
                    WHERE listening_until > clock_timestamp() AND awake_until <= clock_timestamp()) THEN
        PERFORM set_config('etl.rang', 'on', true);
        RETURN true;
    END IF;
    IF current_setting('etl.silent', true) IS DISTINCT FROM 'on' THEN
        PERFORM set_config('etl.silent', 'on', true);
    END IF;
    RETURN false;
END
$$;

CREATE OR REPLACE FUNCTION etl.capture_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO etl.truncation (table_name) VALUES (TG_TABLE_NAME);
    IF etl.doorbell_rings() THEN
        PERFORM pg_notify('etl_changes', json_build_object('t', TG_TABLE_NAME, 'op', 'T')::text);
    END IF;
    RETURN NULL;
END
$$;
