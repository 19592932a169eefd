import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { runCli, spawnCli } from '../helpers/runCli.js';

describe('a bad configuration stops every command before it connects', () => {
  for (const command of ['start', 'migrate']) {
    it(`${command} exits 2 naming the variable`, async () => {
      // Unreachable hosts: had the command tried to connect, it would hang or fail differently.
      const result = await runCli(command, {
        ETL_SIZE_LIMIT: 'abc',
        DATABASE_URL: 'postgres://nobody@203.0.113.1:1/none',
      });
      assert.equal(result.code, 2);
      assert.match(result.stderr, /ETL_SIZE_LIMIT must be a whole number/);
      assert.doesNotMatch(result.stderr, /DATABASE_URL/);
      assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/, 'no stack trace');
    });
  }

  it('reports all problems in one message', async () => {
    const result = await runCli('start', {
      ETL_BULK_SIZE: '0',
      LOG_LEVEL: 'loud',
      ES_INDEX: 'A B',
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /3 problems/);
    for (const name of ['ETL_BULK_SIZE', 'LOG_LEVEL', 'ES_INDEX']) {
      assert.match(result.stderr, new RegExp(name));
    }
  });

  // From an outside test: both ran whatever they were given (`npm run migrate -- --help`
  // migrated, `npm start -- --help` started a syncer).
  for (const command of ['start', 'migrate']) {
    it(`${command} takes no options: one line, exit 2, before anything else`, async () => {
      const result = await runCli(command, { DATABASE_URL: 'postgres://nobody@203.0.113.1:1/x' }, [
        '--help',
      ]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, new RegExp(`^${command}: Unknown option '--help'`));
    });
  }
});

// From an outside test: a stop while start-up's checks waited for a service (one that accepts
// connections and never answers) waited for their timeout, then exited 1 as for a service down.
describe('a stop during start-up', () => {
  it('exits 0 at once while the service checks still wait', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket)).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const { port } = silent.address() as { port: number };
    try {
      const start = spawnCli('start', { ELASTICSEARCH_URL: `http://127.0.0.1:${port}` }, []);
      // Past the imports, into the checks (which wait up to 5 s on this server).
      await delay(2_500);
      const stoppedAt = Date.now();
      start.child.kill('SIGTERM');
      const code = await start.exited;
      assert.equal(code, 0, start.output());
      assert.ok(Date.now() - stoppedAt < 1_500, `stopped in ${Date.now() - stoppedAt} ms`);
      assert.match(start.output(), /signal received while starting/);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});
