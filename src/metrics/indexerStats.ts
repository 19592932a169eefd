/**
 * What the indexers of one process have done, per index and in total: kept by the indexers, read
 * by metrics, readiness and the progress bar.
 */
import type { KindName } from '../kinds/documentKind.js';
import { KIND_NAMES } from '../kinds/kinds.js';

/** What happened to the documents of one index. */
export interface IndexCounts {
  indexed: number;
  deleted: number;
  stale: number;
  dead: number;
}

export interface IndexerStats extends IndexCounts {
  /** Per index (films, persons, genres); the totals are their sums. */
  byIndex: Record<KindName, IndexCounts>;
  batches: number;
  lastBatchAt: string | null;
}

export const noCounts = (): IndexCounts => ({ indexed: 0, deleted: 0, stale: 0, dead: 0 });

export const emptyStats = (): IndexerStats => ({
  ...noCounts(),
  byIndex: { films: noCounts(), persons: noCounts(), genres: noCounts() },
  batches: 0,
  lastBatchAt: null,
});

/** Several indexers' counters as one. */
export function sumStats(all: readonly IndexerStats[]): IndexerStats {
  const total = emptyStats();
  const add = (into: IndexCounts, from: IndexCounts) => {
    into.indexed += from.indexed;
    into.deleted += from.deleted;
    into.stale += from.stale;
    into.dead += from.dead;
  };
  for (const stats of all) {
    add(total, stats);
    for (const kind of KIND_NAMES) add(total.byIndex[kind], stats.byIndex[kind]);
    total.batches += stats.batches;
    if (
      stats.lastBatchAt !== null &&
      (total.lastBatchAt === null || stats.lastBatchAt > total.lastBatchAt)
    )
      total.lastBatchAt = stats.lastBatchAt;
  }
  return total;
}
