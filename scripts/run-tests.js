// `npm test`'s runner: every test file, two at a time (each file isolates itself: its own
// database, Redis prefix and indices), the slowest first so that no long file starts last and
// runs alone at the end. A file missing from SLOWEST_FIRST just runs after them, in name order.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

const SLOWEST_FIRST = [
  'test/sync/bulkStatement.test.ts',
  'test/faults/crashes.test.ts',
  'test/faults/redisWrites.test.ts',
  'test/chaos.test.ts',
  'test/load/reindexFailure.test.ts',
  'test/sync/personsGenres.test.ts',
  'test/load/reindexMirror.test.ts',
  'test/sync/keyBounds.test.ts',
  'test/faults/postgres.test.ts',
  'test/reindex.test.ts',
];

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const all = testFiles('test').sort();
const first = SLOWEST_FIRST.filter((file) => all.includes(file));
const files = [...first, ...all.filter((file) => !first.includes(file))];
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    ...process.argv.slice(2),
    ...files,
  ],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
