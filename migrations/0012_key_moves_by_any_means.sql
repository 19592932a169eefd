-- A key moved by a BEFORE UPDATE trigger of the user's own leaves its tombstone too.
--
-- Since 0005 a row trigger writes a tombstone for the side a row left: `etl_capture_rekey` when a
-- film, person or genre gets another id, `etl_capture_move` when a link moves to another film,
-- person or genre. The passes read only the row as it is now, so that tombstone is all that says
-- the old side must be read again. Both were column triggers (`AFTER UPDATE OF id`, `AFTER UPDATE
-- OF film_work_id, person_id`), and PostgreSQL fires a column trigger only for columns the UPDATE
-- names in its SET list, not for those a BEFORE trigger changes: a trigger of the user's own that
-- redirected a link (`NEW.film_work_id := ...`) left no tombstone, and unless the statement
-- notified (the syncer asleep), the film the link left listed its person for good (an outside
-- fuzzer, reproduced).
--
-- They now fire for every UPDATE of their table and keep their WHEN test, which sees the row as
-- written. That test is read and prepared at every UPDATE statement of the table (a small part of
-- an editor's transaction; README, "Writer overhead, counted"), and evaluated per row, without a
-- function call unless a key moved.
DO $$
DECLARE
    tbl text;
    other text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['film_work', 'genre', 'person'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_rekey ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_rekey AFTER UPDATE ON content.%I
                        FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
                        EXECUTE FUNCTION etl.tombstone_rekeyed_row()', tbl);
    END LOOP;
    FOREACH tbl IN ARRAY ARRAY['genre_film_work', 'person_film_work'] LOOP
        other := CASE tbl WHEN 'person_film_work' THEN 'person_id' ELSE 'genre_id' END;
        EXECUTE format('DROP TRIGGER IF EXISTS etl_capture_move ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_capture_move AFTER UPDATE ON content.%I
                        FOR EACH ROW WHEN (OLD.film_work_id IS DISTINCT FROM NEW.film_work_id
                                           OR OLD.%I IS DISTINCT FROM NEW.%I)
                        EXECUTE FUNCTION etl.tombstone_moved_link()', tbl, other, other);
    END LOOP;
END
$$;
