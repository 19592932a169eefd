/** The bench report: what each phase measured, as written to bench-results/<timestamp>.json. */
import type { CpuShares } from './cpu.js';
import type { ProfileSummary } from './profile.js';

export interface Percentiles {
  count: number;
  /** Edits never seen within the phase's grace period. */
  missing: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface SyncerPhase {
  /** Peak resident memory of the syncer process of this phase, MB (VmHWM). */
  peakRssMb: number;
  /** How much Redis's used_memory rose above its level at the spawn, at most, MB. */
  redisPeakMb: number;
  /** Spawn to the 'syncer started' log line, s. */
  startupSeconds: number;
  profile: ProfileSummary | null;
  /** Where the machine's CPU went while the phase was measured, % of all cores. */
  cpu: CpuShares | null;
  /** `node --import tsx --test` processes seen during the phase (0 = a quiet machine). */
  concurrentTests: number;
}

export interface FullLoadResult extends SyncerPhase {
  films: number;
  /** Documents of all three indices at the end. */
  documents: number;
  seconds: number;
  filmsPerSecond: number;
  documentsPerSecond: number;
  spotChecked: number;
}

export interface BulkTrial {
  bulkSize: number;
  concurrency: number;
  docs: number;
  seconds: number;
  docsPerSecond: number;
  mbPerSecond: number;
  error?: string;
  /** Where the CPU went while the documents were sent (not while indices were made or removed). */
  cpu?: CpuShares | null;
}

export interface CeilingResult {
  extraction: {
    bulkSize: number;
    films: number;
    /** Documents of every index, read one index after the other on one connection. */
    documents: number;
    /** Time in the document queries, and wall time of the pass (what its CPU shares cover). */
    seconds: number;
    wallSeconds: number;
    /** Film documents alone (a separate run of the films), and all documents. */
    filmsPerSecond: number;
    documentsPerSecond: number;
    /** Other batch sizes and connection counts, for comparison. */
    variants: { bulkSize: number; connections: number; filmsPerSecond: number }[];
    cpu: CpuShares | null;
  };
  bulk: {
    trials: BulkTrial[];
    best: BulkTrial;
    docsPerSecond: number;
    cpu: CpuShares | null;
    /** Everything again as the syncer sends it: ETL_BULK_SIZE x ETL_WORKERS, versioned. */
    syncerShape?: { trial: BulkTrial; cpu: CpuShares | null };
  };
  concurrentTests: number;
}

export interface LiveResult extends SyncerPhase {
  rate: number;
  seconds: number;
  edits: number;
  achievedRate: number;
  /** Films the syncer read and indexed per edit (1 = each edit indexed once). */
  indexedPerEdit: number;
  /** Commit to the document being found by search (_count/terms poll), ms. */
  searchable: Percentiles;
  /** Commit to the syncer's acknowledgement (after Elasticsearch acknowledged the bulk), ms. */
  acknowledged: Percentiles;
  /** The UPDATE's own round trip, ms: the writer's view. */
  commit: Percentiles;
}

export interface FanOutResult extends SyncerPhase {
  films: number;
  firstVisibleSeconds: number;
  seconds: number;
  filmsPerSecond: number;
}

export interface CatchUpResult extends SyncerPhase {
  changes: number;
  /** How long writing the changes took (syncer down), s. */
  writeSeconds: number;
  /** Spawn to convergence, s. */
  seconds: number;
  filmsPerSecond: number;
}

export interface LoadBesideEditsRun {
  /** Syncers running (the second one hears the edits as well, and does not load). */
  syncers: number;
  editsPerSecond: number;
  /** Edits committed while the load ran. */
  edits: number;
  /** Spawn to every document searchable, s. */
  seconds: number;
  /** Documents of all three indices / seconds. */
  documentsPerSecond: number;
  /** The first run's seconds / this run's: 1 = as fast as one syncer with no edits. */
  ratio: number;
}

export interface LoadBesideEditsResult {
  /** Documents per index (films, persons, genres) the load had to reach. */
  documents: number[];
  /** One syncer and no edits; one syncer beside the edits; two syncers beside them. */
  runs: LoadBesideEditsRun[];
}

/** The writers' conditions: no triggers, and triggers in each doorbell state. */
export type WriterCondition = 'off' | 'awake' | 'ringing' | 'nobody';

export interface WriterResult {
  tool: string;
  clients: number;
  secondsPerRun: number;
  films: number;
  workload: string;
  /** tps of every run, per condition. */
  tps: Record<WriterCondition, number[]>;
  medians: Record<WriterCondition, number>;
  /** Median / median without triggers: 1 = no overhead. */
  ratios: Record<WriterCondition, number>;
  /** Notifications a listening session heard during each condition's runs. */
  notifications: Record<WriterCondition, number>;
  concurrentTests: number;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  machine: Record<string, string | number>;
  options: Record<string, unknown>;
  syncerConfig: {
    sizeLimit: number;
    bulkSize: number;
    sleepMs: number;
    pollIntervalMs: number;
    workers: number;
    refreshMs: number;
  };
  setup: { films: number; seedSeconds: number; fanOutFilms: number };
  fullLoad?: FullLoadResult;
  ceiling?: CeilingResult;
  /** Syncer documents/s (all indices) over bulk ceiling docs/s (film documents). */
  fullLoadRatio?: number;
  /** The machine's limit for the full load (bench/loadLimit.ts) and how close the syncer came. */
  loadLimit?: {
    bulkCpuMs: number;
    extractCpuMs: number;
    docsPerSecond: number;
    ratio: number;
    /** ms of CPU per document each part spent during the full load. */
    fullLoadCpuMs: Partial<Record<'elasticsearch' | 'postgres' | 'syncer' | 'redis', number>>;
    /** The same limit with Elasticsearch's part measured in the syncer's bulk shape. */
    syncerShape?: { bulkCpuMs: number; docsPerSecond: number; ratio: number };
  };
  live?: LiveResult[];
  fanOut?: FanOutResult;
  catchUp?: CatchUpResult;
  loadBesideEdits?: LoadBesideEditsResult;
  writerOverhead?: WriterResult;
  /** Peak RSS of each phase's syncer, MB. */
  memory: Record<string, number>;
  /** Redis used_memory growth at its peak, per phase, MB. */
  redisMemory: Record<string, number>;
  /** Which program the phases spawned. */
  program: string;
  warnings: string[];
}

export function percentiles(values: number[], missing = 0): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => {
    if (sorted.length === 0) return NaN;
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
  };
  return {
    count: sorted.length,
    missing,
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: sorted.at(-1) ?? NaN,
  };
}

export const median = (values: number[]) => percentiles(values).p50;
