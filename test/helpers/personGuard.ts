/**
 * People the syncer cannot read, or reads slowly, while the test process reads them as before: a
 * row-level security policy on content.person calls a guard for every person row a query reads.
 * The test process is a superuser and bypasses the policy; the syncer's own role does not.
 */
import type pg from 'pg';
import type { Sandbox } from './isolation.js';
import type { SyncerRole } from './syncerRole.js';

/**
 * Guard person rows by table `name`: for each person whose id is in content.<name> (the test adds
 * and removes ids there as it goes), the guard runs `action`, PL/pgSQL (`id` is the person's):
 * `RAISE EXCEPTION ...` makes their documents unbuildable, `PERFORM pg_sleep(3)` slow.
 * `lookupsOnly`: the role's queries look people up by index, so that a query meets a guarded
 * person only when it reads them (a sequential scan, or the one a hash or merge join makes, runs
 * the guard on every person for every query: a slow or broken table, not document).
 */
export async function guardPersons(
  sandbox: Sandbox,
  role: SyncerRole,
  name: string,
  action: string,
  { lookupsOnly = false } = {},
): Promise<void> {
  const guard = `content.${name}_guard`;
  await sandbox.pg.query(`CREATE TABLE content.${name} (id uuid PRIMARY KEY)`);
  await sandbox.pg.query(`
    CREATE FUNCTION ${guard}(id uuid) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM content.${name} g WHERE g.id = ${name}_guard.id) THEN
        ${action};
      END IF;
      RETURN true;
    END $$`);
  await sandbox.pg.query(`GRANT EXECUTE ON FUNCTION ${guard}(uuid) TO ${role.name}`);
  await sandbox.pg.query(`GRANT SELECT ON content.${name} TO ${role.name}`);
  await sandbox.pg.query('ALTER TABLE content.person ENABLE ROW LEVEL SECURITY');
  await sandbox.pg.query(`CREATE POLICY ${name} ON content.person USING (${guard}(id))`);
  if (!lookupsOnly) return;
  for (const plan of ['seqscan', 'hashjoin', 'mergejoin'])
    await sandbox.pg.query(`ALTER ROLE ${role.name} SET enable_${plan} = off`);
  // Plans priced that high are compiled first, which takes longer than a short statement timeout.
  await sandbox.pg.query(`ALTER ROLE ${role.name} SET jit = off`);
}

/**
 * The person in the fewest films (the smallest id among equals), and those films. A film's
 * document lists its directors, actors and writers, not its producers: `asProducer: false` leaves
 * out the films the person only produced, whose documents do not read them.
 */
export async function personInFewestFilms(
  pool: pg.Pool,
  { asProducer }: { asProducer: boolean },
): Promise<{ person: string; films: string[] }> {
  const { rows } = await pool.query<{ person: string }>(
    `SELECT person_id::text AS person FROM content.person_film_work
      GROUP BY person_id ORDER BY count(*), person_id LIMIT 1`,
  );
  const person = rows[0]?.person ?? '';
  const films = await pool.query<{ id: string }>(
    `SELECT DISTINCT film_work_id::text AS id FROM content.person_film_work
      WHERE person_id = $1 AND ($2 OR role <> 'producer')`,
    [person, asProducer],
  );
  return { person, films: films.rows.map((r) => r.id) };
}
