/**
 * Extraction ceiling: each index's document query alone (no read lock, no Redis, no
 * Elasticsearch), ETL_BULK_SIZE documents per query in id order, as the full load reads them,
 * through the project's Postgres wrapper (named, prepared statements). The pass reads every
 * document the full load writes (films, persons, genres) and keeps them, as `_bulk` items, for the
 * bulk ceiling; the variants (batch sizes, connections) compare film documents only.
 */
import { keysetPages, readPage } from '../src/db/keysetPages.js';
import { Postgres } from '../src/db/postgres.js';
import type { DocumentKind, KindName } from '../src/kinds/documentKind.js';
import { films as filmsKind } from '../src/kinds/films.js';
import { KINDS } from '../src/kinds/kinds.js';
import type { Sandbox } from '../test/helpers/isolation.js';
import { testLog } from '../test/helpers/syncerHarness.js';
import { cpuMeter } from './cpu.js';
import type { CeilingResult } from './results.js';

/** One document as the bulk ceiling sends it. */
export interface CeilingDocument {
  kind: KindName;
  id: string;
  doc: string;
}

/** At most this many films for the variant runs (they only compare batch sizes and connections). */
const VARIANT_FILMS = 30_000;

async function idsOf(sb: Sandbox, kind: DocumentKind): Promise<string[]> {
  const db = new Postgres(sb.config.databaseUrl, testLog(), 1);
  try {
    const ids: string[] = [];
    for await (const page of keysetPages({
      pageSize: 10_000,
      read: (after: string | undefined) =>
        readPage(db, kind.ids, [10_000], after === undefined ? undefined : [after]),
      keyOf: (row) => row.id,
    }))
      ids.push(...page.map((row) => row.id));
    return ids;
  } finally {
    await db.end();
  }
}

/** Read `ids` in batches of `bulkSize` over `connections` connections; documents/s. */
async function timeReads(
  sb: Sandbox,
  kind: DocumentKind,
  ids: string[],
  bulkSize: number,
  connections: number,
  keep?: (id: string, doc: string | null) => void,
): Promise<{ seconds: number; filmsPerSecond: number }> {
  const db = new Postgres(sb.config.databaseUrl, testLog(), connections);
  try {
    // Connect and prepare outside the timing: the syncer's pool is warm too.
    await Promise.all(
      Array.from({ length: connections }, () => db.query(kind.documents, [ids.slice(0, 1)])),
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
          const rows = await db.query(kind.documents, [ids.slice(at, at + bulkSize)]);
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
): Promise<{ extraction: CeilingResult['extraction']; documents: CeilingDocument[] }> {
  const documents: CeilingDocument[] = [];
  const ids = new Map<KindName, string[]>();
  for (const kind of KINDS) ids.set(kind.name, await idsOf(sb, kind));
  const meter = cpuMeter();
  const started = performance.now();
  let seconds = 0;
  for (const kind of KINDS) {
    const run = await timeReads(sb, kind, ids.get(kind.name) ?? [], bulkSize, 1, (id, doc) => {
      if (doc) documents.push({ kind: kind.name, id, doc: doc.replaceAll('\n', '') });
    });
    seconds += run.seconds;
  }
  const wallSeconds = (performance.now() - started) / 1_000;
  const cpu = meter.stop(0);
  const filmIds = ids.get('films') ?? [];
  const sample = filmIds.slice(0, VARIANT_FILMS);
  const variants: CeilingResult['extraction']['variants'] = [];
  for (const [size, connections] of [
    [bulkSize, 1],
    [bulkSize, 2],
    [1_000, 1],
    [1_000, 2],
  ] as const) {
    const run = await timeReads(sb, filmsKind, sample, size, connections);
    variants.push({ bulkSize: size, connections, filmsPerSecond: run.filmsPerSecond });
  }
  return {
    extraction: {
      bulkSize,
      films: filmIds.length,
      documents: documents.length,
      seconds,
      wallSeconds,
      filmsPerSecond: variants[0]?.filmsPerSecond ?? 0,
      documentsPerSecond: documents.length / seconds,
      variants: variants.slice(1),
      cpu,
    },
    documents,
  };
}
