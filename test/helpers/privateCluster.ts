/**
 * A PostgreSQL cluster of a test's own (a temporary directory, a free port), for server settings
 * the shared server does not have and that only a restart changes (`max_prepared_transactions`).
 * Uses the server binaries of `pg_config --bindir`; as root it runs the server as the `postgres`
 * user, which the server requires.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './command.js';
import { freePort } from './freePort.js';

export interface PrivateCluster {
  /** The `postgres` database, as the superuser `postgres`. */
  url: string;
  /**
   * Killed outright (`pg_ctl stop -m immediate`, as a power cut is to the server): WAL still in
   * its buffers is lost, what it wrote to the operating system is not. Then started again.
   */
  crashAndRestart(): Promise<void>;
  stop(): Promise<void>;
}

/** `settings`: server settings as `name=value`, given to the server with `-c`. */
export async function startPrivateCluster(settings: string[] = []): Promise<PrivateCluster> {
  const bin = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  const asRoot = process.getuid?.() === 0;
  const as = (command: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  const dir = mkdtempSync(join(tmpdir(), 'movies-etl-pg-'));
  if (asRoot)
    chownSync(dir, Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), -1);
  const data = join(dir, 'data');
  const port = await freePort();
  await run(...as(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']));
  const options = [
    ...[
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${dir}`,
    ],
    ...settings.flatMap((setting) => ['-c', setting]),
  ].join(' ');
  const log = join(dir, 'server.log');
  const start = () =>
    run(...as(join(bin, 'pg_ctl'), ['start', '-w', '-D', data, '-l', log, '-o', options]));
  const kill = () => run(...as(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate']));
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    crashAndRestart: async () => {
      await kill();
      await start();
    },
    stop: async () => {
      await kill().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
