/**
 * What this machine can load at best when the same cores must both build the documents
 * (PostgreSQL) and index them (Elasticsearch), each measured alone in the same run:
 *
 *   time per document = max(t_bulk, (cpu_extract + cpu_bulk) / cores)
 *
 * t_bulk is the plain `_bulk` ceiling's wall time per document (Elasticsearch alone), cpu_bulk the
 * CPU Elasticsearch spent per document there, and cpu_extract the CPU PostgreSQL spent per
 * document building them in the extraction phase. Both phases handle the full load's own
 * documents: every film's, person's and genre's.
 */
import type { CpuShares } from './cpu.js';
import type { CeilingResult, FullLoadResult } from './results.js';

export interface LoadLimit {
  /** ms of machine CPU per document. */
  bulkCpuMs: number;
  extractCpuMs: number;
  docsPerSecond: number;
}

/** ms of CPU per document that one part took during a phase, from its share of all cores. */
const perDocument = (sharePct: number, cores: number, docsPerSecond: number) =>
  ((sharePct / 100) * cores * 1_000) / docsPerSecond;

export function loadLimit(
  ceiling: CeilingResult,
  cores: number,
  /** Elasticsearch alone: by default the best shape of the grid (the limit). */
  bulk: { docsPerSecond: number; cpu: CpuShares | null } = ceiling.bulk,
): LoadLimit | null {
  const es = bulk.cpu?.elasticsearch;
  const pg = ceiling.extraction.cpu?.postgres;
  if (es === undefined || pg === undefined || bulk.docsPerSecond <= 0) return null;
  const bulkCpuMs = perDocument(es, cores, bulk.docsPerSecond);
  // The pass's CPU shares cover its wall time, which includes keeping the documents.
  const { documents, wallSeconds } = ceiling.extraction;
  const extractCpuMs = perDocument(pg, cores, documents / wallSeconds);
  const wallMs = Math.max(1_000 / bulk.docsPerSecond, (bulkCpuMs + extractCpuMs) / cores);
  return { bulkCpuMs, extractCpuMs, docsPerSecond: 1_000 / wallMs };
}

/** ms of CPU per document that each part spent during the full load. */
export function fullLoadCpuPerDocument(
  load: FullLoadResult,
  cores: number,
): Partial<Record<keyof CpuShares, number>> {
  const shares = load.cpu;
  if (!shares || load.documentsPerSecond <= 0) return {};
  const out: Partial<Record<keyof CpuShares, number>> = {};
  for (const part of ['elasticsearch', 'postgres', 'syncer', 'redis'] as const)
    out[part] = perDocument(shares[part], cores, load.documentsPerSecond);
  return out;
}
