-- Writers at full speed: the doorbell, and capture work only where a statement needs it.
--
-- 1. The doorbell. A notifying transaction takes a cluster-wide lock at commit and holds it through
--    the WAL flush, so notifying commits go one at a time and lose group commit: under a steady
--    stream of edits the notifications cost the writers more than all the rest of the capture.
--    But a notification is only a hint that makes the syncer look sooner; the durable record is the
--    etl_txid stamp and the tombstones, which every write still leaves. So a writer notifies only
--    when the hint is of use:
--      * nobody home (no syncer's listener said it is there within its lease): no notification;
--        the syncer's start-up catch-up reads the change whenever it starts;
--      * asleep (a syncer listens and polls every ETL_POLL_INTERVAL_MS): the writer notifies;
--      * awake (a syncer heard a ring or found changes, and polls back to back until awake_until):
--        no notification; the next pass reads the change within milliseconds.
--    What can go wrong, and why it only costs time: a writer that saw "awake" may commit after
--    the syncer's window closed. The syncer keeps polling back to back until every transaction
--    running when the window closed has ended (src/capture/pollCadence.ts), at most
--    ETL_POLL_INTERVAL_MS; the periodic pass reads anything later. A syncer that dies while awake
--    leaves its window to lapse within a second. Writers and syncers use the server's clock.
-- 2. Cheaper capture, same record:
--    * etl_txid defaults to the writing transaction, and the stamping row triggers run only when
--      a row does not carry it already (an UPDATE, a copied row, created/modified left NULL), so a
--      plain INSERT calls no trigger function per row;
--    * statement triggers that only notify run only when the doorbell rings (their WHEN);
--    * a row whose key changed (a film's id, a link moved to another film or person) leaves its
--      tombstone from a row trigger on exactly those columns, instead of every UPDATE statement
--      comparing its transition tables;
--    * tombstones' `created` (read only by pruning, rows arrive in time order) gets a BRIN index
--      instead of a b-tree: nearly free to maintain.
CREATE TABLE IF NOT EXISTS etl.doorbell (
    id              boolean     PRIMARY KEY DEFAULT true CHECK (id),
    listening_until timestamptz NOT NULL DEFAULT '-infinity',
    awake_until     timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO etl.doorbell DEFAULT VALUES ON CONFLICT DO NOTHING;
-- Every writing statement reads it, as whatever role the writer is: two timestamps, no secret.
-- (Writers already needed USAGE on schema etl: the capture functions live there.)
GRANT SELECT ON etl.doorbell TO PUBLIC;

-- One read of a one-row table, no write: what a capturing statement adds when nobody must be rung.
CREATE OR REPLACE FUNCTION etl.doorbell_rings() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM etl.doorbell
                    WHERE listening_until > clock_timestamp() AND awake_until <= clock_timestamp());
END
$$;

-- Notifications of statements that only change rows in place (no tombstones to write).
CREATE OR REPLACE FUNCTION etl.notify_rows_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys uuid[];
    seen bigint;
BEGIN
    SELECT array_agg(DISTINCT id), count(*) INTO keys, seen
      FROM (SELECT id FROM new_rows UNION ALL SELECT id FROM old_rows LIMIT 1001) s;
    PERFORM etl.notify_keys(TG_TABLE_NAME, 'U', 'ids', keys, seen > 1000);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION etl.notify_links_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    films uuid[];
    others uuid[];
    seen bigint;
BEGIN
    IF TG_TABLE_NAME = 'person_film_work' THEN
        SELECT array_agg(DISTINCT film_work_id), array_agg(DISTINCT person_id), count(*)
          INTO films, others, seen
          FROM (SELECT film_work_id, person_id FROM new_rows
                UNION ALL SELECT film_work_id, person_id FROM old_rows LIMIT 1001) s;
        PERFORM etl.notify_links(TG_TABLE_NAME, 'U', films, 'persons', others, seen > 1000);
    ELSE
        SELECT array_agg(DISTINCT film_work_id), array_agg(DISTINCT genre_id), count(*)
          INTO films, others, seen
          FROM (SELECT film_work_id, genre_id FROM new_rows
                UNION ALL SELECT film_work_id, genre_id FROM old_rows LIMIT 1001) s;
        PERFORM etl.notify_links(TG_TABLE_NAME, 'U', films, 'genres', others, seen > 1000);
    END IF;
    RETURN NULL;
END
$$;

-- A row whose id changed lost its old document.
CREATE OR REPLACE FUNCTION etl.tombstone_rekeyed_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'film_work' THEN
        INSERT INTO etl.film_tombstone (film_id, source) VALUES (OLD.id, TG_TABLE_NAME);
    ELSIF TG_TABLE_NAME = 'person' THEN
        INSERT INTO etl.person_tombstone (person_id, source) VALUES (OLD.id, TG_TABLE_NAME);
    ELSE
        INSERT INTO etl.genre_tombstone (genre_id, source) VALUES (OLD.id, TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$$;

-- A link moved away from a film, person or genre: that side lost it, and polling only sees the
-- new row.
CREATE OR REPLACE FUNCTION etl.tombstone_moved_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.film_work_id IS DISTINCT FROM NEW.film_work_id THEN
        INSERT INTO etl.film_tombstone (film_id, source) VALUES (OLD.film_work_id, TG_TABLE_NAME);
    END IF;
    IF TG_TABLE_NAME = 'person_film_work' THEN
        INSERT INTO etl.person_tombstone (person_id, source) VALUES (OLD.person_id, TG_TABLE_NAME);
    ELSE
        INSERT INTO etl.genre_tombstone (genre_id, source) VALUES (OLD.genre_id, TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$$;

-- Deletes always leave their tombstones; the notification only when the doorbell rings.
CREATE OR REPLACE FUNCTION etl.capture_rows_old() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys uuid[];
    seen bigint;
BEGIN
    IF TG_TABLE_NAME = 'film_work' THEN
        INSERT INTO etl.film_tombstone (film_id, source) SELECT id, TG_TABLE_NAME FROM old_rows;
    ELSIF TG_TABLE_NAME = 'person' THEN
        INSERT INTO etl.person_tombstone (person_id, source) SELECT id, TG_TABLE_NAME FROM old_rows;
    ELSIF TG_TABLE_NAME = 'genre' THEN
        INSERT INTO etl.genre_tombstone (genre_id, source) SELECT id, TG_TABLE_NAME FROM old_rows;
    END IF;
    IF NOT etl.doorbell_rings() THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(DISTINCT id), count(*) INTO keys, seen
      FROM (SELECT id FROM old_rows LIMIT 1001) s;
    PERFORM etl.notify_keys(TG_TABLE_NAME, left(TG_OP, 1), 'ids', keys, seen > 1000);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION etl.capture_links_old() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    films uuid[];
    others uuid[];
    seen bigint;
BEGIN
    INSERT INTO etl.film_tombstone (film_id, source)
    SELECT DISTINCT film_work_id, TG_TABLE_NAME FROM old_rows;
    IF TG_TABLE_NAME = 'person_film_work' THEN
        INSERT INTO etl.person_tombstone (person_id, source)
        SELECT DISTINCT person_id, TG_TABLE_NAME FROM old_rows;
    ELSE
        INSERT INTO etl.genre_tombstone (genre_id, source)
        SELECT DISTINCT genre_id, TG_TABLE_NAME FROM old_rows;
    END IF;
    IF NOT etl.doorbell_rings() THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'person_film_work' THEN
        SELECT array_agg(DISTINCT film_work_id), array_agg(DISTINCT person_id), count(*)
          INTO films, others, seen FROM (SELECT film_work_id, person_id FROM old_rows LIMIT 1001) s;
        PERFORM etl.notify_links(TG_TABLE_NAME, 'D', films, 'persons', others, seen > 1000);
    ELSE
        SELECT array_agg(DISTINCT film_work_id), array_agg(DISTINCT genre_id), count(*)
          INTO films, others, seen FROM (SELECT film_work_id, genre_id FROM old_rows LIMIT 1001) s;
        PERFORM etl.notify_links(TG_TABLE_NAME, 'D', films, 'genres', others, seen > 1000);
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    tbl text;
    other text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['film_work', 'genre', 'person'] LOOP
        EXECUTE format('ALTER TABLE content.%I ALTER COLUMN etl_txid SET DEFAULT pg_current_xact_id()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_stamp ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_stamp BEFORE INSERT OR UPDATE ON content.%I FOR EACH ROW
                        WHEN (NEW.etl_txid IS DISTINCT FROM pg_current_xact_id()
                              OR NEW.created IS NULL OR NEW.modified IS NULL)
                        EXECUTE FUNCTION etl.stamp_row_modified()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_insert ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_insert AFTER INSERT ON content.%I
                        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                        WHEN (etl.doorbell_rings()) EXECUTE FUNCTION etl.capture_rows_new()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_update ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_update AFTER UPDATE ON content.%I
                        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
                        WHEN (etl.doorbell_rings()) EXECUTE FUNCTION etl.notify_rows_update()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_rekey ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_rekey AFTER UPDATE OF id ON content.%I
                        FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
                        EXECUTE FUNCTION etl.tombstone_rekeyed_row()', tbl);
    END LOOP;
    FOREACH tbl IN ARRAY ARRAY['genre_film_work', 'person_film_work'] LOOP
        other := CASE tbl WHEN 'person_film_work' THEN 'person_id' ELSE 'genre_id' END;
        EXECUTE format('ALTER TABLE content.%I ALTER COLUMN etl_txid SET DEFAULT pg_current_xact_id()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_stamp ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_stamp BEFORE INSERT OR UPDATE ON content.%I FOR EACH ROW
                        WHEN (NEW.etl_txid IS DISTINCT FROM pg_current_xact_id())
                        EXECUTE FUNCTION etl.stamp_row()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_insert ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_insert AFTER INSERT ON content.%I
                        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                        WHEN (etl.doorbell_rings()) EXECUTE FUNCTION etl.capture_links_new()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_update ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_update AFTER UPDATE ON content.%I
                        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
                        WHEN (etl.doorbell_rings()) EXECUTE FUNCTION etl.notify_links_update()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_move ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_move AFTER UPDATE OF film_work_id, %I ON content.%I
                        FOR EACH ROW WHEN (OLD.film_work_id IS DISTINCT FROM NEW.film_work_id
                                           OR OLD.%I IS DISTINCT FROM NEW.%I)
                        EXECUTE FUNCTION etl.tombstone_moved_link()', other, tbl, other, other);
    END LOOP;
END
$$;

DROP INDEX IF EXISTS etl.film_tombstone_created_idx;
DROP INDEX IF EXISTS etl.person_tombstone_created_idx;
DROP INDEX IF EXISTS etl.genre_tombstone_created_idx;
CREATE INDEX IF NOT EXISTS film_tombstone_created_brin ON etl.film_tombstone USING brin (created);
CREATE INDEX IF NOT EXISTS person_tombstone_created_brin ON etl.person_tombstone USING brin (created);
CREATE INDEX IF NOT EXISTS genre_tombstone_created_brin ON etl.genre_tombstone USING brin (created);
