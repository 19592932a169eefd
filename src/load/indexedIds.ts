/** The ids of every document in the index, page by page (for the orphan sweep of a full load). */
import type { Client, estypes } from '@elastic/elasticsearch';
import { keysetPages } from '../db/keysetPages.js';
import type { IndexedIds } from '../capture/poller.js';
import type { IndexTarget } from './indexManager.js';

export class IndexedDocumentIds implements IndexedIds {
  constructor(
    private readonly es: Client,
    private readonly target: IndexTarget,
  ) {}

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
