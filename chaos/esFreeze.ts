/**
 * "Elasticsearch frozen": SIGSTOP of the local Elasticsearch process (the one `npm run services`
 * started; its pid file is ~/.cache/movies-etl/run/elasticsearch.pid), SIGCONT when the fault
 * ends. When no such process is known (a remote or Docker cluster), the proxy holds requests
 * instead (EsItemFaults.hold), which looks the same from the syncer's side.
 *
 * What can go wrong, and the defences: the server is SHARED with whatever else runs on this
 * machine, so a freeze must never outlive the campaign. Every freeze is short (the catalog caps it
 * at 8 s); SIGCONT is sent in a finally, on exit and on SIGINT/SIGTERM/uncaught errors; and a
 * detached `sleep N; kill -CONT pid` watchdog is spawned with every freeze, so even a campaign
 * that is itself killed with -9 wakes the server a few seconds later.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const WATCHDOG_SLACK_S = 4;

/** The local Elasticsearch pid, if the pid file names a live Elasticsearch process. */
export function localElasticsearchPid(esUrl: string): number | null {
  const host = new URL(esUrl).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) return null;
  const cache = process.env.MOVIES_ETL_CACHE ?? join(homedir(), '.cache', 'movies-etl');
  try {
    const pid = Number(readFileSync(join(cache, 'run', 'elasticsearch.pid'), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return null;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('org.elasticsearch') ? pid : null;
  } catch {
    return null;
  }
}

export class EsFreezer {
  private frozen = false;
  private readonly thaw = () => this.cont();

  constructor(
    /** null: no process to stop; `hold`/`release` are used instead. */
    readonly pid: number | null,
    private readonly fallback: { hold(): void; release(): void },
  ) {
    process.on('exit', this.thaw);
  }

  get mode(): 'sigstop' | 'proxy-hold' {
    return this.pid === null ? 'proxy-hold' : 'sigstop';
  }

  freeze(ms: number): void {
    if (this.pid === null) return this.fallback.hold();
    const seconds = Math.ceil(ms / 1000) + WATCHDOG_SLACK_S;
    spawn('sh', ['-c', `sleep ${seconds}; kill -CONT ${this.pid} 2>/dev/null`], {
      detached: true,
      stdio: 'ignore',
    }).unref();
    this.frozen = true;
    process.kill(this.pid, 'SIGSTOP');
  }

  /** Idempotent, synchronous (safe in an exit handler). */
  cont(): void {
    if (this.pid === null) return this.fallback.release();
    if (!this.frozen) return;
    this.frozen = false;
    try {
      process.kill(this.pid, 'SIGCONT');
    } catch {
      // gone: nothing to wake
    }
  }

  dispose(): void {
    this.cont();
    process.off('exit', this.thaw);
  }
}
