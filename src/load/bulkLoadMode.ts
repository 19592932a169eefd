/**
 * Bulk-load mode for a full load into an empty index: no periodic refresh and no replicas while
 * it runs, then the index's own settings back and one refresh. Elasticsearch then writes large
 * segments instead of a new one every second, and copies each document once instead of to every
 * replica as it arrives (replicas are rebuilt from the finished primary afterwards).
 *
 * Only for an empty index: nothing searchable is hidden while refresh is off. The settings it
 * replaced are remembered in the index's own `_meta`, so whoever finds them there puts them back:
 * this syncer when the load drains, on stop, or the next start after a crash (Redis may be empty
 * then, the index is not).
 *
 * Several syncers share the index: only the one holding the `bulk-load:<index>` lease relaxes it,
 * its token is remembered beside the settings, and a starting syncer restores only settings whose
 * owner's lease is gone. Otherwise the second syncer of a deployment would undo the first one's
 * full load the moment it started.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Logger } from '../logger.js';
import { removeMetaKey, setMetaKey } from './indexManager.js';
import { Lease, type HeldLease } from '../queue/lease.js';
import type { RedisStore } from '../queue/redisStore.js';

const META_KEY = 'movies_etl_bulk_load';
/** Refreshed every third of it while the mode is on; a crashed owner's lapses within this. */
const OWNER_LEASE_MS = 15_000;

interface SavedSettings {
  refresh_interval: string | null;
  number_of_replicas: string | null;
  /** The lease token of the syncer that relaxed the index (absent before version 0.2). */
  owner?: string;
}

/**
 * The replicas `index` had before a full load relaxed it, as saved in its `_meta` (null: the
 * index did not set them); undefined when it is not relaxed. A reindex gives its new index these,
 * not the load's 0: the saved settings go with the old index.
 */
export async function replicasBeforeBulkLoad(
  es: Client,
  index: string,
): Promise<string | null | undefined> {
  const mappings = await es.indices.getMapping({ index });
  const saved = Object.values(mappings)[0]?.mappings._meta?.[META_KEY] as SavedSettings | undefined;
  return saved?.number_of_replicas;
}

/** Whether a `_meta` value is a record of the syncer holding `token`. */
const ownedBy = (token: string | undefined) => (value: unknown) =>
  (value as SavedSettings | undefined)?.owner === token;

export class BulkLoadMode {
  private held: HeldLease | null = null;
  /** What enter() replaced, by index, while this process holds the index relaxed. */
  private saved = new Map<string, SavedSettings>();
  private readonly lease: Lease;

  constructor(
    private readonly es: Client,
    /** The alias (or plain index) the syncer writes to. */
    private readonly target: string,
    private readonly log: Logger,
    store: RedisStore,
    private readonly owner: string,
  ) {
    this.lease = new Lease(store, store.key('bulk-load', target), OWNER_LEASE_MS);
  }

  /** Whether this process relaxed the index and has not put its settings back yet. */
  get active(): boolean {
    return this.held !== null;
  }

  /** Whether some syncer (this one or another) holds the index in bulk-load mode now. */
  async heldByAnyone(): Promise<boolean> {
    return (await this.lease.holder()) !== null;
  }

  /** Relax the index if it is empty and nobody else has; resolves to whether it did. */
  async enter(): Promise<boolean> {
    const { count } = await this.es.count({ index: this.target });
    if (count > 0 || this.held) return false;
    const held = await this.lease.tryAcquire(this.owner, (reason) =>
      this.log.warn({ reason }, 'bulk-load mode: ownership lost; another syncer may restore'),
    );
    if (!held) return false; // another live syncer is loading it
    let current: Awaited<ReturnType<Client['indices']['getSettings']>>;
    try {
      current = await this.es.indices.getSettings({ index: this.target });
    } catch (err) {
      // Nothing relaxed yet. Kept, the lease (refreshed for the life of the process) would tell
      // every syncer the index is loading: no refresh after live batches, no later load relaxing it.
      await held.release().catch(() => undefined);
      throw err;
    }
    const saved = new Map<string, SavedSettings>();
    for (const [index, body] of Object.entries(current)) {
      const settings = body.settings?.index;
      if (settings?.refresh_interval === '-1') continue; // relaxed already (and remembered)
      saved.set(index, {
        refresh_interval: settings?.refresh_interval?.toString() ?? null,
        number_of_replicas: settings?.number_of_replicas?.toString() ?? null,
        owner: held.token,
      });
    }
    if (saved.size === 0) {
      await held.release();
      return false;
    }
    this.held = held;
    this.saved = saved;
    for (const [index, settings] of saved) {
      // Remember first: a crash between the two calls then leaves something to restore from.
      await setMetaKey(this.es, index, META_KEY, settings);
      await this.es.indices.putSettings({
        index,
        settings: { refresh_interval: '-1', number_of_replicas: 0 },
      });
    }
    // Still ours once the index is relaxed? Another syncer restores a record only after reading
    // that its owner's lease is gone (restoreAbandoned), and a lapsed lease never comes back: so
    // if it still stands now, nobody has put these settings back or will before this process
    // does. If not (this process paused past its lease between remembering and relaxing, or
    // Redis cannot say), another may have restored them and removed the record before this PUT
    // landed, and nobody else would undo it.
    if (!(await held.refresh())) {
      await this.standDown(held, saved);
      return false;
    }
    this.log.info({ indices: [...saved.keys()] }, 'bulk-load mode on');
    return true;
  }

  /** Undo what enter() did without its lease: the load runs with the index's own settings. */
  private async standDown(held: HeldLease, saved: Map<string, SavedSettings>): Promise<void> {
    this.log.warn(
      { indices: [...saved.keys()] },
      'bulk-load mode: lease lost while relaxing the index; putting its settings back',
    );
    for (const [index, settings] of saved) {
      const record = (await this.records(index)).get(index);
      // Another syncer's record: it relaxed the index since, and puts back what it read then.
      if (record && record.owner !== held.token) continue;
      await this.putBack(index, settings);
      if (record) await removeMetaKey(this.es, index, META_KEY, ownedBy(held.token));
    }
    this.held = null;
    this.saved = new Map();
    await held.release().catch(() => undefined);
  }

  /** The settings remembered in the `_meta` of each index behind `target`, by index. */
  private async records(target: string): Promise<Map<string, SavedSettings>> {
    const found = new Map<string, SavedSettings>();
    for (const [index, body] of Object.entries(
      await this.es.indices.getMapping({ index: target }),
    )) {
      const saved = body.mappings._meta?.[META_KEY] as SavedSettings | undefined;
      if (saved) found.set(index, saved);
    }
    return found;
  }

  private async putBack(index: string, saved: SavedSettings): Promise<void> {
    await this.es.indices.putSettings({
      index,
      // null puts Elasticsearch's default back for a setting the index did not set itself.
      settings: {
        refresh_interval: saved.refresh_interval,
        number_of_replicas: saved.number_of_replicas,
      } as Record<string, string | null>,
    });
  }

  /** The load this process ran has drained (or it stops): put back what it replaced. */
  async leave(): Promise<void> {
    const held = this.held;
    if (!held) return;
    const records = await this.records(this.target);
    await this.restore(records, (saved) => saved.owner === held.token);
    // Its record gone (a tidy that read a lapsed owner's record removed this one's, written
    // between its read and its removal): what this process remembers itself still goes back,
    // unless another syncer relaxed the index since and holds it by its own record.
    for (const [index, settings] of this.saved)
      if (!records.has(index)) await this.putBack(index, settings);
    this.held = null;
    this.saved = new Map();
    await held.release().catch(() => undefined);
  }

  /**
   * At start: put back the settings that a syncer which is gone left relaxed (it crashed, or
   * Redis lost its lease). A live syncer's full load is left alone: its lease still stands.
   *
   * The records are read before the lease, never after: a record written by a syncer that took
   * the lease after this one looked would otherwise pass for abandoned, and be put back and
   * removed just before its owner relaxed the index, for good.
   */
  async restoreAbandoned(): Promise<void> {
    const records = await this.records(this.target);
    if (records.size === 0) return;
    const live = await this.lease.holder();
    await this.restore(records, (saved) => live === null || saved.owner !== live.token);
  }

  private async restore(
    records: Map<string, SavedSettings>,
    whose: (saved: SavedSettings) => boolean,
  ): Promise<void> {
    for (const [index, saved] of records) {
      if (!whose(saved)) continue;
      await this.putBack(index, saved);
      // Only the record read above: a syncer that relaxed the index since (after this put its
      // settings back) wrote its own, which it needs to put them back in turn.
      await removeMetaKey(this.es, index, META_KEY, ownedBy(saved.owner));
      await this.es.indices.refresh({ index });
      this.log.info(
        { index, refresh_interval: saved.refresh_interval, replicas: saved.number_of_replicas },
        'bulk-load mode off: settings restored',
      );
    }
  }
}
