/**
 * A document kind: one index and everything the pipeline needs to keep it in step, so that
 * capture, queue, extract and load handle `(kind, id)` without knowing films from persons.
 *
 * Adding a kind means writing one of these (films.ts, persons.ts, genres.ts) and its SQL; nothing
 * else in the pipeline changes.
 */
import type { Config } from '../config.js';
import type { KeysetQuery } from '../db/keysetPages.js';
import type { IndexDefinition } from '../load/indexDefinition.js';
import type { DocumentRow, PolledTable, Query } from '../sql/queries.js';

export type KindName = 'films' | 'persons' | 'genres';

/** What a changed row or a notification names: a film, a person or a genre. */
export type Entity = 'film' | 'person' | 'genre';

/**
 * How a change to one table reaches a kind's ids. The change names ids of `entity`; without
 * `via` they are this kind's own ids, with it they are resolved through that query (a person's
 * rename reaches all their films). `liveOps` limits which notified operations are resolved: a
 * deleted film's links go with it, and the link table reports those (an insert is resolved: a row
 * replaced under its id in one transaction keeps its links, kinds/films.ts).
 */
export interface Touch {
  entity: Entity;
  via?: KeysetQuery<{ id: string }>;
  liveOps?: readonly ('I' | 'U' | 'D')[];
}

export interface DocumentKind {
  name: KindName;
  /** Singular, for logs and messages. */
  noun: string;
  /** The entity whose ids are this kind's document ids. */
  entity: Entity;
  /** The index (or alias) name from the configuration. */
  indexName(config: Pick<Config, 'index' | 'personsIndex' | 'genresIndex'>): string;
  definition: IndexDefinition;
  /** Documents of some ids ($1 uuid[]): one row per id, `doc` null when the row is gone. */
  documents: Query<DocumentRow>;
  /** Every id, keyset-paged ($1 page size, $2 cursor): full load, verify, reindex. */
  ids: KeysetQuery<{ id: string }>;
  count: Query<{ count: number }>;
  /** The planner's estimate, instant on any size. */
  estimate: Query<{ count: number }>;
  /** Which of these ids ($1 uuid[]) exist: the orphan sweep deletes documents of the others. */
  existing: Query<{ id: string }>;
  /** Which table changes touch which of this kind's ids. Tables absent here do not. */
  touchedBy: Partial<Record<PolledTable, Touch>>;
}
