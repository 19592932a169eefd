/**
 * A private redis-server on a free local port, for tests and the chaos campaign that must do to
 * Redis what no shared server may suffer: restart it empty, make it refuse writes (maxmemory with
 * noeviction), or take it away. Keeps nothing on disk, like the machine's own Redis, unless told to
 * save a snapshot (`snapshot()`), which a restart then loads: a Redis with persistence that crashed
 * and came back with what it had saved, not with what it had since.
 *
 * Hazard: the port is found by binding port 0 and closing it, so another process could take it
 * before redis-server binds; start() then fails loudly rather than talking to a stranger.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './freePort.js';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';

export interface RedisServer {
  port: number;
  url: string;
  /** A plain admin connection (not the syncer's): for CONFIG SET and inspection. */
  admin(): Redis;
  /** kill -9, then start again empty on the same port. */
  restartEmpty(): Promise<void>;
  /** Save everything now (SAVE), to be loaded by restartFromSnapshot(). */
  snapshot(): Promise<void>;
  /** kill -9, then start again on the same port with what the last snapshot() saved. */
  restartFromSnapshot(): Promise<void>;
  /** Writes answer OOM until allowWrites(): maxmemory 1 byte with noeviction. */
  refuseWrites(): Promise<void>;
  allowWrites(): Promise<void>;
  /**
   * SIGSTOP until thaw(): connections stay open and commands are taken in but not answered, so a
   * client's command times out and then runs when the server goes on (a stalled host, a long
   * fork). Either does nothing while the server is down.
   */
  freeze(): void;
  thaw(): void;
  /** kill -9 and do not come back (until start()). */
  kill(): Promise<void>;
  /** Start again, empty. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  // Its own directory: a snapshot must never land in (or be loaded from) the working directory.
  const dir = mkdtempSync(join(tmpdir(), 'redis-test-'));
  const dumpFile = join(dir, 'dump.rdb');
  const url = `redis://127.0.0.1:${port}/0`;
  let child: ChildProcess | null = null;
  let admin: Redis | null = null;

  const getAdmin = () => {
    if (!admin) {
      admin = new Redis(url, { maxRetriesPerRequest: 3, lazyConnect: false });
      admin.on('error', () => undefined);
    }
    return admin;
  };

  /** Empty, unless `fromSnapshot`: then with what the last snapshot() saved. */
  const start = async (fromSnapshot = false) => {
    if (!fromSnapshot) rmSync(dumpFile, { force: true });
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--loglevel',
        'warning',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child = proc;
    const probe = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => undefined);
    try {
      for (let i = 0; i < 100; i++) {
        if (proc.exitCode !== null) throw new Error(`redis-server exited: ${stderr}`);
        try {
          if (probe.status !== 'ready') await probe.connect();
          await probe.ping();
          return;
        } catch {
          probe.disconnect();
        }
        await delay(50);
      }
      throw new Error(`redis-server on port ${port} did not answer: ${stderr}`);
    } finally {
      probe.disconnect();
    }
  };

  const signal = (name: NodeJS.Signals) => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill(name);
  };

  const kill = async () => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
  };

  await start();
  return {
    port,
    url,
    admin: getAdmin,
    start: () => start(),
    kill,
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    async restartEmpty() {
      await kill();
      await start();
    },
    async snapshot() {
      await getAdmin().call('SAVE');
    },
    async restartFromSnapshot() {
      await kill();
      await start(true);
    },
    async refuseWrites() {
      await getAdmin().config('SET', 'maxmemory-policy', 'noeviction');
      await getAdmin().config('SET', 'maxmemory', '1');
    },
    async allowWrites() {
      await getAdmin().config('SET', 'maxmemory', '0');
    },
    async stop() {
      admin?.disconnect();
      admin = null;
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
