/**
 * Highly available Redis deployments on local ports, started by the tests that need them and
 * keeping nothing once stopped: a Sentinel setup (one master, one replica, one Sentinel) and a
 * Redis Cluster (three masters, each with a replica). Each can fail over on demand the way an
 * operator or a dying node would make it: the replica is promoted, and the old master turns
 * replica (its writes answer READONLY, or, in a cluster, MOVED).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { eventually } from './convergence.js';
import { freePort } from './freePort.js';

interface Node {
  port: number;
  child: ChildProcess;
  admin: Redis;
}

export interface RedisDeployment {
  /** What REDIS_URL says to reach it. */
  url: string;
  /** Promote a replica in place of the master that holds `key`; resolves once it serves writes. */
  failover(key: string): Promise<{ from: number; to: number }>;
  stop(): Promise<void>;
}

/**
 * A free port whose cluster bus port (port + 10000, which redis-cli's cluster setup assumes) is
 * free and valid too.
 */
async function clusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 10_000 > 65_535) continue;
    const probe = createServer();
    const free = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(port + 10_000, '127.0.0.1', () => resolve(true));
    });
    if (free) await new Promise((resolve) => probe.close(resolve));
    if (free) return port;
  }
}

async function startNode(dir: string, args: string[], at?: number): Promise<Node> {
  const port = at ?? (await freePort());
  const child = spawn(
    'redis-server',
    [
      ...args,
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--loglevel',
      process.env.REDIS_DEBUG ? 'notice' : 'warning',
      ...(process.env.REDIS_DEBUG ? ['--logfile', join(dir, `${port}.log`)] : []),
      // A replica's first sync starts at once (it waits 5 s by default, to batch replicas).
      '--repl-diskless-sync-delay',
      '0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${stderr}`);
    try {
      if (admin.status !== 'ready') await admin.connect();
      await admin.ping();
      break;
    } catch {
      admin.disconnect();
      if (i > 100) throw new Error(`redis-server on ${port} did not answer: ${stderr}`);
      await delay(50);
    }
  }
  return { port, child, admin };
}

async function stopNodes(nodes: Node[], dir: string): Promise<void> {
  for (const node of nodes) {
    node.admin.disconnect();
    if (node.child.exitCode === null && node.child.signalCode === null) {
      const exited = once(node.child, 'exit');
      node.child.kill('SIGKILL');
      await exited;
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * One command on a connection of its own: a failover drops the connections of the nodes it
 * reconfigures, and a long-lived admin connection would be mid-reconnect just when asked.
 */
async function ask(node: Node, ...args: string[]): Promise<unknown> {
  const client = new Redis({
    port: node.port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(args[0] ?? 'PING', ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

/** master, slave (a replica), or unknown when the node does not answer. */
async function role(node: Node): Promise<unknown> {
  try {
    return ((await ask(node, 'ROLE')) as unknown[])[0];
  } catch {
    return 'unknown';
  }
}

async function inSync(node: Node): Promise<boolean> {
  const info = (await ask(node, 'INFO', 'replication').catch(() => '')) as string;
  return info.includes('master_link_status:up');
}

/** The master serving `slot` and one replica of it, as the first node sees the cluster. */
async function ownerAndReplica(nodes: Node[], slot: number): Promise<[Node, Node] | undefined> {
  const first = nodes[0];
  if (!first) return undefined;
  const lines = ((await ask(first, 'CLUSTER', 'NODES')) as string)
    .trim()
    .split('\n')
    .map((line) => line.split(' '));
  const portOf = (address = '') => Number(/:(\d+)@/.exec(address)?.[1]);
  const ownerLine = lines.find(
    ([, , flags = '', , , , , , ...ranges]) =>
      flags.includes('master') &&
      ranges.some((range) => {
        const [from = -1, to = from] = range.split('-').map(Number);
        return from <= slot && slot <= to;
      }),
  );
  const replicaLine = lines.find(
    ([, , flags = '', master]) => flags.includes('slave') && master === ownerLine?.[0],
  );
  const owner = nodes.find((n) => n.port === portOf(ownerLine?.[1]));
  const replica = nodes.find((n) => n.port === portOf(replicaLine?.[1]));
  return owner && replica ? [owner, replica] : undefined;
}

/** One master, one replica of it, and one Sentinel watching them (quorum 1). */
export async function startSentinelDeployment(name = 'movies'): Promise<RedisDeployment> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-sentinel-'));
  const nodes: Node[] = [];
  try {
    const master = await startNode(dir, []);
    nodes.push(master);
    const replica = await startNode(dir, ['--replicaof', '127.0.0.1', String(master.port)]);
    nodes.push(replica);
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 10000`,
        '',
      ].join('\n'),
    );
    // The Sentinel rewrites its configuration file: it must be its own, writable one.
    const sentinel = await startNode(dir, [conf, '--sentinel']);
    nodes.push(sentinel);
    await eventually(
      async () =>
        ((await sentinel.admin.call('SENTINEL', 'REPLICAS', name)) as unknown[]).length === 1,
      20_000,
      'the Sentinel to see the replica',
    );
    await eventually(() => inSync(replica), 20_000, 'the replica to be in sync');
    return {
      url: `redis+sentinel://127.0.0.1:${sentinel.port}/${name}`,
      async failover() {
        const [from, to] =
          (await role(master)) === 'master' ? [master, replica] : [replica, master];
        await sentinel.admin.call('SENTINEL', 'FAILOVER', name);
        await eventually(
          async () => (await role(to)) === 'master' && (await role(from)) === 'slave',
          30_000,
          'the replica to be promoted and the old master to follow it',
        );
        return { from: from.port, to: to.port };
      },
      stop: () => stopNodes(nodes, dir),
    };
  } catch (err) {
    await stopNodes(nodes, dir);
    throw err;
  }
}

/** Three masters, each with one replica, slots spread by redis-cli. */
export async function startClusterDeployment(): Promise<RedisDeployment> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      nodes.push(
        await startNode(
          dir,
          [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${i}.conf`,
            '--cluster-node-timeout',
            '2000',
          ],
          await clusterPort(),
        ),
      );
    }
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (create.status !== 0)
      throw new Error(`redis-cli --cluster create: ${create.stdout}${create.stderr}`);
    await eventually(
      async () => {
        for (const node of nodes)
          if (!((await node.admin.call('CLUSTER', 'INFO')) as string).includes('cluster_state:ok'))
            return false;
        return true;
      },
      30_000,
      'every cluster node to say cluster_state:ok',
    );
    await eventually(
      async () => {
        let synced = 0;
        for (const node of nodes) if (await inSync(node)) synced++;
        return synced === 3;
      },
      30_000,
      'every replica in sync with its master',
    );
    const masters = nodes.slice(0, 3).map((n) => `127.0.0.1:${n.port}`);
    return {
      url: `redis+cluster://${masters.join(',')}`,
      async failover(key: string) {
        const slot = Number(await nodes[0]?.admin.call('CLUSTER', 'KEYSLOT', key));
        // CLUSTER NODES: `<id> <host:port@bus> <flags> <master id or -> … <slot ranges>`. Every
        // node's view settles by gossip: ask until the owner and its replica are both in it.
        let pair: [Node, Node] | undefined;
        await eventually(
          async () => {
            pair = await ownerAndReplica(nodes, slot);
            return pair !== undefined;
          },
          15_000,
          `a master and a replica for slot ${slot}`,
        );
        if (!pair) throw new Error(`no master and replica for slot ${slot}`);
        const [owner, promoted] = pair;
        const to = promoted;
        // FORCE: the replica takes over without the old master's agreement, as when the master is
        // unreachable; the old master goes on taking writes until it hears of it, and those are
        // lost (what the syncer's confirmed writes are for).
        // The replica answers OK at once and then needs a majority of masters' votes; on a loaded
        // machine (CI) the election once timed out and nothing started another, so the test waited
        // 30 s for nothing. Ask again every 10 s until it has taken over.
        let askedAt = 0;
        await eventually(
          async () => {
            if ((await role(to)) === 'master') return true;
            if (Date.now() - askedAt >= 10_000) {
              askedAt = Date.now();
              await to.admin.call('CLUSTER', 'FAILOVER', 'FORCE');
            }
            return false;
          },
          60_000,
          'the replica to take over the slot',
        );
        await eventually(
          async () => (await role(owner)) === 'slave',
          30_000,
          'the old master to follow the new one',
        );
        return { from: owner.port, to: to.port };
      },
      stop: () => stopNodes(nodes, dir),
    };
  } catch (err) {
    await stopNodes(nodes, dir);
    throw err;
  }
}
