/**
 * A reindex that swapped its alias and died before tidying up (killed, a second Ctrl-C, or
 * Elasticsearch or Redis failing at that step): the films its syncers' mirrors missed were still
 * only in Redis (`reindex-missed:<write alias>`), and the next cleanup unmarked the new index and
 * forgot them. Those films kept the reindex's older read in the index that serves, for good.
 *
 * The state such a death leaves is built here by hand: the index behind the alias still marked
 * as being built by a reindex no one runs, its write alias still on it, one film's document as the
 * reindex read it before an edit (older content, same version: the edit's mirror write gave up),
 * and that film in the missed set. A starting syncer cleans up after the reindex.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { markIndex } from '../../src/load/indexManager.js';
import { eventually, waitForConvergence } from '../helpers/convergence.js';
import { seedCatalog } from '../helpers/catalog.js';
import { createSandbox, type Sandbox } from '../helpers/isolation.js';
import { migrateSandbox, startSyncer, testLog } from '../helpers/syncerHarness.js';

describe('a reindex that died after its swap, before tidying up', () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox('reindex_tidy');
    await migrateSandbox(sandbox);
    await seedCatalog(sandbox.pg, 50, 3, 10);
  });

  after(async () => {
    await sandbox.cleanup();
  });

  /**
   * The state a reindex that died after its swap leaves (see the header); resolves to its write
   * alias. The films index must be in step when this is called.
   */
  async function leaveDeadReindex(): Promise<string> {
    const alias = sandbox.config.index;
    const [index] = Object.keys(await sandbox.es.indices.getAlias({ name: alias }));
    assert.ok(index);
    const writeAlias = `${alias}-reindex-20261206093000`;
    await sandbox.es.indices.updateAliases({ actions: [{ add: { index, alias: writeAlias } }] });
    await markIndex(sandbox.es, index, {
      alias,
      write_alias: writeAlias,
      role: 'building',
      since: new Date().toISOString(),
    });
    const [film] = (
      await sandbox.pg.query<{ id: string }>('SELECT id FROM content.film_work ORDER BY id LIMIT 1')
    ).rows;
    assert.ok(film);
    const current = await sandbox.es.get<Record<string, unknown>>({ index: alias, id: film.id });
    await sandbox.es.index({
      index: alias,
      id: film.id,
      document: { ...current._source, title: 'as the reindex read it' },
      version: current._version,
      version_type: 'external_gte',
      refresh: true,
    });
    await sandbox.redis.sadd(`${sandbox.config.redisPrefix}reindex-missed:${writeAlias}`, film.id);
    return writeAlias;
  }

  /** The films back in step, the write alias gone, and the missed set with it. */
  async function tidiedUp(writeAlias: string): Promise<void> {
    await waitForConvergence(sandbox, 20_000);
    await eventually(
      async () => !(await sandbox.es.indices.existsAlias({ name: writeAlias })),
      10_000,
      'the write alias removed',
    );
    assert.equal(
      await sandbox.redis.exists(`${sandbox.config.redisPrefix}reindex-missed:${writeAlias}`),
      0,
      'the missed set forgotten once its films are queued',
    );
  }

  it('has the films its mirrors missed indexed again by the next cleanup', async () => {
    let syncer = await startSyncer(sandbox);
    await waitForConvergence(sandbox);
    await syncer.stop();
    const writeAlias = await leaveDeadReindex();

    syncer = await startSyncer(sandbox);
    try {
      await tidiedUp(writeAlias);
    } finally {
      await syncer.stop();
    }
  });

  // Outside reading: only a starting syncer looked. Syncers that ran on (the usual case: a
  // reindex run beside them, killed after its swap, or a deploy that restarted them before the
  // reindex's lease had lapsed, when a start leaves its indices alone) never did, and after a day
  // the missed set expired: those films kept the reindex's older read for good.
  it('is cleaned up after by a syncer that keeps running', async () => {
    const syncer = await startSyncer(sandbox, {}, testLog(), { indexCheckMs: 1_000 });
    try {
      await waitForConvergence(sandbox);
      await tidiedUp(await leaveDeadReindex());
    } finally {
      await syncer.stop();
    }
  });
});
