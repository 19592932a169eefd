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

  /**
   * Ids in order, a page at a time; after `from` (an id) when resuming a walk.
   *
   * In the order of the documents' `id` field, which the syncer writes equal to `_id` (Elasticsearch
   * sorts on `_id` only with field data it keeps off), then of `_seq_no`, so that each document has
   * its own place: sorted on `id` alone, a document not the syncer's (a copy under another `_id`)
   * that shared its `id` with the last of a page was skipped, and the walk ended at the first
   * document with no `id` (the page after `[null]` is empty). Those are the documents the sweep and
   * `verify` are there to find. `_seq_no` is unique within a shard: on an index of several shards,
   * two documents of one `id` and one `_seq_no` could still share a place.
   */
  pages(pageSize: number, from?: string): AsyncGenerator<string[]> {
    const hits = keysetPages({
      pageSize,
      // Past every document of that `id`.
      from: from === undefined ? undefined : [from, Number.MAX_SAFE_INTEGER],
      read: async (after: estypes.SortResults | undefined) =>
        (
          await this.es.search({
            index: this.target.name,
            size: pageSize,
            _source: false,
            sort: [{ id: 'asc' }, { _seq_no: 'asc' }],
            track_total_hits: false,
            ...(after ? { search_after: after } : {}),
          })
        ).hits.hits,
      keyOf: (hit) => hit.sort ?? [],
    });
    return ids(hits);
  }
}

/** Most `_id`s remembered at a page's edge (see `ids`). */
const EDGE_AT_MOST = 10_000;

/**
 * The `_id`s of the hits, each once: a document rewritten while the walk runs gets a new `_seq_no`,
 * so the last of a page comes again at the start of the next one, which would count it twice.
 */
async function* ids(pages: AsyncGenerator<estypes.SearchHit[]>): AsyncGenerator<string[]> {
  let edge = { id: undefined as unknown, ids: new Set<string>() };
  for await (const hits of pages) {
    const page: string[] = [];
    for (const hit of hits) {
      const id = hit.sort?.[0];
      if (hit._id === undefined || (id === edge.id && edge.ids.has(hit._id))) continue;
      page.push(hit._id);
    }
    const last = hits.at(-1)?.sort?.[0];
    const tail = hits.filter((hit) => hit.sort?.[0] === last && hit._id !== undefined);
    // Capped: every document with no `id` shares one sort value; past the cap a rewritten one
    // may be counted twice, nothing worse.
    const kept = last === edge.id && edge.ids.size < EDGE_AT_MOST ? edge.ids : [];
    edge = { id: last, ids: new Set([...kept, ...tail.map((hit) => hit._id ?? '')]) };
    yield page;
  }
}
