/**
 * Makes sure an index exists (ES_INDEX, ES_PERSONS_INDEX, ES_GENRES_INDEX). A fresh install gets a
 * versioned index (`movies_v1`) behind the alias `movies`, so a later reindex can build
 * `movies_v2` and swap the alias without downtime.
 * An existing concrete index or alias of that name is used as it is.
 *
 * Also finds and removes what an unfinished reindex left behind (below).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@elastic/elasticsearch';
import { errorTypeOf, httpStatusOf } from '../errors.js';
import type { Logger } from '../logger.js';
import { filmsDefinition, NESTED_OBJECTS_LIMIT, type IndexDefinition } from './indexDefinition.js';
import { MIRROR_SETTLE_MS } from './reindexTarget.js';

export interface IndexTarget {
  /** What bulk requests write to: the alias (or the plain index). */
  name: string;
  isAlias: boolean;
}

/** Whether this call created the index: it holds no documents then. */
export type EnsuredIndex = IndexTarget & { created: boolean };

export async function ensureIndex(
  es: Client,
  name: string,
  log: Logger,
  definition: IndexDefinition = filmsDefinition,
  /** Runs before anything is created or an alias is added: the index may hold nothing after. */
  beforeCreate: () => Promise<void> = () => Promise.resolve(),
): Promise<EnsuredIndex> {
  if (await es.indices.existsAlias({ name })) return { name, isAlias: true, created: false };
  if (await es.indices.exists({ index: name })) {
    if (!(await isCreatedForADelete(es, name))) return { name, isAlias: false, created: false };
    // The index behind the alias went, and a versioned delete sent to the alias's name made
    // Elasticsearch create a concrete index of that name, with no mapping. Left there, it takes
    // the alias's place: every later index write (sent with require_alias) fails for good.
    await es.indices.delete({ index: name }, { ignore: [404] });
    log.warn({ index: name }, "deleted an empty index Elasticsearch made in the alias's place");
  }
  await beforeCreate();
  const concrete = `${name}_v${definition.version}`;
  let created = false;
  try {
    await es.indices.create({
      index: concrete,
      settings: definition.settings,
      // Marked in the same call: there is no moment when it exists unmarked (see BORN_EMPTY_KEY).
      mappings: {
        ...definition.mappings,
        _meta: { ...definition.mappings._meta, [BORN_EMPTY_KEY]: new Date().toISOString() },
      },
      aliases: { [name]: { is_write_index: true } },
    });
    log.info({ index: concrete, alias: name }, 'created index');
    created = true;
  } catch (err) {
    // Another syncer created it first: fine, as long as the alias is there now.
    if (!isAlreadyExists(err)) throw err;
  }
  if (!(await es.indices.existsAlias({ name }))) {
    await es.indices.putAlias({ index: concrete, name, is_write_index: true });
  }
  return { name, isAlias: true, created };
}

/**
 * Changes to the definition that an index takes in place (a keyword's `ignore_above`, the nested
 * objects limit, added after the first version): put on the index (or the indices behind the alias) once, at a syncer's
 * start. Anything it refuses (an index made otherwise, a change that needs a new index) is logged
 * and left: `npm run reindex` builds a new index from the definition.
 */
export async function bringMappingUpToDate(
  es: Client,
  alias: string,
  log: Logger,
  definition: IndexDefinition,
): Promise<void> {
  try {
    await es.indices.putMapping({ index: alias, properties: definition.mappings.properties });
  } catch (err) {
    log.warn(
      { index: alias, err: (err as Error).message },
      'could not bring the mapping up to date (npm run reindex builds an index that is)',
    );
  }
  // The one index setting of the definition that an index made by an earlier version lacks, and
  // that a live index takes (indexDefinition.ts: NESTED_OBJECTS_LIMIT). Only raised: an operator
  // may have raised it further on an index, and documents between the two would be refused.
  const setting = 'index.mapping.nested_objects.limit';
  try {
    const current = await es.indices.getSettings({
      index: alias,
      name: setting,
      flat_settings: true,
    });
    const below = Object.entries(current)
      .filter(([, state]) => Number(state.settings?.[setting] ?? 10_000) < NESTED_OBJECTS_LIMIT)
      .map(([index]) => index);
    if (below.length > 0)
      await es.indices.putSettings({
        index: below,
        settings: { [setting]: NESTED_OBJECTS_LIMIT },
      });
  } catch (err) {
    log.warn(
      { index: alias, err: (err as Error).message },
      'could not raise the nested objects limit (npm run reindex builds an index that has it)',
    );
  }
}

/**
 * In `_meta` of every index this module creates, with the time: the index was born empty, and
 * holds every document only once a full load that began after its birth has filled it. The
 * request for that load lives in Redis (src/queue/reloadRequests.ts), and Redis with persistence
 * can come back from a save older than the request: the index, which is there, would then never be
 * loaded. The mark lets a syncer see such an index and ask again (src/sync/indexWatch.ts).
 * Indices made otherwise (a reindex builds its index whole; an older version's) carry none.
 */
const BORN_EMPTY_KEY = 'movies_etl_born_empty';

/** The index an alias writes to, as a full load and the index check need to know it. */
export interface WriteIndex {
  index: string;
  /** Elasticsearch's own id for it: a new one for every index created, even of the same name. */
  uuid: string;
  /** Created empty by ensureIndex (BORN_EMPTY_KEY). */
  bornEmpty: boolean;
}

/** The index `alias` writes to (or the plain index of that name); null when there is none. */
export async function writeIndexOf(es: Client, alias: string): Promise<WriteIndex | null> {
  let found: Awaited<ReturnType<Client['indices']['get']>>;
  try {
    found = await es.indices.get({
      index: alias,
      filter_path: ['*.aliases', '*.mappings._meta', '*.settings.index.uuid'],
    });
  } catch (err) {
    if (httpStatusOf(err) === 404) return null;
    throw err;
  }
  const entries = Object.entries(found);
  // Behind an alias over several indices, the one it writes to; a single one writes anyway.
  const [index, state] =
    entries.find(([, s]) => s.aliases?.[alias]?.is_write_index === true) ??
    (entries.length === 1 ? entries[0] : undefined) ??
    [];
  const uuid = state?.settings?.index?.uuid;
  if (!index || !uuid) return null;
  return { index, uuid, bornEmpty: BORN_EMPTY_KEY in (state.mappings?._meta ?? {}) };
}

/**
 * An index with no field mapped and no document: what Elasticsearch creates for a delete (with
 * external versioning) sent to a missing index. Nobody's own index looks like that.
 */
async function isCreatedForADelete(es: Client, index: string): Promise<boolean> {
  const mappings = await es.indices.getMapping({ index });
  const properties = Object.values(mappings)[0]?.mappings.properties ?? {};
  if (Object.keys(properties).length > 0) return false;
  return (await es.count({ index })).count === 0;
}

/**
 * Whether Elasticsearch made `index` itself from a document written to a missing index, guessing
 * its mapping: a string field the definition maps as keyword (every kind's id) is text there, with
 * a `keyword` sub-field, as dynamic mapping makes it. Nobody makes an index like that on purpose:
 * one restored from a snapshot, or made again by hand with a mapping of its own, is not.
 */
export async function hasGuessedMapping(
  es: Client,
  index: string,
  definition: IndexDefinition,
): Promise<boolean> {
  const mappings = await es.indices.getMapping({ index });
  const actual = Object.values(mappings)[0]?.mappings.properties ?? {};
  return Object.entries(definition.mappings.properties ?? {}).some(([field, spec]) => {
    const found = actual[field] as
      { type?: string; fields?: Record<string, { type?: string }> } | undefined;
    return (
      spec.type === 'keyword' && found?.type === 'text' && found.fields?.keyword?.type === 'keyword'
    );
  });
}

function isAlreadyExists(err: unknown): boolean {
  return errorTypeOf(err) === 'resource_already_exists_exception';
}

/**
 * Reindex bookkeeping, kept in the indices themselves (Redis may be empty when someone looks):
 * a reindex marks the index it builds, and the indices it is about to retire, in their mapping's
 * `_meta`, with the write alias it publishes as its target (src/load/reindexTarget.ts). A marked
 * index whose reindex no longer holds that target is a leftover: deleted when not behind the alias
 * (the reindex died before its swap, or before deleting the old index), unmarked when it is.
 */
const REINDEX_META_KEY = 'movies_etl_reindex';

export interface ReindexMarker {
  alias: string;
  /** The reindex's own write alias, the holder of its `reindex-target` lease. */
  write_alias: string;
  role: 'building' | 'retiring';
  since: string;
}

export function reindexMeta(marker: ReindexMarker): Record<string, unknown> {
  return { [REINDEX_META_KEY]: marker };
}

export async function markIndex(es: Client, index: string, marker: ReindexMarker): Promise<void> {
  await setMetaKey(es, index, REINDEX_META_KEY, marker);
}

export async function unmarkIndex(es: Client, index: string): Promise<void> {
  await removeMetaKey(es, index, REINDEX_META_KEY);
}

/**
 * Set one key of the index's `_meta`, keeping the others: a put replaces `_meta` whole, and three
 * things keep keys there (the reindex marker, bulk-load mode's saved settings, BORN_EMPTY_KEY).
 * Read, then written: two writers of one index at once can still lose a key. They meet only when
 * a reindex retires an index whose first load is draining just then (bulk-load mode puts its
 * settings back as the reindex marks it): the reindex marker or the saved settings may then be
 * lost. The born-empty mark is never lost so: every writer read it, and nothing removes it.
 */
export async function setMetaKey(
  es: Client,
  index: string,
  key: string,
  value: unknown,
): Promise<void> {
  const meta = await metaOf(es, index);
  await es.indices.putMapping({ index, _meta: { ...meta, [key]: value } });
}

/**
 * Remove one key of the index's `_meta`, keeping the others (see setMetaKey); with `only`, only
 * if its value, read just before, passes (a record another writer put there since stays).
 */
export async function removeMetaKey(
  es: Client,
  index: string,
  key: string,
  only: (value: unknown) => boolean = () => true,
): Promise<void> {
  const meta = await metaOf(es, index);
  if (!(key in meta) || !only(meta[key])) return;
  const rest = Object.fromEntries(Object.entries(meta).filter(([k]) => k !== key));
  await es.indices.putMapping({ index, _meta: rest });
}

async function metaOf(es: Client, index: string): Promise<Record<string, unknown>> {
  const mappings = await es.indices.getMapping({ index });
  return mappings[index]?.mappings._meta ?? {};
}

function markerOf(meta: Record<string, unknown> | undefined): ReindexMarker | null {
  const marker = meta?.[REINDEX_META_KEY] as Partial<ReindexMarker> | undefined;
  return typeof marker?.alias === 'string' && typeof marker.write_alias === 'string'
    ? (marker as ReindexMarker)
    : null;
}

export interface Leftover {
  index: string;
  writeAlias: string;
  /** unfinished: delete; in-use: behind the alias, unmark; stray: auto-created, delete. */
  kind: 'unfinished' | 'in-use' | 'stray';
}

/** Where `removeReindexLeftovers` learns which reindex is alive. */
export interface LiveReindex {
  /** The write alias the running reindex publishes, or null. */
  current(): Promise<string | null>;
  /**
   * Queue again what the mirrors of the reindex with this write alias gave up on (the reindex
   * does so after its swap; one that died first left them); resolves to how many.
   */
  requeueMissed(writeAlias: string): Promise<number>;
}

/**
 * Delete what unfinished reindexes left behind (see above), and any concrete index carrying a
 * write alias's name: a mirror delete that came after its alias was gone auto-created it. Run by a
 * syncer at start and by every reindex. Waits `settleMs` first when it finds something, since a
 * syncer may have read a lapsed lease just before and still be writing. Never throws: a failure
 * is logged and the next start or reindex tries again. Resolves to the indices it deleted.
 */
export async function removeReindexLeftovers(
  es: Client,
  live: LiveReindex,
  alias: string,
  log: Logger,
  settleMs = MIRROR_SETTLE_MS,
): Promise<string[]> {
  try {
    if ((await findLeftovers(es, live, alias)).length === 0) return [];
    await pause(settleMs);
    const leftovers = await findLeftovers(es, live, alias); // the lease may be back meanwhile
    for (const leftover of leftovers) await removeLeftover(es, live, alias, leftover, log);
    return leftovers.filter((l) => l.kind !== 'in-use').map((l) => l.index);
  } catch (err) {
    log.warn(
      { alias, err: (err as Error).message },
      'could not clean up after an unfinished reindex; the next start or reindex tries again',
    );
    return [];
  }
}

export async function findLeftovers(
  es: Client,
  live: LiveReindex,
  alias: string,
): Promise<Leftover[]> {
  if (!(await es.indices.existsAlias({ name: alias }))) return [];
  const running = await live.current();
  const behind = new Set(Object.keys(await es.indices.getAlias({ name: alias })));
  const mappings = await es.indices.getMapping({
    index: [`${alias}_*`, `${alias}-reindex-*`],
    allow_no_indices: true,
    ignore_unavailable: true,
  });
  const strayName = new RegExp(`^${alias.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-reindex-\\d{14}$`);
  const found: Leftover[] = [];
  for (const [index, body] of Object.entries(mappings)) {
    const marker = markerOf(body.mappings._meta);
    if (marker?.alias === alias && marker.write_alias !== running) {
      const kind = behind.has(index) ? 'in-use' : 'unfinished';
      found.push({ index, writeAlias: marker.write_alias, kind });
    } else if (!marker && strayName.test(index) && index !== running && !behind.has(index)) {
      found.push({ index, writeAlias: index, kind: 'stray' });
    }
  }
  return found;
}

async function removeLeftover(
  es: Client,
  live: LiveReindex,
  alias: string,
  leftover: Leftover,
  log: Logger,
): Promise<void> {
  const { index, writeAlias, kind } = leftover;
  if (kind === 'in-use') {
    // The reindex swapped its alias and died before tidying up: what its mirrors missed is
    // queued before the mark that leads here goes (unmarked first, a failure would forget it).
    const requeued = await live.requeueMissed(writeAlias);
    if (requeued > 0)
      log.warn(
        { alias, index, write_alias: writeAlias, documents: requeued },
        'queued again the documents the mirrors of an unfinished reindex missed',
      );
    await es.indices.deleteAlias({ index, name: writeAlias }, { ignore: [404] });
    await unmarkIndex(es, index);
    log.info(
      { alias, index, write_alias: writeAlias },
      'unmarked an index an unfinished reindex left',
    );
    return;
  }
  await es.indices.delete({ index }, { ignore: [404] });
  log.warn(
    { alias, index, write_alias: writeAlias, kind },
    kind === 'stray'
      ? 'deleted an index auto-created under a reindex write alias'
      : 'deleted the index of a reindex that did not finish',
  );
}

/** A timer that does not keep the process up: a syncer stopping meanwhile just exits. */
function pause(ms: number): Promise<void> {
  return delay(ms, undefined, { ref: false });
}
