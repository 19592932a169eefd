/**
 * Bulk ceiling: the full load's documents, of every index (read beforehand, untimed), sent
 * straight to fresh indices with the syncer's settings and mappings by a plain `_bulk` loader:
 * bodies prebuilt, N requests in flight, the response filtered down to `errors`; refresh off and
 * no replicas during the load, one refresh at the end (inside the timing, so the documents are
 * searchable, as for the syncer). A grid of bulk sizes and concurrencies runs on a sample taken
 * evenly across the documents (so it has the same mix); the best then loads everything.
 *
 * Then everything once more in the syncer's own shape: ETL_BULK_SIZE documents per request,
 * ETL_WORKERS requests in flight, each operation carrying its version (`external_gte`) as the
 * syncer's do. The contract fixes the bulk size, so this is the part of the gap to the limit that
 * no syncer with these settings could close (at 200 documents per request Elasticsearch spent
 * 10-15 % more CPU per document than at 1,000-2,000).
 */
import type { KindName } from '../src/kinds/documentKind.js';
import { KINDS } from '../src/kinds/kinds.js';
import type { Sandbox } from '../test/helpers/isolation.js';
import { cpuMeter } from './cpu.js';
import type { CeilingDocument } from './extraction.js';
import type { BulkTrial, CeilingResult } from './results.js';

const SIZES = [500, 1_000, 2_000];
const CONCURRENCY = [2, 4];
const TRIAL_DOCS = 25_000;

interface BulkResponse {
  errors?: boolean;
  items?: Record<string, { status?: number; error?: { type?: string; reason?: string } }>[];
}

async function load(
  sb: Sandbox,
  base: string,
  documents: CeilingDocument[],
  bulkSize: number,
  concurrency: number,
  versioned = false,
): Promise<BulkTrial> {
  const indexOf = (kind: KindName) => `${base}-${kind}`;
  const version = versioned ? ',"version":1,"version_type":"external_gte"' : '';
  const lines = documents.map(
    ({ kind, id, doc }) =>
      `{"index":{"_index":${JSON.stringify(indexOf(kind))},"_id":${JSON.stringify(id)}${version}}}\n${doc}\n`,
  );
  const bodies: string[] = [];
  for (let i = 0; i < lines.length; i += bulkSize)
    bodies.push(lines.slice(i, i + bulkSize).join(''));
  const bytes = bodies.reduce((sum, body) => sum + Buffer.byteLength(body), 0);
  const indices = KINDS.map((kind) => indexOf(kind.name));
  for (const kind of KINDS)
    await sb.es.indices.create({
      index: indexOf(kind.name),
      settings: { ...kind.definition.settings, refresh_interval: '-1', number_of_replicas: 0 },
      mappings: kind.definition.mappings,
      wait_for_active_shards: 1,
    });
  try {
    let next = 0;
    // Around the timed part only: index creation and deletion outside it took a fifth of the
    // window, and shares of a longer window understated Elasticsearch's CPU per document.
    const meter = cpuMeter();
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let body = bodies[next++]; body !== undefined; body = bodies[next++]) {
          const response = await sb.es.transport.request<BulkResponse>({
            method: 'POST',
            path: '/_bulk',
            querystring: { filter_path: 'errors,items.*.error,items.*.status' },
            bulkBody: body,
          });
          if (response.errors) {
            const first = response.items?.flatMap((item) => Object.values(item))[0];
            throw new Error(
              `bulk item failed: ${first?.status ?? '?'} ${first?.error?.type ?? ''} ${first?.error?.reason ?? ''}`,
            );
          }
        }
      }),
    );
    await sb.es.indices.putSettings({ index: indices, settings: { refresh_interval: '1s' } });
    await sb.es.indices.refresh({ index: indices });
    const seconds = (performance.now() - started) / 1_000;
    const cpu = meter.stop(0);
    const { count } = await sb.es.count({ index: indices });
    if (count !== lines.length) throw new Error(`${count} of ${lines.length} documents searchable`);
    return {
      bulkSize,
      concurrency,
      docs: lines.length,
      seconds,
      docsPerSecond: lines.length / seconds,
      mbPerSecond: bytes / 2 ** 20 / seconds,
      cpu,
    };
  } finally {
    await sb.es.indices.delete({ index: indices }).catch(() => undefined);
  }
}

export async function measureBulkCeiling(
  sb: Sandbox,
  documents: CeilingDocument[],
  progress: (line: string) => void,
): Promise<CeilingResult['bulk']> {
  const best = await measureBestShape(sb, documents, progress);
  const { bulkSize, workers } = sb.config;
  const trial = await load(
    sb,
    `${sb.config.index}-ceiling-syncer`,
    documents,
    bulkSize,
    workers,
    true,
  );
  progress(
    `bulk ceiling in the syncer's shape, ${bulkSize} docs x ${workers}, versioned: ${Math.round(trial.docsPerSecond)} docs/s`,
  );
  return { ...best, syncerShape: { trial, cpu: trial.cpu ?? null } };
}

async function measureBestShape(
  sb: Sandbox,
  documents: CeilingDocument[],
  progress: (line: string) => void,
): Promise<Omit<CeilingResult['bulk'], 'syncerShape'>> {
  const step = Math.max(1, Math.ceil(documents.length / TRIAL_DOCS));
  const sample = documents.filter((_, i) => i % step === 0);
  const trials: BulkTrial[] = [];
  let n = 0;
  for (const bulkSize of SIZES) {
    for (const concurrency of CONCURRENCY) {
      const base = `${sb.config.index}-ceiling-${n++}`;
      try {
        trials.push(await load(sb, base, sample, bulkSize, concurrency));
      } catch (err) {
        const error = (err as Error).message;
        trials.push({
          bulkSize,
          concurrency,
          docs: 0,
          seconds: 0,
          docsPerSecond: 0,
          mbPerSecond: 0,
          error,
        });
      }
      const last = trials.at(-1);
      if (last)
        progress(
          `bulk ceiling trial ${bulkSize} docs x ${concurrency}: ` +
            (last.error ?? `${Math.round(last.docsPerSecond)} docs/s`),
        );
    }
  }
  const ranked = trials.filter((t) => !t.error).sort((a, b) => b.docsPerSecond - a.docsPerSecond);
  const winner = ranked[0];
  if (!winner) throw new Error(`every bulk ceiling trial failed: ${trials[0]?.error ?? ''}`);
  // The sample was everything: the winning trial is the full run, with its own CPU shares.
  if (sample.length === documents.length)
    return { trials, best: winner, docsPerSecond: winner.docsPerSecond, cpu: winner.cpu ?? null };
  const best = await load(
    sb,
    `${sb.config.index}-ceiling-full`,
    documents,
    winner.bulkSize,
    winner.concurrency,
  );
  return { trials, best, docsPerSecond: best.docsPerSecond, cpu: best.cpu ?? null };
}
