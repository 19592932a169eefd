/**
 * The round's `npm run reindex` runs: each starts at its planned time as an operator would run
 * it (the real command, through the same proxies as the syncers, so the faults reach it too) and,
 * when the plan says so, is stopped partway by SIGTERM or SIGKILL.
 *
 * What it may do under faults: exit 0 (every alias swapped) or 1 (failed or interrupted, the
 * aliases as they were, or swapped when the failure came after). Anything else is a finding: a
 * crash (another status, or a signal it was not sent), or no exit within REINDEX_DEADLINE_MS of
 * the round's end (it is then killed -9). Whatever a run leaves behind is the end-of-round
 * check's business: the indices must equal the oracle and no index of an unfinished reindex may
 * remain (quiescence.ts).
 */
import type { Logger } from '../src/logger.js';
import type { Findings } from './findings.js';
import type { Rig } from './rig.js';
import type { ReindexRun } from './schedule.js';
import { SyncerHandle } from './syncerHandle.js';

/** From the round's end: a reindex of 2,000-3,000 films takes seconds, faults healed. */
const REINDEX_DEADLINE_MS = 120_000;

export interface ReindexStats {
  runs: number;
  swapped: number;
  failed: number;
  interrupted: number;
  killed: number;
}

export const emptyReindexStats = (): ReindexStats => ({
  runs: 0,
  swapped: 0,
  failed: 0,
  interrupted: 0,
  killed: 0,
});

export class ReindexRuns {
  readonly stats = emptyReindexStats();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<void>>();
  private stopped = false;
  private serial = 0;

  constructor(
    private readonly rig: Rig,
    private readonly findings: Findings,
    private readonly logDir: string,
    private readonly log: Logger,
    /** Names its runs (`reindex-<round>-<n>`, also their log files). */
    private readonly round: number,
    private readonly root?: string,
  ) {}

  start(runs: readonly ReindexRun[]): void {
    for (const run of runs)
      this.timers.push(
        setTimeout(() => {
          if (this.stopped) return;
          const done = this.run(run);
          this.running.add(done);
          void done.finally(() => this.running.delete(done));
        }, run.atMs),
      );
  }

  /** No new run starts; those running are waited for (a deadline, then kill -9). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    await Promise.allSettled([...this.running]);
  }

  private async run(run: ReindexRun): Promise<void> {
    const name = `reindex-${this.round}-${++this.serial}`;
    const args = run.index === 'all' ? [] : ['--index', run.index];
    const handle = new SyncerHandle(
      name,
      this.rig.syncerEnv,
      this.logDir,
      this.root,
      'reindex',
      args,
    );
    this.stats.runs++;
    this.findings.note(`started ${name} (${run.index}, pid ${handle.pid})`);
    // An object, not a `let`: set in a timer callback, which narrowing cannot see.
    const sent: { signal: 'SIGTERM' | 'SIGKILL' | null } = { signal: null };
    const interrupt = run.interrupt;
    const timer = interrupt
      ? setTimeout(() => {
          sent.signal = interrupt.signal;
          handle.child.kill(interrupt.signal);
        }, interrupt.afterMs)
      : undefined;
    const deadline = new Promise<'hang'>((resolve) => {
      const check = setInterval(() => {
        if (!this.stopped) return;
        clearInterval(check);
        setTimeout(() => resolve('hang'), REINDEX_DEADLINE_MS).unref();
      }, 500);
      void handle.exited.finally(() => clearInterval(check));
    });
    const first = await Promise.race([handle.exited, deadline]);
    clearTimeout(timer);
    const tail = () => handle.lastLines(12).join('\n');
    if (first === 'hang') {
      handle.kill9();
      await handle.exited;
      this.findings.add(
        'reindex-hang',
        `${name} had not exited ${REINDEX_DEADLINE_MS / 1000} s after the round's end`,
        tail(),
      );
      return;
    }
    const outcome = this.judge(first, sent.signal);
    const said = lastWord(handle.lastLines(20));
    this.log.info({ reindex: name, index: run.index, outcome, said }, 'reindex ended');
    if (outcome === 'crash')
      this.findings.add(
        'reindex-crash',
        `${name} exited ${first.code ?? first.signal}${sent.signal ? ` after ${sent.signal}` : ''}`,
        [...handle.plain.slice(0, 12), '…', tail()].join('\n'),
      );
    else this.findings.note(`${name} ${outcome}${said ? ` (${said})` : ''}`);
  }

  private judge(
    exit: { code: number | null; signal: string | null },
    sent: 'SIGTERM' | 'SIGKILL' | null,
  ): 'swapped' | 'failed' | 'interrupted' | 'killed' | 'crash' {
    if (sent === 'SIGKILL' && exit.signal === 'SIGKILL') return this.count('killed');
    if (exit.code === 0) return this.count('swapped');
    if (exit.code === 1) return this.count(sent ? 'interrupted' : 'failed');
    return 'crash';
  }

  private count<K extends 'swapped' | 'failed' | 'interrupted' | 'killed'>(outcome: K): K {
    this.stats[outcome]++;
    return outcome;
  }
}

/** The reindex's own last word: `reindex failed; …: <its error>`, or '' when it had none. */
function lastWord(lines: readonly string[]): string {
  for (const line of [...lines].reverse()) {
    if (!/"msg":"reindex (done|failed|interrupted)/.test(line)) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; err?: string };
      return [entry.msg, entry.err].filter(Boolean).join(': ');
    } catch {
      return '';
    }
  }
  return '';
}
