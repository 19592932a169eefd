/**
 * Commands that print JSON for machines (`status --json`, `verify --json`, `dead-letters --json`)
 * keep stdout for it: what they log goes to stderr.
 *
 * Outside reading: their warnings went to stdout, so with Redis away a script reading
 * `status --json` got log lines, one per reconnection, where it expected a JSON document or
 * nothing. Redis here is a port where none listens.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/runCli.js';

const NO_REDIS = { REDIS_URL: 'redis://127.0.0.1:1/0', METRICS_PORT: '0' };

describe('commands that print JSON', () => {
  for (const [command, args] of [
    ['status', ['--json']],
    ['dead-letters', ['--json']],
  ] as const) {
    it(`${command} ${args.join(' ')} prints no log line on stdout, Redis away`, async () => {
      const result = await runCli(command === 'dead-letters' ? 'deadLetters' : command, NO_REDIS, [
        ...args,
      ]);
      assert.equal(result.code, 1, result.stdout + result.stderr);
      assert.equal(result.stdout, '', 'stdout holds JSON or nothing');
      assert.match(result.stderr, /redis/i, 'the trouble is told on stderr');
    });
  }
});
