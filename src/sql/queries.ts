/**
 * All SQL the program runs, each a named constant. `Postgres.query` is the only thing that runs
 * them; parameters are always bound ($1, $2 ...), never spliced in.
 */
import { esDate, esFloat } from './esValues.js';

export interface Query<Row> {
  readonly name: string;
  readonly text: string;
  /** Phantom field: carries the row type, never set. */
  readonly row?: Row;
}

export const query = <Row>(name: string, text: string): Query<Row> => ({ name, text });

/**
 * A keyset-paged query in its two forms (src/db/keysetPages.ts): `{after}` in `text` stands for
 * the cursor condition, which the first page leaves out (TRUE) and later pages fill in. Its
 * parameters must be numbered after the query's own.
 */
export const keyset = <Row>(name: string, text: string, afterCondition: string) => ({
  first: query<Row>(`${name}_first`, text.replaceAll('{after}', 'TRUE')),
  after: query<Row>(name, text.replaceAll('{after}', afterCondition)),
});

// --- migrations -------------------------------------------------------------------------------

/** Serialises migrators across processes; released when the session ends, even on a crash. */
export const takeMigrationLock = query<Record<string, never>>(
  'take_migration_lock',
  `SELECT pg_advisory_lock(hashtext('movies_etl.migrate'))`,
);

/** As takeMigrationLock, without waiting: false while another migrator holds it. */
export const tryMigrationLock = query<{ taken: boolean }>(
  'try_migration_lock',
  `SELECT pg_try_advisory_lock(hashtext('movies_etl.migrate')) AS taken`,
);

/** Who holds the migration lock (a bigint key is split over classid and objid in pg_locks). */
export const migrationLockHolders = query<{ pid: number; application: string }>(
  'migration_lock_holders',
  `SELECT a.pid, a.application_name AS application
     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext('movies_etl.migrate')::bigint
    ORDER BY a.pid`,
);

export const releaseMigrationLock = query<Record<string, never>>(
  'release_migration_lock',
  `SELECT pg_advisory_unlock(hashtext('movies_etl.migrate'))`,
);

export const createMigrationLedger = query<Record<string, never>>(
  'create_migration_ledger',
  `CREATE SCHEMA IF NOT EXISTS etl;
   CREATE TABLE IF NOT EXISTS etl.schema_migrations (
     version    text PRIMARY KEY,
     name       text NOT NULL,
     checksum   text NOT NULL,
     applied_at timestamptz NOT NULL DEFAULT now()
   )`,
);

export const appliedMigrations = query<{ version: string; name: string; checksum: string }>(
  'applied_migrations',
  `SELECT version, name, checksum FROM etl.schema_migrations ORDER BY version`,
);

export const recordMigration = query<Record<string, never>>(
  'record_migration',
  `INSERT INTO etl.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
);

// --- listener ---------------------------------------------------------------------------------

/** End a listener session we abandoned (half-open); only ever one of ours. */
export const endAbandonedListener = query<{ ended: boolean }>(
  'end_abandoned_listener',
  `SELECT pg_terminate_backend(pid) AS ended
     FROM pg_stat_activity
    WHERE pid = $1 AND application_name = 'movies-etl listener'`,
);

// --- change capture: polling ------------------------------------------------------------------

/**
 * How far tombstones were pruned, '0' before any prune: read by currentSnapshot, and again once a
 * pass has read the tombstones (tombstoneHorizon).
 */
const PRUNED_UP_TO = `coalesce((SELECT pruned_up_to::text FROM etl.tombstone_horizon), '0')`;

/**
 * Every trigger the migrations put on the catalog's tables (as of 0012), as `(table, trigger)`
 * SQL rows: a table missing any of them does not capture every change. A migration that adds,
 * drops or renames one changes this list.
 */
const CAPTURE_TRIGGERS = [
  ...['film_work', 'genre', 'person'].map((table) => [table, 'etl_capture_rekey'] as const),
  ...['genre_film_work', 'person_film_work'].map((table) => [table, 'etl_capture_move'] as const),
  ...['film_work', 'genre', 'person', 'genre_film_work', 'person_film_work'].flatMap((table) =>
    [
      'etl_capture_delete',
      'etl_capture_insert',
      'etl_capture_truncate',
      'etl_capture_update',
      'etl_stamp',
      'etl_stamp_update',
    ].map((trigger) => [table, trigger] as const),
  ),
]
  .map(([table, trigger]) => `('${table}', '${trigger}')`)
  .join(', ');

/**
 * The snapshot the poller's watermark is made of. Every transaction below xmin has ended; those in
 * xip were still running; those at or above xmax had not ended (nor, maybe, begun). `at` is for
 * people (lag).
 */
export const currentSnapshot = query<{
  xmin: string;
  xmax: string;
  xip: string[];
  at: Date;
  awake: boolean;
  base: string;
  system: string;
  timeline: string;
  started: string;
  checkpoint_next_xid: string;
  checkpoint_at: string;
  relations: string;
  uncaptured: string | null;
  pruned: string;
}>(
  'current_snapshot',
  // `awake`: whether writers still see the doorbell's awake window open (src/capture/doorbell.ts).
  `SELECT pg_snapshot_xmin(s)::text AS xmin,
          pg_snapshot_xmax(s)::text AS xmax,
          coalesce((SELECT array_agg(x::text) FROM pg_snapshot_xip(s) x), '{}') AS xip,
          now() AS at,
          -- bool_or: not an error on the two rows a restore that could not make the key leaves.
          coalesce((SELECT bool_or(awake_until > clock_timestamp()) FROM etl.doorbell), false)
            AS awake,
          coalesce((SELECT base FROM etl.version_base), 0)::text AS base,
          -- Which server and which of its histories (src/capture/rewind.ts): a cluster made anew
          -- (dump and restore) has another identifier, a promoted standby or a point-in-time
          -- restore another timeline (the first 8 hex digits of a WAL file's name).
          (SELECT system_identifier::text FROM pg_control_system()) AS system,
          substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS timeline,
          -- Which run of the server, and its latest checkpoint: when it began, and the first
          -- transaction id it would give out (src/capture/rewind.ts). After a crash, that is the
          -- checkpoint that ended the recovery, and its id where the ids lost with the WAL's
          -- unflushed tail are given out again. (Times as seconds: the text of a time depends on
          -- the session's time zone.)
          extract(epoch FROM pg_postmaster_start_time())::text AS started,
          c.checkpoint_next_xid,
          c.checkpoint_at,
          -- Which database and which tables (src/capture/rewind.ts): a backup restored in place
          -- (pg_restore --clean) or into another database makes them anew, and then the
          -- capture's triggers, after the rows: new object ids, on the same server and history.
          (SELECT d.oid::text FROM pg_database d WHERE d.datname = current_database())
            || ':' || coalesce((
              SELECT string_agg(c.oid::text || coalesce('/' || (
                       SELECT string_agg(t.oid::text, '/' ORDER BY t.oid)
                         FROM pg_trigger t
                        WHERE t.tgrelid = c.oid AND starts_with(t.tgname, 'etl_')), ''),
                     ',' ORDER BY c.relname)
                FROM pg_class c
               WHERE c.relnamespace = 'content'::regnamespace
                 AND c.relname IN ('film_work', 'genre', 'person', 'genre_film_work',
                                   'person_film_work')), '') AS relations,
          -- The catalog's tables that lack any of the capture's triggers (or are not there at
          -- all): a restore under way (pg_restore makes the triggers one by one, after the
          -- rows), one dropped by hand, or no migration.
          (SELECT string_agg(DISTINCT name, ', ' ORDER BY name)
             FROM (VALUES ${CAPTURE_TRIGGERS}) AS expected (name, trigger)
            WHERE NOT EXISTS (
                    SELECT 1 FROM pg_class c JOIN pg_trigger t ON t.tgrelid = c.oid
                     WHERE c.relnamespace = to_regnamespace('content') AND c.relname = name
                       AND t.tgname = trigger)) AS uncaptured,
          -- How far tombstones were pruned (migrations/0009_tombstone_horizon.sql).
          ${PRUNED_UP_TO} AS pruned
     FROM pg_current_snapshot() s,
          LATERAL (SELECT (split_part(next_xid, ':', 1)::numeric * 4294967296
                           + split_part(next_xid, ':', 2)::numeric)::text AS checkpoint_next_xid,
                          extract(epoch FROM checkpoint_time)::text AS checkpoint_at
                     FROM pg_control_checkpoint()) c`,
);

/** Which database this is, for the claim on the Redis prefix (src/queue/deploymentClaim.ts). */
export const databaseIdentity = query<{ database: string; system: string; oid: string }>(
  'database_identity',
  `SELECT current_database() AS database,
          (SELECT system_identifier::text FROM pg_control_system()) AS system,
          (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS oid`,
);

// --- change capture: the doorbell (migrations/0005_doorbell.sql) ------------------------------

/** A listener is there until $1 ms from now: writers may ring. Returns whether the row exists. */
export const doorbellListening = query<{ id: boolean }>(
  'doorbell_listening',
  `UPDATE etl.doorbell
      SET listening_until = greatest(listening_until, clock_timestamp() + $1 * interval '1 ms')
    RETURNING id`,
);

/** A syncer polls back to back for $1 ms from now: writers need not ring meanwhile. */
export const doorbellAwake = query<{ id: boolean }>(
  'doorbell_awake',
  `UPDATE etl.doorbell
      SET awake_until = greatest(awake_until, clock_timestamp() + $1 * interval '1 ms')
    RETURNING id`,
);

/**
 * A transaction id given out now, for settling's reference (src/capture/pollCadence.ts): above the
 * id of every writer that looked at the doorbell before. Once per wake-up. Taken by an update of
 * the doorbell's row that changes nothing, committed synchronously whatever the role's setting,
 * not by `SELECT pg_current_xact_id()` alone: a transaction that writes no WAL before its commit
 * record is committed without waiting for the flush, and a crash could then lose the id, which
 * PostgreSQL would give out again after the restart, below watermarks that had seen it end
 * (src/capture/rewind.ts). A data-modifying WITH runs whether or not the query reads it.
 */
export const newTransactionId = query<{ txid: string }>(
  'new_transaction_id',
  `WITH touched AS (UPDATE etl.doorbell SET awake_until = awake_until)
   SELECT pg_current_xact_id()::text AS txid, set_config('synchronous_commit', 'on', true)`,
);

/** The same without writing (no row, or no UPDATE granted): the id may be lost in a crash. */
export const bareTransactionId = query<{ txid: string }>(
  'bare_transaction_id',
  `SELECT pg_current_xact_id()::text AS txid`,
);

/**
 * A syncer stops: writers ring again at once rather than when its window lapses. Another syncer
 * that is awake re-opens it within a fraction of a second; meanwhile writers only notify.
 */
export const doorbellClose = query<{ id: boolean }>(
  'doorbell_close',
  `UPDATE etl.doorbell SET awake_until = least(awake_until, clock_timestamp()) RETURNING id`,
);

/**
 * The doorbell's row, put back if someone deleted it (only then is INSERT needed); not while the
 * table has no primary key. `pg_restore` makes the table without it, loads the rows, then makes
 * the key: a row put back in between would stand beside the restored one and the key could not be
 * made (an outside fuzzer found every poll pass failing on two rows after such a restore).
 */
export const restoreDoorbell = query<Record<string, never>>(
  'restore_doorbell',
  `INSERT INTO etl.doorbell
   SELECT WHERE EXISTS (SELECT 1 FROM pg_constraint
                         WHERE conrelid = 'etl.doorbell'::regclass AND contype = 'p')
   ON CONFLICT DO NOTHING`,
);

/** A changed row's keys: the film, person and genre it names (null where it names none). */
export interface ChangedRow {
  txid: string;
  key: string;
  film: string | null;
  person: string | null;
  genre: string | null;
}

/**
 * Rows of one table written by transactions the previous watermark could not see yet (those at or
 * above its xmax, and those that were in progress: xip) and that this pass's snapshot sees (below
 * its xmax, not in its xip). Keyset-paged on (etl_txid, key).
 * $1 xmin, $2 xmax, $3 xip (all of the previous watermark), $4 the page size, $5 xmax and $6 xip
 * of this pass's snapshot; after the first page, $7/$8 the cursor.
 *
 * Two ranges of the (etl_txid, key) index, each read in order and merged: from the previous xmax
 * up, and the previous xip's few ids. One range from the previous xmin (as before) walked every
 * row version written since the oldest transaction open in the whole cluster began, at every
 * pass: with one left open for ten minutes under steady edits, hundreds of thousands of index
 * entries every 25 ms, to keep a handful (test/capture/openTransactionCost.test.ts).
 *
 * The upper bound makes each committed change one pass's: the pages are read after the snapshot,
 * so a transaction committing in between has rows to read, but the watermark (the snapshot) does
 * not see it, and the next pass reads it again. Without the bound, every edit committed during a
 * pass was indexed twice, which back-to-back passes (the live path under steady edits) made common.
 */
function changedRows(
  name: string,
  table: string,
  key: string,
  names: { film?: string; person?: string; genre?: string },
) {
  const column = (expr: string | undefined) => (expr ? `${expr}::text` : 'NULL::text');
  const range = (where: string, after: string) =>
    `(SELECT etl_txid, ${key} AS k, ${column(names.film)} AS film,
             ${column(names.person)} AS person, ${column(names.genre)} AS genre
        FROM ${table}
       WHERE ${where}
         AND etl_txid < $5::xid8 AND NOT etl_txid = ANY ($6::xid8[])
         AND ${after}
       ORDER BY etl_txid, ${key}
       LIMIT $4)`;
  const text = (after: string, xipAfter: string) =>
    `SELECT etl_txid::text AS txid, k::text AS key, film, person, genre
       FROM (${range('etl_txid >= $2::xid8', after)}
             UNION ALL
             ${range('etl_txid = ANY ($3::xid8[]) AND etl_txid >= $1::xid8 AND etl_txid < $2::xid8', xipAfter)}
            ) changed
      ORDER BY etl_txid, k
      LIMIT $4`;
  const after = `(etl_txid, ${key}) > ($7::xid8, $8::uuid)`;
  return {
    first: query<ChangedRow>(`${name}_first`, text('TRUE', 'TRUE')),
    // A cursor past the previous xmax is past every id of its xip: that range is skipped whole (a
    // condition on parameters alone is tested once), not walked from its start to the cursor.
    after: query<ChangedRow>(name, text(after, `${after} AND $7::xid8 < $2::xid8`)),
  };
}

export const changedRowsByTable = {
  film_work: changedRows('changed_film_work', 'content.film_work', 'id', { film: 'id' }),
  genre: changedRows('changed_genre', 'content.genre', 'id', { genre: 'id' }),
  person: changedRows('changed_person', 'content.person', 'id', { person: 'id' }),
  genre_film_work: changedRows('changed_genre_film_work', 'content.genre_film_work', 'id', {
    film: 'film_work_id',
    genre: 'genre_id',
  }),
  person_film_work: changedRows('changed_person_film_work', 'content.person_film_work', 'id', {
    film: 'film_work_id',
    person: 'person_id',
  }),
  film_tombstone: changedRows('changed_film_tombstone', 'etl.film_tombstone', 'film_id', {
    film: 'film_id',
  }),
  person_tombstone: changedRows('changed_person_tombstone', 'etl.person_tombstone', 'person_id', {
    person: 'person_id',
  }),
  genre_tombstone: changedRows('changed_genre_tombstone', 'etl.genre_tombstone', 'genre_id', {
    genre: 'genre_id',
  }),
} as const;

export type PolledTable = keyof typeof changedRowsByTable;

/** Truncations since the watermark (few rows ever; no paging). */
export const truncationsSince = query<{ table_name: string }>(
  'truncations_since',
  `SELECT DISTINCT table_name FROM etl.truncation
    WHERE etl_txid >= $1::xid8 AND (etl_txid >= $2::xid8 OR etl_txid = ANY ($3::xid8[]))`,
);

/** Every film, keyset-paged by id: the full load, verify, reindex. $1 page size, $2 cursor. */
export const filmIdPages = keyset<{ id: string }>(
  'film_ids',
  // Ordered by the uuid column, not the text alias: sorting text would sort the rest of the table.
  `SELECT f.id::text AS id FROM content.film_work f WHERE {after} ORDER BY f.id LIMIT $1`,
  'f.id > $2::uuid',
);

export const countFilms = query<{ count: number }>(
  'count_films',
  `SELECT count(*) AS count FROM content.film_work`,
);

/** The planner's estimate: instant on any size, good enough for progress. */
export const estimateFilms = query<{ count: number }>(
  'estimate_films',
  `SELECT greatest(reltuples, 0)::bigint AS count FROM pg_class WHERE oid = 'content.film_work'::regclass`,
);

/** Which of these ids are films (the orphan sweep deletes documents of the others). */
export const existingFilmIds = query<{ id: string }>(
  'existing_film_ids',
  `SELECT id::text AS id FROM content.film_work WHERE id = ANY ($1::uuid[])`,
);

/**
 * Tombstones every watermark has passed are no longer needed; a day's margin for stragglers.
 * $1 the oldest xmin of the three tombstone watermarks.
 */
/** How far tombstones were pruned (migrations/0009_tombstone_horizon.sql). */
export const tombstoneHorizon = query<{ pruned: string }>(
  'tombstone_horizon',
  `SELECT ${PRUNED_UP_TO} AS pruned`,
);

/** A tombstone horizon of another history (Poller.snapshotNow): one of this one is below. */
export const dropForeignHorizon = query<Record<string, never>>(
  'drop_foreign_horizon',
  `UPDATE etl.tombstone_horizon SET pruned_up_to = '0'
    WHERE pruned_up_to >= pg_snapshot_xmax(pg_current_snapshot())`,
);

export const pruneTombstones = query<Record<string, never>>(
  'prune_tombstones',
  // The newest transaction pruned is recorded for other deployments on this database
  // (migrations/0009_tombstone_horizon.sql). A horizon past this server's counter is another
  // history's (a dump restored elsewhere): replaced, not kept by greatest() (the passes drop it
  // as soon as they see it: sql.dropForeignHorizon).
  `WITH films AS (
     DELETE FROM etl.film_tombstone WHERE etl_txid < $1::xid8 AND created < now() - interval '1 day'
     RETURNING etl_txid
   ), persons AS (
     DELETE FROM etl.person_tombstone WHERE etl_txid < $1::xid8 AND created < now() - interval '1 day'
     RETURNING etl_txid
   ), genres AS (
     DELETE FROM etl.genre_tombstone WHERE etl_txid < $1::xid8 AND created < now() - interval '1 day'
     RETURNING etl_txid
   ), pruned AS (
     SELECT max(etl_txid) AS txid
       FROM (SELECT etl_txid FROM films UNION ALL SELECT etl_txid FROM persons
             UNION ALL SELECT etl_txid FROM genres) t
   )
   UPDATE etl.tombstone_horizon h
      SET pruned_up_to = CASE WHEN h.pruned_up_to >= pg_snapshot_xmax(pg_current_snapshot())
                              THEN p.txid ELSE greatest(h.pruned_up_to, p.txid) END
     FROM pruned p
    WHERE p.txid IS NOT NULL`,
);

// --- change capture: resolution ---------------------------------------------------------------

/**
 * Films linked to some persons or genres, keyset-paged by film id. $1 the person or genre ids,
 * $2 the page size; after the first page, $3 the cursor. Sorted by the uuid itself: sorting the
 * text would be slow.
 */
function filmsOf(name: string, links: string, key: string) {
  return keyset<{ id: string }>(
    name,
    `SELECT film_work_id::text AS id
       FROM (SELECT DISTINCT film_work_id
               FROM ${links}
              WHERE ${key} = ANY ($1::uuid[]) AND {after}
              ORDER BY film_work_id
              LIMIT $2) films`,
    'film_work_id > $3::uuid',
  );
}

export const filmsOfPersons = filmsOf('films_of_persons', 'content.person_film_work', 'person_id');
export const filmsOfGenres = filmsOf('films_of_genres', 'content.genre_film_work', 'genre_id');

// --- extract ----------------------------------------------------------------------------------

/**
 * The read's version for Elasticsearch's external versioning, from this statement's snapshot:
 * xmax only grows, and while it stands still the in-progress list only shrinks, so a later
 * snapshot never gets a smaller number, and an equal number means it sees the same data. Every
 * document query selects it (`version` column of a `snap` CTE). The version base is added to xmax:
 * raised once the database went back in time (migrations/0008_version_base.sql), it keeps the new
 * timeline's reads above everything the index holds.
 */
export const SNAPSHOT_VERSION = `SELECT ((pg_snapshot_xmax(s)::text::numeric
               + coalesce((SELECT base FROM etl.version_base), 0)) * 65536
             + 65535 - least(65535, (SELECT count(*) FROM pg_snapshot_xip(s))))::text AS version
       FROM pg_current_snapshot() s`;

/** The version a document read now would carry (a document that cannot be read: its letter). */
export const snapshotVersion = query<{ version: string }>('snapshot_version', SNAPSHOT_VERSION);

/**
 * For the rest of the transaction only: a statement timeout of $1 ms, and no waiting for a lock
 * (src/extract/extractor.ts, the probe after a read ran out of time).
 */
export const probeBounds = query<Record<string, never>>(
  'probe_bounds',
  `SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', '1', true)`,
);

/** Raise the version base to at least $1 (src/capture/rewind.ts); returns the base in force. */
export const raiseVersionBase = query<{ base: string }>(
  'raise_version_base',
  `UPDATE etl.version_base SET base = greatest(base, $1::bigint) RETURNING base::text AS base`,
);

/** A document query's rows: the document as JSON text, or null when its row is gone. */
export interface DocumentRow {
  id: string;
  version: string;
  /** The document as JSON text (any line break in it is whitespace; the extractor drops it). */
  doc: string | null;
}

/**
 * The one big query: the Elasticsearch documents of some films, built in SQL, ready to index.
 * Films that no longer exist are simply absent (the loader deletes their documents).
 *
 * `version` (SNAPSHOT_VERSION) orders reads for Elasticsearch's external versioning, so a stale
 * read that lands late is refused instead of overwriting a newer one.
 */
export const filmDocuments = query<DocumentRow>(
  'film_documents',
  // People and genres are aggregated per film once (GROUP BY), then joined: a correlated subquery
  // per field would rescan every film's rows for every film (quadratic in the batch size).
  `WITH snap AS (${SNAPSHOT_VERSION}),
   requested AS (
     SELECT DISTINCT unnest($1::uuid[]) AS id
   ),
   people AS (
     SELECT pfw.film_work_id AS film_id,
            json_agg(json_build_object('id', p.id, 'name', p.full_name) ORDER BY p.full_name, p.id)
              FILTER (WHERE pfw.role = 'director') AS directors,
            json_agg(p.full_name ORDER BY p.full_name, p.id) FILTER (WHERE pfw.role = 'director') AS directors_names,
            json_agg(json_build_object('id', p.id, 'name', p.full_name) ORDER BY p.full_name, p.id)
              FILTER (WHERE pfw.role = 'actor') AS actors,
            json_agg(p.full_name ORDER BY p.full_name, p.id) FILTER (WHERE pfw.role = 'actor') AS actors_names,
            json_agg(json_build_object('id', p.id, 'name', p.full_name) ORDER BY p.full_name, p.id)
              FILTER (WHERE pfw.role = 'writer') AS writers,
            json_agg(p.full_name ORDER BY p.full_name, p.id) FILTER (WHERE pfw.role = 'writer') AS writers_names
       FROM content.person_film_work pfw
       JOIN content.person p ON p.id = pfw.person_id
      WHERE pfw.film_work_id = ANY ($1::uuid[]) AND pfw.role IN ('director', 'actor', 'writer')
      GROUP BY pfw.film_work_id
   ),
   genres AS (
     SELECT gfw.film_work_id AS film_id,
            json_agg(json_build_object('id', g.id, 'name', g.name) ORDER BY g.name, g.id) AS genres,
            json_agg(g.name ORDER BY g.name, g.id) AS genres_names
       FROM content.genre_film_work gfw
       JOIN content.genre g ON g.id = gfw.genre_id
      WHERE gfw.film_work_id = ANY ($1::uuid[])
      GROUP BY gfw.film_work_id
   )
   SELECT r.id::text AS id,
          (SELECT version FROM snap) AS version,
          -- Text, not json: the loader splices it into the bulk body as it is, never parsing it.
          CASE WHEN f.id IS NOT NULL THEN json_build_object(
            'id', f.id,
            'title', f.title,
            'description', f.description,
            'imdb_rating', ${esFloat('f.rating')},
            'type', f.type,
            'creation_date', ${esDate('f.creation_date')},
            'genres', coalesce(g.genres, '[]'::json),
            'genres_names', coalesce(g.genres_names, '[]'::json),
            'directors', coalesce(pe.directors, '[]'::json),
            'directors_names', coalesce(pe.directors_names, '[]'::json),
            'actors', coalesce(pe.actors, '[]'::json),
            'actors_names', coalesce(pe.actors_names, '[]'::json),
            'writers', coalesce(pe.writers, '[]'::json),
            'writers_names', coalesce(pe.writers_names, '[]'::json)
          )::text END AS doc
     FROM requested r
     LEFT JOIN content.film_work f ON f.id = r.id
     LEFT JOIN people pe ON pe.film_id = r.id
     LEFT JOIN genres g ON g.film_id = r.id`,
);
