/**
 * Progress of a full load or catch-up: a bar with rate and ETA when a person watches a terminal,
 * and a structured log line (done, total, rate, ETA) every few seconds otherwise, so a long initial
 * load never sits silently at "0%".
 */
import type cliProgress from 'cli-progress';
import type { Logger } from '../logger.js';
import { terminal as screen, type Terminal } from '../terminal.js';

export interface ProgressSource {
  /** Documents processed so far (indexed, deleted or refused as stale) since the load began. */
  done(): number | Promise<number>;
  /** True once the load is over: every document queued, and its backlog indexed. */
  finished(): Promise<boolean>;
}

export class LoadProgress {
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private bar: cliProgress.SingleBar | null = null;
  private lastLog = 0;

  constructor(
    private readonly label: string,
    private total: number,
    private readonly source: ProgressSource,
    private readonly log: Logger,
    private readonly tty = process.stderr.isTTY,
    private readonly logEveryMs = 10_000,
    private readonly terminal: Terminal = screen,
  ) {}

  start(): void {
    if (this.tty) {
      this.bar = this.terminal.startBar(
        `${this.label} [{bar}] {percentage}% | {value}/{total} documents | {rate}/s | ETA {eta_formatted}`,
        this.total,
        { rate: 0 },
      );
    }
    this.timer = setInterval(() => void this.tick(), 1_000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.bar) this.terminal.stopBar();
    this.bar = null;
  }

  /** The last count the source gave (kept while it cannot say: Redis away). */
  private done = 0;

  private async tick(): Promise<void> {
    this.done = await Promise.resolve(this.source.done()).catch(() => this.done);
    const done = this.done;
    // The total is the planner's estimate: never show more done than total.
    if (done > this.total) this.total = done;
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const etaSeconds = rate > 0 ? Math.max(0, (this.total - done) / rate) : null;
    this.bar?.setTotal(this.total);
    this.bar?.update(done, { rate: Math.round(rate) });
    const finished = await this.source.finished().catch(() => false);
    if (finished) {
      this.stop();
      this.log.info(
        { documents: done, seconds: Math.round(seconds), rate: Math.round(rate) },
        `${this.label} done`,
      );
      return;
    }
    if (!this.tty && Date.now() - this.lastLog >= this.logEveryMs) {
      this.lastLog = Date.now();
      this.log.info(
        {
          done,
          total: this.total,
          rate: Math.round(rate),
          eta_s: etaSeconds === null ? null : Math.round(etaSeconds),
        },
        `${this.label} progress`,
      );
    }
  }
}
