/**
 * pino, JSON lines by default (for log shippers), readable when a person watches a terminal.
 * Components take child loggers (`logger.child({ component: 'loader' })`) and log structured
 * fields rather than numbers inside sentences.
 */
import { createRequire } from 'node:module';
import type { prettyFactory } from 'pino-pretty';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { terminal } from './terminal.js';

export type { Logger };

export function createLogger(level: LevelWithSilent, pretty = process.stdout.isTTY): Logger {
  if (pretty) {
    // Formatted here in the main thread (not in pino's transport worker), so that each line goes
    // through the terminal, which keeps log lines above a progress bar (src/terminal.ts).
    // Loaded only here: JSON logging (a container, a log shipper) never needs it.
    const pinoPretty = createRequire(import.meta.url)('pino-pretty') as {
      prettyFactory: typeof prettyFactory;
    };
    const format = pinoPretty.prettyFactory({
      colorize: true,
      translateTime: 'HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
    return pino({ level }, { write: (line: string) => terminal.write(format(line)) });
  }
  return pino({ level, base: { pid: process.pid } });
}

/**
 * For commands whose stdout is their answer (`--json` output for scripts): JSON lines on stderr,
 * so that a warning (Redis away, say) never lands in the document a script parses.
 */
export function createStderrLogger(level: LevelWithSilent): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination(2));
}
