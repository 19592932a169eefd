/** The ids of every document in the index, page by page (for the orphan sweep of a full load). */
import type { Client, estypes } from '@elastic/elasticsearch';
import { keysetPages } from '../db/keysetPages.js';
import type { IndexedIds } from '../capture/poller.js';
import { writeIndexOf, type IndexTarget } from './indexManager.js';

export class IndexedDocumentIds implements IndexedIds {
  constructor(
    private readonly es: Client,
    private readonly target: IndexTarget,
  ) {}

  /**
   * Delete documents by their exact ids, unversioned: for ids no row can have (isCanonicalUuid),
   * which no syncer writes, so no write can race the delete. Already gone is fine.
   */
  async remove(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const response = await this.es.bulk({
      operations: ids.map((id) => ({ delete: { _index: this.target.name, _id: id } })),
    });
    const failed = response.items.filter((item) => {
      const status = item.delete?.status ?? 500;
      return status >= 300 && status !== 404;
    });
    if (failed.length > 0)
      throw new Error(
        `could not delete ${failed.length} documents from ${this.target.name}: ` +
          JSON.stringify(failed[0]?.delete?.error ?? 'unknown'),
      );
  }

  async uuid(): Promise<string | null> {
    return (await writeIndexOf(this.es, this.target.name))?.uuid ?? null;
  }

  async refresh(): Promise<void> {
    await this.es.indices.refresh({ index: this.target.name });
  }

  /** Ids in order, a page at a time; after `from` (an id) when resuming a walk. */
  pages(pageSize: number, from?: string): AsyncGenerator<string[]> {
    const hits = keysetPages({
      pageSize,
      from: from === undefined ? undefined : [from],
      read: async (after: estypes.SortResults | undefined) =>
        (
          await this.es.search({
            index: this.target.name,
            size: pageSize,
            _source: false,
            sort: [{ id: 'asc' }],
            track_total_hits: false,
            ...(after ? { search_after: after } : {}),
          })
        ).hits.hits,
      keyOf: (hit) => hit.sort ?? [],
    });
    return ids(hits);
  }
}

async function* ids(pages: AsyncGenerator<estypes.SearchHit[]>): AsyncGenerator<string[]> {
  for await (const hits of pages)
    yield hits.flatMap((hit) => (hit._id === undefined ? [] : [hit._id]));
}
