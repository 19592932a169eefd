/**
 * Keeps every kind's index there. An index that is gone (deleted by hand or by a cleanup script,
 * or an Elasticsearch that came back without its data) is created again, and since the new index
 * holds nothing while the watermarks in Redis only bring changes from now on, its kind is asked to
 * be loaded again whole (src/queue/reloadRequests.ts); the poller is woken to start at once.
 *
 * It looks at start, whenever a bulk write finds its index missing, and every CHECK_MS: an index
 * deleted while nothing is edited would otherwise stay empty until the next edit.
 */
import type { Client } from '@elastic/elasticsearch';
import type { DocumentKind, KindName } from '../kinds/documentKind.js';
import type { Logger } from '../logger.js';
import { ensureIndex, type IndexTarget } from '../load/indexManager.js';
import type { ReloadRequests } from '../queue/reloadRequests.js';

/** Three HEAD requests per look. */
const CHECK_MS = 15_000;

export class IndexWatch {
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(
    private readonly es: Client,
    private readonly kinds: readonly { kind: DocumentKind; alias: string }[],
    private readonly reloads: ReloadRequests,
    private readonly log: Logger,
    /** An index was created again: wake the poller so its load begins now. */
    private readonly onCreated: () => void = () => undefined,
  ) {}

  /** The kind's index, created (and its kind's reload asked for) when missing. */
  async ensure(name: KindName): Promise<IndexTarget> {
    const entry = this.kinds.find((k) => k.kind.name === name);
    if (!entry) throw new Error(`no index for ${name}`);
    // The request goes before the index is made: made after, it would be lost to a crash or a
    // Redis away in between, and the next look would find the index there and ask for nothing.
    // A request for an index another syncer made first costs one more load, nothing else.
    const { created, ...target } = await ensureIndex(
      this.es,
      entry.alias,
      this.log,
      entry.kind.definition,
      () => this.reloads.request(name),
    );
    if (created) {
      this.log.warn(
        { index: entry.alias },
        'index was missing and is created again: every document of it is queued again',
      );
      this.onCreated();
    }
    return target;
  }

  /** Look every `everyMs`, until stop(). */
  start(everyMs = CHECK_MS): void {
    this.timer = setInterval(() => void this.checkAll(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async checkAll(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const { kind } of this.kinds) await this.ensure(kind.name);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not check the indices; retrying');
    } finally {
      this.checking = false;
    }
  }
}
