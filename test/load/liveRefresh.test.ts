/**
 * When the syncer refreshes an index after live batches, on a real Elasticsearch: a trickle of
 * live changes gets refreshes (at most one per gap), a stream faster than BUSY_DOCS_PER_SECOND
 * gets none (the index's own refresh_interval serves it, and refreshes would cost the writes),
 * and batches from a backlog (a full claim) never ask for one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUSY_DOCS_PER_SECOND, LandingRate, LiveRefresh } from '../../src/load/liveRefresh.js';
import { sleep } from '../../src/util/sleep.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { testLog } from '../helpers/syncerHarness.js';

describe('live refresh', () => {
  let sandbox: Sandbox;
  let index: string;

  before(async () => {
    sandbox = await createSandbox('liverefresh');
    index = sandbox.config.index;
    // No scheduled refresh: every refresh the index counts is one the syncer asked for.
    await sandbox.es.indices.create({
      index,
      settings: { refresh_interval: '-1', number_of_replicas: 0 },
    });
  });

  after(() => sandbox.cleanup());

  const refreshes = async () => {
    const stats = await sandbox.es.indices.stats({ index, metric: 'refresh' });
    return stats._all.primaries?.refresh?.external_total ?? 0;
  };

  /** `batches` batches of `docs` documents, one every `everyMs`; the refreshes they caused. */
  const drive = async (docs: number, everyMs: number, batches: number, live = true) => {
    const refresh = new LiveRefresh(
      sandbox.es,
      index,
      100,
      () => Promise.resolve(false),
      testLog(),
    );
    const before = await refreshes();
    for (let i = 0; i < batches; i++) {
      refresh.landed(docs, live);
      await sleep(everyMs);
    }
    await sleep(300); // the last one the gap delayed
    refresh.stop();
    return (await refreshes()) - before;
  };

  it('refreshes after live batches of a trickle, at most once per gap', async () => {
    // 50 documents a second for 1.5 s, in batches every 20 ms: 75 batches, one refresh per 100 ms.
    const count = await drive(1, 20, 75);
    assert.ok(count >= 8, `expected refreshes while changes trickle in, saw ${count}`);
    assert.ok(count <= 18, `expected at most about one per 100 ms, saw ${count}`);
  });

  it('leaves a busy stream to the index’s own refresh interval', async () => {
    // 1,000 documents a second: well above BUSY_DOCS_PER_SECOND after the first batches.
    assert.ok(50 / 0.05 > BUSY_DOCS_PER_SECOND);
    // Until BUSY_DOCS_PER_SECOND have landed (the first 200 ms) the stream still looks like a
    // trickle; after that, 1.3 s of batches without a refresh (a trickle's rule would make 13).
    const count = await drive(50, 50, 30);
    assert.ok(count <= 4, `expected refreshes only while the stream started, saw ${count}`);
  });

  it('never refreshes for batches of a backlog', async () => {
    assert.equal(await drive(1, 20, 30, false), 0);
  });

  it('counts the documents of the last second only', () => {
    const rate = new LandingRate();
    rate.add(0, 100);
    rate.add(500, 50);
    assert.equal(rate.perSecond(900), 150);
    assert.equal(rate.perSecond(1_200), 50);
    assert.equal(rate.perSecond(1_600), 0);
  });
});
