/**
 * `npm run bench:instructions`, tiny: a cluster of its own under valgrind, a 200-film catalog,
 * one round of a few transactions each way. It must count both conditions and clean up after
 * itself; the triggers always cost something, so "with" above "without" says the triggers were on
 * in one and off in the other. Skipped locally without valgrind; CI installs it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { ROOT } from './helpers/runCli.js';

const hasValgrind = spawnSync('valgrind', ['--version'], { stdio: 'ignore' }).status === 0;
const skip =
  !hasValgrind && !process.env.CI
    ? 'valgrind not installed (apt-get install valgrind); CI runs this test'
    : false;

const leftovers = () => readdirSync(tmpdir()).filter((f) => f.startsWith('bench-instructions-'));

describe('npm run bench:instructions', { skip }, () => {
  it('counts a writer transaction with and without the triggers', { timeout: 300_000 }, () => {
    const before = leftovers();
    const result = spawnSync(
      process.execPath,
      [
        ...['--import', 'tsx', 'bench/writerInstructions.ts'],
        ...['--films', '200', '--repeats', '1', '--short', '5', '--long', '20'],
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    assert.equal(result.status, 0, result.stderr);
    const count = (label: string) =>
      Number(new RegExp(`${label}\\s+([\\d.]+) million`).exec(result.stdout)?.[1]);
    const off = count('without triggers');
    const on = count('with triggers');
    assert.ok(off > 0.1 && off < 100, `without triggers: ${off} million\n${result.stdout}`);
    assert.ok(on > off, `with triggers ${on} million, without ${off}`);
    assert.deepEqual(leftovers(), before, 'its cluster directory is removed');
  });
});
