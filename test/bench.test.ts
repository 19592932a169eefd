/**
 * `npm run bench`, tiny: every phase runs end to end against the real services on 300 films with
 * short phases, and the report has every section, with finite positive numbers, and no edit lost.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PHASES, runBenchmark } from '../bench/benchmark.js';
import { formatReport, writeReport } from '../bench/report.js';
import type { BenchReport } from '../bench/results.js';

function positive(value: number | undefined, what: string): void {
  assert.ok(
    typeof value === 'number' && Number.isFinite(value) && value > 0,
    `${what} should be a finite positive number, got ${value}`,
  );
}

describe('npm run bench', () => {
  it('measures every phase on a tiny catalog', { timeout: 90_000 }, async () => {
    const report: BenchReport = await runBenchmark({
      films: 300,
      phases: [...PHASES],
      rates: [20, 100],
      liveSeconds: 1,
      besideRate: 20,
      writerSeconds: 1,
      writerRepeats: 1,
    });

    const { fullLoad, ceiling, fanOut, catchUp, writerOverhead } = report;
    assert.ok(fullLoad && ceiling && fanOut && catchUp && writerOverhead && report.live);
    assert.equal(fullLoad.films, 300);
    positive(fullLoad.filmsPerSecond, 'full load films/s');
    positive(fullLoad.seconds, 'full load seconds');
    positive(fullLoad.spotChecked, 'full load spot checks');
    positive(ceiling.extraction.filmsPerSecond, 'extraction films/s');
    for (const v of ceiling.extraction.variants) positive(v.filmsPerSecond, 'extraction variant');
    positive(ceiling.bulk.docsPerSecond, 'bulk ceiling docs/s');
    // The ceilings handle the very documents the full load wrote, of every index.
    assert.ok(fullLoad.documents > 300, `films, persons and genres: ${fullLoad.documents}`);
    assert.equal(ceiling.extraction.documents, fullLoad.documents);
    assert.equal(ceiling.bulk.best.docs, fullLoad.documents);
    positive(report.fullLoadRatio, 'full load / ceiling');
    positive(report.loadLimit?.docsPerSecond, 'the machine limit');
    positive(report.loadLimit?.ratio, 'full load / limit');
    // Elasticsearch alone in the syncer's own shape, over the same documents.
    assert.equal(ceiling.bulk.syncerShape?.trial.docs, fullLoad.documents);
    assert.equal(ceiling.bulk.syncerShape.trial.bulkSize, report.syncerConfig.bulkSize);
    positive(report.loadLimit?.syncerShape?.docsPerSecond, 'the limit in the syncer shape');
    // CPU shares cover the sending only, so Elasticsearch was busy in them.
    positive(ceiling.bulk.cpu?.elasticsearch, 'Elasticsearch CPU in the bulk ceiling');

    assert.deepEqual(
      report.live.map((l) => l.rate),
      [20, 100],
    );
    for (const live of report.live) {
      positive(live.edits, `live ${live.rate}/s edits`);
      positive(live.achievedRate, `live ${live.rate}/s achieved rate`);
      for (const [name, p] of [
        ['searchable', live.searchable],
        ['acknowledged', live.acknowledged],
      ] as const) {
        assert.equal(p.missing, 0, `live ${live.rate}/s: edits never ${name}`);
        assert.equal(p.count, live.edits);
        for (const key of ['p50', 'p95', 'p99', 'max'] as const)
          positive(p[key], `live ${live.rate}/s ${name} ${key}`);
      }
    }

    positive(fanOut.films, 'fan-out films');
    positive(fanOut.seconds, 'fan-out seconds');
    positive(fanOut.filmsPerSecond, 'fan-out films/s');
    assert.equal(catchUp.changes, 300);
    positive(catchUp.seconds, 'catch-up seconds');
    positive(catchUp.filmsPerSecond, 'catch-up films/s');
    // Every document loaded again three times: alone, beside edits, and by two syncers beside them.
    const beside = report.loadBesideEdits;
    assert.ok(beside, 'the load beside edits was measured');
    assert.equal(beside.documents[0], 300);
    assert.deepEqual(
      beside.runs.map((run) => [run.syncers, run.editsPerSecond]),
      [
        [1, 0],
        [1, 20],
        [2, 20],
      ],
    );
    assert.equal(beside.runs[0]?.edits, 0);
    for (const run of beside.runs) {
      positive(run.seconds, 'load beside edits, s');
      positive(run.ratio, 'load beside edits / alone');
    }
    for (const run of beside.runs.slice(1)) positive(run.edits, 'edits beside the load');
    for (const condition of ['off', 'awake', 'ringing', 'nobody'] as const) {
      positive(writerOverhead.medians[condition], `tps ${condition}`);
      positive(writerOverhead.ratios[condition], `writer ratio ${condition}`);
    }
    // The doorbell's states, seen by a listening session: only an asleep syncer is rung.
    assert.equal(writerOverhead.notifications.awake, 0, 'writers notified an awake syncer');
    assert.equal(writerOverhead.notifications.nobody, 0, 'writers notified nobody');
    positive(writerOverhead.notifications.ringing, 'notifications to an asleep syncer');

    assert.deepEqual(Object.keys(report.memory).sort(), [
      'catch-up',
      'fan-out',
      'full load',
      'live 100/s',
      'live 20/s',
    ]);
    for (const [phase, mb] of Object.entries(report.memory)) positive(mb, `peak RSS ${phase}`);
    for (const phase of [fullLoad, fanOut, catchUp, ...report.live]) {
      positive(phase.startupSeconds, 'syncer start-up');
      assert.ok(phase.profile && phase.profile.batches > 0, 'the syncer was profiled');
    }

    const table = formatReport(report);
    for (const section of ['full load', 'bulk ceiling', 'extraction', 'live 100/s', 'fan-out'])
      assert.ok(table.includes(section), `the table shows ${section}`);
    for (const section of ['catch-up', 'writer overhead', 'memory'])
      assert.ok(table.includes(section), `the table shows ${section}`);
    const dir = mkdtempSync(join(tmpdir(), 'bench-test-'));
    try {
      const path = join(dir, 'out', 'report.json');
      writeReport(report, path);
      assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), JSON.parse(JSON.stringify(report)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
