/** Runs the real syncer in this test process against a sandbox, and migrates the sandbox first. */
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { Config } from '../../src/config.js';
import { migrate } from '../../src/db/migrator.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { Syncer, type SyncerOptions } from '../../src/sync/syncer.js';
import type { Sandbox } from './isolation.js';

export const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));

export const testLog = () =>
  createLogger((process.env.TEST_LOG_LEVEL as 'silent' | undefined) ?? 'silent', false);

export async function migrateSandbox(sandbox: Sandbox): Promise<void> {
  await migrate(sandbox.config.databaseUrl, MIGRATIONS, testLog());
}

export async function startSyncer(
  sandbox: Sandbox,
  overrides: Partial<Config> = {},
  log: Logger = testLog(),
  options: SyncerOptions = {},
): Promise<Syncer> {
  const syncer = new Syncer({ ...sandbox.config, ...overrides }, log, {
    listenerHeartbeatMs: 1_000,
    reapEveryMs: 1_000,
    ...options,
  });
  await syncer.start();
  return syncer;
}

/** A logger whose JSON lines are kept in memory, for tests that check what was logged. */
export function capturingLog(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk.toString());
        done();
      },
    }),
  );
  const lines = () =>
    chunks
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { log, lines };
}
