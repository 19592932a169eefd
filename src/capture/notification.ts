/**
 * The messages the triggers send on channel `etl_changes` (migrations/0002; 0003 adds the sending
 * transaction, 0004 the persons and genres of link changes): keys only, one per statement. Anything else on the channel is logged and skipped
 * by the listener; a malformed message never stops it.
 */
import { z } from 'zod';
import type { Entity } from '../kinds/documentKind.js';
import { UUID_PATTERN } from '../util/uuid.js';

export const CHANNEL = 'etl_changes';

export const CATALOG_TABLES = [
  'film_work',
  'genre',
  'person',
  'genre_film_work',
  'person_film_work',
] as const;

export type CatalogTable = (typeof CATALOG_TABLES)[number];

const uuid = z.string().regex(UUID_PATTERN, 'is not a uuid');
const uuids = z.array(uuid).min(1).max(1000);

export const changeNotificationSchema = z.strictObject({
  t: z.enum(CATALOG_TABLES),
  op: z.enum(['I', 'U', 'D', 'T']),
  /** Row ids of film_work, genre or person. */
  ids: uuids.optional(),
  /** Films of changed link rows. */
  films: uuids.optional(),
  /** Persons of changed person_film_work rows, genres of changed genre_film_work rows. */
  persons: z.array(uuid).max(1000).optional(),
  genres: z.array(uuid).max(1000).optional(),
  /** Too many rows to list: poll the table instead. */
  many: z.literal(true).optional(),
  /** The sending transaction (xid8 as text); absent from older triggers and third parties. */
  x: z
    .string()
    .regex(/^\d{1,20}$/, 'is not a transaction id')
    .optional(),
});

export type ChangeNotification = z.infer<typeof changeNotificationSchema>;

export type ParseResult = { ok: true; change: ChangeNotification } | { ok: false; reason: string };

export function parseNotification(payload: string | undefined): ParseResult {
  if (payload === undefined || payload === '') return { ok: false, reason: 'empty payload' };
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return { ok: false, reason: 'payload is not JSON' };
  }
  const result = changeNotificationSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    return {
      ok: false,
      reason: `unexpected payload: ${issue ? `${issue.path.join('.') || '(root)'} ${issue.message}` : 'invalid'}`,
    };
  }
  const change = result.data;
  if (change.op !== 'T' && !change.many && !change.ids && !change.films) {
    return { ok: false, reason: 'unexpected payload: no keys and not marked many' };
  }
  return { ok: true, change };
}

/** The ids a notification names, per entity (src/capture/fanOut.ts). */
export function keysOf(change: ChangeNotification): Partial<Record<Entity, string[]>> {
  const own = TABLE_ENTITY[change.t];
  return {
    ...(own && change.ids ? { [own]: change.ids } : {}),
    ...(change.films ? { film: change.films } : {}),
    ...(change.persons ? { person: change.persons } : {}),
    ...(change.genres ? { genre: change.genres } : {}),
  };
}

const TABLE_ENTITY: Partial<Record<CatalogTable, Entity>> = {
  film_work: 'film',
  person: 'person',
  genre: 'genre',
};
