/**
 * What Postgres accepts as a uuid (any 32 hex digits in the 8-4-4-4-12 form). Stricter RFC checks
 * (version and variant bits) would reject ids that the catalog legitimately holds.
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (value: string): boolean => UUID_PATTERN.test(value);

/**
 * How Postgres writes a uuid (lower case): the only spelling a document id of ours has. A document
 * under any other id (an operator's test, a capitalised copy) belongs to no row, whatever
 * Postgres would make of it, and is deleted by its exact id rather than looked up.
 */
export const isCanonicalUuid = (value: string): boolean =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value);

/** The smallest and the largest uuid: where keyset pagination over uuid keys starts and ends. */
export const FIRST_UUID = '00000000-0000-0000-0000-000000000000';
export const LAST_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
