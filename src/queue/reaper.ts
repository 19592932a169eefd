/**
 * The reaper: every few seconds, give back the claims of workers whose heartbeat lapsed (any
 * syncer's, not only this one's), so a crashed process's films go back to the queue.
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
      const { workers, ids } = await this.registry.reapDead(this.queue);
      if (workers.length > 0)
        this.log.warn({ workers, ids }, 'returned the claims of dead workers');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'reaper failed');
    }
  }
}
