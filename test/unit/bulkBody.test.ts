/** The `_bulk` body, byte for byte: pure logic, no services. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bulkBody } from '../../src/load/bulkBody.js';
import type { Operation } from '../../src/load/bulkItems.js';

/** NDJSON as Elasticsearch documents it, written the obvious way. */
function reference(index: string, operations: Operation[]): string {
  return operations
    .map((op) => {
      const action = JSON.stringify({
        [op.kind]: { _index: index, _id: op.id, version: op.version, version_type: 'external_gte' },
      });
      return op.kind === 'index' ? `${action}\n${op.json}\n` : `${action}\n`;
    })
    .join('');
}

const operations: Operation[] = [
  {
    kind: 'index',
    id: '0b8d1f2e-6c3a-4e5f-9a7b-1c2d3e4f5a6b',
    version: 1796497041900123,
    json: JSON.stringify({
      title: 'Сталкер',
      genres: ['Драма', 'Фантастика'],
      note: '"quoted" \\',
    }),
  },
  { kind: 'delete', id: '1b8d1f2e-6c3a-4e5f-9a7b-1c2d3e4f5a6b', version: 7 },
  { kind: 'index', id: '2b8d1f2e', version: 0, json: '{"emoji":"🎬","plain":"ascii only"}' },
  { kind: 'index', id: 'odd "id" \\', version: 3, json: '{}' },
];

describe('bulk body', () => {
  it('matches the NDJSON of each action and document, non-ASCII and escapes included', () => {
    const body = bulkBody('movies_films', operations);
    assert.equal(body.toString('utf8'), reference('movies_films', operations));
    assert.equal(body.length, Buffer.byteLength(reference('movies_films', operations)));
  });

  it('parses back line by line into the actions sent', () => {
    const lines = bulkBody('persons', operations).toString('utf8').split('\n');
    assert.equal(lines.pop(), '', 'ends with a newline');
    const line = (n: number) =>
      JSON.parse(lines[n] ?? '') as Record<string, Record<string, unknown>>;
    assert.deepEqual(line(0), {
      index: {
        _index: 'persons',
        _id: '0b8d1f2e-6c3a-4e5f-9a7b-1c2d3e4f5a6b',
        version: 1796497041900123,
        version_type: 'external_gte',
      },
    });
    assert.equal(line(1).title, 'Сталкер');
    assert.equal(line(2).delete?._id, '1b8d1f2e-6c3a-4e5f-9a7b-1c2d3e4f5a6b');
    assert.equal(line(5).index?._id, 'odd "id" \\');
  });

  it('is empty for no operations', () => {
    assert.equal(bulkBody('films', []).length, 0);
  });
});
