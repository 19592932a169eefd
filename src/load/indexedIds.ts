/** The ids of every document in the index, page by page (for the orphan sweep of a full load). */
import type { Client } from '@elastic/elasticsearch';
import type { IndexedIds } from '../capture/poller.js';
import type { IndexTarget } from './indexManager.js';

export class IndexedFilmIds implements IndexedIds {
  constructor(
    private readonly es: Client,
    private readonly target: IndexTarget,
  ) {}

  async *pages(pageSize: number): AsyncGenerator<string[]> {
    let after: (string | number)[] | undefined;
    for (;;) {
      const response = await this.es.search({
        index: this.target.name,
        size: pageSize,
        _source: false,
        sort: [{ id: 'asc' }],
        track_total_hits: false,
        ...(after ? { search_after: after } : {}),
      });
      const hits = response.hits.hits;
      if (hits.length > 0) yield hits.flatMap((hit) => (hit._id === undefined ? [] : [hit._id]));
      const last = hits.at(-1);
      if (hits.length < pageSize || !last?.sort) return;
      after = last.sort as (string | number)[];
    }
  }
}
