-- Notifications name the transaction that sent them ("x": its xid8, as text), so the syncer can
-- tell which transactions its live path has already queued and skip them when it polls; without
-- that, every live edit was read and indexed a second time by the next poll pass.
CREATE OR REPLACE FUNCTION etl.notify_keys(tbl text, op text, field text, keys uuid[], more boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF keys IS NULL OR cardinality(keys) = 0 THEN
        RETURN;
    END IF;
    IF more OR cardinality(keys) > 100 THEN
        PERFORM pg_notify('etl_changes', json_build_object(
            't', tbl, 'op', op, 'many', true, 'x', pg_current_xact_id()::text)::text);
    ELSE
        PERFORM pg_notify('etl_changes', json_build_object(
            't', tbl, 'op', op, field, keys, 'x', pg_current_xact_id()::text)::text);
    END IF;
END
$$;
