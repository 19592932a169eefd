/**
 * The last minutes of one syncer, for the status page's charts (`/status.json`, src/metrics/
 * statusPage.html): every SAMPLE_MS, documents done per second, the queue's depth, and the
 * change-to-index latency of the documents done in that interval, as quantiles estimated from the
 * histogram's bucket counts (the way Prometheus's histogram_quantile does).
 *
 * A fixed number of points in memory: nothing grows with uptime. A sample that fails (Redis away)
 * is skipped, so the chart shows a gap in time rather than a made-up zero.
 */

/** One point of the charts. Latencies in seconds; null when no document was done in it. */
export interface HistoryPoint {
  at: string;
  docsPerSecond: number;
  queueDepth: number;
  latencyP50: number | null;
  latencyP99: number | null;
}

/** What a sample reads: a running total of documents done, the queue depth, the histogram. */
export interface HistorySource {
  done(): number;
  queueDepth(): Promise<number>;
  /** Cumulative bucket counts of the change-to-index histogram: upper bound (s) → count. */
  latencyBuckets(): Promise<Map<number, number>>;
}

const SAMPLE_MS = 5_000;
/** Ten minutes at SAMPLE_MS. */
const KEEP = 120;

export class StatusHistory {
  private readonly points: HistoryPoint[] = [];
  private last: { at: number; done: number; buckets: Map<number, number> } | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly source: HistorySource,
    everyMs = SAMPLE_MS,
    private readonly keep = KEEP,
  ) {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), everyMs);
    this.timer.unref();
  }

  /** Oldest first. */
  list(): HistoryPoint[] {
    return [...this.points];
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async sample(): Promise<void> {
    try {
      const at = Date.now();
      const done = this.source.done();
      const [queueDepth, buckets] = await Promise.all([
        this.source.queueDepth(),
        this.source.latencyBuckets(),
      ]);
      const last = this.last;
      this.last = { at, done, buckets };
      // The first sample only sets the baseline for rates.
      if (!last) return;
      const interval = subtract(buckets, last.buckets);
      this.points.push({
        at: new Date(at).toISOString(),
        docsPerSecond: Math.max(0, done - last.done) / Math.max(0.001, (at - last.at) / 1000),
        queueDepth,
        latencyP50: quantile(0.5, interval),
        latencyP99: quantile(0.99, interval),
      });
      if (this.points.length > this.keep) this.points.shift();
    } catch {
      // Redis away: no point for this interval; the readiness probe says why.
    }
  }
}

function subtract(now: Map<number, number>, before: Map<number, number>): Map<number, number> {
  return new Map([...now].map(([le, count]) => [le, count - (before.get(le) ?? 0)]));
}

/**
 * The q-quantile of cumulative bucket counts (upper bound → count, +Infinity included), linearly
 * interpolated inside the bucket it falls in; null when the buckets are empty. A quantile in the
 * +Infinity bucket is reported as the largest finite bound, as Prometheus does.
 */
export function quantile(q: number, buckets: Map<number, number>): number | null {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? buckets.get(bounds.at(-1) ?? Infinity) ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bound of bounds) {
    const count = buckets.get(bound) ?? 0;
    if (count >= rank) {
      if (bound === Infinity) return lowerBound;
      const inBucket = count - lowerCount;
      return inBucket <= 0
        ? bound
        : lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}
