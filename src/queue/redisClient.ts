/**
 * One Redis client for each kind of deployment REDIS_URL can name, through ioredis's own clients:
 *
 *  - `redis://[user:password@]host:port/db` (or `rediss://`): one server;
 *  - `redis+sentinel://[user:password@]host:port[,host:port…]/<master name>[/db]`: the master the
 *    Sentinels name, followed across failovers. After a failover the old master answers writes
 *    with READONLY: the client then asks the Sentinels again and resends the command (a script
 *    refused with READONLY did not run at all, so resending it is safe);
 *  - `redis+cluster://[user:password@]host:port[,host:port…]`: Redis Cluster, any of its nodes to
 *    start from; the client follows MOVED and ASK and learns the slots anew after a failover.
 *    Every key one script or transaction touches must sit in one slot: REDIS_PREFIX must carry a
 *    hash tag (`{movies_etl}:`), which the configuration check insists on.
 *
 * The password applies to the data nodes; Sentinels are reached without one.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';

export type RedisClient = Redis | Cluster;

export type RedisTarget =
  | { kind: 'single'; url: string }
  | {
      kind: 'sentinel';
      nodes: { host: string; port: number }[];
      name: string;
      db: number;
      username?: string;
      password?: string;
    }
  | {
      kind: 'cluster';
      nodes: { host: string; port: number }[];
      username?: string;
      password?: string;
    };

const MULTI_HOST =
  /^(redis\+sentinel|redis\+cluster):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(?:\/([^?#]*))?$/;

/** What REDIS_URL names; throws with a message that never repeats the password. */
export function parseRedisUrl(url: string): RedisTarget {
  const match = MULTI_HOST.exec(url);
  if (!match) {
    if (/^redis\+(sentinel|cluster):/.test(url))
      throw new Error(
        'must look like redis+sentinel://host:port[,host:port]/<master name>[/db] or redis+cluster://host:port[,host:port]',
      );
    return { kind: 'single', url };
  }
  const [, scheme, user, pass, hosts = '', path = ''] = match;
  const nodes = hosts.split(',').map((node) => {
    const at = node.lastIndexOf(':');
    const host = at > 0 ? node.slice(0, at) : node;
    const port = at > 0 ? Number(node.slice(at + 1)) : scheme === 'redis+sentinel' ? 26379 : 6379;
    if (!host || !Number.isInteger(port) || port < 1 || port > 65_535)
      throw new Error(`has a bad host:port (${node})`);
    return { host, port };
  });
  const credentials = {
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(pass ? { password: decodeURIComponent(pass) } : {}),
  };
  if (scheme === 'redis+cluster') {
    if (path !== '') throw new Error('names no database on Redis Cluster (it has only db 0)');
    return { kind: 'cluster', nodes, ...credentials };
  }
  const [name = '', db = '0', ...rest] = path.split('/');
  if (name === '' || rest.length > 0 || !/^\d+$/.test(db))
    throw new Error(
      'must name the master after the hosts: redis+sentinel://host:port/<master name>[/db]',
    );
  return {
    kind: 'sentinel',
    nodes,
    name: decodeURIComponent(name),
    db: Number(db),
    ...credentials,
  };
}

/** Whether REDIS_URL names Redis Cluster (its keys then need a hash-tagged prefix). */
export function isClusterUrl(url: string): boolean {
  return url.startsWith('redis+cluster:');
}

/**
 * A client for `url` with these connection options (timeouts, retries). `cluster` says how a
 * cluster client retries reaching the cluster at all (ioredis keeps it apart from `options`).
 */
export function createRedisClient(
  url: string,
  options: RedisOptions,
  cluster: { retryStrategy?: (attempt: number) => number | null } = {},
): RedisClient {
  const target = parseRedisUrl(url);
  switch (target.kind) {
    case 'single':
      return new Redis(url, options);
    case 'sentinel':
      return new Redis({
        ...options,
        sentinels: target.nodes,
        name: target.name,
        db: target.db,
        ...(target.username ? { username: target.username } : {}),
        ...(target.password ? { password: target.password } : {}),
        // A demoted master answers READONLY: find the new one, and resend (2) the command.
        reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
      });
    case 'cluster':
      return new Cluster(target.nodes, {
        redisOptions: {
          ...options,
          ...(target.username ? { username: target.username } : {}),
          ...(target.password ? { password: target.password } : {}),
        },
        ...(options.lazyConnect ? { lazyConnect: true } : {}),
        // Commands wait while the cluster is re-learned instead of failing at once.
        maxRedirections: 32,
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 500,
        retryDelayOnTryAgain: 200,
        ...(cluster.retryStrategy ? { clusterRetryStrategy: cluster.retryStrategy } : {}),
      });
  }
}
