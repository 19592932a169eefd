/** Runs the real syncer in this test process against a sandbox, and migrates the sandbox first. */
import { fileURLToPath } from 'node:url';
import type { Config } from '../../src/config.js';
import { migrate } from '../../src/db/migrator.js';
import { createLogger } from '../../src/logger.js';
import { Syncer } from '../../src/sync/syncer.js';
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
): Promise<Syncer> {
  const syncer = new Syncer({ ...sandbox.config, ...overrides }, testLog(), {
    listenerHeartbeatMs: 1_000,
    reapEveryMs: 1_000,
  });
  await syncer.start();
  return syncer;
}
