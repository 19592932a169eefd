-- Change capture for the persons and genres indices (contract.md section 2b).
--
-- * etl.person_tombstone, etl.genre_tombstone: like etl.film_tombstone, a durable trace of persons
--   and genres that lost rows (deleted, or a link to a film deleted or moved away), since polling
--   cannot see a row that is gone.
-- * Link notifications name both sides: the films ("films") and the persons ("persons") or genres
--   ("genres") of the changed links. Still one message per statement, still keys only; the two
--   lists together hold at most 100 keys (8,000 bytes is the NOTIFY limit), else "many".
CREATE TABLE IF NOT EXISTS etl.person_tombstone (
    person_id uuid        NOT NULL,
    etl_txid  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    source    text        NOT NULL,
    created   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS person_tombstone_etl_txid_idx ON etl.person_tombstone (etl_txid, person_id);
CREATE INDEX IF NOT EXISTS person_tombstone_created_idx ON etl.person_tombstone (created);

CREATE TABLE IF NOT EXISTS etl.genre_tombstone (
    genre_id uuid        NOT NULL,
    etl_txid xid8        NOT NULL DEFAULT pg_current_xact_id(),
    source   text        NOT NULL,
    created  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS genre_tombstone_etl_txid_idx ON etl.genre_tombstone (etl_txid, genre_id);
CREATE INDEX IF NOT EXISTS genre_tombstone_created_idx ON etl.genre_tombstone (created);

-- A person's films, and a film's persons, for the fan-out (keyset-paged by the other side's id).
-- (film_work_id, person_id, role) is already unique, so a film's persons need no new index.

-- One message for a link statement: both sides' keys when there are at most 100 together.
CREATE OR REPLACE FUNCTION etl.notify_links(
    tbl text, op text, films uuid[], other_field text, others uuid[], more boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF films IS NULL OR cardinality(films) = 0 THEN
        RETURN;
    END IF;
    IF more OR cardinality(films) + coalesce(cardinality(others), 0) > 100 THEN
        PERFORM pg_notify('etl_changes', json_build_object(
            't', tbl, 'op', op, 'many', true, 'x', pg_current_xact_id()::text)::text);
    ELSE
        PERFORM pg_notify('etl_changes', json_build_object(
            't', tbl, 'op', op, 'films', films, other_field, coalesce(others, '{}'),
            'x', pg_current_xact_id()::text)::text);
    END IF;
END
$$;

-- Deleted rows of the main tables: each table keeps its own tombstones.
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
    -- A row whose id changed lost its old document.
    IF TG_TABLE_NAME = 'film_work' THEN
        INSERT INTO etl.film_tombstone (film_id, source)
        SELECT o.id, TG_TABLE_NAME FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id);
    ELSIF TG_TABLE_NAME = 'person' THEN
        INSERT INTO etl.person_tombstone (person_id, source)
        SELECT o.id, TG_TABLE_NAME FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id);
    ELSIF TG_TABLE_NAME = 'genre' THEN
        INSERT INTO etl.genre_tombstone (genre_id, source)
        SELECT o.id, TG_TABLE_NAME FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id);
    END IF;
    SELECT array_agg(DISTINCT id), count(*) INTO keys, seen
      FROM (SELECT id FROM new_rows UNION ALL SELECT id FROM old_rows LIMIT 1001) s;
    PERFORM etl.notify_keys(TG_TABLE_NAME, 'U', 'ids', keys, seen > 1000);
    RETURN NULL;
END
$$;

-- Link tables. Static SQL per table (no EXECUTE): these run in every writer's transaction, and a
-- dynamic statement would be planned again each time.
CREATE OR REPLACE FUNCTION etl.capture_links_new() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    films uuid[];
    others uuid[];
    seen bigint;
BEGIN
    IF TG_TABLE_NAME = 'person_film_work' THEN
        SELECT array_agg(DISTINCT film_work_id), array_agg(DISTINCT person_id), count(*)
          INTO films, others, seen FROM (SELECT film_work_id, person_id FROM new_rows LIMIT 1001) s;
        PERFORM etl.notify_links(TG_TABLE_NAME, 'I', films, 'persons', others, seen > 1000);
    ELSE
        SELECT array_agg(DISTINCT film_work_id), array_agg(DISTINCT genre_id), count(*)
          INTO films, others, seen FROM (SELECT film_work_id, genre_id FROM new_rows LIMIT 1001) s;
        PERFORM etl.notify_links(TG_TABLE_NAME, 'I', films, 'genres', others, seen > 1000);
    END IF;
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
        SELECT array_agg(DISTINCT film_work_id), array_agg(DISTINCT person_id), count(*)
          INTO films, others, seen FROM (SELECT film_work_id, person_id FROM old_rows LIMIT 1001) s;
        PERFORM etl.notify_links(TG_TABLE_NAME, 'D', films, 'persons', others, seen > 1000);
    ELSE
        INSERT INTO etl.genre_tombstone (genre_id, source)
        SELECT DISTINCT genre_id, TG_TABLE_NAME FROM old_rows;
        SELECT array_agg(DISTINCT film_work_id), array_agg(DISTINCT genre_id), count(*)
          INTO films, others, seen FROM (SELECT film_work_id, genre_id FROM old_rows LIMIT 1001) s;
        PERFORM etl.notify_links(TG_TABLE_NAME, 'D', films, 'genres', others, seen > 1000);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION etl.capture_links_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    films uuid[];
    others uuid[];
    seen bigint;
BEGIN
    -- A link moved away from a film, person or genre: that side lost it, and polling only sees
    -- the new row.
    INSERT INTO etl.film_tombstone (film_id, source)
    SELECT DISTINCT o.film_work_id, TG_TABLE_NAME
      FROM old_rows o JOIN new_rows n ON n.id = o.id
     WHERE n.film_work_id IS DISTINCT FROM o.film_work_id;
    IF TG_TABLE_NAME = 'person_film_work' THEN
        INSERT INTO etl.person_tombstone (person_id, source)
        SELECT DISTINCT o.person_id, TG_TABLE_NAME
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE n.person_id IS DISTINCT FROM o.person_id OR n.film_work_id IS DISTINCT FROM o.film_work_id;
        SELECT array_agg(DISTINCT film_work_id), array_agg(DISTINCT person_id), count(*)
          INTO films, others, seen
          FROM (SELECT film_work_id, person_id FROM new_rows
                UNION ALL SELECT film_work_id, person_id FROM old_rows LIMIT 1001) s;
        PERFORM etl.notify_links(TG_TABLE_NAME, 'U', films, 'persons', others, seen > 1000);
    ELSE
        INSERT INTO etl.genre_tombstone (genre_id, source)
        SELECT DISTINCT o.genre_id, TG_TABLE_NAME
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE n.genre_id IS DISTINCT FROM o.genre_id OR n.film_work_id IS DISTINCT FROM o.film_work_id;
        SELECT array_agg(DISTINCT film_work_id), array_agg(DISTINCT genre_id), count(*)
          INTO films, others, seen
          FROM (SELECT film_work_id, genre_id FROM new_rows
                UNION ALL SELECT film_work_id, genre_id FROM old_rows LIMIT 1001) s;
        PERFORM etl.notify_links(TG_TABLE_NAME, 'U', films, 'genres', others, seen > 1000);
    END IF;
    RETURN NULL;
END
$$;
