/**
 * The screen a person watches: readable log lines, and during a long load a progress bar. Both
 * share one screen, so neither may write to it behind the other's back: a log line written
 * straight to the terminal lands on the line where the bar is drawn (`… ETA 0s[20:55:01] INFO:
 * …`), and the bar's next redraw then overwrites half of it.
 *
 * So while a bar is up, log lines go through cli-progress's own log buffer (MultiBar.log), which
 * prints them above the bar at its next redraw (at most 100 ms later) and draws the bar again
 * whole below them; with no bar they go straight to stdout. Only the pretty (TTY) logger uses
 * this: JSON logs for machines never meet a bar.
 */
import { createRequire } from 'node:module';
import type cliProgress from 'cli-progress';

// Loaded on the first bar: a syncer in a container (JSON logs, no terminal) never draws one.
const loadProgressBars = () => createRequire(import.meta.url)('cli-progress') as typeof cliProgress;

export class Terminal {
  private bars: cliProgress.MultiBar | null = null;

  constructor(
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly barStream: NodeJS.WritableStream = process.stderr,
  ) {}

  /** A log line (with its newline). */
  write(text: string): void {
    if (this.bars) this.bars.log(text);
    else this.out.write(text);
  }

  /** Draw a bar (one at a time); log lines go above it until stopBar(). */
  startBar(format: string, total: number, payload: object): cliProgress.SingleBar {
    this.stopBar();
    const bars = loadProgressBars();
    this.bars = new bars.MultiBar(
      { format, stream: this.barStream, hideCursor: true, autopadding: true },
      bars.Presets.shades_classic,
    );
    return this.bars.create(total, 0, payload);
  }

  /** Print what is buffered, leave the bar's last state on screen, and write straight again. */
  stopBar(): void {
    const bars = this.bars;
    if (!bars) return;
    this.bars = null;
    bars.update(); // flushes log lines still in its buffer
    bars.stop();
  }
}

/** The process's one screen. */
export const terminal = new Terminal();
