/** Waits until the index equals the documents computed from Postgres, or fails with the drift. */
import { setTimeout as delay } from 'node:timers/promises';
import type { Sandbox } from './isolation.js';
import {
  compare,
  describeDrift,
  expectedDocuments,
  inSync,
  indexedDocuments,
  type Drift,
} from './expectedDocuments.js';

export async function waitForConvergence(
  sandbox: Sandbox,
  timeoutMs = 30_000,
): Promise<{ ms: number; documents: number }> {
  const started = Date.now();
  let drift: Drift | null = null;
  while (Date.now() - started < timeoutMs) {
    const [expected, actual] = await Promise.all([
      expectedDocuments(sandbox.pg),
      indexedDocuments(sandbox.es, sandbox.config.index).catch(() => new Map()),
    ]);
    drift = compare(expected, actual);
    if (inSync(drift)) return { ms: Date.now() - started, documents: expected.size };
    await delay(200);
  }
  throw new Error(
    `index did not converge in ${timeoutMs} ms: ${drift ? describeDrift(drift) : 'no read'}`,
  );
}

/** Polls `check` until it returns true. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check()) return;
    await delay(100);
  }
  throw new Error(`${what} not reached in ${timeoutMs} ms`);
}
