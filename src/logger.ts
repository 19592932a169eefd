/**
 * pino, JSON lines by default (for log shippers), readable when a person watches a terminal.
 * Components take child loggers (`logger.child({ component: 'loader' })`) and log structured
 * fields rather than numbers inside sentences.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(level: LevelWithSilent, pretty = process.stdout.isTTY): Logger {
  if (pretty) {
    return pino({
      level,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino({ level, base: { pid: process.pid } });
}
