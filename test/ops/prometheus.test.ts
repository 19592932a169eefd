/**
 * The monitoring kit in deploy/ (alert rules, the example Prometheus configuration, the Grafana
 * dashboard): promtool accepts it, it names only series a running syncer exports, and a real
 * Prometheus scraping a real syncer sees the syncer's numbers and fires the alerts it should.
 *
 * Needs `prometheus` and `promtool` (Debian: `apt-get install prometheus`; .ci/run installs it).
 * Without them the file is skipped locally, but fails in CI (CI set), where they must be present.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { EsFaultProxy } from '../helpers/esFaultProxy.js';
import { freePort } from '../helpers/freePort.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ALERTS = join(ROOT, 'deploy/prometheus/alerts.yml');
const CONFIG = join(ROOT, 'deploy/prometheus/prometheus.yml');
const DASHBOARD = join(ROOT, 'deploy/grafana/movies-etl.json');

const installed = (bin: string) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
const missing = ['prometheus', 'promtool'].filter((bin) => !installed(bin));
const skip =
  missing.length > 0 && !process.env.CI
    ? `${missing.join(' and ')} not installed (apt-get install prometheus); CI runs these tests`
    : false;

interface Dashboard {
  schemaVersion: number;
  templating: { list: { name: string; type: string; query?: unknown }[] };
  panels: { title: string; type: string; targets?: { expr?: string }[] }[];
}

/** Every rule's `expr`, one line or a folded block (`>-`), read without a YAML library. */
function ruleExpressions(yaml: string): string[] {
  const lines = yaml.split('\n');
  const exprs: string[] = [];
  lines.forEach((line, i) => {
    const match = /^(\s*)expr:\s*(.*)$/.exec(line);
    if (!match) return;
    const [, indent = '', value = ''] = match;
    if (!/^[>|]-?$/.test(value)) return void exprs.push(value);
    const block: string[] = [];
    for (const next of lines.slice(i + 1)) {
      if (next.trim() !== '' && next.search(/\S/) <= indent.length) break;
      block.push(next.trim());
    }
    exprs.push(block.join(' ').trim());
  });
  return exprs;
}

const dashboard = () => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const dashboardExpressions = () =>
  dashboard().panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
const seriesNames = (expr: string) => expr.match(/\bmovies_etl_[a-z0-9_]+/g) ?? [];

/** What `name` exposes on /metrics: sample names, and every name a declared histogram implies. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      const [, name = '', kind] = type;
      names.add(name);
      // A labelled histogram shows no samples before its first observation, only its TYPE.
      if (kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
      if (kind === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
    } else if (line && !line.startsWith('#')) {
      names.add(line.split(/[{ ]/, 1)[0] ?? '');
    }
  }
  return names;
}

function promtool(...args: string[]): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** The value of one sample on /metrics (`name` or `name{labels}` exactly as printed). */
const sample = (text: string, series: string) => {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(series + ' ') || l.startsWith(series + '{'));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
};

/** histogram_quantile as Prometheus computes it, over cumulative buckets [upper bound, count]. */
function quantile(q: number, buckets: [number, number][]): number {
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  const rank = q * total;
  const i = buckets.findIndex(([, count]) => count >= rank);
  const [upper, count] = buckets[i] ?? [NaN, 0];
  if (upper === Infinity) return buckets[i - 1]?.[0] ?? NaN;
  const [lower, below] = i === 0 ? [0, 0] : (buckets[i - 1] ?? [0, 0]);
  return lower + (upper - lower) * ((rank - below) / (count - below));
}

describe('monitoring kit (deploy/)', { skip }, () => {
  it('has prometheus and promtool to check it with', () => {
    assert.deepEqual(missing, [], `install them: apt-get install prometheus`);
  });

  it('passes promtool: the alert rules, the example configuration, the dashboard queries', () => {
    const rules = promtool('check', 'rules', ALERTS);
    assert.equal(rules.status, 0, rules.output);
    // The line-based reading of the rules below sees every rule promtool does.
    const found = Number(/SUCCESS: (\d+) rules found/.exec(rules.output)?.[1]);
    assert.equal(ruleExpressions(readFileSync(ALERTS, 'utf8')).length, found);
    const config = promtool('check', 'config', CONFIG);
    assert.equal(config.status, 0, config.output);

    // Grafana's own variables replaced, each panel query must parse as PromQL: promtool checks
    // them as recording rules.
    const dir = mkdtempSync(join(tmpdir(), 'movies-etl-dashboard-'));
    try {
      const recorded = dashboardExpressions().map((expr, i) => {
        const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
        return `      - record: dashboard:panel_${i}\n        expr: ${JSON.stringify(promql)}`;
      });
      const file = join(dir, 'dashboard-rules.yml');
      writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${recorded.join('\n')}\n`);
      const check = promtool('check', 'rules', file);
      assert.equal(check.status, 0, check.output);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has a dashboard with a Prometheus datasource variable and a query in every panel', () => {
    const board = dashboard();
    assert.ok(board.schemaVersion >= 36, `schemaVersion ${board.schemaVersion}`);
    const source = board.templating.list.find((v) => v.type === 'datasource');
    assert.equal(source?.query, 'prometheus');
    const text = readFileSync(DASHBOARD, 'utf8');
    assert.ok(text.includes('${datasource}'), 'panels use the datasource variable');
    for (const panel of board.panels) {
      assert.ok(
        (panel.targets ?? []).some((t) => t.expr),
        `panel "${panel.title}" has no query`,
      );
    }
    const titles = board.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const topic of [
      'indexed',
      'latency',
      'queue',
      'watermark',
      'bulk',
      'dead',
      'lock',
      'memory',
    ])
      assert.ok(titles.includes(topic), `no panel about ${topic}: ${titles}`);
  });

  describe('with a running syncer and a real Prometheus', () => {
    // Set by before(); after() reads them as possibly unset, in case before() failed midway.
    let sandbox: Sandbox;
    let es: EsFaultProxy;
    let syncer: Syncer;
    let prometheus: ChildProcess | undefined;
    let promLog = '';
    let dir: string | undefined;
    let metricsUrl = '';
    let promUrl = '';
    let syncerTarget = '';
    let deadTarget = '';

    const metrics = async () => (await fetch(metricsUrl)).text();
    const query = async (expr: string) => {
      const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await res.json()) as {
        status: string;
        error?: string;
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      assert.equal(body.status, 'success', `${expr}: ${body.error}`);
      return body.data.result;
    };
    /** The single value of an instant query on the live syncer's target, or NaN. */
    const scalar = async (expr: string) => {
      const result = await query(expr);
      return result.length === 1 ? Number(result[0]?.value[1]) : NaN;
    };
    const alerts = async () => {
      const res = await fetch(`${promUrl}/api/v1/alerts`);
      const body = (await res.json()) as {
        data: { alerts: { labels: Record<string, string>; state: string }[] };
      };
      return body.data.alerts;
    };
    const firing = async (name: string, instance?: string) =>
      (await alerts()).some(
        (a) =>
          a.labels.alertname === name &&
          a.state === 'firing' &&
          (instance === undefined || a.labels.instance === instance),
      );
    const describeAlerts = async () =>
      JSON.stringify((await alerts()).map((a) => [a.labels.alertname, a.labels.instance, a.state]));

    before(async () => {
      assert.deepEqual(missing, [], 'install them: apt-get install prometheus');
      sandbox = await createSandbox('prometheus');
      await migrateSandbox(sandbox);
      await seedCatalog(sandbox.pg, 30, 3, 10);
      es = await EsFaultProxy.start(sandbox.config.elasticsearch.url);
      const metricsPort = await freePort();
      syncerTarget = `127.0.0.1:${metricsPort}`;
      metricsUrl = `http://${syncerTarget}/metrics`;
      syncer = await startSyncer(sandbox, {
        metricsPort,
        elasticsearch: { ...sandbox.config.elasticsearch, url: es.url },
      });
      await waitForConvergence(sandbox);

      // A second target where no syncer answers: the syncer-down alert's case, without stopping
      // the syncer the other checks read.
      deadTarget = `127.0.0.1:${await freePort()}`;
      dir = mkdtempSync(join(tmpdir(), 'movies-etl-prometheus-'));
      // The shipped rules with every `for:` cut to 1 s, and the queue threshold to 0 waiting, so
      // each alert fires within seconds of its condition.
      const shipped = readFileSync(ALERTS, 'utf8');
      const rules = shipped
        .replace(/^(\s*)for: \S+$/gm, '$1for: 1s')
        .replace(
          'max by (job) (movies_etl_queue_depth) > 1000',
          'max by (job) (movies_etl_queue_depth) > 0',
        );
      assert.notEqual(
        rules.replace(/^(\s*)for: \S+$/gm, ''),
        shipped.replace(/^(\s*)for: \S+$/gm, ''),
        'queue threshold rewritten',
      );
      writeFileSync(join(dir, 'alerts.yml'), rules);
      writeFileSync(
        join(dir, 'prometheus.yml'),
        [
          'global: { scrape_interval: 1s, evaluation_interval: 1s }',
          'rule_files: [alerts.yml]',
          'scrape_configs:',
          '  - job_name: movies-etl',
          `    static_configs: [{ targets: ["${syncerTarget}", "${deadTarget}"] }]`,
          '',
        ].join('\n'),
      );
      const promPort = await freePort();
      promUrl = `http://127.0.0.1:${promPort}`;
      prometheus = spawn(
        'prometheus',
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${promPort}`,
          '--log.level=warn',
        ],
        { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      prometheus.on('error', (err) => (promLog += `${err.message}\n`));
      prometheus.stderr?.on('data', (chunk: Buffer) => (promLog += chunk.toString()));
      await eventually(
        async () => (await fetch(`${promUrl}/-/ready`).catch(() => null))?.status === 200,
        20_000,
        'prometheus ready',
        { describe: () => Promise.resolve(promLog.slice(-2_000)) },
      );
    });

    after(async () => {
      if (prometheus && prometheus.exitCode === null) {
        const exited = once(prometheus, 'exit');
        prometheus.kill('SIGTERM');
        const timer = setTimeout(() => prometheus?.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
      // Elasticsearch back first, so the syncer stops at once rather than after its retries.
      const started = { sandbox, es, syncer } as Partial<{
        sandbox: Sandbox;
        es: EsFaultProxy;
        syncer: Syncer;
      }>;
      started.es?.forward();
      await started.syncer?.stop();
      await started.es?.close();
      await started.sandbox?.cleanup();
    });

    it('the syncer exports every series the alerts and the dashboard name', async () => {
      const text = await metrics();
      const exported = exportedNames(text);
      const referenced = new Set(
        [...ruleExpressions(readFileSync(ALERTS, 'utf8')), ...dashboardExpressions()].flatMap(
          seriesNames,
        ),
      );
      assert.ok(referenced.size >= 15, `only ${referenced.size} series referenced`);
      const unknown = [...referenced].filter((name) => !exported.has(name));
      assert.deepEqual(unknown, [], 'referenced but not exported');
      // The series added for the alerts report the healthy state.
      assert.equal(sample(text, 'movies_etl_ready'), 1);
      assert.equal(sample(text, 'movies_etl_claims_in_flight'), 0);
      assert.ok(sample(text, 'movies_etl_read_lock_held_seconds') >= 0);
    });

    it('Prometheus sees what the syncer reports: documents indexed, queue depth, latency', async () => {
      // A live change, so that the change-to-index histogram has observations.
      await insertFilm(sandbox.pg, 'Watched by Prometheus');
      await waitForConvergence(sandbox);
      await eventually(
        async () =>
          sample(await metrics(), 'movies_etl_change_to_index_seconds_count{index="films"}') >= 1,
        10_000,
        'latency observed',
      );
      const on = `job="movies-etl", instance="${syncerTarget}"`;
      let text = '';
      // Nothing changes any more: wait for a scrape newer than the last change, then compare.
      await eventually(
        async () => {
          text = await metrics();
          const [indexed, observed] = await Promise.all([
            scalar(`movies_etl_documents_indexed_total{${on}, index="films"}`),
            scalar(`movies_etl_change_to_index_seconds_count{${on}, index="films"}`),
          ]);
          return (
            indexed === sample(text, 'movies_etl_documents_indexed_total{index="films"}') &&
            observed === sample(text, 'movies_etl_change_to_index_seconds_count{index="films"}')
          );
        },
        15_000,
        'Prometheus caught up with the syncer',
        { describe: () => Promise.resolve(promLog.slice(-1_000)) },
      );
      assert.ok(sample(text, 'movies_etl_documents_indexed_total{index="films"}') >= 31);
      for (const index of ['persons', 'genres']) {
        const indexed = await scalar(`movies_etl_documents_indexed_total{${on}, index="${index}"}`);
        assert.ok(indexed > 0, `${index}: ${indexed}`);
      }
      assert.equal(await scalar(`movies_etl_queue_depth{${on}}`), 0);
      assert.equal(sample(text, 'movies_etl_queue_depth'), 0);
      assert.equal(await scalar(`up{${on}}`), 1);
      assert.equal(await scalar(`movies_etl_ready{${on}}`), 1);

      const buckets: [number, number][] = text
        .split('\n')
        .filter(
          (l) =>
            l.startsWith('movies_etl_change_to_index_seconds_bucket{') &&
            l.includes('index="films"'),
        )
        .map((l) => [Number(/le="([^"]+)"/.exec(l)?.[1]), Number(l.slice(l.lastIndexOf(' ') + 1))]);
      for (const q of [0.5, 0.99]) {
        const expected = quantile(q, buckets);
        const seen = await scalar(
          `histogram_quantile(${q}, movies_etl_change_to_index_seconds_bucket{${on}, index="films"})`,
        );
        assert.ok(Number.isFinite(seen) && seen > 0, `p${q * 100}: ${seen}`);
        assert.ok(
          Math.abs(seen - expected) < 1e-9,
          `p${q * 100}: Prometheus ${seen}, syncer ${expected}`,
        );
      }
    });

    it('fires the syncer-down alert for a target that does not answer, and nothing else', async () => {
      await eventually(
        () => firing('MoviesEtlSyncerDown', deadTarget),
        15_000,
        'syncer down firing',
        {
          describe: describeAlerts,
        },
      );
      const others = (await alerts()).filter((a) => a.labels.instance !== deadTarget);
      assert.deepEqual(others, [], 'a healthy syncer raises no alert');
    });

    it('fires queue-growing and not-ready alerts while Elasticsearch is away and films keep changing', async () => {
      es.down();
      let written = 0;
      const stop = new AbortController();
      // Editors keep writing: the changes are captured and queued, but nothing can be indexed.
      const writer = (async () => {
        while (!stop.signal.aborted) {
          await insertFilm(sandbox.pg, `Queued ${written++}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      })();
      try {
        await eventually(() => firing('MoviesEtlQueueGrowing'), 30_000, 'queue growing firing', {
          describe: describeAlerts,
        });
        await eventually(
          () => firing('MoviesEtlNotReady', syncerTarget),
          15_000,
          'not ready firing',
          { describe: describeAlerts },
        );
        const depth = await scalar(`movies_etl_queue_depth{instance="${syncerTarget}"}`);
        assert.ok(depth > 0, `queue depth ${depth}`);
        assert.equal(await scalar(`up{instance="${syncerTarget}"}`), 1, 'still scraped');
      } finally {
        stop.abort();
        await writer;
        es.forward();
      }
      assert.ok(written > 0);
    });
  });
});
