/**
 * Writer overhead of the change-capture triggers: the same write workload (pgbench, 4 clients) on
 * two copies of the catalog, one as migrated (triggers on) and one migrated and then
 * `ALTER TABLE ... DISABLE TRIGGER USER` (foreign keys stay), runs alternating on/off so drift
 * hits both alike, each after a CHECKPOINT; the median tps of each, and their ratio. No syncer
 * listens meanwhile: this is the cost the triggers add to the writers alone.
 *
 * The mix, one transaction per script (weights in percent): a film's rating (40), an actor link
 * moved (25: delete one, insert one), a new film with a genre and five people (15), a person
 * renamed (10), a film deleted with its links cascading (10). Deletes use the upper half of the
 * films and the edits the lower half, so no transaction fails on a missing row.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from '../src/db/migrator.js';
import { GENRES } from '../src/seed/vocabulary.js';
import type { Sandbox } from '../test/helpers/isolation.js';
import { MIGRATIONS, testLog } from '../test/helpers/syncerHarness.js';
import { generateInto } from './catalog.js';
import { watchNoise, which } from './environment.js';
import { median, type WriterResult } from './results.js';

const TABLES = ['film_work', 'genre', 'person', 'genre_film_work', 'person_film_work'];
const CLIENTS = 4;

const person = (n: number) => `md5('person-' || :p${n})::uuid`;

const SCRIPTS: Record<string, { weight: number; text: string }> = {
  update_film: {
    weight: 40,
    text: `\\set i random(1, :half)
UPDATE content.film_work SET rating = round((random() * 10)::numeric, 1)::float, modified = now()
 WHERE id = md5('film-' || :i)::uuid;`,
  },
  move_link: {
    weight: 25,
    text: `\\set i random(1, :half)
\\set p1 random(1, :persons)
BEGIN;
DELETE FROM content.person_film_work WHERE id = (SELECT id FROM content.person_film_work
  WHERE film_work_id = md5('film-' || :i)::uuid AND role = 'actor' LIMIT 1);
INSERT INTO content.person_film_work (id, person_id, film_work_id, role, created)
VALUES (gen_random_uuid(), ${person(1)}, md5('film-' || :i)::uuid, 'actor', now()) ON CONFLICT DO NOTHING;
COMMIT;`,
  },
  insert_film: {
    weight: 15,
    text: `\\set n random(1, 2000000000)
\\set g random(1, :genres)
${[1, 2, 3, 4, 5].map((k) => `\\set p${k} random(1, :persons)`).join('\n')}
BEGIN;
INSERT INTO content.film_work (id, title, description, creation_date, rating, type, created, modified)
VALUES (md5('new-film-' || :n)::uuid, 'New film ' || :n, 'Written by the bench', current_date, 5.5,
        'movie', now(), now()) ON CONFLICT DO NOTHING;
INSERT INTO content.genre_film_work (id, genre_id, film_work_id, created)
VALUES (gen_random_uuid(), md5('genre-' || :g)::uuid, md5('new-film-' || :n)::uuid, now()) ON CONFLICT DO NOTHING;
${[1, 2, 3, 4, 5]
  .map(
    (k) => `INSERT INTO content.person_film_work (id, person_id, film_work_id, role, created)
VALUES (gen_random_uuid(), ${person(k)}, md5('new-film-' || :n)::uuid, '${k === 1 ? 'director' : 'actor'}', now()) ON CONFLICT DO NOTHING;`,
  )
  .join('\n')}
COMMIT;`,
  },
  rename_person: {
    weight: 10,
    text: `\\set p1 random(1, :persons)
UPDATE content.person SET full_name = full_name || '', modified = now() WHERE id = ${person(1)};`,
  },
  delete_film: {
    weight: 10,
    text: `\\set i random(:half + 1, :films)
DELETE FROM content.film_work WHERE id = md5('film-' || :i)::uuid;`,
  },
};

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

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${command} exited ${code}:\n${output}`)),
    );
  });
}

const psql = (url: string, sqlText: string) =>
  run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sqlText]);

export async function measureWriterOverhead(
  sb: Sandbox,
  options: { films: number; seconds: number; repeats: number },
): Promise<WriterResult> {
  if (!which('pgbench')) throw new Error('writer overhead needs pgbench (postgresql-client)');
  const films = Math.max(20, options.films);
  const persons = Math.max(10, films * 3); // as the catalog generator makes them
  const [on, off] = [
    await prepare(sb, 'w_on', films, true),
    await prepare(sb, 'w_off', films, false),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'bench-pgbench-'));
  const scripts = Object.entries(SCRIPTS).map(([name, script]) => {
    const path = join(dir, `${name}.sql`);
    writeFileSync(path, `${script.text}\n`);
    return `${path}@${script.weight}`;
  });
  const tps = { on: [] as number[], off: [] as number[] };
  const { tests } = await watchNoise(async () => {
    try {
      for (let r = 0; r < options.repeats; r++) {
        for (const mode of r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
          const url = mode === 'on' ? on : off;
          await psql(url, 'CHECKPOINT');
          const out = await run('pgbench', [
            '-n',
            ...['-c', String(CLIENTS), '-j', '2', '-T', String(options.seconds)],
            `--random-seed=${r + 1}`,
            ...['-D', `films=${films}`, '-D', `half=${Math.floor(films / 2)}`],
            ...['-D', `persons=${persons}`, '-D', `genres=${GENRES.length}`],
            ...scripts.flatMap((s) => ['-f', s]),
            url,
          ]);
          const value = /tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1];
          if (!value) throw new Error(`no tps in pgbench output:\n${out}`);
          tps[mode].push(Number(value));
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  const medianOn = median(tps.on);
  const medianOff = median(tps.off);
  return {
    tool: 'pgbench',
    clients: CLIENTS,
    secondsPerRun: options.seconds,
    films,
    tpsWithTriggers: tps.on,
    tpsWithoutTriggers: tps.off,
    medianWithTriggers: medianOn,
    medianWithoutTriggers: medianOff,
    ratio: medianOn / medianOff,
    concurrentTests: tests,
  };
}
