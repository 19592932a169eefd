/**
 * The one keyset pager, on its edges: the first and the last possible keys, pages that end
 * exactly at the end, empty tables, and a walk stopped between pages. Pure logic, no services.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keysetPages } from '../../src/db/keysetPages.js';
import { FIRST_UUID, LAST_UUID } from '../../src/util/uuid.js';

/** A sorted "table" read the way the SQL reads it: strictly after the cursor, or from the start. */
function table(keys: string[]) {
  const sorted = [...keys].sort();
  let reads = 0;
  return {
    get reads() {
      return reads;
    },
    read: (pageSize: number) => (after: string | undefined) => {
      reads++;
      const from = after === undefined ? sorted : sorted.filter((k) => k > after);
      return Promise.resolve(from.slice(0, pageSize));
    },
  };
}

async function walk(keys: string[], pageSize: number): Promise<string[][]> {
  const t = table(keys);
  const pages: string[][] = [];
  for await (const page of keysetPages({ pageSize, read: t.read(pageSize), keyOf: (k) => k }))
    pages.push(page);
  return pages;
}

describe('keyset pager', () => {
  const middle = '7f000000-0000-0000-0000-000000000000';

  it('returns the smallest and the largest possible key, whatever the page size', async () => {
    const keys = [FIRST_UUID, middle, LAST_UUID];
    for (const size of [1, 2, 3, 4, 100]) {
      assert.deepEqual((await walk(keys, size)).flat(), keys, `page size ${size}`);
    }
  });

  it('a table that is only the smallest key', async () => {
    assert.deepEqual(await walk([FIRST_UUID], 1), [[FIRST_UUID]]);
  });

  it('pages that end exactly at the end take one more, empty, read and yield nothing for it', async () => {
    const keys = Array.from({ length: 6 }, (_, i) => `k${i}`);
    const t = table(keys);
    const pages: string[][] = [];
    for await (const page of keysetPages({ pageSize: 3, read: t.read(3), keyOf: (k) => k }))
      pages.push(page);
    assert.deepEqual(pages, [
      ['k0', 'k1', 'k2'],
      ['k3', 'k4', 'k5'],
    ]);
    assert.equal(t.reads, 3);
  });

  it('an empty table yields no page', async () => {
    assert.deepEqual(await walk([], 5), []);
  });

  it('pauses between pages only, and stops when the signal aborts', async () => {
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
    const t = table(keys);
    const stop = new AbortController();
    let pauses = 0;
    const seen: string[] = [];
    for await (const page of keysetPages({
      pageSize: 2,
      read: t.read(2),
      keyOf: (k) => k,
      pause: () => {
        pauses++;
        if (pauses === 2) stop.abort();
        return Promise.resolve();
      },
      signal: stop.signal,
    }))
      seen.push(...page);
    assert.deepEqual(seen, ['k0', 'k1', 'k2', 'k3']);
    assert.equal(pauses, 2);
  });

  it('composite keys page on the whole key', async () => {
    const rows = [
      { t: 1, k: LAST_UUID },
      { t: 2, k: FIRST_UUID },
      { t: 2, k: middle },
    ];
    const read = (after: [number, string] | undefined) =>
      Promise.resolve(
        rows
          .filter((r) => !after || r.t > after[0] || (r.t === after[0] && r.k > after[1]))
          .slice(0, 1),
      );
    const seen = [];
    for await (const page of keysetPages({
      pageSize: 1,
      read,
      keyOf: (r): [number, string] => [r.t, r.k],
    }))
      seen.push(...page);
    assert.deepEqual(seen, rows);
  });
});
