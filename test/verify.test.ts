/**
 * `npm run verify` finds missing, extra and stale documents in each index, and `--repair` gets
 * them fixed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Postgres } from '../src/db/postgres.js';
import type { DocumentKind } from '../src/kinds/documentKind.js';
import { genres } from '../src/kinds/genres.js';
import { IndexedDocumentIds } from '../src/load/indexedIds.js';
import { ReadLock } from '../src/queue/readLock.js';
import { RedisStore } from '../src/queue/redisStore.js';
import { type DocumentRow, query } from '../src/sql/queries.js';
import { checkDrift } from '../src/verify/driftCheck.js';
import { seedCatalog } from './helpers/catalog.js';
import { waitForConvergence } from './helpers/convergence.js';
import { createSandbox, type Sandbox } from './helpers/isolation.js';
import { runCli, spawnCli } from './helpers/runCli.js';
import { migrateSandbox, startSyncer, testLog } from './helpers/syncerHarness.js';

describe('npm run verify', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('verify');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 200, 4, 20);
    const syncer = await startSyncer(sandbox);
    await waitForConvergence(sandbox);
    await syncer.stop();
  });

  after(async () => {
    await sandbox.cleanup();
  });

  /** A syncer run until the indices are in step, and verify says so. */
  async function fixedBySyncer(): Promise<void> {
    const syncer = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
    } finally {
      await syncer.stop();
    }
    assert.equal((await runCli('verify', sandbox.env)).code, 0);
  }

  it('reports an index in step', async () => {
    const result = await runCli('verify', sandbox.env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /films in postgres\s+200/);
    assert.match(result.stdout, /persons in postgres\s+20\b/);
    assert.match(result.stdout, /genres in postgres\s+4\b/);
    assert.match(result.stdout, /in step/);
  });

  it('reports a live catalog in step: an edit the syncer has not indexed yet is not drift', async () => {
    // Editors at work while verify reads: at any moment a few films have been edited and not yet
    // indexed (the syncer's normal lag), or indexed after verify read their rows. Neither is
    // drift; verify looks again at what differed until the index has caught up.
    const syncer = await startSyncer(sandbox);
    const { rows } = await sandbox.pg.query<{ id: string }>(`SELECT id FROM content.film_work`);
    const stopEditing = new AbortController();
    let edits = 0;
    const editor = (async () => {
      while (!stopEditing.signal.aborted) {
        const film = rows[edits % rows.length]?.id;
        await sandbox.pg.query(`UPDATE content.film_work SET description = $2 WHERE id = $1`, [
          film,
          `edited ${edits++}`,
        ]);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      for (let run = 0; run < 3; run++) {
        const result = await runCli('verify', sandbox.env);
        assert.equal(result.code, 0, `run ${run + 1}:\n${result.stdout}${result.stderr}`);
        assert.match(result.stdout, /in step/);
      }
      assert.ok(edits > 20, `the editor kept editing (${edits} edits)`);
    } finally {
      stopEditing.abort();
      await editor;
      try {
        await waitForConvergence(sandbox);
      } finally {
        await syncer.stop();
      }
    }
  });

  // Found by an outside reading: an index further apart than --queue-at-most was reported at once,
  // its differences only counted, as if that many could not be lag. One statement over many rows
  // (or a genre renamed on thousands of films, or a load under way) is that, for a while; with
  // --repair it asked for a whole second load.
  it('reports in step a statement over more films than --queue-at-most that the syncer catches up', async () => {
    await sandbox.pg.query(`UPDATE content.film_work SET description = 'Edited in one statement'`);
    const verify = spawnCli('verify', sandbox.env, ['--queue-at-most', '5', '--settle', '40']);
    // The syncer is down for now: what verify sees first is 200 films not indexed yet.
    const first = await Promise.race([verify.exited, delay(8_000).then(() => null)]);
    assert.equal(first, null, `verify called it drift at once:\n${verify.output()}`);
    const syncer = await startSyncer(sandbox);
    try {
      assert.equal(await verify.exited, 0, verify.output());
      assert.match(verify.output(), /in step/);
    } finally {
      verify.child.kill();
      await syncer.stop();
    }
  });

  it('finds missing, extra and stale documents, and --repair has the syncer fix them', async () => {
    const index = sandbox.config.index;
    const { rows } = await sandbox.pg.query<{ id: string }>(
      `SELECT id FROM content.film_work ORDER BY id LIMIT 3`,
    );
    const [gone, edited, sneaky] = rows.map((r) => r.id);
    assert.ok(gone && edited && sneaky);
    await sandbox.es.delete({ index, id: gone, refresh: true });
    const doc = await sandbox.es.get<Record<string, unknown>>({ index, id: edited });
    await sandbox.es.index({
      index,
      id: edited,
      document: { ...doc._source, title: 'tampered' },
      refresh: true,
    });
    const extra = '99999999-9999-4999-8999-999999999999';
    await sandbox.es.index({
      index,
      id: extra,
      document: { ...doc._source, id: extra },
      refresh: true,
    });
    // A change the syncer never heard of (triggers bypassed).
    const client = await sandbox.pg.connect();
    try {
      await client.query('SET session_replication_role = replica');
      await client.query(`UPDATE content.film_work SET title = 'silent edit' WHERE id = $1`, [
        sneaky,
      ]);
    } finally {
      await client.query('RESET session_replication_role');
      client.release();
    }

    // One more look a second later: real drift is still there (the default waits 10 s).
    const found = await runCli('verify', sandbox.env, ['--json', '--settle', '1']);
    assert.equal(found.code, 3);
    type Report = { missing: string[]; extra: string[]; stale: string[] };
    const report = JSON.parse(found.stdout) as Report & {
      indices: Record<'films' | 'persons' | 'genres', Report & { rows: number }>;
    };
    const { films, persons, genres } = report.indices;
    assert.deepEqual(films.missing, [gone]);
    assert.deepEqual(films.extra, [extra]);
    assert.deepEqual(new Set(films.stale), new Set([edited, sneaky]));
    // The silent edit renamed a film: its people's documents show the old title too.
    const people = await sandbox.pg.query<{ id: string }>(
      `SELECT DISTINCT person_id AS id FROM content.person_film_work
        WHERE film_work_id = $1 AND role IN ('actor', 'director', 'writer')`,
      [sneaky],
    );
    assert.ok(people.rows.length > 0, 'the seeded film has people');
    assert.deepEqual(new Set(persons.stale), new Set(people.rows.map((r) => r.id)));
    assert.deepEqual([...persons.missing, ...persons.extra], []);
    assert.deepEqual([...genres.missing, ...genres.extra, ...genres.stale], []);
    // The top-level lists are queue members: films as they are, persons as persons/<id>.
    assert.deepEqual(
      new Set(report.stale),
      new Set([edited, sneaky, ...people.rows.map((r) => `persons/${r.id}`)]),
    );

    const repaired = await runCli('verify', sandbox.env, ['--repair', '--settle', '1']);
    assert.equal(repaired.code, 3);
    assert.match(repaired.stdout, new RegExp(`${4 + people.rows.length} documents queued`));
    await fixedBySyncer();
  });

  // Found by a randomized run of operator commands: the walk over an index's ids was sorted on
  // the documents' `id` field alone, so a copy of a document under another _id (same `id`) on a
  // page's edge was skipped, and the walk ended at the first document with no `id` at all.
  it("finds extra documents whose id field repeats another's, or is missing", async () => {
    const index = sandbox.config.index;
    // The 200th film is the last of verify's first page (ETL_SIZE_LIMIT, 200).
    const { rows } = await sandbox.pg.query<{ id: string }>(
      `SELECT id FROM content.film_work ORDER BY id OFFSET 199 LIMIT 1`,
    );
    const film = rows[0]?.id ?? '';
    const doc = await sandbox.es.get<Record<string, unknown>>({ index, id: film });
    const copy = '99999999-9999-4999-8999-999999999998';
    const noId = ['99999999-9999-4999-8999-999999999996', '99999999-9999-4999-8999-999999999997'];
    await sandbox.es.index({ index, id: copy, document: doc._source });
    for (const id of noId) await sandbox.es.index({ index, id, document: { title: 'a test' } });
    await sandbox.es.indices.refresh({ index });

    const found = await runCli('verify', sandbox.env, ['--json', '--settle', '1']);
    assert.equal(found.code, 3, found.stdout);
    const report = JSON.parse(found.stdout) as { indices: { films: { extra: string[] } } };
    assert.deepEqual(report.indices.films.extra.sort(), [...noId, copy].sort());
    assert.equal((await runCli('verify', sandbox.env, ['--repair', '--settle', '1'])).code, 3);
    await fixedBySyncer();
  });

  /**
   * An operator's test document, and a film's document under its id in capitals (Postgres reads
   * both spellings as the same uuid; the syncer only ever writes the canonical one).
   */
  const addStrays = async (): Promise<string[]> => {
    const index = sandbox.config.index;
    const { rows } = await sandbox.pg.query<{ id: string }>(
      `SELECT id FROM content.film_work ORDER BY id LIMIT 1`,
    );
    const film = rows[0]?.id ?? '';
    const doc = await sandbox.es.get<Record<string, unknown>>({ index, id: film });
    const strays = ['smoke-test', film.toUpperCase()];
    for (const id of strays)
      await sandbox.es.index({ index, id, document: { ...doc._source, id }, refresh: true });
    return strays;
  };

  it('reports documents whose id no row can have, and --repair deletes them', async () => {
    const index = sandbox.config.index;
    const strays = await addStrays();

    const found = await runCli('verify', sandbox.env, ['--json', '--index', 'films']);
    assert.equal(found.code, 3, found.stderr);
    const report = JSON.parse(found.stdout) as { indices: { films: { extra: string[] } } };
    assert.deepEqual(new Set(report.indices.films.extra), new Set(strays));

    const repaired = await runCli('verify', sandbox.env, ['--repair', '--index', 'films']);
    assert.equal(repaired.code, 3, repaired.stderr);
    assert.match(repaired.stdout, /2 documents with an id no row can have deleted/);
    await sandbox.es.indices.refresh({ index });
    assert.equal((await runCli('verify', sandbox.env)).code, 0);
  });

  it('holds the index to the contract, not to the syncer: a mistake in its document query is drift', async () => {
    // A syncer whose genres query lost the film count, as a faulty release might: it writes
    // films_count 0 for every genre, and a check built on that query agreed.
    const broken: DocumentKind = {
      ...genres,
      documents: query<DocumentRow>(
        'verify_test_broken_genre_documents',
        genres.documents.text.replace(/'films_count', \(SELECT [^)]*\)[^)]*\)/, "'films_count', 0"),
      ),
    };
    assert.notEqual(broken.documents.text, genres.documents.text, 'the query was broken');
    const db = new Postgres(sandbox.config.databaseUrl, testLog());
    const store = new RedisStore(sandbox.config.redisUrl, sandbox.config.redisPrefix, testLog());
    try {
      const ids = (
        await sandbox.pg.query<{ id: string }>('SELECT id::text AS id FROM content.genre')
      ).rows.map((r) => r.id);
      // What that syncer wrote, straight into the index.
      const writeAs = async (kind: DocumentKind) => {
        const rows = await db.query(kind.documents, [ids]);
        await sandbox.es.bulk({
          refresh: true,
          operations: rows.flatMap((r) => [
            { index: { _index: sandbox.config.genresIndex, _id: r.id } },
            JSON.parse(r.doc ?? '{}') as object,
          ]),
        });
      };
      await writeAs(broken);
      const report = await checkDrift({
        kind: broken,
        db,
        lock: new ReadLock(store, 'verify-test', testLog()),
        es: sandbox.es,
        index: sandbox.config.genresIndex,
        indexed: new IndexedDocumentIds(sandbox.es, {
          name: sandbox.config.genresIndex,
          isAlias: false,
        }),
        pageSize: 50,
        settleMs: 0,
        listAtMost: 1_000,
      });
      assert.deepEqual(
        new Set(report.stale),
        new Set(ids),
        'every genre (each has films) is stale',
      );
      assert.equal(report.counts.missing + report.counts.extra, 0);
      // Put back what the syncer writes (it does not know the index was written behind it).
      await writeAs(genres);
    } finally {
      await db.end();
      await store.close();
    }
    assert.equal((await runCli('verify', sandbox.env)).code, 0);
  });

  // From a review: the expected dates were read as `creation_date::text`, which follows the
  // session's DateStyle, so under `SQL, DMY` every dated film looked stale, and --repair could not
  // clear it (the syncer writes ISO dates whatever the DateStyle).
  it('reads dates the same under any DateStyle', async () => {
    const { rows } = await sandbox.pg.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM content.film_work WHERE creation_date IS NOT NULL',
    );
    assert.ok((rows[0]?.n ?? 0) > 0, 'films with a date');
    await sandbox.pg.query(`ALTER DATABASE ${sandbox.name} SET DateStyle = 'SQL, DMY'`);
    try {
      const result = await runCli('verify', sandbox.env, ['--index', 'films']);
      assert.equal(result.code, 0, result.stdout + result.stderr);
    } finally {
      await sandbox.pg.query(`ALTER DATABASE ${sandbox.name} RESET DateStyle`);
    }
  });

  it("a full load's sweep deletes documents whose id no row can have", async () => {
    await addStrays();
    // Redis lost everything: the next start runs a full load, and its sweep walks the index.
    const keys = await sandbox.redis.keys(`${sandbox.config.redisPrefix}*`);
    if (keys.length > 0) await sandbox.redis.del(...keys);
    const syncer = await startSyncer(sandbox);
    try {
      await waitForConvergence(sandbox);
    } finally {
      await syncer.stop();
    }
  });

  it('repairs an index further apart than --queue-at-most by loading it again whole', async () => {
    const index = sandbox.config.index;
    const { rows } = await sandbox.pg.query<{ id: string }>(
      `SELECT id FROM content.film_work ORDER BY id LIMIT 5`,
    );
    for (const { id } of rows) await sandbox.es.delete({ index, id });
    await sandbox.es.index({
      index,
      id: '99999999-9999-4999-8999-999999999999',
      document: { title: 'no row has this id' },
    });
    await sandbox.es.indices.refresh({ index });

    const found = await runCli('verify', sandbox.env, [
      ...['--json', '--index', 'films', '--queue-at-most', '2', '--settle', '0'],
    ]);
    assert.equal(found.code, 3, found.stderr);
    const { films } = (
      JSON.parse(found.stdout) as {
        indices: { films: { missing: string[]; counts: { missing: number; extra: number } } };
      }
    ).indices;
    assert.deepEqual(films.counts, { missing: 5, extra: 1, stale: 0 }, 'every difference counted');
    assert.equal(films.missing.length, 2, 'and at most --queue-at-most listed');

    const repaired = await runCli('verify', sandbox.env, [
      ...['--repair', '--queue-at-most', '2', '--settle', '0'],
    ]);
    assert.equal(repaired.code, 3, repaired.stderr);
    assert.match(repaired.stdout, /0 documents queued/);
    assert.match(repaired.stdout, /films: over 2 apart, asked the syncer to load it again whole/);
    assert.equal(await sandbox.redis.llen(`${sandbox.config.redisPrefix}queue`), 0);
    await fixedBySyncer();
  });

  it('says what is wrong with a bad option, exit status 2', async () => {
    for (const [script, args] of [
      ['verify', ['--repiar']],
      ['verify', ['--index']],
      ['verify', ['--settle', 'soon']],
      ['verify', ['--settle', '-1']],
      ['verify', ['--queue-at-most', '1.5']],
      ['deadLetters', ['--retyr']],
    ] as const) {
      const result = await runCli(script, sandbox.env, [...args]);
      assert.equal(result.code, 2, `${script} ${args.join(' ')}: ${result.stderr}`);
      assert.match(
        result.stderr,
        new RegExp(`^${script === 'verify' ? 'verify' : 'dead-letters'}: `),
      );
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});

// From an outside test: before any syncer ran, verify printed Elasticsearch's exception alone.
describe('verify before the syncer has run', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('verify_first');
  });

  after(() => sandbox.cleanup());

  it('says to migrate first, then to start the syncer first', async () => {
    const unmigrated = await runCli('verify', sandbox.env, ['--settle', '0']);
    assert.equal(unmigrated.code, 1);
    assert.match(unmigrated.stderr, /did you run `npm run migrate`\?/);
    await migrateSandbox(sandbox);
    const unsynced = await runCli('verify', sandbox.env, ['--settle', '0']);
    assert.equal(unsynced.code, 1);
    assert.match(unsynced.stderr, /start the syncer first/);
  });
});
