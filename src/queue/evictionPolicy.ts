/**
 * Whether Redis may delete the syncer's keys on its own. With `maxmemory` set and a policy other
 * than `noeviction`, Redis makes room by evicting keys:
 *  - allkeys-*: any key, the queue and the claims included. An evicted entry is an edit that
 *    never reaches the index (the watermarks have moved past it), and nothing says so.
 *  - volatile-*: keys with a time to live, which here are the leases and heartbeats: a holder
 *    loses its lease early, and a worker's claims may be taken back while it still works.
 * With `noeviction` Redis refuses writes instead (OOM), which the syncer handles without loss.
 *
 * Read with CONFIG GET, which managed services may forbid: then nothing is known, and nothing is
 * said.
 */
import type { RedisClient } from './redisClient.js';

export async function evictionRisk(redis: RedisClient): Promise<string | null> {
  let maxmemory: string | undefined;
  let policy: string | undefined;
  try {
    maxmemory = (await redis.config('GET', 'maxmemory'))[1];
    policy = (await redis.config('GET', 'maxmemory-policy'))[1];
  } catch {
    return null;
  }
  if (!maxmemory || !policy || Number(maxmemory) === 0 || policy === 'noeviction') return null;
  const what = policy.startsWith('allkeys')
    ? 'any key, the queue and its claims included: an evicted entry is an edit lost for good'
    : "keys with a time to live, the leases and heartbeats: a holder loses its lease early, and a worker's claims may be taken back while it works";
  return (
    `Redis has maxmemory ${maxmemory} with maxmemory-policy ${policy}: when full it deletes ` +
    `${what}. Set maxmemory-policy noeviction (Redis then refuses writes when full, which the ` +
    'syncer rides out without loss).'
  );
}
