/**
 * Makes sure ES_INDEX exists. A fresh install gets a versioned index (`movies_v1`) behind the
 * alias `movies`, so a later reindex can build `movies_v2` and swap the alias without downtime.
 * An existing concrete index or alias of that name is used as it is.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Logger } from '../logger.js';
import { INDEX_DEFINITION_VERSION, indexMappings, indexSettings } from './indexDefinition.js';

export interface IndexTarget {
  /** What bulk requests write to: the alias (or the plain index). */
  name: string;
  isAlias: boolean;
}

export async function ensureIndex(es: Client, name: string, log: Logger): Promise<IndexTarget> {
  if (await es.indices.existsAlias({ name })) return { name, isAlias: true };
  if (await es.indices.exists({ index: name })) return { name, isAlias: false };
  const concrete = `${name}_v${INDEX_DEFINITION_VERSION}`;
  try {
    await es.indices.create({
      index: concrete,
      settings: indexSettings,
      mappings: indexMappings,
      aliases: { [name]: { is_write_index: true } },
    });
    log.info({ index: concrete, alias: name }, 'created index');
  } catch (err) {
    // Another syncer created it first: fine, as long as the alias is there now.
    if (!isAlreadyExists(err)) throw err;
  }
  if (!(await es.indices.existsAlias({ name }))) {
    await es.indices.putAlias({ index: concrete, name, is_write_index: true });
  }
  return { name, isAlias: true };
}

function isAlreadyExists(err: unknown): boolean {
  const type = (err as { meta?: { body?: { error?: { type?: string } } } }).meta?.body?.error?.type;
  return type === 'resource_already_exists_exception';
}
