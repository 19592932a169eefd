import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/runCli.js';

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
});
