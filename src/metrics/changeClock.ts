/**
 * When this process first heard of a change to a film (from a notification), so that the indexer
 * can observe change-to-index latency when the film is acknowledged. Bounded: under a backlog the
 * oldest entries are dropped rather than growing without limit.
 */
export class ChangeClock {
  private readonly heardAt = new Map<string, number>();

  constructor(private readonly capacity = 50_000) {}

  heard(films: Iterable<string>, at = performance.now()): void {
    for (const film of films) {
      if (this.heardAt.has(film)) continue;
      if (this.heardAt.size >= this.capacity) {
        const oldest = this.heardAt.keys().next().value;
        if (oldest !== undefined) this.heardAt.delete(oldest);
      }
      this.heardAt.set(film, at);
    }
  }

  /** Seconds since each film was heard of, for the films that were; forgets them. */
  settle(films: Iterable<string>, at = performance.now()): number[] {
    const ages: number[] = [];
    for (const film of films) {
      const heard = this.heardAt.get(film);
      if (heard === undefined) continue;
      this.heardAt.delete(film);
      ages.push((at - heard) / 1000);
    }
    return ages;
  }
}
