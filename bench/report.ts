/** The bench report as a table for people, and as JSON in bench-results/. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CpuShares } from './cpu.js';
import type { ProfileSummary } from './profile.js';
import type { BenchReport, Percentiles, SyncerPhase, WriterCondition } from './results.js';

const n0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-');
const n1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '-');
const n2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');
const pct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(1)} %` : '-');
const ms = (p: Percentiles) =>
  `${n0(p.p50)} / ${n0(p.p95)} / ${n0(p.p99)} ms (max ${n0(p.max)}` +
  `${p.missing > 0 ? `, ${p.missing} never seen` : ''})`;

function profileLine(p: ProfileSummary | null): string {
  if (!p || p.batches === 0) return '';
  const b = p.perBatch;
  const waits = Object.entries(p.lockWaitMs)
    .filter(([, v]) => v >= 1)
    .map(([k, v]) => `${k} ${n0(v)} ms`)
    .join(', ');
  return (
    `${p.batches} batches of ~${n0(p.films / p.batches)} (${p.workers} indexers): extract ${n1(b.extractTotal)} ms ` +
    `(query ${n1(b.extractQuery)}, lock wait ${n1(b.lockWait)}), bulk ${n1(b.writeTotal)} ms, ` +
    `redis ${n1(b.redis)} ms per batch; indexers' time: extract ` +
    `${n0(p.shares.extract)}%, bulk ${n0(p.shares.write)}%, redis ${n0(p.shares.redis)}%, idle ` +
    `${n0(p.shares.idle)}%, other ${n0(p.shares.other)}%` +
    (waits ? `; lock waits: ${waits}` : '')
  );
}

function cpuLine(cpu: CpuShares | null): string {
  if (!cpu) return '';
  return Object.entries(cpu)
    .map(([k, v]) => `${k} ${n0(v)}%`)
    .join(', ');
}

function phaseNote(phase: SyncerPhase): string {
  return `start ${n1(phase.startupSeconds)} s, peak RSS ${n0(phase.peakRssMb)} MB`;
}

export function formatReport(r: BenchReport): string {
  const rows: [string, string, string][] = [];
  const row = (section: string, metric: string, value: string) =>
    rows.push([section, metric, value]);
  const profiles: [string, string][] = [];
  const cpus: [string, string][] = [];
  const cpu = (label: string, shares: CpuShares | null) => {
    const line = cpuLine(shares);
    if (line) cpus.push([label, line]);
  };
  const profile = (label: string, phase: SyncerPhase) => {
    const line = profileLine(phase.profile);
    if (line) profiles.push([label, line]);
    cpu(label, phase.cpu);
  };
  const { fullLoad, ceiling } = r;
  if (fullLoad) {
    row(
      'full load',
      `syncer, ${n0(fullLoad.films)} films`,
      `${n0(fullLoad.filmsPerSecond)} films/s, ${n0(fullLoad.documentsPerSecond)} docs/s (${n0(fullLoad.documents)} docs, ${n1(fullLoad.seconds)} s; ${phaseNote(fullLoad)})`,
    );
    profile('full load', fullLoad);
  }
  if (ceiling) {
    const best = ceiling.bulk.best;
    cpu('bulk ceiling', ceiling.bulk.cpu);
    if (ceiling.bulk.syncerShape) cpu("bulk ceiling, syncer's shape", ceiling.bulk.syncerShape.cpu);
    row(
      'full load',
      'bulk ceiling',
      `${n0(best.docsPerSecond)} docs/s (${best.bulkSize} docs x ${best.concurrency} in flight, ${n1(best.seconds)} s, ${n1(best.mbPerSecond)} MB/s)`,
    );
    for (const t of ceiling.bulk.trials)
      row(
        '',
        `  trial ${t.bulkSize} x ${t.concurrency} (${n0(t.docs)} docs)`,
        t.error ?? `${n0(t.docsPerSecond)} docs/s`,
      );
  }
  if (r.fullLoadRatio !== undefined)
    row('full load', 'syncer / bulk ceiling', pct(r.fullLoadRatio));
  if (r.loadLimit) {
    const l = r.loadLimit;
    const ms = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(3));
    row(
      'full load',
      'limit (ES alone + PG alone, same docs)',
      `${n0(l.docsPerSecond)} docs/s (CPU ms/doc: ES ${ms(l.bulkCpuMs)}, PG ${ms(l.extractCpuMs)})`,
    );
    row(
      'full load',
      'syncer / limit',
      `${pct(l.ratio)} (CPU ms/doc in the load: ES ${ms(l.fullLoadCpuMs.elasticsearch)}, PG ${ms(l.fullLoadCpuMs.postgres)}, syncer ${ms(l.fullLoadCpuMs.syncer)}, Redis ${ms(l.fullLoadCpuMs.redis)})`,
    );
    const shape = ceiling?.bulk.syncerShape?.trial;
    if (l.syncerShape && shape)
      row(
        'full load',
        `limit, ES in the syncer's shape (${shape.bulkSize} x ${shape.concurrency}, versioned)`,
        `${n0(l.syncerShape.docsPerSecond)} docs/s (ES ${ms(l.syncerShape.bulkCpuMs)} ms/doc); syncer / it ${pct(l.syncerShape.ratio)}`,
      );
  }
  if (ceiling) {
    const e = ceiling.extraction;
    cpu('extraction', e.cpu);
    row(
      'extraction',
      `every index's documents @ ${e.bulkSize}, 1 conn`,
      `${n0(e.documentsPerSecond)} docs/s (${n0(e.documents)} docs, ${n1(e.seconds)} s in queries)`,
    );
    row('', `  film documents @ ${e.bulkSize}, 1 conn`, `${n0(e.filmsPerSecond)} films/s`);
    for (const v of e.variants)
      row('', `  @ ${v.bulkSize}, ${v.connections} conn`, `${n0(v.filmsPerSecond)} films/s`);
  }
  for (const live of r.live ?? []) {
    const label = `live ${live.rate}/s`;
    row(
      label,
      `edits (achieved rate)`,
      `${n0(live.edits)} in ${n1(live.seconds)} s (${n0(live.achievedRate)}/s), ${n1(live.indexedPerEdit)} films indexed per edit; ${phaseNote(live)}`,
    );
    row(label, 'commit -> searchable p50/p95/p99', ms(live.searchable));
    row(label, 'commit -> acknowledged p50/p95/p99', ms(live.acknowledged));
    row(label, 'UPDATE round trip p50/p95/p99', ms(live.commit));
    profile(label, live);
  }
  if (r.fanOut) {
    const f = r.fanOut;
    row(
      'fan-out',
      `genre rename, ${n0(f.films)} films`,
      `all searchable after ${n2(f.seconds)} s (first ${n2(f.firstVisibleSeconds)} s; ${n0(f.filmsPerSecond)} films/s; ${phaseNote(f)})`,
    );
    profile('fan-out', f);
  }
  if (r.catchUp) {
    const c = r.catchUp;
    row(
      'catch-up',
      `${n0(c.changes)} films changed while down`,
      `${n1(c.seconds)} s from spawn (${n0(c.filmsPerSecond)} films/s; writes took ${n1(c.writeSeconds)} s; ${phaseNote(c)})`,
    );
    profile('catch-up', c);
  }
  if (r.loadBesideEdits) {
    for (const run of r.loadBesideEdits.runs) {
      const who = run.syncers === 1 ? 'one syncer' : `${run.syncers} syncers`;
      const edits = run.editsPerSecond === 0 ? 'no edits' : `${n0(run.editsPerSecond)} edits/s`;
      row(
        'beside edits',
        `full load, ${who}, ${edits}`,
        `${n1(run.seconds)} s (${n0(run.documentsPerSecond)} docs/s; ${n0(run.edits)} edits): ${pct(run.ratio)} of the speed of the first`,
      );
    }
  }
  if (r.writerOverhead) {
    const w = r.writerOverhead;
    const runs = (c: WriterCondition) => `${n0(w.medians[c])} tps [${w.tps[c].map(n0).join(', ')}]`;
    row(
      'writers',
      `${w.tool}, ${w.clients} clients, ${w.secondsPerRun} s x ${w.tps.off.length} each`,
      w.workload,
    );
    row('writers', 'without triggers', runs('off'));
    for (const [c, what] of [
      ['awake', 'triggers, syncer polling (no NOTIFY)'],
      ['ringing', 'triggers, syncer asleep (NOTIFY)'],
      ['nobody', 'triggers, no syncer (no NOTIFY)'],
    ] as const) {
      row(
        'writers',
        what,
        `${runs(c)}: ${pct(w.ratios[c])} of without; ${n0(w.notifications[c])} notifications`,
      );
    }
  }
  for (const [phase, mb] of Object.entries(r.memory))
    row('memory', `syncer peak RSS, ${phase}`, `${n1(mb)} MB (${r.program})`);
  for (const [phase, mb] of Object.entries(r.redisMemory))
    row('memory', `Redis growth at peak, ${phase}`, `${n1(mb)} MB`);

  const width = [0, 1].map((i) => Math.max(...rows.map((x) => x[i as 0 | 1].length)));
  const lines = rows.map(
    ([a, b, c]) => `${a.padEnd(width[0] ?? 0)}  ${b.padEnd(width[1] ?? 0)}  ${c}`,
  );
  const machine = Object.entries(r.machine)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const config = r.syncerConfig;
  return [
    `npm run bench: ${r.startedAt} .. ${r.finishedAt}`,
    machine,
    `syncer: ETL_SIZE_LIMIT=${config.sizeLimit} ETL_BULK_SIZE=${config.bulkSize} ETL_SLEEP_MS=${config.sleepMs} ETL_POLL_INTERVAL_MS=${config.pollIntervalMs} ETL_WORKERS=${config.workers} ETL_REFRESH_MS=${config.refreshMs}; catalog ${n0(r.setup.films)} films seeded in ${n1(r.setup.seedSeconds)} s`,
    '',
    ...lines,
    ...(profiles.length > 0
      ? ['', "where the syncer spent its time (per batch, and share of the indexers' time):"]
      : []),
    ...profiles.map(([label, line]) => `  ${label}: ${line}`),
    ...(cpus.length > 0 ? ['', "where the machine's CPU went (% of all cores):"] : []),
    ...cpus.map(([label, line]) => `  ${label}: ${line}`),
    ...(r.warnings.length > 0 ? ['', ...r.warnings.map((w) => `WARNING: ${w}`)] : []),
    '',
  ].join('\n');
}

export function writeReport(report: BenchReport, path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}
