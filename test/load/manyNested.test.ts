/**
 * A person in more than 10,000 films, and a film with more than 10,000 people: documents with
 * more nested objects than Elasticsearch takes by default (`index.mapping.nested_objects.limit`).
 *
 * Found by a randomized workload: one statement linked a placeholder person to 10,001 new films.
 * Elasticsearch refused that person's document at every try, and the index kept the old one (or
 * none, after a full load) for good. The indices now take up to 100,000; indices made by an
 * earlier version are raised in place at a syncer's start.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NESTED_OBJECTS_LIMIT } from '../../src/load/indexDefinition.js';
import { seedCatalog } from '../helpers/catalog.js';
import { waitForConvergence } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

describe('documents with many nested objects', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('many_nested');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 20, 2, 10);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  it('are indexed whole, in indices made by an earlier version too', async () => {
    const { index, personsIndex } = sandbox.config;
    let syncer = await startSyncer(sandbox);
    await waitForConvergence(sandbox);
    await syncer.stop();
    // As an earlier version made them: Elasticsearch's default limit.
    for (const name of [index, personsIndex])
      await sandbox.es.indices.putSettings({
        index: name,
        settings: { 'index.mapping.nested_objects.limit': 10_000 },
      });

    const many = 10_001;
    await sandbox.pg.query(
      `WITH person AS (SELECT id FROM content.person ORDER BY id LIMIT 1),
            films AS (
              INSERT INTO content.film_work (id, title, type)
              SELECT gen_random_uuid(), 'Bulk ' || g, 'movie' FROM generate_series(1, $1) g
              RETURNING id)
       INSERT INTO content.person_film_work (id, person_id, film_work_id, role)
       SELECT gen_random_uuid(), person.id, films.id, 'actor' FROM person, films`,
      [many],
    );
    await sandbox.pg.query(
      `WITH film AS (SELECT id FROM content.film_work WHERE title NOT LIKE 'Bulk %'
                      ORDER BY id LIMIT 1),
            people AS (
              INSERT INTO content.person (id, full_name)
              SELECT gen_random_uuid(), 'Extra ' || g FROM generate_series(1, $1) g
              RETURNING id)
       INSERT INTO content.person_film_work (id, person_id, film_work_id, role)
       SELECT gen_random_uuid(), people.id, film.id, 'actor' FROM film, people`,
      [many],
    );

    syncer = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox, 120_000);
      for (const name of [index, personsIndex]) {
        const settings = await sandbox.es.indices.getSettings({
          index: name,
          name: 'index.mapping.nested_objects.limit',
        });
        const [only] = Object.values(settings);
        assert.equal(
          Number(only?.settings?.index?.mapping?.nested_objects?.limit),
          NESTED_OBJECTS_LIMIT,
          `${name}: the limit raised in place`,
        );
      }
      assert.equal(await syncer.deadLetters.count(), 0, 'no dead letter');
    } finally {
      await syncer.stop();
    }
    // An operator raised it further on one index: a start leaves that alone.
    await sandbox.es.indices.putSettings({
      index: personsIndex,
      settings: { 'index.mapping.nested_objects.limit': 200_000 },
    });
    await (await startSyncer(sandbox)).stop();
    const raised = await sandbox.es.indices.getSettings({
      index: personsIndex,
      name: 'index.mapping.nested_objects.limit',
      flat_settings: true,
    });
    assert.equal(
      Number(Object.values(raised)[0]?.settings?.['index.mapping.nested_objects.limit']),
      200_000,
      'not lowered',
    );
  });
});
