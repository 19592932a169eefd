/**
 * Convergence on a sample: for some films, what the index holds (realtime GET) against the
 * document the syncer's own query builds from the catalog now, compared by content hash as
 * `npm run verify` does. Whether that query builds the right documents is the test suite's
 * business (test/helpers/expectedDocuments.ts computes them independently); here the question is
 * only whether the index has caught up.
 */
import { filmDocuments } from '../src/sql/queries.js';
import { contentHash } from '../src/verify/driftCheck.js';
import type { Sandbox } from '../test/helpers/isolation.js';

export interface SpotCheck {
  checked: number;
  mismatched: string[];
}

/** Compare `sample` random films (or the given ones) with their documents. */
export async function spotCheck(sb: Sandbox, sample = 50, ids?: string[]): Promise<SpotCheck> {
  const chosen =
    ids ??
    (
      await sb.pg.query<{ id: string }>(
        'SELECT id FROM content.film_work ORDER BY random() LIMIT $1',
        [sample],
      )
    ).rows.map((r) => r.id);
  if (chosen.length === 0) return { checked: 0, mismatched: [] };
  const built = await sb.pg.query<{ id: string; doc: string | null }>(filmDocuments.text, [chosen]);
  const want = new Map(built.rows.map((row) => [row.id, row.doc]));
  const got = await sb.es.mget({ index: sb.config.index, ids: chosen });
  const mismatched: string[] = [];
  for (const doc of got.docs) {
    const source = 'found' in doc && doc.found ? doc._source : undefined;
    const expected = want.get(doc._id) ?? null;
    if (expected === null && source === undefined) continue; // gone from both
    if (
      expected === null ||
      source === undefined ||
      contentHash(source) !== contentHash(JSON.parse(expected))
    )
      mismatched.push(doc._id);
  }
  return { checked: chosen.length, mismatched };
}
