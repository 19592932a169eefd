/**
 * Zero-downtime reindex: build a new index behind the ES_INDEX alias while search keeps using the
 * old one, then swap the alias in one atomic step and drop the old index. Search never sees an
 * empty or half-built index. This is also how a mapping change ships.
 *
 * Changes made during the load are not lost: running syncers mirror every batch into the new
 * index (see ReindexTarget) from before the load's first read, and versions keep an older read
 * from overwriting a newer mirrored write.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Postgres } from '../db/postgres.js';
import { FilmExtractor } from '../extract/extractor.js';
import type { Logger } from '../logger.js';
import type { ReadLock } from '../queue/readLock.js';
import * as sql from '../sql/queries.js';
import { sleep } from '../util/sleep.js';
import { BulkWriter } from './bulkWriter.js';
import { indexMappings, indexSettings } from './indexDefinition.js';
import type { ReindexTarget } from './reindexTarget.js';
import { FIRST_UUID } from '../util/uuid.js';

export interface ReindexDeps {
  es: Client;
  db: Postgres;
  lock: ReadLock;
  target: ReindexTarget;
  alias: string;
  sizeLimit: number;
  bulkSize: number;
  sleepMs: number;
  log: Logger;
  /** How long to wait for every syncer to notice the new target (their cache is 1 s). */
  noticeMs?: number;
}

export interface ReindexResult {
  from: string[];
  to: string;
  films: number;
  ms: number;
}

export async function reindex(deps: ReindexDeps): Promise<ReindexResult> {
  const { es, db, lock, target, alias, log } = deps;
  const started = Date.now();
  if (!(await es.indices.existsAlias({ name: alias }))) {
    throw new Error(
      (await es.indices.exists({ index: alias }))
        ? `${alias} is a concrete index, not an alias: a zero-downtime reindex needs an alias (fresh installs get one)`
        : `there is no index ${alias} yet: start the syncer first`,
    );
  }
  const from = Object.keys(await es.indices.getAlias({ name: alias }));
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const to = `${alias}_${stamp}`;
  const replicas = (
    await es.indices.getSettings({ index: from[0] ?? alias, name: 'index.number_of_replicas' })
  )[from[0] ?? alias]?.settings?.index?.number_of_replicas;

  await es.indices.create({
    index: to,
    settings: { ...indexSettings, refresh_interval: '-1', number_of_replicas: 0 },
    mappings: indexMappings,
  });
  log.info({ alias, from, to }, 'reindex: new index created; syncers now mirror into it');
  let loaded = 0;
  try {
    await target.set(to);
    await sleep(deps.noticeMs ?? 2_500);

    const extractor = new FilmExtractor(db, lock, deps.bulkSize);
    const writer = new BulkWriter(es, { name: to, isAlias: false }, log);
    let cursor = FIRST_UUID;
    let films = 0;
    let lastLog = Date.now();
    for (;;) {
      const ids = (
        await lock.withLock('reindex', () => db.query(sql.allFilmIds, [cursor, deps.sizeLimit]))
      ).map((r) => r.id);
      if (ids.length === 0) break;
      const claim = { workerId: 'reindex', ids, claimedAt: Date.now() };
      for await (const batch of extractor.batches(claim)) {
        const result = await writer.write(batch);
        if (result.dead.length > 0) {
          throw new Error(
            `the new index refused ${result.dead.length} documents: ${result.dead[0]?.reason ?? ''}`,
          );
        }
      }
      films += ids.length;
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log.info(
          { films, rate: Math.round(films / ((Date.now() - started) / 1000)) },
          'reindex progress',
        );
      }
      const last = ids.at(-1);
      if (ids.length < deps.sizeLimit || last === undefined) break;
      cursor = last;
      await sleep(deps.sleepMs);
    }

    await es.indices.putSettings({
      index: to,
      settings: {
        refresh_interval: indexSettings.refresh_interval ?? '1s',
        number_of_replicas: replicas ?? 1,
      },
    });
    await es.indices.refresh({ index: to });
    await es.indices.updateAliases({
      actions: [
        ...from.map((index) => ({ remove: { index, alias } })),
        { add: { index: to, alias, is_write_index: true } },
      ],
    });
    log.info({ alias, to, films }, 'reindex: alias swapped');
    loaded = films;
  } catch (err) {
    await target.clear();
    await es.indices.delete({ index: to }, { ignore: [404] });
    throw err;
  }
  await target.clear();
  // Writes already on their way to an old index through the alias land before it goes.
  await sleep(deps.noticeMs ?? 2_500);
  if (from.length > 0) await es.indices.delete({ index: from }, { ignore: [404] });
  return { from, to, films: loaded, ms: Date.now() - started };
}
