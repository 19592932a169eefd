/**
 * A two-node Elasticsearch cluster on local ports, from the same server `npm run services`
 * installs (scripts/services.sh es-install), for tests that stop a node under the syncer.
 *
 * The first node is the only master-eligible one, so stopping the second never costs the cluster
 * its master; both hold data, so an index with one replica has a copy on each. The second node
 * can be stopped (SIGTERM, or SIGKILL) and started again on the same data directory, the way a
 * node is restarted for an upgrade or dies and comes back.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client } from '@elastic/elasticsearch';
import { freePort } from './freePort.js';

interface Install {
  home: string;
  javaHome: string;
  user: string;
}

interface NodeSpec {
  name: string;
  roles: string[];
  http: number;
  transport: number;
}

export interface EsCluster {
  /** ELASTICSEARCH_URL for the syncer: both nodes, comma-separated. */
  url: string;
  /** A client on the first node (the master, never stopped). */
  admin: Client;
  /** The second node's name, as shard tables name it. */
  secondName: string;
  stopSecond(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  startSecond(): Promise<void>;
  stop(): Promise<void>;
}

let install: Install | undefined;

/** Fetches and unpacks Elasticsearch once per process (quick when `npm run services` did). */
function installed(): Install {
  if (install) return install;
  const result = spawnSync('bash', ['scripts/services.sh', 'es-install'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`services.sh es-install failed: ${result.stderr}`);
  const values = Object.fromEntries(
    result.stdout
      .trim()
      .split('\n')
      .map((line) => line.split(/=(.*)/s).slice(0, 2)),
  ) as Record<string, string | undefined>;
  const { ES_HOME: home, ES_JAVA_HOME: javaHome, ES_USER: user } = values;
  if (!home || !javaHome || !user)
    throw new Error(`unexpected es-install output: ${result.stdout}`);
  install = { home, javaHome, user };
  return install;
}

/** uid and gid of `user`, when this process is root and must hand the node to it. */
function identity(user: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(spawnSync('id', [flag, user], { encoding: 'utf8' }).stdout);
  return { uid: id('-u'), gid: id('-g') };
}

function chownTree(path: string, owner: { uid: number; gid: number }): void {
  chownSync(path, owner.uid, owner.gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(entry.parentPath, entry.name);
    if (entry.isDirectory()) chownTree(child, owner);
    else chownSync(child, owner.uid, owner.gid);
  }
}

export async function startEsCluster(heap = '384m'): Promise<EsCluster> {
  const { home, javaHome, user } = installed();
  const owner = identity(user);
  const dir = mkdtempSync(join(tmpdir(), 'es-cluster-'));
  const cluster = `test-${Math.random().toString(36).slice(2, 8)}`;
  const [firstHttp, firstTransport, secondHttp, secondTransport] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const first: NodeSpec = {
    name: `${cluster}-1`,
    roles: ['master', 'data', 'ingest'],
    http: firstHttp,
    transport: firstTransport,
  };
  const second: NodeSpec = {
    name: `${cluster}-2`,
    roles: ['data', 'ingest'],
    http: secondHttp,
    transport: secondTransport,
  };

  const prepare = (node: NodeSpec) => {
    const base = join(dir, node.name);
    const conf = join(base, 'config');
    cpSync(join(home, 'config'), conf, { recursive: true });
    writeFileSync(
      join(conf, 'elasticsearch.yml'),
      [
        `cluster.name: ${cluster}`,
        `node.name: ${node.name}`,
        `node.roles: [${node.roles.join(', ')}]`,
        'network.host: 127.0.0.1',
        `http.port: ${node.http}`,
        `transport.port: ${node.transport}`,
        `discovery.seed_hosts: ["127.0.0.1:${first.transport}"]`,
        `cluster.initial_master_nodes: ["${first.name}"]`,
        `path.data: ${join(base, 'data')}`,
        `path.logs: ${join(base, 'logs')}`,
        'xpack.security.enabled: false',
        'cluster.routing.allocation.disk.threshold_enabled: false',
        '',
      ].join('\n'),
    );
    for (const sub of ['data', 'logs', 'tmp']) mkdirSync(join(base, sub), { recursive: true });
    if (owner) chownTree(base, owner);
  };

  const children = new Map<string, ChildProcess>();
  const launch = async (node: NodeSpec) => {
    const base = join(dir, node.name);
    let output = '';
    rmSync(join(base, 'pid'), { force: true });
    const child = spawn(join(home, 'bin', 'elasticsearch'), ['-p', join(base, 'pid')], {
      cwd: home,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        ES_JAVA_HOME: javaHome,
        ES_PATH_CONF: join(base, 'config'),
        ES_TMPDIR: join(base, 'tmp'),
        ES_JAVA_OPTS: `-Xms${heap} -Xmx${heap}`,
        CLI_JAVA_OPTS: `-Djava.io.tmpdir=${join(base, 'tmp')}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...owner,
    });
    // Keep only the tail: the node logs its whole start-up.
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8_000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    children.set(node.name, child);
    const client = new Client({ node: `http://127.0.0.1:${node.http}`, maxRetries: 0 });
    try {
      for (const deadline = Date.now() + 180_000; ;) {
        if (child.exitCode !== null)
          throw new Error(`${node.name} exited (${child.exitCode}):\n${output}`);
        try {
          await client.cluster.health({}, { requestTimeout: 2_000 });
          return;
        } catch {
          if (Date.now() > deadline) throw new Error(`${node.name} did not answer:\n${output}`);
          await delay(500);
        }
      }
    } finally {
      await client.close();
    }
  };

  const halt = async (node: NodeSpec, signal: 'SIGTERM' | 'SIGKILL') => {
    const child = children.get(node.name);
    children.delete(node.name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    // The launcher passes SIGTERM on to the server; SIGKILL must reach the server JVM itself.
    if (signal === 'SIGKILL') killServer(node);
    child.kill(signal);
    await exited;
  };
  const killServer = (node: NodeSpec) => {
    try {
      process.kill(Number(readFileSync(join(dir, node.name, 'pid'), 'utf8')), 'SIGKILL');
    } catch {
      // No pid file yet, or the server is gone already.
    }
  };

  const admin = new Client({ node: `http://127.0.0.1:${first.http}`, maxRetries: 0 });
  const stop = async () => {
    await admin.close();
    await Promise.all([halt(second, 'SIGKILL'), halt(first, 'SIGKILL')]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    prepare(first);
    prepare(second);
    // mkdtemp made the parent root's alone (mode 700): the nodes' user must get through it.
    if (owner) chownSync(dir, owner.uid, owner.gid);
    await Promise.all([launch(first), launch(second)]);
    await admin.cluster.health({ wait_for_nodes: '2', timeout: '120s' });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `http://127.0.0.1:${first.http},http://127.0.0.1:${second.http}`,
    admin,
    secondName: second.name,
    stopSecond: (signal = 'SIGTERM') => halt(second, signal),
    async startSecond() {
      await launch(second);
      await admin.cluster.health({ wait_for_nodes: '2', timeout: '120s' });
    },
    stop,
  };
}
