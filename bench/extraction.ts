/**
 * Extraction ceiling: the project's `filmDocuments` query alone (no read lock, no Redis, no
 * Elasticsearch), ETL_BULK_SIZE films per query in id order, as the full load reads them, through
 * the project's Postgres wrapper (named, prepared statements). The same pass keeps the documents,
 * as `_bulk` lines, for the bulk ceiling.
 */
import { Postgres } from '../src/db/postgres.js';
import * as sql from '../src/sql/queries.js';
import type { Sandbox } from '../test/helpers/isolation.js';
import { testLog } from '../test/helpers/syncerHarness.js';
import { cpuMeter } from './cpu.js';
import type { CeilingResult } from './results.js';

/** At most this many films for the variant runs (they only compare batch sizes and connections). */
const VARIANT_FILMS = 30_000;

async function filmIds(sb: Sandbox): Promise<string[]> {
  const result = await sb.pg.query<{ id: string }>(
    'SELECT id::text AS id FROM content.film_work ORDER BY id',
  );
  return result.rows.map((r) => r.id);
}

/** Read `ids` in batches of `bulkSize` over `connections` connections; films/s. */
async function timeReads(
  sb: Sandbox,
  ids: string[],
  bulkSize: number,
  connections: number,
  keep?: (id: string, doc: string | null) => void,
): Promise<{ seconds: number; filmsPerSecond: number }> {
  const db = new Postgres(sb.config.databaseUrl, testLog(), connections);
  try {
    // Connect and prepare outside the timing: the syncer's pool is warm too.
    await Promise.all(
      Array.from({ length: connections }, () => db.query(sql.filmDocuments, [ids.slice(0, 1)])),
    );
    let next = 0;
    let queryMs = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: connections }, async () => {
        for (;;) {
          const at = next;
          next += bulkSize;
          if (at >= ids.length) return;
          const t0 = performance.now();
          const rows = await db.query(sql.filmDocuments, [ids.slice(at, at + bulkSize)]);
          queryMs += performance.now() - t0;
          if (keep) for (const row of rows) keep(row.id, row.doc);
        }
      }),
    );
    // Keeping the documents (serialising them) is not part of the query's time.
    const seconds = (keep && connections === 1 ? queryMs : performance.now() - started) / 1_000;
    return { seconds, filmsPerSecond: ids.length / seconds };
  } finally {
    await db.end();
  }
}

export async function measureExtraction(
  sb: Sandbox,
  bulkSize: number,
): Promise<{ extraction: CeilingResult['extraction']; lines: string[] }> {
  const ids = await filmIds(sb);
  const lines: string[] = [];
  const meter = cpuMeter();
  const main = await timeReads(sb, ids, bulkSize, 1, (id, doc) => {
    if (doc) lines.push(`{"index":{"_id":${JSON.stringify(id)}}}\n${doc.replaceAll('\n', '')}\n`);
  });
  const cpu = meter.stop(0);
  const sample = ids.slice(0, VARIANT_FILMS);
  const variants: CeilingResult['extraction']['variants'] = [];
  for (const [size, connections] of [
    [bulkSize, 2],
    [1_000, 1],
    [1_000, 2],
  ] as const) {
    if (size === bulkSize && connections === 1) continue;
    const run = await timeReads(sb, sample, size, connections);
    variants.push({ bulkSize: size, connections, filmsPerSecond: run.filmsPerSecond });
  }
  return {
    extraction: {
      bulkSize,
      films: ids.length,
      seconds: main.seconds,
      filmsPerSecond: main.filmsPerSecond,
      variants,
      cpu,
    },
    lines,
  };
}
