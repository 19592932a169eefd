/**
 * Acts out a round's faults at their planned times against the rig and the fleet, and heals
 * everything at the end of the round. Overlapping faults on one resource compose: each resource's
 * state is recomputed from the set of faults active on it (Postgres down wins over a half-open
 * listener; an Elasticsearch cut-off wins over item rejections), so one fault ending never undoes
 * another that is still on.
 *
 * What can go wrong: a fault ending after heal() (every timer is tracked and cleared), two
 * freezes of the shared Elasticsearch back to back (a freeze is skipped while one is on or ended
 * less than 5 s ago), a Redis restarted while it refuses writes (the refusal is re-applied to
 * the new server), and a change to Redis (CONFIG SET) queued while Redis is frozen: it waits for
 * the thaw, which therefore does not wait in the chain itself. Changes are applied one at a time
 * (a promise chain), in order.
 */
import type { Logger } from '../src/logger.js';
import { FAULT_KINDS, formatFault, type FaultEvent, type FaultKind } from './faultCatalog.js';
import type { Findings } from './findings.js';
import type { Fleet } from './fleet.js';
import type { Rig } from './rig.js';

const FREEZE_GAP_MS = 5_000;

export type FaultCounts = Record<FaultKind, { done: number; skipped: number }>;

export const emptyFaultCounts = (): FaultCounts =>
  Object.fromEntries(FAULT_KINDS.map((k) => [k, { done: 0, skipped: 0 }])) as FaultCounts;

export class FaultInjector {
  readonly counts = emptyFaultCounts();
  private timers: NodeJS.Timeout[] = [];
  private chain: Promise<void> = Promise.resolve();
  private readonly on = { esCut: 0, pgDown: 0, halfOpen: 0, refuse: 0 };
  private rejections: { id: number; fraction: number; status: number }[] = [];
  private nextId = 0;
  private redisDown = false;
  private redisFrozen = false;
  private frozenUntil = 0;
  private lastThaw = 0;

  constructor(
    private readonly rig: Rig,
    private readonly fleet: Fleet,
    private readonly findings: Findings,
    private readonly log: Logger,
  ) {}

  schedule(faults: FaultEvent[]): void {
    for (const fault of faults) this.later(fault.atMs, () => this.begin(fault));
  }

  /** Every fault off, every pending start or end cancelled; Redis up and writable. */
  async heal(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
    this.rig.freezer.cont();
    this.frozenUntil = 0;
    this.thawRedis();
    Object.assign(this.on, { esCut: 0, pgDown: 0, halfOpen: 0, refuse: 0 });
    this.rejections = [];
    if (this.redisDown) this.apply(() => this.startRedis());
    this.apply(() => this.applyEs());
    this.apply(() => this.applyPg());
    this.apply(() => this.applyRedis());
    await this.chain;
  }

  private later(ms: number, fn: () => void): void {
    this.timers.push(setTimeout(fn, ms));
  }

  private apply(change: () => Promise<void> | void): void {
    this.chain = this.chain.then(change).catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message }, 'fault change failed');
    });
  }

  /** A fault on for `ms`: `on` now, `off` when it ends (unless heal() came first). */
  private window(fault: FaultEvent, on: () => void, off: () => void): void {
    on();
    this.later(fault.ms, off);
  }

  private begin(fault: FaultEvent): void {
    const { rig, fleet, findings } = this;
    findings.note(`fault ${formatFault(fault)}`);
    this.counts[fault.kind].done++;
    const { ms, pick = 0 } = fault;
    switch (fault.kind) {
      case 'kill9':
        return fleet.kill9(pick, ms);
      case 'sigterm':
        return fleet.sigterm(pick, ms);
      case 'extra-syncer':
        if (!fleet.extra(ms)) this.skip(fault);
        return;
      case 'syncer-freeze':
        return fleet.freeze(pick, ms);
      case 'es-freeze': {
        const now = Date.now();
        if (now < this.frozenUntil || now - this.lastThaw < FREEZE_GAP_MS) return this.skip(fault);
        this.frozenUntil = now + ms;
        return this.window(
          fault,
          () => rig.freezer.freeze(ms),
          () => {
            rig.freezer.cont();
            this.frozenUntil = 0;
            this.lastThaw = Date.now();
          },
        );
      }
      case 'es-cut':
        return this.counted(fault, 'esCut', () => this.applyEs());
      case 'es-429':
      case 'es-5xx': {
        const id = ++this.nextId;
        const status = fault.kind === 'es-429' ? 429 : (fault.status ?? 503);
        return this.window(
          fault,
          () => {
            this.rejections.push({ id, fraction: fault.fraction ?? 0.3, status });
            this.apply(() => this.applyEs());
          },
          () => {
            this.rejections = this.rejections.filter((r) => r.id !== id);
            this.apply(() => this.applyEs());
          },
        );
      }
      case 'redis-refuse':
        return this.counted(fault, 'refuse', () => this.applyRedis());
      case 'redis-restart':
        if (this.redisDown) return this.skip(fault);
        this.redisDown = true;
        this.apply(() => rig.redisServer.kill());
        return this.later(ms, () => this.apply(() => this.startRedis()));
      case 'redis-freeze':
        if (this.redisDown || this.redisFrozen) return this.skip(fault);
        this.redisFrozen = true;
        return this.window(
          fault,
          () => rig.redisServer.freeze(),
          () => this.thawRedis(),
        );
      case 'redis-rollback':
        // A Redis with persistence that crashes comes back with what it last saved, epoch and
        // all, without the writes made since: it saves now and comes back so after `ms`.
        if (this.redisDown || this.redisFrozen) return this.skip(fault);
        this.apply(() => rig.redisServer.snapshot());
        return this.later(ms, () => this.apply(() => this.rollBackRedis()));
      case 'pg-terminate':
        return this.apply(() => this.terminate(fault.target ?? 'all'));
      case 'pg-down':
        return this.counted(fault, 'pgDown', () => this.applyPg());
      case 'listen-halfopen':
        return this.counted(fault, 'halfOpen', () => this.applyPg());
      case 'index-deleted':
        // A frozen Elasticsearch would hold the delete, and every change queued behind it.
        if (Date.now() < this.frozenUntil) return this.skip(fault);
        return this.apply(() => this.deleteIndex(fault.pick ?? 0));
    }
  }

  private counted(
    fault: FaultEvent,
    key: keyof FaultInjector['on'],
    change: () => Promise<void> | void,
  ) {
    this.window(
      fault,
      () => {
        this.on[key]++;
        this.apply(change);
      },
      () => {
        this.on[key] = Math.max(0, this.on[key] - 1);
        this.apply(change);
      },
    );
  }

  private skip(fault: FaultEvent): void {
    this.counts[fault.kind].done--;
    this.counts[fault.kind].skipped++;
    this.findings.note(`skipped ${fault.kind}`);
  }

  private applyEs(): void {
    const { esFaults, esItems } = this.rig;
    const strongest = (status: (s: number) => boolean) =>
      this.rejections.filter((r) => status(r.status)).sort((a, b) => b.fraction - a.fraction)[0];
    if (this.on.esCut > 0) esFaults.down();
    else {
      esFaults.forward(); // also ends its 429s; put them back below if still on
      const r429 = strongest((s) => s === 429);
      if (r429) esFaults.rejectBulkItems(r429.fraction, Number.MAX_SAFE_INTEGER);
    }
    const r5xx = strongest((s) => s >= 500);
    if (r5xx) esItems.rejectItems(r5xx.fraction, r5xx.status);
    else esItems.stopRejecting();
  }

  private async applyPg(): Promise<void> {
    const { pgPool, pgListen } = this.rig;
    if (this.on.pgDown > 0) await pgPool.refuse();
    else await pgPool.forward();
    if (this.on.pgDown > 0) await pgListen.refuse();
    else if (this.on.halfOpen > 0) await pgListen.blackhole();
    else await pgListen.forward();
  }

  private async applyRedis(): Promise<void> {
    if (this.redisDown) return; // applied again by startRedis()
    if (this.on.refuse > 0) await this.rig.redisServer.refuseWrites();
    else await this.rig.redisServer.allowWrites();
  }

  /** Not through the chain: a change waiting there (CONFIG SET) may be waiting for this. */
  private thawRedis(): void {
    this.rig.redisServer.thaw();
    this.redisFrozen = false;
  }

  /** The end of a redis-rollback; a restart or freeze that came meanwhile makes it moot. */
  private async rollBackRedis(): Promise<void> {
    if (this.redisDown || this.redisFrozen) return;
    await this.rig.redisServer.restartFromSnapshot();
    await this.applyRedis();
  }

  private async startRedis(): Promise<void> {
    if (!this.redisDown) return;
    await this.rig.redisServer.start();
    this.redisDown = false;
    await this.applyRedis();
  }

  /** One of the three indices, by `pick`, deleted straight on Elasticsearch (not the proxy). */
  private async deleteIndex(pick: number): Promise<void> {
    const { es, config } = this.rig.sandbox;
    const names = [config.index, config.personsIndex, config.genresIndex];
    const name = names[Math.min(names.length - 1, Math.floor(pick * names.length))] ?? config.index;
    const concrete = Object.keys(
      await es.indices.get({ index: name, ignore_unavailable: true, allow_no_indices: true }),
    );
    if (concrete.length > 0) await es.indices.delete({ index: concrete });
    this.findings.note(`deleted index ${concrete.join(', ') || `${name} (already gone)`}`);
  }

  private async terminate(target: 'all' | 'pool' | 'listener'): Promise<void> {
    const names = {
      all: ['movies-etl', 'movies-etl listener'],
      pool: ['movies-etl'],
      listener: ['movies-etl listener'],
    }[target];
    const { rows } = await this.rig.sandbox.pg.query<{ ended: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND application_name = ANY ($1)`,
      [names],
    );
    this.findings.note(
      `pg_terminate_backend: ${rows.filter((r) => r.ended).length} sessions (${target})`,
    );
  }
}
