/**
 * Self-checks of the campaign's own oracle (`--sabotage KIND`): right after the faults of a round
 * end, the campaign itself breaks something the product cannot know about, and the round must
 * then FAIL with the matching finding. A campaign that passes with sabotage on is blind.
 *  - drop-doc:    one document deleted from the index behind the syncers' back (-> no-convergence)
 *  - stray-list:  a processing list no claim names (-> stranded-state)
 *  - dead-lease:  a lock held by a process that does not exist, with no TTL (-> stranded-state)
 *
 * What can go wrong: sabotage leaking into later rounds. Each is undone after the round's verdict
 * (the document comes back by a touch of its film in Postgres; the keys are deleted).
 */
import { hostname } from 'node:os';
import type { FindingKind } from './findings.js';
import type { Rig } from './rig.js';

export const SABOTAGE_KINDS = ['drop-doc', 'stray-list', 'dead-lease'] as const;
export type SabotageKind = (typeof SABOTAGE_KINDS)[number];

export const EXPECTED: Record<SabotageKind, FindingKind> = {
  'drop-doc': 'no-convergence',
  'stray-list': 'stranded-state',
  'dead-lease': 'stranded-state',
};

/** Break it; resolves to a function that repairs it. */
export async function sabotage(rig: Rig, kind: SabotageKind): Promise<() => Promise<void>> {
  const { sandbox, redis } = rig;
  const prefix = sandbox.config.redisPrefix;
  switch (kind) {
    case 'drop-doc': {
      const { rows } = await sandbox.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY id LIMIT 1',
      );
      const id = rows[0]?.id;
      if (!id) return () => Promise.resolve();
      await sandbox.es.delete({ index: sandbox.config.index, id, refresh: true });
      return async () => {
        await sandbox.pg.query('UPDATE content.film_work SET title = title WHERE id = $1', [id]);
      };
    }
    case 'stray-list': {
      const key = `${prefix}processing:chaos-sabotage`;
      await redis.rpush(key, '00000000-0000-0000-0000-000000000000');
      return async () => {
        await redis.del(key);
      };
    }
    case 'dead-lease': {
      const key = `${prefix}lock:chaos-sabotage`;
      await redis.set(key, JSON.stringify({ holder: `${hostname()}-999999-dead sabotage` }));
      return async () => {
        await redis.del(key);
      };
    }
  }
}
