/**
 * An async mutex for coroutines of one process: first come, first served, except that a caller
 * may ask to go `first` (ahead of every ordinary waiter, behind earlier `first` ones). The full
 * load's walk does: its reads take a millisecond and feed every indexer, so making it wait behind
 * each indexer's document query starved them (with four indexers the queue ran empty).
 */
export class Mutex {
  private held = false;
  private readonly urgent: (() => void)[] = [];
  private readonly waiting: (() => void)[] = [];

  async run<T>(fn: () => Promise<T>, options: { first?: boolean } = {}): Promise<T> {
    if (this.held) {
      await new Promise<void>((resolve) =>
        (options.first ? this.urgent : this.waiting).push(resolve),
      );
    } else {
      this.held = true;
    }
    try {
      return await fn();
    } finally {
      // Hand over directly (held stays true), so nobody can slip in between.
      const next = this.urgent.shift() ?? this.waiting.shift();
      if (next) next();
      else this.held = false;
    }
  }
}
