/**
 * Which deployment a Redis prefix serves: one database (its server's system identifier and its
 * object id) and three index names (and the Elasticsearch cluster, when it says which it is).
 * Every syncer claims the prefix for its own deployment at start and renews the claim while it
 * runs (`deployment`, a key that lapses CLAIM_TTL_MS after the last syncer of it stopped).
 *
 * Why: two deployments given one Redis and the same REDIS_PREFIX (two stacks on one Redis with
 * the default prefix) share one queue, one capture lease and one set of reload requests. One of
 * them never captured, its workers took the other's documents, found no such row in their own
 * database, deleted them from their own index and acknowledged them: edits of both were lost,
 * and neither said a word. Now the second one does not start (exit 1, naming both), and a
 * syncer that finds its prefix claimed by another deployment while it runs (this one started
 * while Postgres or Redis could not say, or was paused past its claim) stops (exit 1): it says so
 * in its log and /readyz, and `npm start` stops it rather than let it take the other's documents.
 * (The comparison is in deploymentClaim.lua, one step with the renewal.)
 *
 * A deployment that moved (its catalog restored into another database, other index names) is
 * not another one for long: the old claim lapses once its syncers are stopped.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { RedisStore } from './redisStore.js';

/** The claim lapses this long after its last renewal. */
export const CLAIM_TTL_MS = 30_000;
const RENEW_EVERY_MS = 10_000;

export interface DeploymentIdentity {
  /** The database's name, for people; its identity is `system` and `oid`. */
  database: string;
  /** The PostgreSQL server's system identifier (a standby promoted keeps it). */
  system: string;
  oid: string;
  /** Films, persons and genres index (or alias) names. */
  indices: string[];
  /** The Elasticsearch cluster's uuid; null when it would not say (a key without `monitor`). */
  cluster: string | null;
}

interface Claim extends DeploymentIdentity {
  /** Who renewed it last, for the message. */
  by: string;
}

export function describeDeployment(d: DeploymentIdentity): string {
  const cluster = d.cluster === null ? '' : `, Elasticsearch cluster ${d.cluster}`;
  return `database "${d.database}" (server ${d.system}, oid ${d.oid}), indices ${d.indices.join(', ')}${cluster}`;
}

export class DeploymentClaim {
  private timer: NodeJS.Timeout | null = null;
  /** Known once `identify` answered (the database may be away at start). */
  private identity: DeploymentIdentity | null = null;
  /** This syncer, in its claim: unique, so a claim it renewed last is known as its own. */
  private readonly by = `${hostname()} pid ${process.pid} ${randomBytes(4).toString('hex')}`;
  /** Another deployment's claim found while renewing; null while the prefix is ours. */
  conflict: string | null = null;

  constructor(
    private readonly store: RedisStore,
    private readonly identify: () => Promise<DeploymentIdentity>,
    private readonly onConflict: (message: string) => void,
    private readonly onUnsure: (error: string) => void = () => undefined,
  ) {}

  private get key(): string {
    return this.store.key('deployment');
  }

  /**
   * Claims the prefix, or throws naming the deployment that holds it; then renews it. Redis
   * refusing the claim (writes refused, away) is not fatal: a syncer started then waits for
   * Redis like the rest of it does, and the renewals tell (the log, /readyz) if another
   * deployment claimed the prefix meanwhile.
   */
  async claim(): Promise<void> {
    const other = await this.renew().catch((err: unknown) => {
      this.onUnsure((err as Error).message);
      return null;
    });
    if (other && this.identity)
      throw new Error(
        `REDIS_PREFIX "${this.store.key('')}" on this Redis serves another deployment: ` +
          `${describeDeployment(other)}, renewed by ${other.by}; this one is ` +
          `${describeDeployment(this.identity)}. Two deployments on one prefix share one queue ` +
          "and lose each other's edits: give each its own REDIS_PREFIX (or Redis database). If " +
          `this deployment moved, stop the old one's syncers: their claim lapses ` +
          `${CLAIM_TTL_MS / 1000} s after the last one stopped.`,
      );
    this.timer = setInterval(() => void this.check(), RENEW_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async check(): Promise<void> {
    try {
      const other = await this.renew();
      this.conflict = other
        ? `redis: REDIS_PREFIX "${this.store.key('')}" is claimed by another deployment (${describeDeployment(other)}, renewed by ${other.by}): give each deployment its own prefix`
        : null;
      if (this.conflict) this.onConflict(this.conflict);
    } catch {
      // Redis away: the next renewal tells; the claim lapses only after CLAIM_TTL_MS.
    }
  }

  /**
   * Renews the claim (or makes it); resolves to the other deployment's claim, if one holds it.
   * Asks the database which it is each time: restored in place (a new object id) while this
   * syncer runs, its claim follows, and a syncer started then is not refused for good.
   */
  private async renew(): Promise<Claim | null> {
    this.identity = await this.identify();
    const mine = JSON.stringify({ ...this.identity, by: this.by });
    const held = await this.store.run('deploymentClaim', [this.key], [mine, CLAIM_TTL_MS]);
    // Unreadable: taken for ours by the script, rather than stop a deployment for a garbled key.
    return typeof held === 'string' ? parse(held) : null;
  }
}

function parse(raw: string): Claim | null {
  try {
    const claim = JSON.parse(raw) as Partial<Record<keyof Claim, unknown>>;
    if (typeof claim.system !== 'string' || typeof claim.oid !== 'string') return null;
    if (!Array.isArray(claim.indices)) return null;
    return {
      database: typeof claim.database === 'string' ? claim.database : '?',
      system: claim.system,
      oid: claim.oid,
      indices: claim.indices.map((index) => String(index)),
      cluster: typeof claim.cluster === 'string' ? claim.cluster : null,
      by: typeof claim.by === 'string' ? claim.by : '?',
    };
  } catch {
    return null;
  }
}
