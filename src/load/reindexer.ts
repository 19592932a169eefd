/**
 * Zero-downtime reindex of one index (films, persons or genres: `kind`): build a new index behind
 * its alias while search keeps using the old one, then swap the alias in one atomic step and drop the old index. Search never sees an
 * empty or half-built index. This is also how a mapping change ships.
 *
 * Changes made during the load are not lost: running syncers mirror every batch into the new
 * index (see ReindexTarget) from before the load's first read, and versions keep an older read
 * from overwriting a newer mirrored write. Films a mirror gave up on are queued again after the
 * swap, so the syncers write them through the alias into the new index.
 *
 * A reindex that fails, is interrupted (SIGINT/SIGTERM abort `signal`) or loses its lease leaves
 * the syncers writing to the alias and nothing else: it withdraws its target first, waits until
 * no syncer can still be mirroring (MIRROR_SETTLE_MS), and only then deletes its index, so no late
 * write re-creates it. One killed outright (SIGKILL) stops being mirrored when its lease lapses;
 * its index, marked in `_meta`, is deleted by the next reindex or syncer start
 * (removeReindexLeftovers). A failure after the swap leaves the new index in service.
 */
import type { Client } from '@elastic/elasticsearch';
import { keysetPages, readPage } from '../db/keysetPages.js';
import type { Postgres } from '../db/postgres.js';
import { DocumentExtractor, type Unreadable } from '../extract/extractor.js';
import type { DocumentKind } from '../kinds/documentKind.js';
import { memberOf } from '../kinds/kinds.js';
import type { Logger } from '../logger.js';
import {
  letteredIds,
  type DeadLetter,
  type DeadLetters,
  type LetteredIds,
} from '../queue/deadLetters.js';
import type { DocumentQueue } from '../queue/documentQueue.js';
import type { HeldLease } from '../queue/lease.js';
import type { ReadLock } from '../queue/readLock.js';
import type { ReloadRequests } from '../queue/reloadRequests.js';
import { sleep } from '../util/sleep.js';
import { replicasBeforeBulkLoad } from './bulkLoadMode.js';
import { BulkWriter } from './bulkWriter.js';
import {
  markIndex,
  reindexMeta,
  removeReindexLeftovers,
  unmarkIndex,
  type ReindexMarker,
} from './indexManager.js';
import { MIRROR_SETTLE_MS, REINDEX_LEASE_MS, type ReindexTarget } from './reindexTarget.js';

export interface ReindexDeps {
  /** Which index: its alias, mapping, ids and documents. */
  kind: DocumentKind;
  es: Client;
  db: Postgres;
  lock: ReadLock;
  target: ReindexTarget;
  /** Where documents the mirrors missed go after the swap. */
  queue: DocumentQueue;
  /**
   * What the dead letters said before the reindex (see `setAside`); those the new index answers
   * are cleared after the swap (`clearLettersServed`).
   */
  deadLetters: Pick<DeadLetters, 'ofKind' | 'clearSuperseded'>;
  /** Asks the syncers to load an index whole again (a swap that came after the lease lapsed). */
  reloads: Pick<ReloadRequests, 'request'>;
  alias: string;
  sizeLimit: number;
  bulkSize: number;
  sleepMs: number;
  log: Logger;
  /** How long to wait for every syncer to notice the new target (their cache is 1 s). */
  noticeMs?: number;
  /** How long after withdrawing the target no syncer writes to it any more. */
  settleMs?: number;
  /** Aborting stops the reindex before its swap, and cleans up. */
  signal?: AbortSignal;
}

export interface ReindexResult {
  from: string[];
  to: string;
  documents: number;
  ms: number;
}

/** The names one reindex works with. */
interface Build {
  alias: string;
  from: string[];
  /** The new index. */
  to: string;
  /** The new index's own alias: what the reindex and the mirrors write to. */
  writeAlias: string;
  /** Documents loaded so far. */
  documents: number;
  /** This index's dead letters as the reindex began (see `setAside`). */
  lettered: LetteredIds;
  /** Documents left for after the swap so far (see `setAside`). */
  setAside: number;
}

export async function reindex(deps: ReindexDeps): Promise<ReindexResult> {
  const { es, alias, target, log } = deps;
  const started = Date.now();
  await assertAlias(es, alias);
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const build: Build = {
    alias,
    from: Object.keys(await es.indices.getAlias({ name: alias })),
    to: `${alias}_${stamp}`,
    writeAlias: `${alias}-reindex-${stamp}`,
    documents: 0,
    // Taken once, before anything: a letter's own times say when it was last written, by a
    // syncer's clock, and a document refused again is lettered again.
    lettered: await deps.deadLetters.ofKind(deps.kind.name),
    setAside: 0,
  };
  // The clock stepped back into a second a reindex was named for: creating the index would fail,
  // and the clean-up after that failure, finding the name behind the alias, would take the swap
  // for done and delete the index that serves.
  if (
    (await es.indices.exists({ index: build.to })) ||
    (await es.indices.exists({ index: build.writeAlias }))
  )
    throw new Error(
      `${build.to} exists already (the clock stepped back?): nothing was touched; run the ` +
        'reindex again once the clock is past it',
    );
  const lost = new AbortController();
  // The lease first: from here on a starting syncer or reindex leaves what this one builds alone.
  const held: HeldLease = await target.set(build.writeAlias, (reason) => {
    if (held.lost) lost.abort(new Error(`lost the reindex lease (${reason}): mirrors stopped`));
    else log.warn({ reason }, 'reindex lease: refresh failed; retrying');
  });
  const signal = AbortSignal.any([lost.signal, ...(deps.signal ? [deps.signal] : [])]);
  try {
    await removeReindexLeftovers(
      es,
      target.leftoversOf(deps.queue),
      alias,
      log,
      deps.settleMs ?? MIRROR_SETTLE_MS,
    );
    await buildAndSwap(deps, build, held, signal);
  } catch (err) {
    const cause: unknown = signal.aborted ? signal.reason : err;
    if (!(await abandon(deps, build, held))) throw cause;
    log.warn({ err: (cause as Error).message }, 'reindex: the swap went through despite the error');
    // As after a swap that answered (buildAndSwap): one that took effect after the lease was lost
    // may lack the edits the syncers stopped mirroring meanwhile. Whether it took effect before
    // or after cannot be told here, so a lost lease asks for the reload either way.
    if (held.lost) await reloadAfterLateSwap(deps);
  }
  await finish(deps, build, held);
  return { from: build.from, to: build.to, documents: build.documents, ms: Date.now() - started };
}

async function assertAlias(es: Client, alias: string): Promise<void> {
  if (await es.indices.existsAlias({ name: alias })) return;
  throw new Error(
    (await es.indices.exists({ index: alias }))
      ? `${alias} is a concrete index, not an alias: a zero-downtime reindex needs an alias (fresh installs get one)`
      : `there is no index ${alias} yet: start the syncer first`,
  );
}

function marker(build: Build, role: ReindexMarker['role']): ReindexMarker {
  return {
    alias: build.alias,
    write_alias: build.writeAlias,
    role,
    since: new Date().toISOString(),
  };
}

/** Create, load, restore settings, swap. */
async function buildAndSwap(
  deps: ReindexDeps,
  build: Build,
  held: HeldLease,
  signal: AbortSignal,
): Promise<void> {
  const { es, log, kind } = deps;
  const { settings, mappings } = kind.definition;
  const { alias, from, to, writeAlias } = build;
  const source = from[0] ?? alias;
  // A full load may hold the old index in bulk-load mode (no replicas until it ends): then what
  // the index had before, which is put back on the old index only, and lost with it.
  const relaxed = await replicasBeforeBulkLoad(es, source);
  const replicas =
    relaxed !== undefined
      ? relaxed
      : (await es.indices.getSettings({ index: source, name: 'index.number_of_replicas' }))[source]
          ?.settings?.index?.number_of_replicas;
  await es.indices.create({
    index: to,
    settings: { ...settings, refresh_interval: '-1', number_of_replicas: 0 },
    mappings: { ...mappings, _meta: reindexMeta(marker(build, 'building')) },
    aliases: { [writeAlias]: { is_write_index: true } },
  });
  log.info({ alias, from, to, write_alias: writeAlias }, 'reindex: new index created');
  await sleep(deps.noticeMs ?? 2_500, signal);
  signal.throwIfAborted();
  log.info({ to }, 'reindex: syncers now mirror into it; loading');

  await load(deps, build, signal);

  await es.indices.putSettings({
    index: to,
    settings: {
      refresh_interval: settings.refresh_interval ?? '1s',
      number_of_replicas: replicas ?? 1,
    },
  });
  await es.indices.refresh({ index: to });
  // Marked before the swap: if this process dies after it, whoever cleans up deletes them.
  for (const index of from) await markIndex(es, index, marker(build, 'retiring'));
  // Mirrors must have written every batch up to the swap: only true while the lease is ours.
  if (!(await held.refresh())) throw new Error('lost the reindex lease before the swap');
  signal.throwIfAborted();
  await es.indices.updateAliases({
    actions: [
      ...from.map((index) => ({ remove: { index, alias } })),
      { add: { index: to, alias, is_write_index: true } },
    ],
  });
  log.info({ alias, to, documents: build.documents }, 'reindex: alias swapped');
  // Paused past the lease between that check and the swap (SIGSTOP, a frozen VM, a slow answer
  // to the check): the syncers stopped mirroring meanwhile, so edits of that time may be only in
  // the old index, which goes. Still ours now, the lease was ours throughout.
  if (held.lost || !(await held.refresh())) await reloadAfterLateSwap(deps);
}

/** Ask the syncers to load the new index whole again: it may lack edits (see buildAndSwap). */
async function reloadAfterLateSwap(deps: ReindexDeps): Promise<void> {
  const { log, kind } = deps;
  try {
    await deps.reloads.request(kind.name);
    log.warn(
      { index: kind.name },
      'reindex: the lease lapsed before the swap took effect (the process was paused?); the ' +
        'syncers load this index whole again, in case it missed edits made meanwhile',
    );
  } catch (err) {
    log.error(
      { index: kind.name, err: (err as Error).message },
      'reindex: the lease lapsed before the swap took effect, and the reload could not be asked ' +
        'for; run `npm run reindex` again, or `npm run verify -- --repair`',
    );
  }
}

/** Every document, page by page, into the new index through its write alias. */
async function load(deps: ReindexDeps, build: Build, signal: AbortSignal): Promise<void> {
  const { db, lock, log, kind } = deps;
  const extractor = new DocumentExtractor(db, lock, deps.bulkSize);
  // No onIndexMissing: if the index is deleted under us, the write fails instead of re-creating.
  const writer = new BulkWriter(deps.es, { name: build.writeAlias, isAlias: true }, log);
  const started = Date.now();
  let lastLog = Date.now();
  const pages = keysetPages({
    pageSize: deps.sizeLimit,
    read: (after: unknown[] | undefined) =>
      lock.withLock('reindex', () => readPage(db, kind.ids, [deps.sizeLimit], after)),
    keyOf: (row) => [row.id],
    pause: () => sleep(deps.sleepMs, signal),
    signal,
  });
  for await (const page of pages) {
    const ids = page.map((r) => r.id);
    const claim = { workerId: 'reindex', ids, claimedAt: Date.now() };
    for (let i = 0; i < ids.length; i += extractor.bulkSize) {
      // Each turn reads or sets apart at least one of them (extractor.ts, readApart).
      for (let chunk = ids.slice(i, i + extractor.bulkSize); chunk.length > 0;) {
        const { batch, unreadable, unresolved } = await extractor.readApart(
          kind,
          claim,
          chunk,
          signal,
        );
        const result = await writer.write(batch, signal);
        await setAside(deps, build, unreadable, result.dead);
        chunk = unresolved;
      }
    }
    build.documents += ids.length;
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      const rate = Math.round(build.documents / ((Date.now() - started) / 1000));
      log.info({ index: deps.kind.name, documents: build.documents, rate }, 'reindex progress');
    }
  }
  // The pager stops quietly when aborted: a partial load must not be swapped in.
  signal.throwIfAborted();
}

/** Letters whose documents one request asks the new index about (clearLettersServed). */
const LETTERS_ASKED_AT_ONCE = 1_000;

/** Most documents one reindex leaves for after its swap; past it, something is wrong at large. */
const SET_ASIDE_AT_MOST = 1_000;

/**
 * Documents the load could not put in the new index, kept for after the swap, when they are queued
 * again like those the mirrors missed: the syncers then read them through the alias, and what
 * still fails goes to the dead letters, against the new index. A document is left so only when
 * swapping without it takes nothing out of search: the index in service does not hold it either,
 * or the dead letters said so before this reindex began (Elasticsearch refused it there, for a
 * refusal; PostgreSQL could not build it, for a failed read).
 *
 * Any other stops the reindex before its swap. Refused by the new index while the old one holds
 * it: the new mapping is the cause. Unreadable while the old index holds it: most likely a cause
 * that holds for every document for a while (a guard raising during maintenance), and swapping
 * would have served an index without them (an empty one, at worst). A reindex used to stop at
 * any such document, so a catalog with one dead letter could never be reindexed.
 */
async function setAside(
  deps: ReindexDeps,
  build: Build,
  unreadable: readonly Unreadable[],
  refused: readonly DeadLetter[],
): Promise<void> {
  if (unreadable.length + refused.length === 0) return;
  const { es, log } = deps;
  const ids = [...unreadable.map((u) => u.id), ...refused.map((letter) => letter.id)];
  const served = await es.mget({ index: build.alias, ids, _source: false });
  // An item the index could not answer (a shard unassigned) is no "not held".
  const unanswered = served.docs.find((d) => 'error' in d);
  if (unanswered)
    throw new Error(
      `could not ask the index in service whether it holds ${unanswered._id}: ` +
        JSON.stringify((unanswered as { error?: unknown }).error),
    );
  const held = new Map<string, number | undefined>();
  for (const doc of served.docs) if ('found' in doc && doc.found) held.set(doc._id, doc._version);
  // A letter is of a read newer than what the index in service holds; one at or below it is
  // stale (a later read loaded, say by a reindex whose mapping took the document) and says
  // nothing of the document now: trusted, it let a mapping that refuses a document search serves
  // swap it out of search.
  const knownBefore = (id: string, unreadable: boolean) => {
    const letters = unreadable ? build.lettered.unreadable : build.lettered.refused;
    if (!letters.has(id)) return false;
    const lettered = letters.get(id);
    const holds = held.get(id);
    return lettered === undefined || holds === undefined || lettered > holds;
  };
  const blocking = (id: string, unreadable: boolean) =>
    held.has(id) && !knownBefore(id, unreadable);
  const refusedHeld = refused.filter((letter) => blocking(letter.id, false));
  if (refusedHeld.length > 0)
    throw new Error(
      `the new index refused ${refusedHeld.length} documents that the index in service holds: ` +
        `${refusedHeld[0]?.id ?? ''}: ${refusedHeld[0]?.reason ?? ''}`,
    );
  const unreadableHeld = unreadable.filter((u) => blocking(u.id, true));
  if (unreadableHeld.length > 0)
    throw new Error(
      `${unreadableHeld.length} documents that the index in service holds could not be read ` +
        `from PostgreSQL (${unreadableHeld[0]?.id ?? ''}: ${unreadableHeld[0]?.reason ?? ''}); ` +
        'run the reindex again once the cause has passed',
    );
  build.setAside += ids.length;
  if (build.setAside > SET_ASIDE_AT_MOST)
    throw new Error(
      `more than ${SET_ASIDE_AT_MOST} documents could not be indexed (the last: ${ids[0] ?? ''}); ` +
        'see the dead letters, fix the cause, then reindex',
    );
  await deps.target.keepForAfterSwap(build.writeAlias, ids);
  // The reasons clipped: Elasticsearch quotes the refused value, which may be any length.
  const clip = (reason: string) => (reason.length > 300 ? `${reason.slice(0, 300)}…` : reason);
  log.warn(
    {
      unreadable: unreadable.map((u) => ({ id: u.id, reason: clip(u.reason) })),
      refused: refused.map((letter) => ({ id: letter.id, reason: clip(letter.reason) })),
    },
    'reindex: documents left for after the swap (not in the index in service either, or dead ' +
      'letters already); the syncers read them again then',
  );
}

/** Withdraw the target, and wait until no syncer can still be writing to it. */
async function withdraw(deps: ReindexDeps, held: HeldLease): Promise<void> {
  const settleMs = deps.settleMs ?? MIRROR_SETTLE_MS;
  try {
    await held.release();
    await sleep(settleMs);
  } catch (err) {
    // Redis away: the lease is no longer refreshed, so it lapses by itself.
    deps.log.warn({ err: (err as Error).message }, 'reindex: could not withdraw the target');
    await sleep(REINDEX_LEASE_MS + settleMs);
  }
}

/**
 * After a failure before the swap: withdraw, then delete the new index (and a stray that a late
 * mirror delete may have auto-created under the write alias's name) and unmark the old ones.
 * Resolves to true when the swap turns out to have happened after all: nothing is deleted then.
 */
async function abandon(deps: ReindexDeps, build: Build, held: HeldLease): Promise<boolean> {
  const { es, log } = deps;
  const { alias, from, to, writeAlias } = build;
  await withdraw(deps, held);
  try {
    if (Object.keys(await es.indices.getAlias({ name: alias })).includes(to)) return true;
    await es.indices.delete({ index: to }, { ignore: [404] });
    // Now that `to` is gone, the name is a concrete index (or nothing): never the alias itself.
    await es.indices.delete({ index: writeAlias }, { ignore: [404] });
    for (const index of from) await unmarkIndex(es, index);
    await deps.target.forgetMissed(writeAlias);
    log.info({ alias, deleted: to }, 'reindex: the unfinished index is deleted');
  } catch (err) {
    log.error(
      { alias, index: to, err: (err as Error).message },
      'reindex: could not delete the unfinished index; the next reindex or syncer start will',
    );
  }
  return false;
}

/** After the swap: withdraw, drop the write alias, re-queue what mirrors missed, drop the old. */
async function finish(deps: ReindexDeps, build: Build, held: HeldLease): Promise<void> {
  const { es, log, target } = deps;
  const { from, to, writeAlias } = build;
  // Also lets writes already on their way to an old index through the alias land before it goes.
  await withdraw(deps, held);
  try {
    await es.indices.deleteAlias({ index: to, name: writeAlias }, { ignore: [404] });
    // Queued before the new index is unmarked: should this fail (or the process die), the mark
    // leads the next cleanup to them (removeReindexLeftovers).
    const missed = await target.requeueMissed(writeAlias, deps.queue);
    if (missed > 0)
      log.warn({ documents: missed }, 'reindex: documents the mirrors missed are queued again');
    await unmarkIndex(es, to);
    // Never one behind the alias, whatever led here.
    const serving = new Set(Object.keys(await es.indices.getAlias({ name: build.alias })));
    const retired = from.filter((index) => !serving.has(index));
    if (retired.length > 0) await es.indices.delete({ index: retired }, { ignore: [404] });
  } catch (err) {
    log.error(
      { to, from, err: (err as Error).message },
      'reindex: the alias is swapped, but tidying up failed; the next reindex or syncer start finishes it',
    );
  }
  try {
    await clearLettersServed(deps, build);
  } catch (err) {
    log.warn(
      { err: (err as Error).message },
      'reindex: could not clear the dead letters of documents the new index holds; they stay ' +
        'until their documents are read again (`npm run dead-letters -- --retry`)',
    );
  }
}

/**
 * After the swap: clear the letters of this index whose document the new index holds at the
 * letter's version or newer. A refusal the new mapping takes (the reindex that ships the fix), or
 * one the old index made while the mirror wrote the same read into the new one: nothing reads
 * those documents again, so no acknowledgement would clear them. Left, they said the document was
 * refused while search served it, and the next reindex took them for refusals known before it
 * (setAside). A letter of a newer read, written meanwhile, stays (clearSuperseded compares).
 */
async function clearLettersServed(deps: ReindexDeps, build: Build): Promise<void> {
  const { es, kind, log } = deps;
  const ids = letteredIds(await deps.deadLetters.ofKind(kind.name));
  // Asked of the new index by name: the alias may have moved on again (another reindex).
  const index = new BulkWriter(es, { name: build.to, isAlias: false }, log);
  let cleared = 0;
  for (let i = 0; i < ids.length; i += LETTERS_ASKED_AT_ONCE) {
    const versions = await index.versionsHeld(ids.slice(i, i + LETTERS_ASKED_AT_ONCE));
    const held = new Map([...versions].map(([id, version]) => [memberOf(kind.name, id), version]));
    cleared += await deps.deadLetters.clearSuperseded(held);
  }
  if (cleared > 0)
    log.info(
      { index: kind.name, letters: cleared },
      'reindex: dead letters of documents the new index holds are cleared',
    );
}
