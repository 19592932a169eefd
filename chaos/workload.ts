/**
 * The editing workload of one round: `mix.writers` concurrent writers, each drawing write kinds
 * from the round's weights (its own Rng stream) and running each in its own transaction, plus the
 * plan's timed events: long transactions held open across faults, and TRUNCATE of a link table
 * with re-linking. Writers go straight to PostgreSQL: the faults are the syncers' problem.
 *
 * What can go wrong: the catalog drifting to empty (or huge) over a long campaign, so kinds that
 * shrink or grow it are swapped when it leaves [1,200, 3,000] films; a writer error is noise
 * (counted by SQLSTATE), except class 42 (the tool's own SQL is wrong), which is logged loudly.
 * stop() commits or rolls back whatever is open, so the oracle reads a settled database.
 */
import type pg from 'pg';
import type { Logger } from '../src/logger.js';
import { bulkDelete, bulkInsert, bulkRename, bulkUpdate, relink, truncate } from './bulkOps.js';
import { Rng } from './prng.js';
import type { LongTransaction, OpKind, RoundPlan, Truncation } from './schedule.js';
import * as ops from './workloadOps.js';
import type { Exec, OpContext } from './workloadOps.js';

export interface WorkloadStats {
  transactions: number;
  rows: number;
  byKind: Partial<Record<OpKind, number>>;
  rolledBackRows: number;
  longCommitted: number;
  longRolledBack: number;
  truncations: number;
  noise: Record<string, number>;
}

export const emptyStats = (): WorkloadStats => ({
  transactions: 0,
  rows: 0,
  byKind: {},
  rolledBackRows: 0,
  longCommitted: 0,
  longRolledBack: 0,
  truncations: 0,
  noise: {},
});

const SMALL: OpKind[] = ['film-update', 'film-insert', 'person-rename', 'link-add', 'link-remove'];
/** How often the writers count the catalog, which keeps it within bounds (see adjust()). */
const SIZE_EVERY_MS = 500;

export class Workload {
  readonly stats = emptyStats();
  private stopped = false;
  private readonly running = new Set<Promise<unknown>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly wake = new Set<() => void>();
  private size = { films: 2_000, persons: 600, genres: 30, at: 0 };

  constructor(
    private readonly pool: pg.Pool,
    private readonly plan: RoundPlan,
    private readonly log: Logger,
  ) {}

  start(): void {
    const { seed, round, mix } = this.plan;
    for (let i = 0; i < mix.writers; i++)
      this.track(this.writer(Rng.of('chaos', seed, 'round', round, 'writer', i)));
    this.plan.longTransactions.forEach((t, i) => this.at(t.atMs, () => this.longTransaction(t, i)));
    this.plan.truncations.forEach((t) => this.at(t.atMs, () => this.truncation(t)));
  }

  /** Writers finish their write; open long transactions end now as planned; nothing else starts. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    for (const wake of this.wake) wake();
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private at(ms: number, fn: () => Promise<void>): void {
    this.timers.push(setTimeout(() => !this.stopped && this.track(fn()), ms));
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => this.noise(err));
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
  }

  private async writer(rng: Rng): Promise<void> {
    while (!this.stopped) {
      await this.refreshSize();
      const kind = this.adjust(rng.weighted(this.plan.mix.weights));
      try {
        await this.transaction(async (q) => {
          const ctx = { q, rng };
          if (kind === 'multi' || kind === 'rollback') {
            let rows = 0;
            const pool: OpKind[] =
              kind === 'rollback' ? [...SMALL, 'bulk-update', 'film-delete'] : SMALL;
            for (let n = rng.int(2, 5); n > 0; n--) rows += await this.run(rng.pick(pool), ctx);
            return rows;
          }
          return this.run(kind, ctx);
        }, kind === 'rollback');
        this.stats.byKind[kind] = (this.stats.byKind[kind] ?? 0) + 1;
        if (kind.startsWith('bulk-')) this.size.at = 0;
      } catch (err) {
        this.noise(err);
      }
      if (this.plan.mix.pauseMs > 0) await this.pause(this.plan.mix.pauseMs);
    }
  }

  private run(kind: OpKind, ctx: OpContext): Promise<number> {
    switch (kind) {
      case 'film-update':
        return ops.filmUpdate(ctx);
      case 'film-insert':
        return ops.filmInsert(ctx);
      case 'film-delete':
        return ops.filmDelete(ctx);
      case 'person-rename':
        return ops.personRename(ctx);
      case 'person-insert':
        return ops.personInsert(ctx);
      case 'person-delete':
        return ops.personDelete(ctx);
      case 'genre-rename':
        return ops.genreRename(ctx);
      case 'genre-insert':
        return ops.genreInsert(ctx);
      case 'genre-delete':
        return ops.genreDelete(ctx);
      case 'link-add':
        return ops.linkAdd(ctx);
      case 'link-remove':
        return ops.linkRemove(ctx);
      case 'link-move':
        return ops.linkMove(ctx);
      case 'role-change':
        return ops.roleChange(ctx);
      case 'bulk-update':
        return bulkUpdate(ctx);
      case 'bulk-insert':
        return bulkInsert(ctx);
      case 'bulk-delete':
        return bulkDelete(ctx, this.size.films > 1_500);
      case 'bulk-rename':
        return bulkRename(ctx);
      case 'multi':
      case 'rollback':
        return ops.filmUpdate(ctx);
    }
  }

  /** Keep the catalog within bounds: kinds that would push it further out are swapped. */
  private adjust(kind: OpKind): OpKind {
    const { films, persons, genres } = this.size;
    if (films < 1_200 && (kind === 'film-delete' || kind === 'bulk-delete')) return 'bulk-insert';
    if (films > 3_000 && (kind === 'film-insert' || kind === 'bulk-insert')) return 'film-delete';
    if (persons < 300 && kind === 'person-delete') return 'person-insert';
    if (persons > 1_500 && kind === 'person-insert') return 'person-delete';
    if (genres < 10 && kind === 'genre-delete') return 'genre-insert';
    if (genres > 80 && kind === 'genre-insert') return 'genre-delete';
    return kind;
  }

  /**
   * Counted at most every SIZE_EVERY_MS, and again after each bulk statement: every 3 s, a run
   * of bulk inserts once took the catalog from 745 films to 15,727 before the bound was seen, and
   * the round's convergence bound was then about catching up that burst. A failed count (Postgres
   * down is one of the faults) keeps the last one; thrown, it ended this writer for the round.
   */
  private async refreshSize(): Promise<void> {
    if (Date.now() - this.size.at < SIZE_EVERY_MS) return;
    this.size.at = Date.now();
    try {
      const { rows } = await this.pool.query<{ films: number; persons: number; genres: number }>(
        `SELECT (SELECT count(*) FROM content.film_work)::int AS films,
                (SELECT count(*) FROM content.person)::int AS persons,
                (SELECT count(*) FROM content.genre)::int AS genres`,
      );
      if (rows[0]) this.size = { ...rows[0], at: this.size.at };
    } catch (err) {
      this.noise(err);
    }
  }

  /** One transaction on one connection; committed (or rolled back when `rollback`). */
  private async transaction(body: (q: Exec) => Promise<number>, rollback = false): Promise<number> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      const q: Exec = async (text, params) => (await client.query(text, params)).rowCount ?? 0;
      await client.query('BEGIN');
      const rows = await body(q);
      await client.query(rollback ? 'ROLLBACK' : 'COMMIT');
      this.stats.transactions++;
      if (rollback) this.stats.rolledBackRows += rows;
      else this.stats.rows += rows;
      return rows;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => (broken = e as Error));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * A transaction held open for `holdMs` (or until stop), each write in a savepoint. The writes are
   * spread over the hold, so a syncer may wake up, fall asleep or start listening between two of
   * them: one transaction's statements then see the doorbell differently.
   */
  private async longTransaction(plan: LongTransaction, index: number): Promise<void> {
    const { seed, round } = this.plan;
    const rng = Rng.of('chaos', seed, 'round', round, 'long', index);
    const rolledBack = plan.outcome === 'rollback';
    await this.transaction(async (q) => {
      let rows = 0;
      const kinds: OpKind[] = [...SMALL, 'film-delete', 'link-move', 'bulk-update'];
      const writes = rng.int(3, 6);
      const gapMs = plan.holdMs / (writes + 1);
      for (let n = writes; n > 0; n--) {
        if (n < writes) await this.pause(gapMs);
        await q('SAVEPOINT w', []);
        try {
          rows += await this.run(rng.pick(kinds), { q, rng });
          await q('RELEASE SAVEPOINT w', []);
        } catch (err) {
          this.noise(err);
          await q('ROLLBACK TO SAVEPOINT w', []);
        }
      }
      await this.pause(2 * gapMs);
      return rows;
    }, rolledBack);
    if (rolledBack) this.stats.longRolledBack++;
    else this.stats.longCommitted++;
  }

  private async truncation(plan: Truncation): Promise<void> {
    const sameTx = plan.relinkAfterMs === 0;
    await this.transaction(async (q) => {
      await q(`SET LOCAL lock_timeout = '20s'`, []);
      const rows = await truncate(q, plan.table);
      return sameTx ? rows + (await relink(q, plan.table)) : rows;
    });
    this.stats.truncations++;
    if (sameTx) return;
    // Re-linked even when the round ends first: the catalog must not stay without links.
    if (!this.stopped) await this.pause(plan.relinkAfterMs);
    await this.transaction((q) => relink(q, plan.table));
  }

  private pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake.add(done);
    });
  }

  private noise(err: unknown): void {
    const code = (err as { code?: string }).code ?? 'other';
    this.stats.noise[code] = (this.stats.noise[code] ?? 0) + 1;
    if (code.startsWith('42') || code === 'other' || code.startsWith('22'))
      this.log.warn(
        { code, err: (err as Error).message },
        'workload statement is wrong (a bug in the campaign)',
      );
  }
}
