/**
 * What the numbers were measured on, and whether the machine was quiet: a test suite running at
 * the same time (`node --import tsx --test`) makes every timing noisy.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import type { Sandbox } from '../test/helpers/isolation.js';

/** How many `node --import tsx --test` processes run on this machine now. */
export function concurrentTests(): number {
  let count = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return 0; // not Linux
  }
  for (const pid of entries) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.includes('--import tsx --test')) count++;
    } catch {
      // gone meanwhile
    }
  }
  return count;
}

/** The largest number of concurrent test processes seen while `run` ran (sampled every second). */
export async function watchNoise<T>(run: () => Promise<T>): Promise<{ result: T; tests: number }> {
  let tests = concurrentTests();
  const timer = setInterval(() => (tests = Math.max(tests, concurrentTests())), 1_000);
  try {
    const result = await run();
    return { result, tests: Math.max(tests, concurrentTests()) };
  } finally {
    clearInterval(timer);
  }
}

export function which(tool: string): string | null {
  try {
    return execFileSync('which', [tool], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

export async function machineInfo(sb: Sandbox): Promise<Record<string, string | number>> {
  const [pgVersion] = (
    await sb.pg.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)
  ).rows;
  const settings = await sb.pg.query<{ name: string; setting: string }>(
    `SELECT name, setting FROM pg_settings
      WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'max_connections')`,
  );
  const info = await sb.es.nodes.info({ filter_path: 'nodes.*.version' }).catch(() => null);
  const heap = await sb.es.nodes
    .stats({ metric: 'jvm', filter_path: 'nodes.*.jvm.mem.heap_max_in_bytes' })
    .catch(() => null);
  const heapBytes = Object.values(heap?.nodes ?? {})[0]?.jvm?.mem?.heap_max_in_bytes ?? 0;
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    postgres: pgVersion?.v ?? 'unknown',
    ...Object.fromEntries(settings.rows.map((r) => [`pg_${r.name}`, r.setting])),
    elasticsearch: Object.values(info?.nodes ?? {})[0]?.version ?? 'unknown',
    elasticsearchHeapMb: Math.round(heapBytes / 2 ** 20),
  };
}
