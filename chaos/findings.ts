/**
 * What a round learned: findings (the product broke a guarantee: the round fails) and notes
 * (worth reading, expected under faults: a syncer that could not start while Postgres was away).
 * Each is stamped with the time into the round, so it can be lined up with the plan.
 */

export type FindingKind =
  | 'no-convergence' // the index never matched the oracle within the deadline
  | 'stranded-state' // queue, claims, processing lists or leases left behind in Redis
  | 'index-settings' // bulk-load settings (refresh off) left on the index
  | 'leftover-index' // an index of an unfinished reindex never removed
  | 'dead-letters' // documents refused although the workload writes only valid data
  | 'sigterm-exit' // SIGTERM ended a running syncer with a non-zero status
  | 'sigterm-hang' // SIGTERM did not end a running syncer within the deadline
  | 'crash' // a running syncer exited without being asked to
  | 'reindex-crash' // `npm run reindex` ended other than 0, 1 or the SIGKILL it was sent
  | 'reindex-hang' // `npm run reindex` still ran long after the round's end
  | 'no-start'; // no syncer could start once every fault was over

export interface Finding {
  kind: FindingKind;
  /** Milliseconds since the round began (negative: before it, during set-up). */
  atMs: number;
  summary: string;
  detail?: string;
}

export interface Note {
  atMs: number;
  text: string;
}

export class Findings {
  readonly findings: Finding[] = [];
  readonly notes: Note[] = [];
  private origin = Date.now();

  /** Times from now on are relative to this moment (the start of a round). */
  restart(): void {
    this.origin = Date.now();
    this.findings.length = 0;
    this.notes.length = 0;
  }

  get now(): number {
    return Date.now() - this.origin;
  }

  add(kind: FindingKind, summary: string, detail?: string): void {
    this.findings.push({ kind, atMs: this.now, summary, ...(detail ? { detail } : {}) });
  }

  note(text: string): void {
    this.notes.push({ atMs: this.now, text });
  }
}

export const at = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
