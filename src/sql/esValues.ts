/**
 * SQL for values PostgreSQL holds and an Elasticsearch field cannot: one such field makes
 * Elasticsearch refuse the whole document, and a film's rating is in the documents of all its
 * people too. The contract gives these fields as "or null", so such a value is null.
 */

/** Largest 32-bit float: the mapping's `float` turns anything beyond it into Infinity, refused. */
const FLOAT_MAX = '3.4028234663852886e38';

/** A `float` column, null when NaN, infinite or beyond a 32-bit float (NaN compares greatest). */
export const esFloat = (column: string): string =>
  `CASE WHEN abs(${column}) <= ${FLOAT_MAX} THEN ${column} END`;

/**
 * A `date` column, null outside years 1-9999: the `date` field reads four-digit years only, and
 * PostgreSQL writes `infinity`, `0044-03-15 BC` and `12000-01-01` as they are.
 */
export const esDate = (column: string): string =>
  `CASE WHEN ${column} BETWEEN DATE '0001-01-01' AND DATE '9999-12-31' THEN ${column} END`;
