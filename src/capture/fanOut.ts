/**
 * Which documents a table change touches, in every kind (src/kinds): a change names ids of films,
 * persons or genres; each kind takes those that are its own, or resolves them to its own (a
 * person's rename reaches their films). Used alike by the live path (notifications) and by the
 * poller (changed rows), so both reach exactly the same documents.
 */
import type { DocumentKind, Entity, Touch } from '../kinds/documentKind.js';
import { KINDS, memberOf } from '../kinds/kinds.js';
import type { DocumentQueue } from '../queue/documentQueue.js';
import type { PolledTable } from '../sql/queries.js';
import type { Resolver } from './resolver.js';

export interface TableChange {
  table: PolledTable;
  /** The ids the change names, per entity. */
  keys: Partial<Record<Entity, Iterable<string>>>;
  /** The notified operation; absent for polled rows (any row may have changed anything). */
  op?: 'I' | 'U' | 'D';
}

/** Ids to resolve through a kind's touch. */
export interface Resolution {
  kind: DocumentKind;
  touch: Touch & { via: NonNullable<Touch['via']> };
  ids: string[];
}

export interface FanOutPlan {
  /** Queue members to enqueue as they are. */
  members: string[];
  resolutions: Resolution[];
}

export class FanOut {
  constructor(
    private readonly queue: DocumentQueue,
    private readonly resolver: Resolver,
    private readonly kinds: readonly DocumentKind[] = KINDS,
  ) {}

  /** What a change touches; no I/O. */
  plan(change: TableChange): FanOutPlan {
    return planFanOut(change, this.kinds);
  }

  /** Enqueue what a plan names; returns how many members were new to the queue. */
  async run(plan: FanOutPlan): Promise<number> {
    let added = plan.members.length > 0 ? await this.queue.enqueue(plan.members) : 0;
    for (const resolution of plan.resolutions) added += await this.resolve(resolution);
    return added;
  }

  async resolve({ kind, touch, ids }: Resolution): Promise<number> {
    let added = 0;
    for await (const page of this.resolver.resolve(touch.via, ids))
      added += await this.queue.enqueue(page.map((id) => memberOf(kind.name, id)));
    return added;
  }
}

/** What a change touches in these kinds: members to queue as they are, ids to resolve. */
export function planFanOut(change: TableChange, kinds: readonly DocumentKind[]): FanOutPlan {
  const plan: FanOutPlan = { members: [], resolutions: [] };
  for (const kind of kinds) {
    const touch = kind.touchedBy[change.table];
    const keys = touch ? change.keys[touch.entity] : undefined;
    if (!touch || !keys) continue;
    const ids = [...keys];
    if (ids.length === 0) continue;
    if (!touch.via) {
      for (const id of ids) plan.members.push(memberOf(kind.name, id));
    } else if (!change.op || !touch.liveOps || touch.liveOps.includes(change.op)) {
      plan.resolutions.push({ kind, touch: { ...touch, via: touch.via }, ids });
    }
  }
  return plan;
}
