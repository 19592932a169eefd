-- Change capture: what the syncer needs to see every write, live and after downtime.
--
-- * etl_txid on every catalog table: the id of the transaction that last wrote the row. The poller
--   keeps a snapshot watermark (xmin, xmax, in-progress list) per table and re-reads exactly the
--   transactions that were not yet visible, so a transaction that commits late is never skipped
--   (the timestamp race that loses rows in JDBC pollers).
-- * modified kept current by a trigger, also for plain SQL that does not set it.
-- * etl.film_tombstone: a durable trace of films that lost rows (film deleted, link deleted or
--   moved, links cascaded away with a person or genre), since polling cannot see a row that is gone.
-- * etl.truncation: TRUNCATE fires no row triggers; the syncer answers it with a full resync.
-- * NOTIFY etl_changes, one small message per statement: the changed keys when there are few, just
--   the table name when there are many (the syncer then polls that table). Never rows, never more
--   than one message per statement, so a 100,000-row UPDATE sends one notification.
CREATE SCHEMA IF NOT EXISTS etl;

ALTER TABLE content.film_work ADD COLUMN IF NOT EXISTS etl_txid xid8;
ALTER TABLE content.genre ADD COLUMN IF NOT EXISTS etl_txid xid8;
ALTER TABLE content.person ADD COLUMN IF NOT EXISTS etl_txid xid8;
ALTER TABLE content.genre_film_work ADD COLUMN IF NOT EXISTS etl_txid xid8;
ALTER TABLE content.person_film_work ADD COLUMN IF NOT EXISTS etl_txid xid8;

-- Keyset order of the poller: (etl_txid, id). Rows written before this migration have NULL and are
-- covered by the full load that runs when no watermark exists.
CREATE INDEX IF NOT EXISTS film_work_etl_txid_idx ON content.film_work (etl_txid, id);
CREATE INDEX IF NOT EXISTS genre_etl_txid_idx ON content.genre (etl_txid, id);
CREATE INDEX IF NOT EXISTS person_etl_txid_idx ON content.person (etl_txid, id);
CREATE INDEX IF NOT EXISTS genre_film_work_etl_txid_idx ON content.genre_film_work (etl_txid, id);
CREATE INDEX IF NOT EXISTS person_film_work_etl_txid_idx ON content.person_film_work (etl_txid, id);
-- Resolution of a person's or a genre's films, keyset-paged by film id.
CREATE INDEX IF NOT EXISTS person_film_work_person_film_idx
    ON content.person_film_work (person_id, film_work_id);
CREATE INDEX IF NOT EXISTS genre_film_work_genre_film_idx
    ON content.genre_film_work (genre_id, film_work_id);

CREATE TABLE IF NOT EXISTS etl.film_tombstone (
    film_id  uuid        NOT NULL,
    etl_txid xid8        NOT NULL DEFAULT pg_current_xact_id(),
    source   text        NOT NULL,
    created  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS film_tombstone_etl_txid_idx ON etl.film_tombstone (etl_txid, film_id);
CREATE INDEX IF NOT EXISTS film_tombstone_created_idx ON etl.film_tombstone (created);

CREATE TABLE IF NOT EXISTS etl.truncation (
    table_name text        NOT NULL,
    etl_txid   xid8        NOT NULL DEFAULT pg_current_xact_id(),
    created    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS truncation_etl_txid_idx ON etl.truncation (etl_txid);

-- BEFORE row triggers: stamp the writing transaction, keep modified current. A writer that sets
-- modified itself keeps its value; one that leaves it alone gets now().
CREATE OR REPLACE FUNCTION etl.stamp_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.etl_txid := pg_current_xact_id();
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION etl.stamp_row_modified() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.etl_txid := pg_current_xact_id();
    IF TG_OP = 'INSERT' THEN
        NEW.created := coalesce(NEW.created, now());
        NEW.modified := coalesce(NEW.modified, now());
    ELSIF NEW.modified IS NOT DISTINCT FROM OLD.modified THEN
        NEW.modified := now();
    END IF;
    RETURN NEW;
END
$$;

-- Send one message for a statement: the keys when there are at most 100, else only the table.
-- Reads at most 1001 keys from the transition table whatever the statement's size.
CREATE OR REPLACE FUNCTION etl.notify_keys(tbl text, op text, field text, keys uuid[], more boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF keys IS NULL OR cardinality(keys) = 0 THEN
        RETURN;
    END IF;
    IF more OR cardinality(keys) > 100 THEN
        PERFORM pg_notify('etl_changes', json_build_object('t', tbl, 'op', op, 'many', true)::text);
    ELSE
        PERFORM pg_notify('etl_changes', json_build_object('t', tbl, 'op', op, field, keys)::text);
    END IF;
END
$$;

-- AFTER statement triggers on the main tables (film_work, genre, person): the changed row ids.
CREATE OR REPLACE FUNCTION etl.capture_rows_new() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys uuid[];
    seen bigint;
BEGIN
    SELECT array_agg(DISTINCT id), count(*) INTO keys, seen
      FROM (SELECT id FROM new_rows LIMIT 1001) s;
    PERFORM etl.notify_keys(TG_TABLE_NAME, left(TG_OP, 1), 'ids', keys, seen > 1000);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION etl.capture_rows_old() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys uuid[];
    seen bigint;
BEGIN
    IF TG_TABLE_NAME = 'film_work' THEN
        INSERT INTO etl.film_tombstone (film_id, source) SELECT id, TG_TABLE_NAME FROM old_rows;
    END IF;
    SELECT array_agg(DISTINCT id), count(*) INTO keys, seen
      FROM (SELECT id FROM old_rows LIMIT 1001) s;
    PERFORM etl.notify_keys(TG_TABLE_NAME, left(TG_OP, 1), 'ids', keys, seen > 1000);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION etl.capture_rows_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys uuid[];
    seen bigint;
BEGIN
    -- A film whose id changed lost its old document.
    IF TG_TABLE_NAME = 'film_work' THEN
        INSERT INTO etl.film_tombstone (film_id, source)
        SELECT o.id, TG_TABLE_NAME FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id);
    END IF;
    SELECT array_agg(DISTINCT id), count(*) INTO keys, seen
      FROM (SELECT id FROM new_rows UNION ALL SELECT id FROM old_rows LIMIT 1001) s;
    PERFORM etl.notify_keys(TG_TABLE_NAME, 'U', 'ids', keys, seen > 1000);
    RETURN NULL;
END
$$;

-- AFTER statement triggers on the link tables: the films whose documents changed.
CREATE OR REPLACE FUNCTION etl.capture_links_new() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys uuid[];
    seen bigint;
BEGIN
    SELECT array_agg(DISTINCT film_work_id), count(*) INTO keys, seen
      FROM (SELECT film_work_id FROM new_rows LIMIT 1001) s;
    PERFORM etl.notify_keys(TG_TABLE_NAME, 'I', 'films', keys, seen > 1000);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION etl.capture_links_old() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys uuid[];
    seen bigint;
BEGIN
    INSERT INTO etl.film_tombstone (film_id, source)
    SELECT DISTINCT film_work_id, TG_TABLE_NAME FROM old_rows;
    SELECT array_agg(DISTINCT film_work_id), count(*) INTO keys, seen
      FROM (SELECT film_work_id FROM old_rows LIMIT 1001) s;
    PERFORM etl.notify_keys(TG_TABLE_NAME, 'D', 'films', keys, seen > 1000);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION etl.capture_links_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys uuid[];
    seen bigint;
BEGIN
    -- A link moved to another film: the old film lost it, and polling only sees the new row.
    INSERT INTO etl.film_tombstone (film_id, source)
    SELECT DISTINCT o.film_work_id, TG_TABLE_NAME
      FROM old_rows o JOIN new_rows n ON n.id = o.id
     WHERE n.film_work_id IS DISTINCT FROM o.film_work_id;
    SELECT array_agg(DISTINCT film_work_id), count(*) INTO keys, seen
      FROM (SELECT film_work_id FROM new_rows UNION ALL SELECT film_work_id FROM old_rows LIMIT 1001) s;
    PERFORM etl.notify_keys(TG_TABLE_NAME, 'U', 'films', keys, seen > 1000);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION etl.capture_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO etl.truncation (table_name) VALUES (TG_TABLE_NAME);
    PERFORM pg_notify('etl_changes', json_build_object('t', TG_TABLE_NAME, 'op', 'T')::text);
    RETURN NULL;
END
$$;

DO $$
DECLARE
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['film_work', 'genre', 'person'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS etl_stamp ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_stamp BEFORE INSERT OR UPDATE ON content.%I
                        FOR EACH ROW EXECUTE FUNCTION etl.stamp_row_modified()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_insert ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_insert AFTER INSERT ON content.%I
                        REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION etl.capture_rows_new()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_update ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_update AFTER UPDATE ON content.%I
                        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION etl.capture_rows_update()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_delete ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_delete AFTER DELETE ON content.%I
                        REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION etl.capture_rows_old()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_truncate ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_truncate AFTER TRUNCATE ON content.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION etl.capture_truncate()', tbl);
    END LOOP;
    FOREACH tbl IN ARRAY ARRAY['genre_film_work', 'person_film_work'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS etl_stamp ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_stamp BEFORE INSERT OR UPDATE ON content.%I
                        FOR EACH ROW EXECUTE FUNCTION etl.stamp_row()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_insert ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_insert AFTER INSERT ON content.%I
                        REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION etl.capture_links_new()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_update ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_update AFTER UPDATE ON content.%I
                        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION etl.capture_links_update()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_delete ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_delete AFTER DELETE ON content.%I
                        REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION etl.capture_links_old()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_truncate ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_truncate AFTER TRUNCATE ON content.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION etl.capture_truncate()', tbl);
    END LOOP;
END
$$;
