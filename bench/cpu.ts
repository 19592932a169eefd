/**
 * Where the machine's CPU went during a phase (Linux /proc): Elasticsearch (java), PostgreSQL
 * (every postgres process, plus what the postmaster collected from backends that exited), Redis,
 * the syncer process, the bench itself, anything else, and idle; in percent of all cores. On a
 * small machine the services share the cores, so a phase is often bounded by their sum.
 */
import { readdirSync, readFileSync } from 'node:fs';

export type CpuShares = Record<
  'elasticsearch' | 'postgres' | 'redis' | 'syncer' | 'bench' | 'other' | 'idle',
  number
>;

interface Sample {
  total: number;
  idle: number;
  groups: Record<string, number>;
}

function machine(): { total: number; idle: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((sum, v) => sum + v, 0);
  return { total, idle: (fields[3] ?? 0) + (fields[4] ?? 0) };
}

function group(comm: string, pid: number, syncerPid: number | undefined): string | null {
  if (pid === process.pid) return 'bench';
  if (pid === syncerPid) return 'syncer';
  if (comm === 'java') return 'elasticsearch';
  if (comm === 'postgres') return 'postgres';
  if (comm === 'redis-server') return 'redis';
  return null;
}

function sample(syncerPid?: number): Sample {
  const groups: Record<string, number> = {};
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const name = group(comm, Number(entry), syncerPid);
    if (!name) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime: fields 14-17 of stat, 11-14 after "pid (comm) ".
    const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i] ?? 0));
    groups[name] =
      (groups[name] ?? 0) + (utime ?? 0) + (stime ?? 0) + (cutime ?? 0) + (cstime ?? 0);
  }
  return { ...machine(), groups };
}

/**
 * Start counting; `stop` (call it while the syncer still runs) returns the shares since. Pass the
 * syncer's pid when it already runs (or 0 when it is yet to be spawned).
 */
export function cpuMeter(syncerPid = 0): { stop: (syncerPid: number) => CpuShares | null } {
  let first: Sample | null = null;
  try {
    first = sample(syncerPid);
  } catch {
    first = null; // not Linux
  }
  return {
    stop(syncerPid) {
      if (!first) return null;
      const start = first;
      const end = sample(syncerPid);
      const span = Math.max(1, end.total - start.total);
      const pct = (v: number) => Math.round((1_000 * v) / span) / 10;
      const delta = (name: string) =>
        Math.max(0, (end.groups[name] ?? 0) - (start.groups[name] ?? 0));
      const busy = end.total - end.idle - (start.total - start.idle);
      const known = ['elasticsearch', 'postgres', 'redis', 'syncer', 'bench'].map(delta);
      return {
        elasticsearch: pct(delta('elasticsearch')),
        postgres: pct(delta('postgres')),
        redis: pct(delta('redis')),
        syncer: pct(delta('syncer')),
        bench: pct(delta('bench')),
        other: pct(Math.max(0, busy - known.reduce((sum, v) => sum + v, 0))),
        idle: pct(end.idle - start.idle),
      };
    },
  };
}
