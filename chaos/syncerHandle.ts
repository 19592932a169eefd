/**
 * One real syncer process, run as users run it (`node --import tsx src/cli/start.ts`), or another
 * of the program's commands (a reindex: `script`, `args`), with its
 * JSON log lines teed to a file and the last ones kept for failure reports, whether it reached
 * `syncer started`, and how it ended.
 *
 * What can go wrong: a process that ignores SIGTERM would hold the campaign forever, so every
 * stop has a deadline after which it is killed -9 (and the hang is reported by the caller). A
 * syncer that fails to start because another engineer's half-finished edit does not compile looks
 * like a start failure here; its output tail says which.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../test/helpers/runCli.js';

const TAIL_LINES = 60;

export interface Exit {
  code: number | null;
  signal: string | null;
  at: number;
}

export class SyncerHandle {
  readonly child: ChildProcess;
  readonly spawnedAt = Date.now();
  startedAt: number | null = null;
  exit: Exit | null = null;
  /** What the campaign did to end it, if anything. */
  ending: 'kill9' | 'sigterm' | null = null;
  readonly exited: Promise<Exit>;
  private readonly tail: string[] = [];
  /** The first lines that are not JSON log lines: a crash's error and stack, say. */
  readonly plain: string[] = [];
  private partial = '';
  private readonly file: WriteStream;

  constructor(
    readonly name: string,
    env: Record<string, string>,
    logDir: string,
    /** The checkout whose `src/cli/start.ts` runs (this one by default). */
    root: string = ROOT,
    script = 'start',
    args: readonly string[] = [],
  ) {
    this.file = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
    this.child = spawn(process.execPath, ['--import', 'tsx', `src/cli/${script}.ts`, ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (chunk: Buffer) => this.take(chunk));
    this.child.stderr?.on('data', (chunk: Buffer) => this.take(chunk));
    this.exited = once(this.child, 'exit').then(([code, signal]) => {
      this.exit = { code: code as number | null, signal: signal as string | null, at: Date.now() };
      this.file.end();
      return this.exit;
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exit === null;
  }

  get started(): boolean {
    return this.startedAt !== null;
  }

  /** The last log lines, oldest first. */
  lastLines(n = TAIL_LINES): string[] {
    return this.tail.slice(-n);
  }

  /** SIGSTOP: the process is frozen (a GC pause, a stopped VM) until resume(). */
  frozen = false;

  pause(): void {
    if (!this.running || this.frozen) return;
    this.frozen = true;
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    if (!this.frozen) return;
    this.frozen = false;
    if (this.running) this.child.kill('SIGCONT');
  }

  kill9(): void {
    this.ending ??= 'kill9';
    if (this.running) this.child.kill('SIGKILL');
  }

  /** SIGTERM and wait up to `deadlineMs`; kill -9 after that. `hung` says whether it had to. */
  async sigterm(deadlineMs: number): Promise<{ exit: Exit; hung: boolean; tookMs: number }> {
    const sent = Date.now();
    this.ending ??= 'sigterm';
    this.resume(); // a stopped process would only see the signal after SIGCONT
    if (this.running) this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), deadlineMs);
    });
    const first = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (first !== 'timeout') return { exit: first, hung: false, tookMs: Date.now() - sent };
    this.child.kill('SIGKILL');
    return { exit: await this.exited, hung: true, tookMs: Date.now() - sent };
  }

  private take(chunk: Buffer): void {
    this.file.write(chunk);
    const lines = (this.partial + chunk.toString()).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      this.tail.push(line.length > 600 ? `${line.slice(0, 600)}…` : line);
      if (!line.startsWith('{') && this.plain.length < 40) this.plain.push(line);
      if (this.tail.length > TAIL_LINES * 2) this.tail.splice(0, TAIL_LINES);
      if (this.startedAt === null && line.includes('"msg":"syncer started"'))
        this.startedAt = Date.now();
    }
  }
}
