/**
 * An index that refuses every write as a whole (src/load/bulkWriter.ts, IndexRefusing): closed or
 * write-blocked by an operator, or credentials without its write privilege. Its documents are
 * held back, queued again, for a while that doubles up to MAX_PAUSE_MS, and the other indices go
 * on: a worker's claim mixes the documents of every index, and waiting inside the write for the
 * index to take them again held each worker in turn, and with them every index, for as long as
 * the block lasted. One per index in a process, shared by its workers.
 */
const FIRST_PAUSE_MS = 2_000;
const MAX_PAUSE_MS = 30_000;

export class IndexPause {
  private until = 0;
  private nextMs = FIRST_PAUSE_MS;

  /** Whether this index's documents are held back now (performance.now() time). */
  get holding(): boolean {
    return performance.now() < this.until;
  }

  /** How long until the next write to the index is tried; 0 when not holding. */
  get remainingMs(): number {
    return Math.max(0, this.until - performance.now());
  }

  /**
   * The index refused a write as a whole: hold its documents back for the next while. Every worker
   * that was writing to it then says so: the pause under way answers them all (doubled by each,
   * it reached its longest at the first refusal).
   */
  refused(): number {
    if (this.holding) return this.remainingMs;
    const pause = this.nextMs;
    this.until = performance.now() + pause;
    this.nextMs = Math.min(2 * this.nextMs, MAX_PAUSE_MS);
    return pause;
  }

  /** The index took a write: no pause the next time it refuses than the first. */
  accepted(): void {
    this.until = 0;
    this.nextMs = FIRST_PAUSE_MS;
  }
}
