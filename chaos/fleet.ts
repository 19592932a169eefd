/**
 * The syncer processes of a campaign, in up to three slots: `base` slots that should always run,
 * and extra ones that faults fill for a while. A supervisor restarts a slot's syncer when it exits
 * by itself (a start that failed while a service was away is expected; an exit after it had
 * started is a crash, a finding). Faults kill -9 or SIGTERM one syncer and bring a replacement
 * after a drawn delay; SIGTERM must end a started syncer with status 0 within STOP_DEADLINE_MS.
 *
 * A fault may also freeze one syncer (SIGSTOP) for longer than its heartbeat and its leases: it
 * wakes to find its claims reaped and its leases taken, which the product must survive.
 *
 * At the end of a round heal() starts nothing that is not needed: a syncer is started only if none
 * runs, so state a dead syncer left (bulk-load settings, say) must be cleaned by the survivors,
 * not by a fresh start. start() brings the base count back at the next round.
 *
 * What can go wrong: timers from one round firing in the next (heal() clears them all), a
 * SIGTERM that never returns (sigterm() kills -9 after the deadline and reports the hang), and a
 * frozen syncer left frozen (heal(), stopAll() and the SIGTERM path all send SIGCONT first).
 */
import type { Logger } from '../src/logger.js';
import type { Findings } from './findings.js';
import { SyncerHandle } from './syncerHandle.js';

export const MAX_SYNCERS = 3;
const STOP_DEADLINE_MS = 30_000;
const RESPAWN_MS = 1_000;

interface Slot {
  index: number;
  desired: boolean;
  handle: SyncerHandle | null;
  restart: NodeJS.Timeout | null;
}

export class Fleet {
  readonly counts = { spawned: 0, kill9: 0, sigterm: 0, startFailures: 0 };
  /** Every syncer of the campaign, newest last (the last 40), for failure reports. */
  readonly history: SyncerHandle[] = [];
  private readonly slots: Slot[];
  private generation = 0;
  private closing = false;
  private readonly stops = new Set<Promise<void>>();
  private readonly thaws = new Set<NodeJS.Timeout>();
  /** Told every new syncer's pid (the campaign's leftover marker lists them). */
  onSpawn: ((pid: number) => void) | null = null;

  constructor(
    private readonly env: Record<string, string>,
    private readonly logDir: string,
    private readonly base: number,
    private readonly findings: Findings,
    private readonly log: Logger,
    private readonly root?: string,
  ) {
    this.slots = Array.from({ length: MAX_SYNCERS }, (_, index) => ({
      index,
      desired: index < base,
      handle: null,
      restart: null,
    }));
  }

  /** Start the base slots. */
  start(): void {
    for (const slot of this.slots) if (slot.desired && !slot.handle) this.spawn(slot);
  }

  get handles(): SyncerHandle[] {
    return this.slots.flatMap((s) => (s.handle ? [s.handle] : []));
  }

  livePids(): Set<number> {
    return new Set(this.handles.filter((h) => h.running).map((h) => h.pid));
  }

  /** kill -9 one running syncer (chosen by `pick`), a replacement `downMs` later. */
  kill9(pick: number, downMs: number): void {
    const slot = this.choose(pick, (h) => h.running);
    if (!slot?.handle) return this.findings.note('kill9 skipped: no syncer running');
    const handle = slot.handle;
    this.counts.kill9++;
    this.findings.note(`kill -9 ${handle.name} (pid ${handle.pid})`);
    handle.kill9();
    this.restartLater(slot, downMs);
  }

  /** SIGTERM one started syncer (exit 0 expected), a replacement `downMs` later. */
  sigterm(pick: number, downMs: number): void {
    const slot = this.choose(pick, (h) => h.running && h.started && !h.frozen);
    if (!slot?.handle) return this.findings.note('sigterm skipped: no started syncer');
    this.counts.sigterm++;
    this.terminate(slot.handle);
    this.restartLater(slot, downMs);
  }

  /** One more syncer for `ms`, then SIGTERM; false when all slots are taken. */
  extra(ms: number): boolean {
    const slot = this.slots.find((s) => !s.desired && !s.handle);
    if (!slot) {
      this.findings.note('extra-syncer skipped: three syncers already');
      return false;
    }
    slot.desired = true;
    this.spawn(slot);
    slot.restart = setTimeout(() => {
      slot.restart = null;
      slot.desired = false;
      if (slot.handle?.running) this.terminate(slot.handle);
    }, ms);
    return true;
  }

  /** SIGSTOP one running syncer for `ms`, then SIGCONT. */
  freeze(pick: number, ms: number): void {
    const slot = this.choose(pick, (h) => h.running && !h.frozen);
    if (!slot?.handle) return this.findings.note('syncer-freeze skipped: no syncer running');
    const handle = slot.handle;
    this.findings.note(`SIGSTOP ${handle.name} (pid ${handle.pid})`);
    handle.pause();
    const timer = setTimeout(() => {
      this.thaws.delete(timer);
      if (handle.frozen) this.findings.note(`SIGCONT ${handle.name}`);
      handle.resume();
    }, ms);
    this.thaws.add(timer);
  }

  /**
   * End of the faults: everything frozen wakes, pending restarts and extras' ends are cancelled,
   * extras get SIGTERM, every stop is awaited; a syncer is started only when none runs.
   */
  async heal(): Promise<void> {
    for (const timer of this.thaws) clearTimeout(timer);
    this.thaws.clear();
    for (const handle of this.handles) handle.resume();
    for (const slot of this.slots) {
      if (slot.restart) clearTimeout(slot.restart);
      slot.restart = null;
      slot.desired = slot.index < this.base;
      if (!slot.desired && slot.handle?.running && slot.handle.ending === null)
        this.terminate(slot.handle);
    }
    await Promise.allSettled([...this.stops]);
    if (!this.handles.some((h) => h.running && h.ending === null)) {
      const first = this.slots.find((s) => s.desired && !s.handle);
      if (first) this.spawn(first);
    }
  }

  /** Until a syncer runs and every running one has started; a finding after `ms`. */
  async waitStarted(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const live = this.handles.filter((h) => h.running && h.ending === null);
      if (live.length > 0 && live.every((h) => h.started)) return true;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const tails = this.handles.map((h) => `${h.name}:\n  ${h.lastLines(15).join('\n  ')}`);
    this.findings.add(
      'no-start',
      `no started syncer ${ms} ms after the faults ended`,
      tails.join('\n'),
    );
    return false;
  }

  /** SIGTERM everything (checked like any SIGTERM), for the end of the campaign. */
  async stopAll(): Promise<void> {
    this.closing = true;
    for (const timer of this.thaws) clearTimeout(timer);
    for (const handle of this.handles) handle.resume();
    for (const slot of this.slots) {
      if (slot.restart) clearTimeout(slot.restart);
      slot.restart = null;
      slot.desired = false;
      if (slot.handle?.running && slot.handle.ending === null) {
        if (slot.handle.started) this.terminate(slot.handle);
        else slot.handle.kill9();
      }
    }
    await Promise.allSettled([...this.stops]);
    await Promise.allSettled(this.handles.map((h) => h.exited));
  }

  /** After a failed round (--keep-going): kill -9 everything, then the base slots run again. */
  async reset(): Promise<void> {
    this.killAll();
    await Promise.allSettled(this.handles.map((h) => h.exited));
    await Promise.allSettled([...this.stops]);
    this.closing = false;
    for (const slot of this.slots) slot.desired = slot.index < this.base;
    this.start();
  }

  /** Last resort (Ctrl-C, a crash of the campaign): kill -9 whatever runs, synchronously. */
  killAll(): void {
    this.closing = true;
    for (const slot of this.slots) {
      if (slot.restart) clearTimeout(slot.restart);
      slot.restart = null;
      slot.handle?.kill9();
    }
  }

  private choose(pick: number, ok: (h: SyncerHandle) => boolean): Slot | undefined {
    const candidates = this.slots.filter(
      (s) => s.handle && s.handle.ending === null && ok(s.handle),
    );
    return candidates[Math.min(candidates.length - 1, Math.floor(pick * candidates.length))];
  }

  private restartLater(slot: Slot, ms: number): void {
    if (slot.restart) clearTimeout(slot.restart);
    const old = slot.handle;
    slot.restart = setTimeout(() => {
      slot.restart = null;
      void (old ? old.exited : Promise.resolve()).then(() => {
        if (slot.desired && !slot.handle && !this.closing) this.spawn(slot);
      });
    }, ms);
  }

  private terminate(handle: SyncerHandle): void {
    const wasStarted = handle.started;
    this.findings.note(`SIGTERM ${handle.name} (pid ${handle.pid})`);
    const stop = handle.sigterm(STOP_DEADLINE_MS).then(({ exit, hung, tookMs }) => {
      this.findings.note(
        `${handle.name} exited ${exit.code ?? exit.signal} ${tookMs} ms after SIGTERM`,
      );
      if (!wasStarted) return;
      const tail = handle.lastLines(25).join('\n');
      if (hung)
        this.findings.add(
          'sigterm-hang',
          `${handle.name} still running ${tookMs} ms after SIGTERM (killed -9)`,
          tail,
        );
      else if (exit.code !== 0)
        this.findings.add(
          'sigterm-exit',
          `${handle.name} exited ${exit.code ?? exit.signal} after SIGTERM`,
          tail,
        );
    });
    this.stops.add(stop);
    void stop.finally(() => this.stops.delete(stop));
  }

  private spawn(slot: Slot): void {
    const handle = new SyncerHandle(
      `syncer-${slot.index}-${++this.generation}`,
      this.env,
      this.logDir,
      this.root,
    );
    slot.handle = handle;
    this.history.push(handle);
    if (this.history.length > 40) this.history.shift();
    this.counts.spawned++;
    this.onSpawn?.(handle.pid);
    this.findings.note(`started ${handle.name} (pid ${handle.pid})`);
    void handle.exited.then((exit) => {
      if (slot.handle === handle) slot.handle = null;
      if (handle.ending !== null) return;
      const status = exit.code ?? exit.signal;
      if (handle.started) {
        // The error and the top of its stack, then the last log lines before it.
        const error = handle.plain.filter((l) => l.trim() !== '').slice(0, 12);
        const json = handle
          .lastLines(40)
          .filter((l) => l.startsWith('{'))
          .slice(-5);
        this.findings.add(
          'crash',
          `${handle.name} exited ${status} without being asked to`,
          [...error, '…', ...json].join('\n'),
        );
      } else {
        this.counts.startFailures++;
        const reason = /"msg":"([^"]*)"/.exec(handle.lastLines(3).join('\n'))?.[1] ?? 'no log';
        this.findings.note(`${handle.name} exited ${status} before it started (${reason})`);
      }
      this.log.debug({ syncer: handle.name, status }, 'syncer exited');
      if (slot.desired && !this.closing && !slot.restart) {
        slot.restart = setTimeout(() => {
          slot.restart = null;
          if (slot.desired && !slot.handle && !this.closing) this.spawn(slot);
        }, RESPAWN_MS);
      }
    });
  }
}
