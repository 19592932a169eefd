/**
 * A tiny terminal screen for tests of what a person would see: it applies the cursor movements
 * and clears that Node's readline and cli-progress write (CR, LF, ESC [ n A/B/C/D/G, ESC [ 0/1/2 K,
 * ESC [ 0 J, ESC 7/8), ignores the rest (cursor visibility, line wrapping, colours), and shows
 * the lines the screen ends up with.
 */
import { PassThrough } from 'node:stream';

export class Screen {
  /** Give this to the code under test as its stdout and stderr: both draw on this one screen. */
  readonly stream: PassThrough & { isTTY: boolean; columns: number };
  private readonly lines: string[][] = [[]];
  private row = 0;
  private col = 0;
  private saved = { row: 0, col: 0 };

  constructor(columns = 160) {
    this.stream = Object.assign(new PassThrough(), { isTTY: true, columns });
    this.stream.on('data', (chunk: Buffer) => this.apply(chunk.toString()));
  }

  /** The screen's lines, trailing blanks trimmed. */
  text(): string[] {
    const out = this.lines.map((cells) => cells.join('').trimEnd());
    while (out.length > 0 && out.at(-1) === '') out.pop();
    return out;
  }

  private apply(s: string): void {
    for (let i = 0; i < s.length; i++) {
      const c = s[i] as string;
      if (c === '\x1b') {
        const csi = /^\[([?0-9;]*)([A-Za-z])/.exec(s.slice(i + 1));
        if (csi) {
          this.control(csi[1] ?? '', csi[2] ?? '');
          i += csi[0].length;
        } else if (s[i + 1] === '7' || s[i + 1] === '8') {
          if (s[i + 1] === '7') this.saved = { row: this.row, col: this.col };
          else ({ row: this.row, col: this.col } = this.saved);
          i += 1;
        }
      } else if (c === '\r') this.col = 0;
      else if (c === '\n') {
        this.row++;
        this.col = 0;
      } else {
        const line = this.line();
        while (line.length < this.col) line.push(' ');
        line[this.col++] = c;
      }
    }
  }

  private control(params: string, op: string): void {
    if (params.startsWith('?')) return; // cursor visibility, line wrapping
    const n = params === '' ? undefined : Number(params);
    const line = this.line();
    switch (op) {
      case 'A':
        this.row = Math.max(0, this.row - (n ?? 1));
        break;
      case 'B':
        this.row += n ?? 1;
        break;
      case 'C':
        this.col += n ?? 1;
        break;
      case 'D':
        this.col = Math.max(0, this.col - (n ?? 1));
        break;
      case 'G':
        this.col = (n ?? 1) - 1;
        break;
      case 'K':
        if ((n ?? 0) === 0) line.splice(this.col);
        else if (n === 1) line.fill(' ', 0, this.col + 1);
        else line.length = 0;
        break;
      case 'J':
        line.splice(this.col);
        this.lines.splice(this.row + 1);
        break;
      default:
        break; // colours (m) and anything else: no effect on the text
    }
  }

  private line(): string[] {
    while (this.lines.length <= this.row) this.lines.push([]);
    return this.lines[this.row] as string[];
  }
}
