/**
 * What Postgres accepts as a uuid (any 32 hex digits in the 8-4-4-4-12 form). Stricter RFC checks
 * (version and variant bits) would reject ids that the catalog legitimately holds.
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (value: string): boolean => UUID_PATTERN.test(value);

/** The smallest and the largest uuid: where keyset pagination over uuid keys starts and ends. */
export const FIRST_UUID = '00000000-0000-0000-0000-000000000000';
export const LAST_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
