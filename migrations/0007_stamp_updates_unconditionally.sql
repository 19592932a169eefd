-- The row stamp of an UPDATE, without a WHEN clause.
--
-- Since 0005 one BEFORE INSERT OR UPDATE trigger per table stamped rows that did not carry the
-- writing transaction's id already. An INSERT needs that test in its WHEN: its rows carry the
-- column's default, so the function is not even called. An UPDATE nearly never passes it: its rows
-- carry the id of whichever transaction wrote them last, so the function ran anyway, and the test
-- was not free: PostgreSQL reads a trigger's WHEN expression from the catalog and prepares it
-- again at every statement. Counted in CPU instructions (README, "Writer overhead, counted"), an
-- editor's transaction (an UPDATE, an INSERT and a DELETE) costs about 2 % less without it, a
-- tenth of what the capture adds.
--
-- The test moves into the function, where PL/pgSQL prepares it once per transaction: a row that
-- carries this transaction's id and both times (a second UPDATE of it in one transaction, or a
-- writer that set etl_txid itself) is left exactly as it is, as the WHEN left it. So a writer that
-- set `modified` itself and then updates the row again in the same transaction keeps its value.
-- The link tables' stamp only sets etl_txid, which is the same either way.
CREATE OR REPLACE FUNCTION etl.stamp_row_modified() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.etl_txid IS NOT DISTINCT FROM pg_current_xact_id()
       AND NEW.created IS NOT NULL AND NEW.modified IS NOT NULL THEN
        RETURN NEW;
    END IF;
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
