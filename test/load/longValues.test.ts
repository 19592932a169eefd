/**
 * A keyword holds at most 32,766 bytes in Lucene: a longer value ("immense term") makes
 * Elasticsearch refuse the whole document. `text` columns have no length limit, so a genre name
 * that long went to the dead letters with the document of every film in that genre (a film lists
 * its genres' names as keywords); a title or a person's name that long, with its own document.
 * The contract wants every film's document: such a value is kept whole in the document and in its
 * text field, and left out of the keyword index (`ignore_above`), so a term query on it does not
 * find it. An index made before keeps working: the syncer adds the limit to its mapping at start.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  genresDefinition,
  indexMappings,
  personsMappings,
} from '../../src/load/indexDefinition.js';
import type { Sandbox } from '../helpers/isolation.js';
import { insertFilm, insertGenre, insertPerson, link, seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

/** 20,000 two-byte characters: 40,000 bytes of UTF-8. */
const LONG = 'ж'.repeat(20_000);

/** A small catalog with a genre, a person and a film whose names are that long. */
async function catalogWithLongValues(name: string): Promise<Sandbox> {
  const sandbox = await createSandbox(name);
  await migrateSandbox(sandbox);
  await seedCatalog(sandbox.pg, 10, 2, 5);
  const genre = await insertGenre(sandbox.pg, `Жанр ${LONG}`);
  const person = await insertPerson(sandbox.pg, `Имя ${LONG}`);
  for (let i = 0; i < 3; i++) {
    const film = await insertFilm(sandbox.pg, i === 0 ? `Фильм ${LONG}` : `Фильм ${i}`);
    await link(sandbox.pg, film, { genre });
    await link(sandbox.pg, film, { person, role: 'actor' });
  }
  return sandbox;
}

/** A syncer converges on the sandbox (the oracle has every document whole), no letter written. */
async function indexedWholeWithNothingRefused(sandbox: Sandbox): Promise<void> {
  const syncer = await startSyncer(sandbox);
  try {
    await waitForConvergence(sandbox, 30_000);
    assert.deepEqual(await syncer.deadLetters.list(), []);
  } finally {
    await syncer.stop();
  }
}

describe('names and titles longer than a keyword holds', () => {
  const sandboxes: Sandbox[] = [];

  after(async () => {
    for (const sandbox of sandboxes) await sandbox.cleanup();
  });

  it('are indexed whole, with nothing refused', async () => {
    const sandbox = await catalogWithLongValues('long_values');
    sandboxes.push(sandbox);
    await indexedWholeWithNothingRefused(sandbox);
  });

  // Behind an alias as the syncer makes them, or plain indices made before a first start.
  for (const plain of [false, true])
    it(`are indexed whole in ${plain ? 'plain ' : ''}indices made before, whose mapping had no limit`, async () => {
      const sandbox = await catalogWithLongValues(plain ? 'long_values_plain' : 'long_values_old');
      sandboxes.push(sandbox);
      // The three indices as an earlier version (or an operator) made them: no limit.
      const unlimited = (mapping: unknown): unknown =>
        JSON.parse(JSON.stringify(mapping), (key, value: unknown) =>
          key === 'ignore_above' ? undefined : value,
        );
      for (const [alias, mappings] of [
        [sandbox.config.index, indexMappings],
        [sandbox.config.personsIndex, personsMappings],
        [sandbox.config.genresIndex, genresDefinition.mappings],
      ] as const) {
        await sandbox.es.indices.create({
          index: plain ? alias : `${alias}_v1`,
          settings: genresDefinition.settings,
          mappings: unlimited(mappings) as typeof mappings,
          ...(plain ? {} : { aliases: { [alias]: { is_write_index: true } } }),
        });
      }
      await indexedWholeWithNothingRefused(sandbox);
    });
});
