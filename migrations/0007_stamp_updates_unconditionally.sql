-- The row stamp of an UPDATE, without a WHEN clause.
--
-- Since 0005 one BEFORE INSERT OR UPDATE trigger per table stamped rows that did not carry the
-- writing transaction's id already. An INSERT needs that test: its rows carry the column's default,
-- so the function is skipped. An UPDATE nearly never does: its rows carry the id of whichever
-- transaction wrote them last, so the test passed and the function ran anyway. The test was not
-- free: PostgreSQL reads a trigger's WHEN expression from the catalog and prepares it again at
-- every statement. Counted in CPU instructions (README, "Writer overhead, counted"): an editor's
-- transaction (an UPDATE, an INSERT and a DELETE) cost 1.580 million instructions with the WHEN on
-- the UPDATE, 1.551 million without it; 1.218 million with no triggers at all.
--
-- Same result for every row: when the WHEN was false (a second UPDATE of a row in one transaction,
-- or a writer setting etl_txid to its own transaction's id), the function now sets the same id, and
-- `modified` only when the UPDATE left it as it was, to now(), which is one value for the whole
-- transaction (the first UPDATE already set it).
DO $$
DECLARE
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['film_work', 'genre', 'person'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS etl_stamp ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_stamp BEFORE INSERT ON content.%I FOR EACH ROW
                        WHEN (NEW.etl_txid IS DISTINCT FROM pg_current_xact_id()
                              OR NEW.created IS NULL OR NEW.modified IS NULL)
                        EXECUTE FUNCTION etl.stamp_row_modified()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_stamp_update ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_stamp_update BEFORE UPDATE ON content.%I FOR EACH ROW
                        EXECUTE FUNCTION etl.stamp_row_modified()', tbl);
    END LOOP;
    FOREACH tbl IN ARRAY ARRAY['genre_film_work', 'person_film_work'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS etl_stamp ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_stamp BEFORE INSERT ON content.%I FOR EACH ROW
                        WHEN (NEW.etl_txid IS DISTINCT FROM pg_current_xact_id())
                        EXECUTE FUNCTION etl.stamp_row()', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS etl_stamp_update ON content.%I', tbl);
        EXECUTE format('CREATE TRIGGER etl_stamp_update BEFORE UPDATE ON content.%I FOR EACH ROW
                        EXECUTE FUNCTION etl.stamp_row()', tbl);
    END LOOP;
END
$$;
