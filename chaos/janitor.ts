/**
 * Leftovers of campaigns that died without cleaning up (kill -9 of the campaign, a CI job killed
 * at its time limit): each campaign leaves a marker, `campaign.json` in its log dir, naming its
 * pid, sandbox (database and index), private Redis port and syncer pids, and removes it when it
 * has torn everything down. A later campaign finds markers whose campaign is gone and removes
 * what they name.
 *
 * What can go wrong: killing a stranger. A pid is only killed when /proc says it is still what the
 * marker recorded (a redis-server on that port, a syncer whose ES_INDEX is the sandbox's index);
 * databases and indices are dropped by their exact sandbox name, never by pattern.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Logger } from '../src/logger.js';
import { createElasticsearchClient } from '../src/load/elasticsearchClient.js';
import { baseConfig } from '../test/helpers/env.js';

export interface Marker {
  pid: number;
  sandbox: string;
  index: string;
  redisPort: number;
  syncers: number[];
}

const FILE = 'campaign.json';

export function writeMarker(dir: string, marker: Marker): void {
  writeFileSync(join(dir, FILE), JSON.stringify(marker));
}

export function removeMarker(dir: string): void {
  rmSync(join(dir, FILE), { force: true });
}

const read = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

const alive = (pid: number) => existsSync(`/proc/${pid}`) && read(`/proc/${pid}/cmdline`) !== '';

/** Clean up after every dead campaign whose marker is under `root`. */
export async function sweepDeadCampaigns(root: string, log: Logger): Promise<void> {
  if (!existsSync(root)) return;
  for (const entry of readdirSync(root)) {
    const dir = join(root, entry);
    const raw = read(join(dir, FILE));
    if (!raw) continue;
    const marker = JSON.parse(raw) as Marker;
    if (alive(marker.pid) && read(`/proc/${marker.pid}/cmdline`).includes('chaos')) continue;
    for (const pid of matching(marker)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    await dropSandbox(marker).catch((err: unknown) =>
      log.warn({ sandbox: marker.sandbox, err: (err as Error).message }, 'could not drop'),
    );
    removeMarker(dir);
    log.warn({ sandbox: marker.sandbox, dir }, 'cleaned up after a campaign that died');
  }
}

/** Processes that are still what the marker says: its redis-server, its syncers. */
function matching(marker: Marker): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const cmdline = read(`/proc/${pid}/cmdline`).replace(/\0/g, ' ');
    if (cmdline.startsWith(`redis-server 127.0.0.1:${marker.redisPort}`)) pids.push(pid);
    else if (
      marker.syncers.includes(pid) &&
      cmdline.includes('src/cli/start.ts') &&
      read(`/proc/${pid}/environ`).split('\0').includes(`ES_INDEX=${marker.index}`)
    )
      pids.push(pid);
  }
  return pids;
}

async function dropSandbox(marker: Marker): Promise<void> {
  if (!/^t_chaos_[0-9a-f]+$/.test(marker.sandbox)) return; // only names createSandbox gives
  const base = baseConfig();
  const url = new URL(base.databaseUrl);
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${marker.sandbox} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  const es = createElasticsearchClient(base.elasticsearch);
  try {
    const indices = await es.indices.get({ index: `${marker.index}*`, allow_no_indices: true });
    const names = Object.keys(indices).filter((n) => n.startsWith(marker.index));
    if (names.length > 0) await es.indices.delete({ index: names });
  } finally {
    await es.close();
  }
}
