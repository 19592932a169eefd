/**
 * A statement that changes more rows than are worth resolving one by one (over 10,000 people,
 * say) has its pass queue every document of the indices they fan out to instead: a walk of a
 * whole index, as long as a full load. Edits made meanwhile must not wait for its end.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateInto } from '../../bench/catalog.js';
import { eventually, waitForFullLoadDone } from '../helpers/convergence.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { capturingLog, migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

const WALK_BEGUN = 'many rows changed: queueing every document of the indices they fan out to';
const WALK_DONE =
  'many rows changed: every document of the indices they fan out to is queued instead';

describe('a statement that changes very many rows', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('big_statement');
    await migrateSandbox(sandbox);
    await generateInto(sandbox.config.databaseUrl, 5_000);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  /**
   * In step, at full speed: a case that stops its syncer in the middle of a walk leaves it to the
   * next syncer's first pass to do again.
   */
  const catchUpFast = async () => {
    const catchUp = capturingLog();
    const fast = await startSyncer(sandbox, {}, catchUp.log);
    try {
      await waitForFullLoadDone(sandbox, sandbox.redis, 180_000);
      const count = (msg: string) => catchUp.lines().filter((l) => l.msg === msg).length;
      await eventually(
        async () =>
          count(WALK_BEGUN) === count(WALK_DONE) &&
          (await fast.queue.depth()) === 0 &&
          (await fast.queue.inFlight()).length === 0,
        180_000,
        'in step, no walk under way',
      );
    } finally {
      await fast.stop();
    }
  };

  /** A film's title as indexed (a realtime get: no refresh needed), or null. */
  const title = async (id: string) =>
    (await sandbox.es.get<{ title: string }>({ index: sandbox.config.index, id }).catch(() => null))
      ?._source?.title ?? null;

  it('lets an edit made during the walk it causes through at once', async () => {
    // One indexer: the people's own documents fill the queue first, and the walk waits for room
    // behind them, so it lasts many seconds.
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(
      sandbox,
      { sizeLimit: 50, bulkSize: 50, sleepMs: 0, workers: 1 },
      log,
    );
    try {
      await eventually(
        async () =>
          (await syncer.queue.depth()) === 0 &&
          (await syncer.queue.inFlight()).length === 0 &&
          lines().some((l) => l.msg === 'full load queued'),
        180_000,
        'the first full load done',
      );
      // The film the walk reaches last; none of its people change (their fan-out would read it
      // again): only the live path can bring its edit in before the walk ends.
      const { rows } = await sandbox.pg.query<{ id: string }>(
        `SELECT id FROM content.film_work ORDER BY id DESC LIMIT 1`,
      );
      const film = rows[0]?.id ?? '';
      const people = await sandbox.pg.query(
        `UPDATE content.person SET full_name = full_name || ' ' WHERE id IN
           (SELECT id FROM content.person p
             WHERE NOT EXISTS (SELECT 1 FROM content.person_film_work l
                                WHERE l.person_id = p.id AND l.film_work_id = $1)
             ORDER BY id LIMIT 10500)`,
        [film],
      );
      assert.equal(people.rowCount, 10_500);
      await eventually(
        () => lines().some((l) => l.msg === WALK_BEGUN),
        30_000,
        'the walk under way',
      );
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = 'During the walk' WHERE id = $1`,
        [film],
      );
      await eventually(
        async () => (await title(film)) === 'During the walk',
        30_000,
        'the edit written',
      );
      assert.ok(
        !lines().some((l) => l.msg === WALK_DONE),
        'the edit was written while the walk still ran',
      );
    } finally {
      await syncer.stop();
    }
  });

  // Found by an outside reading: the pass read its tables one after another and walked in the
  // middle, as soon as one table had too many rows, so the rows of the tables after it that its
  // snapshot holds (here the films' tombstones; the walk's side passes start at that snapshot)
  // were read only after the walk: deleted films stayed searchable for as long as a full load.
  it('reads the rest of its snapshot before the walk, so deletions made with the statement do not wait for it', async () => {
    await catchUpFast();
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(
      sandbox,
      { sizeLimit: 50, bulkSize: 50, sleepMs: 0, workers: 1 },
      log,
    );
    const client = await sandbox.pg.connect();
    try {
      await eventually(
        async () =>
          (await syncer.queue.depth()) === 0 && (await syncer.queue.inFlight()).length === 0,
        60_000,
        'in step',
      );
      const mark = lines().length;
      const since = () => lines().slice(mark);
      await client.query('BEGIN');
      const people = await client.query(
        `UPDATE content.person SET full_name = full_name || '.' WHERE id IN
           (SELECT id FROM content.person ORDER BY id LIMIT 10500)`,
      );
      assert.equal(people.rowCount, 10_500);
      // Too many to list in a message (the live path queues none of them), read by a pass.
      const deleted = await client.query<{ id: string }>(
        `DELETE FROM content.film_work WHERE id IN
           (SELECT id FROM content.film_work ORDER BY id LIMIT 150) RETURNING id::text`,
      );
      await client.query('COMMIT');
      const gone = deleted.rows.map((row) => row.id);
      await eventually(() => since().some((l) => l.msg === WALK_BEGUN), 30_000, 'the walk begun');
      await eventually(
        async () => (await Promise.all(gone.map(title))).every((t) => t === null),
        60_000,
        'the deleted films gone from the index',
      );
      assert.ok(
        !since().some((l) => l.msg === WALK_DONE),
        'the deleted films were gone while the walk still ran',
      );
    } finally {
      client.release();
      await syncer.stop();
    }
  });

  // Found by an outside reading: the edit above is made once the walk is under way, when the live
  // path queues what it hears. One made before, while the pass still resolves the statement's
  // first rows, was left to the next pass (writers that saw the syncer awake send nothing at all),
  // and that pass comes after the walk: the edit waited for its end.
  it('lets an edit made before the walk begins through before it ends', async () => {
    await catchUpFast();
    const { log, lines } = capturingLog();
    const syncer = await startSyncer(
      sandbox,
      // A pause between the pass's pages: it reads the 10,500 people for seconds (210 pages).
      { sizeLimit: 50, bulkSize: 50, sleepMs: 20, workers: 1 },
      log,
    );
    try {
      await eventually(
        async () =>
          (await syncer.queue.depth()) === 0 && (await syncer.queue.inFlight()).length === 0,
        60_000,
        'in step',
      );
      const mark = lines().length;
      const since = () => lines().slice(mark);
      const { rows } = await sandbox.pg.query<{ id: string }>(
        `SELECT id FROM content.film_work ORDER BY id DESC LIMIT 1 OFFSET 1`,
      );
      const film = rows[0]?.id ?? '';
      await sandbox.pg.query(
        `UPDATE content.person SET full_name = rtrim(full_name) WHERE id IN
           (SELECT id FROM content.person p
             WHERE NOT EXISTS (SELECT 1 FROM content.person_film_work l
                                WHERE l.person_id = p.id AND l.film_work_id = $1)
             ORDER BY id LIMIT 10500)`,
        [film],
      );
      // After the pass took its snapshot (it wakes at the statement's message), while it still
      // resolves the people's films (seconds): the edit is not that pass's to read.
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.ok(!since().some((l) => l.msg === WALK_BEGUN), 'the walk had not begun yet');
      await sandbox.pg.query(
        `UPDATE content.film_work SET title = 'Before the walk' WHERE id = $1`,
        [film],
      );
      // The walk begins once the pass has read every row of the statement (here 10 to 20 s; a
      // CI run beside other work took over a minute), and the edit is queued as it begins.
      await eventually(
        async () => (await title(film)) === 'Before the walk',
        150_000,
        'the edit written',
      );
      assert.ok(
        since().some((l) => l.msg === WALK_BEGUN) && !since().some((l) => l.msg === WALK_DONE),
        'the edit was written while the walk still ran',
      );
    } finally {
      await syncer.stop();
    }
  });
});
