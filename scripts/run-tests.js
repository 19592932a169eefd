// `npm test`'s runner: every test file under test/, two at a time (each file isolates itself: its
// own database, Redis prefix and indices). Node's runner starts the files in name order whatever
// order they are given in, so this does not try to order them.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const files = testFiles('test').sort();
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    // A file is done when its tests are. Some run a syncer in the test process and stop it within
    // its bound while Redis was cut off; what that leaves (seen: the process spinning in the event
    // loop after the last test, with no timer or socket of its own) must not hold the suite.
    '--test-force-exit',
    // A test that hangs (a lock it waits for that nothing will release) fails after this instead
    // of holding the run until CI's own limit; the longest suite takes about 5 minutes.
    '--test-timeout=600000',
    ...process.argv.slice(2),
    ...files,
  ],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
