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
 */
import type { Client } from '@elastic/elasticsearch';
import type { Logger } from '../logger.js';

const META_KEY = 'movies_etl_bulk_load';

interface SavedSettings {
  refresh_interval: string | null;
  number_of_replicas: string | null;
}

export class BulkLoadMode {
  /** Whether this process relaxed the index and has not put its settings back yet. */
  active = false;

  constructor(
    private readonly es: Client,
    /** The alias (or plain index) the syncer writes to. */
    private readonly target: string,
    private readonly log: Logger,
  ) {}

  /** Relax the index if it is empty; resolves to whether it did. */
  async enter(): Promise<boolean> {
    const { count } = await this.es.count({ index: this.target });
    if (count > 0) return false;
    const saved = new Map<string, SavedSettings>();
    for (const [index, body] of Object.entries(
      await this.es.indices.getSettings({ index: this.target }),
    )) {
      const settings = body.settings?.index;
      if (settings?.refresh_interval === '-1') continue; // relaxed already (another syncer)
      saved.set(index, {
        refresh_interval: settings?.refresh_interval?.toString() ?? null,
        number_of_replicas: settings?.number_of_replicas?.toString() ?? null,
      });
    }
    for (const [index, settings] of saved) {
      // Remember first: a crash between the two calls then leaves something to restore from.
      await this.es.indices.putMapping({ index, _meta: { [META_KEY]: settings } });
      await this.es.indices.putSettings({
        index,
        settings: { refresh_interval: '-1', number_of_replicas: 0 },
      });
    }
    if (saved.size > 0) this.log.info({ indices: [...saved.keys()] }, 'bulk-load mode on');
    this.active ||= saved.size > 0;
    return saved.size > 0;
  }

  /** Put back whatever settings an earlier enter() (ours or a crashed syncer's) replaced. */
  async leave(): Promise<void> {
    const mappings = await this.es.indices.getMapping({ index: this.target });
    for (const [index, body] of Object.entries(mappings)) {
      const saved = body.mappings._meta?.[META_KEY] as SavedSettings | undefined;
      if (!saved) continue;
      await this.es.indices.putSettings({
        index,
        // null puts Elasticsearch's default back for a setting the index did not set itself.
        settings: {
          refresh_interval: saved.refresh_interval,
          number_of_replicas: saved.number_of_replicas,
        } as Record<string, string | null>,
      });
      await this.es.indices.putMapping({ index, _meta: {} });
      await this.es.indices.refresh({ index });
      this.log.info({ index, ...saved }, 'bulk-load mode off: settings restored');
    }
    this.active = false;
  }
}
