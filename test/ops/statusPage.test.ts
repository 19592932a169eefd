/**
 * The status page at / on METRICS_PORT, rendered by a real browser (headless Chromium): it draws
 * the numbers /status.json gives (the same facts as `npm run status`), its charts fill in as the
 * syncer works, it cannot change anything, and a screenshot is kept in test-artifacts/.
 *
 * Needs `chromium` (Debian: `apt-get install chromium`; .ci/run installs it). Without it the
 * file is skipped locally, but fails in CI (CI set), where it must be present.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { DeadLetters } from '../../src/queue/deadLetters.js';
import type { StatusReport } from '../../src/queue/statusReport.js';
import type { HistoryPoint } from '../../src/metrics/statusHistory.js';
import type { Syncer } from '../../src/sync/syncer.js';
import { insertFilm, seedCatalog } from '../helpers/catalog.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { freePort } from '../helpers/freePort.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer } from '../helpers/syncerHarness.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const CHROMIUM = ['chromium', 'chromium-browser'].find(
  (bin) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0,
);
const skip =
  CHROMIUM === undefined && !process.env.CI
    ? 'chromium not installed (apt-get install chromium); CI runs this test'
    : false;

interface StatusJson {
  status: StatusReport;
  ready: boolean;
  history: HistoryPoint[];
  process: { pid: number };
}

/** Headless Chromium on `url`, its scripts run for a few seconds: the DOM it ends with. */
async function browse(url: string, extra: string[] = []): Promise<string> {
  if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install chromium)');
  const profile = mkdtempSync(join(tmpdir(), 'status-page-chromium-'));
  try {
    const child = spawn(
      CHROMIUM,
      [
        '--headless',
        // Root in a container has no user namespaces for the sandbox.
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        `--user-data-dir=${profile}`,
        '--window-size=1280,1100',
        // Enough virtual time for the first fetch and a redraw; the page refreshes every 2 s.
        '--virtual-time-budget=5000',
        ...extra,
        url,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, `chromium exited ${code}: ${err.slice(-2_000)}`);
    return out;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The text of the element with data-field="name" in a DOM dump. */
function fieldText(dom: string, name: string): string | undefined {
  const match = new RegExp(`data-field="${name.replace('.', '\\.')}"[^>]*>([^<]*)<`).exec(dom);
  return match?.[1]?.trim();
}

/** The text of every cell data-cell="key" in the table body with this id. */
function column(dom: string, tbody: string, key: string): string[] {
  const body = new RegExp(`<tbody id="${tbody}">(.*?)</tbody>`, 's').exec(dom)?.[1] ?? '';
  return [...body.matchAll(new RegExp(`data-cell="${key}"[^>]*>([^<]*)<`, 'g'))].map(
    (m) => m[1] ?? '',
  );
}

describe('status page', { skip }, () => {
  let sandbox: Sandbox;
  let syncer: Syncer;
  let base: string;

  before(async () => {
    sandbox = await createSandbox('statuspage');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 200, 5, 40);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    syncer = await startSyncer(sandbox, { metricsPort: port });
    await waitForConvergence(sandbox);
  });

  after(async () => {
    await syncer.stop();
    await sandbox.cleanup();
  });

  const statusJson = async (): Promise<StatusJson> => {
    const res = await fetch(`${base}/status.json`);
    assert.equal(res.status, 200);
    return (await res.json()) as StatusJson;
  };

  it('renders in a browser the numbers /status.json gives, with charts', async () => {
    // Something for each part of the page to show: two documents Elasticsearch refused, and
    // edits that reach the index while the charts sample.
    await new DeadLetters(syncer.store).add(
      ['persons/00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b'].map(
        (id) => ({
          id,
          reason: 'mapper_parsing_exception',
          status: 400,
          at: new Date().toISOString(),
        }),
      ),
    );
    for (let i = 0; i < 20; i++) await insertFilm(sandbox.pg, `Status page film ${i}`);
    await waitForConvergence(sandbox);
    await eventually(
      async () => {
        const { history } = await statusJson();
        return history.length >= 2 && history.some((p) => p.docsPerSecond > 0);
      },
      30_000,
      'two chart points, one with the edits in it',
    );

    const dom = await browse(`${base}/`, ['--dump-dom']);
    const json = await statusJson();
    assert.match(dom, /data-rendered="/, 'the page drew /status.json');
    assert.equal(fieldText(dom, 'process.pid'), String(json.process.pid));
    assert.equal(fieldText(dom, 'queue.depth'), json.status.queue.depth.toLocaleString('en-US'));
    assert.equal(fieldText(dom, 'deadLetters'), '2');
    assert.equal(fieldText(dom, 'deadLettersByIndex'), 'films 1 · persons 1 · genres 0');
    assert.equal(fieldText(dom, 'capture.holder'), syncer.processId, 'the syncer capturing');
    assert.deepEqual(
      column(dom, 'watermarks', 'table'),
      json.status.watermarks.map((w) => w.table),
    );
    assert.ok(
      !column(dom, 'watermarks', 'at').includes('missing'),
      'every watermark is set once the load is done',
    );
    assert.deepEqual(
      column(dom, 'workers', 'id').sort(),
      json.status.workers.map((w) => w.id).sort(),
    );
    assert.ok(json.status.workers.length > 0);
    assert.match(dom, /class="badge ok"[^>]*>ready</);
    // The charts drew lines, not the "no data yet" placeholder.
    const throughput = /<svg id="chart-throughput"[^>]*>(.*?)<\/svg>/s.exec(dom)?.[1] ?? '';
    assert.match(throughput, /<path d="M[\d.]+,[\d.]+ L/, 'the throughput chart has a line');
  });

  it('is read-only, and a screenshot is kept', async () => {
    for (const path of ['/', '/status.json']) {
      const res = await fetch(`${base}${path}`, { method: 'POST' });
      assert.equal(res.status, 405, `POST ${path}`);
    }
    const page = await fetch(`${base}/`);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'status-page.png');
    rmSync(shot, { force: true });
    await browse(`${base}/`, [`--screenshot=${shot}`]);
    const png = readFileSync(shot);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    assert.ok(png.length > 20_000, `a screenshot of ${png.length} bytes shows a page, not a blank`);
  });
});
