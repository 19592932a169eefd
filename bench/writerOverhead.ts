/**
 * Writer overhead of the change capture: the same edit workload (pgbench, 8 clients) on two copies
 * of the catalog, one as migrated (triggers on) and one migrated and then
 * `ALTER TABLE ... DISABLE TRIGGER USER` (foreign keys stay). The copy with triggers runs in each
 * of the doorbell's states (migrations/0005_doorbell.sql), set by hand so that no syncer's own
 * CPU is counted:
 *  - awake: a syncer polls back to back (its steady state while edits keep coming): no NOTIFY;
 *  - ringing: a syncer listens but is asleep: every writing transaction notifies (as every one
 *    did before the doorbell); a session here LISTENs and drains the queue as a syncer would;
 *  - nobody: no syncer listening: no NOTIFY.
 * Runs alternate (the order rotates each repeat, so drift hits all alike), each after a
 * CHECKPOINT; the median tps of each, and each one's ratio to the trigger-less copy.
 *
 * The transaction is an editor's: a film's rating changed, an actor linked to it and another
 * unlinked (an UPDATE, an INSERT and a DELETE, each firing its statement trigger; the DELETE also
 * writes film and person tombstones).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { migrate } from '../src/db/migrator.js';
import { run } from '../test/helpers/command.js';
import type { Sandbox } from '../test/helpers/isolation.js';
import { MIGRATIONS, testLog } from '../test/helpers/syncerHarness.js';
import { generateInto } from './catalog.js';
import { watchNoise, which } from './environment.js';
import { median, type WriterCondition, type WriterResult } from './results.js';

export const TABLES = ['film_work', 'genre', 'person', 'genre_film_work', 'person_film_work'];
const CLIENTS = 8;

/** The editor's transaction, a pgbench script (variables `films` and `persons`). */
export const EDIT = `\\set i random(1, :films)
\\set p random(1, :persons)
BEGIN;
UPDATE content.film_work SET rating = round((random() * 10)::numeric, 1)::float, modified = now()
 WHERE id = md5('film-' || :i)::uuid;
INSERT INTO content.person_film_work (id, person_id, film_work_id, role, created)
VALUES (gen_random_uuid(), md5('person-' || :p)::uuid, md5('film-' || :i)::uuid, 'actor', now())
ON CONFLICT DO NOTHING;
DELETE FROM content.person_film_work WHERE id = (SELECT id FROM content.person_film_work
  WHERE film_work_id = md5('film-' || :i)::uuid AND role = 'actor' LIMIT 1);
COMMIT;
`;

/** The doorbell row for each state with triggers; `off` is the copy without them. */
const DOORBELL: Record<Exclude<WriterCondition, 'off'>, { listening: string; awake: string }> = {
  awake: { listening: 'infinity', awake: 'infinity' },
  ringing: { listening: 'infinity', awake: '-infinity' },
  nobody: { listening: '-infinity', awake: '-infinity' },
};
const CONDITIONS: WriterCondition[] = ['off', 'awake', 'ringing', 'nobody'];

async function prepare(sb: Sandbox, suffix: string, films: number, triggers: boolean) {
  const url = await sb.createDatabase(suffix);
  await migrate(url, MIGRATIONS, testLog());
  await generateInto(url, films);
  if (!triggers) {
    await psql(url, TABLES.map((t) => `ALTER TABLE content.${t} DISABLE TRIGGER USER;`).join('\n'));
  }
  await psql(url, 'VACUUM ANALYZE');
  return url;
}

export { run };

export const psql = (url: string, sqlText: string) =>
  run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sqlText]);

/** A session that LISTENs as a syncer would, so notifications are consumed, not left queued. */
async function listening(
  url: string,
): Promise<{ heard: () => number; close: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let heard = 0;
  client.on('notification', () => heard++);
  await client.query('LISTEN etl_changes');
  return { heard: () => heard, close: () => client.end() };
}

export async function measureWriterOverhead(
  sb: Sandbox,
  options: { films: number; seconds: number; repeats: number },
): Promise<WriterResult> {
  if (!which('pgbench')) throw new Error('writer overhead needs pgbench (postgresql-client)');
  const films = Math.max(20, options.films);
  const persons = Math.max(10, films * 3); // as the catalog generator makes them
  const on = await prepare(sb, 'w_on', films, true);
  const off = await prepare(sb, 'w_off', films, false);
  const dir = mkdtempSync(join(tmpdir(), 'bench-pgbench-'));
  const script = join(dir, 'edit.sql');
  writeFileSync(script, EDIT);
  const listener = await listening(on);
  const tps = Object.fromEntries(CONDITIONS.map((c) => [c, [] as number[]])) as Record<
    WriterCondition,
    number[]
  >;
  const notified = Object.fromEntries(CONDITIONS.map((c) => [c, 0])) as Record<
    WriterCondition,
    number
  >;
  const { tests } = await watchNoise(async () => {
    try {
      for (let r = 0; r < options.repeats; r++) {
        const order = CONDITIONS.map((_, i) => CONDITIONS[(i + r) % CONDITIONS.length]);
        for (const condition of order) {
          if (!condition) continue;
          const url = condition === 'off' ? off : on;
          if (condition !== 'off') {
            const bell = DOORBELL[condition];
            await psql(
              url,
              `UPDATE etl.doorbell SET listening_until = '${bell.listening}', awake_until = '${bell.awake}'`,
            );
          }
          await psql(url, 'CHECKPOINT');
          const heardBefore = listener.heard();
          const out = await run('pgbench', [
            '-n',
            ...['-c', String(CLIENTS), '-j', '2', '-T', String(options.seconds)],
            `--random-seed=${r + 1}`,
            ...['-D', `films=${films}`, '-D', `persons=${persons}`],
            ...['-f', script],
            url,
          ]);
          const value = /tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1];
          if (!value) throw new Error(`no tps in pgbench output:\n${out}`);
          tps[condition].push(Number(value));
          notified[condition] += listener.heard() - heardBefore;
        }
      }
    } finally {
      await listener.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  const medians = Object.fromEntries(CONDITIONS.map((c) => [c, median(tps[c])])) as Record<
    WriterCondition,
    number
  >;
  return {
    tool: 'pgbench',
    clients: CLIENTS,
    secondsPerRun: options.seconds,
    films,
    workload: 'UPDATE a film, INSERT an actor link, DELETE another, in one transaction',
    tps,
    medians,
    ratios: Object.fromEntries(CONDITIONS.map((c) => [c, medians[c] / medians.off])) as Record<
      WriterCondition,
      number
    >,
    notifications: notified,
    concurrentTests: tests,
  };
}
