/**
 * `npm run services` brings up the services the syncer will use, so it reads the same settings:
 * the environment, with the project's `.env` underneath it (src/config.ts, readEnvironment).
 *
 * Outside reading: it read the environment only. A `.env` that named another database or Redis
 * had `services` prepare the defaults, and the next `npm run migrate` or `npm start` failed.
 * Checked with `services.sh status`, which only looks (a Redis on a port where none listens
 * reads as down), run from a copy of the script beside a `.env` of its own.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/services.sh', import.meta.url));

describe('npm run services', () => {
  it("reads the project's .env beneath the environment, as the syncer does", () => {
    const root = mkdtempSync(path.join(tmpdir(), 'services-env-'));
    try {
      mkdirSync(path.join(root, 'scripts'));
      copyFileSync(SCRIPT, path.join(root, 'scripts', 'services.sh'));
      writeFileSync(
        path.join(root, '.env'),
        '# no Redis listens on port 1\nREDIS_URL="redis://127.0.0.1:1/0"\n',
      );
      const env = { ...process.env };
      delete env.REDIS_URL;
      const status = (extra: Record<string, string> = {}) =>
        spawnSync('bash', [path.join(root, 'scripts', 'services.sh'), 'status'], {
          env: { ...env, ...extra },
          encoding: 'utf8',
        });
      const fromFile = status();
      assert.match(
        fromFile.stdout,
        /redis +127\.0\.0\.1:1 down/,
        fromFile.stdout + fromFile.stderr,
      );
      assert.equal(fromFile.status, 1, 'a service down');

      const fromEnvironment = status({ REDIS_URL: 'redis://127.0.0.1:6379/0' });
      assert.match(fromEnvironment.stdout, /redis +127\.0\.0\.1:6379 up/, 'the environment wins');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
