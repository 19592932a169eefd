/**
 * The reaper: every few seconds, give back the claims of workers whose heartbeat lapsed (any
 * syncer's, not only this one's), so a crashed process's films go back to the queue; and claims
 * recorded for this process's workers that none of them holds (see `WorkerRegistry.reapDead`).
 */
import type { Logger } from '../logger.js';
import type { DocumentQueue } from './documentQueue.js';
import type { WorkerRegistry } from './workerRegistry.js';

export class Reaper {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly registry: WorkerRegistry,
    private readonly queue: DocumentQueue,
    private readonly log: Logger,
    /** Which claim a worker of this process holds; undefined for another process's worker. */
    private readonly heldHere?: (workerId: string) => string | null | undefined,
  ) {}

  /** One pass now, then one every `everyMs`. */
  async start(everyMs: number): Promise<void> {
    await this.reap();
    this.timer = setInterval(() => void this.reap(), everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Never throws: a failed pass is logged and the next one tries again. */
  async reap(): Promise<void> {
    try {
      const { workers, ids, orphans } = await this.registry.reapDead(this.queue, this.heldHere);
      if (workers.length > 0)
        this.log.warn({ workers, ids }, 'returned the claims of dead workers');
      if (orphans.length > 0)
        this.log.error(
          { claims: orphans },
          "returned claims recorded for this process's workers that none of them held",
        );
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'reaper failed');
    }
  }
}
