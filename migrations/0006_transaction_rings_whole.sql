-- A transaction's messages list every key it changed, or say they do not.
--
-- The doorbell (0005) is read again by every capturing statement, so one transaction could ring for
-- some statements and stay silent for others: the syncer woke up or fell asleep between them, or
-- started listening in the middle of it. A syncer that heard such a transaction while asleep took
-- its messages for the whole of it, queued their keys, and let the poll pass skip the transaction's
-- rows (src/capture/handledTransactions.ts): the silent statements' rows were then never read.
--
-- Now, within one transaction (transaction-local settings, undone with a rolled-back savepoint
-- together with the rows they describe):
--   * once a statement rang, every later capturing statement rings too, whatever the doorbell says
--     by then, so the messages list what followed;
--   * once a statement stayed silent, every message after it says `many` (keys not listed in
--     full), which the syncer answers with a poll pass that reads the transaction's rows itself.
-- Both only cost time: one more message on a commit that notifies anyway, or a pass instead of
-- the listed keys.
CREATE OR REPLACE FUNCTION etl.doorbell_rings() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('etl.rang', true) = 'on' THEN
        RETURN true;
    END IF;
    IF EXISTS (SELECT 1 FROM etl.doorbell
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

-- Whether an earlier statement of this transaction sent nothing (see above).
CREATE OR REPLACE FUNCTION etl.keys_incomplete() RETURNS boolean LANGUAGE sql AS $$
    SELECT current_setting('etl.silent', true) IS NOT DISTINCT FROM 'on'
$$;

CREATE OR REPLACE FUNCTION etl.notify_keys(tbl text, op text, field text, keys uuid[], more boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF keys IS NULL OR cardinality(keys) = 0 THEN
        RETURN;
    END IF;
    IF more OR cardinality(keys) > 100 OR etl.keys_incomplete() THEN
        PERFORM pg_notify('etl_changes', json_build_object(
            't', tbl, 'op', op, 'many', true, 'x', pg_current_xact_id()::text)::text);
    ELSE
        PERFORM pg_notify('etl_changes', json_build_object(
            't', tbl, 'op', op, field, keys, 'x', pg_current_xact_id()::text)::text);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION etl.notify_links(
    tbl text, op text, films uuid[], other_field text, others uuid[], more boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF films IS NULL OR cardinality(films) = 0 THEN
        RETURN;
    END IF;
    IF more OR cardinality(films) + coalesce(cardinality(others), 0) > 100
       OR etl.keys_incomplete() THEN
        PERFORM pg_notify('etl_changes', json_build_object(
            't', tbl, 'op', op, 'many', true, 'x', pg_current_xact_id()::text)::text);
    ELSE
        PERFORM pg_notify('etl_changes', json_build_object(
            't', tbl, 'op', op, 'films', films, other_field, coalesce(others, '{}'),
            'x', pg_current_xact_id()::text)::text);
    END IF;
END
$$;
