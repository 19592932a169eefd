/**
 * Keeps every kind's index there. An index that is gone (deleted by hand or by a cleanup script,
 * or an Elasticsearch that came back without its data) is created again, and since the new index
 * holds nothing while the watermarks in Redis only bring changes from now on, its kind is asked to
 * be loaded again whole (src/queue/reloadRequests.ts); the poller is woken to start at once.
 *
 * It looks at start, whenever a bulk write finds its index missing, and every CHECK_MS: an index
 * deleted while nothing is edited would otherwise stay empty until the next edit.
 *
 * The request lives in Redis, and a Redis with persistence can come back from a save older than
 * it (a crash): the index, which is there, would never be loaded. So each look (at start, every
 * CHECK_MS, and at once when a pass sees Redis restarted) also asks again for any index born empty
 * (indexManager.ts) that Redis has no request, load in progress or finished load for.
 *
 * Each look also cleans up after a reindex that died (removeReindexLeftovers): one killed after
 * its swap left the films its mirrors missed only in Redis, for a day, and a syncer that kept
 * running never looked; nor did one restarted before that reindex's lease had lapsed.
 */
import type { Client } from '@elastic/elasticsearch';
import type { DocumentKind, KindName } from '../kinds/documentKind.js';
import type { Logger } from '../logger.js';
import {
  ensureIndex,
  hasGuessedMapping,
  removeReindexLeftovers,
  writeIndexOf,
  type IndexTarget,
  type LiveReindex,
  type WriteIndex,
} from '../load/indexManager.js';
import type { ReloadRequests } from '../queue/reloadRequests.js';

/** Per index and look: a HEAD, a GET and one Redis transaction. */
const CHECK_MS = 15_000;

export class IndexWatch {
  private timer: NodeJS.Timeout | null = null;
  /** The look under way. */
  private look: Promise<void> | null = null;
  /** A look was asked for while one ran: it may have read Redis before the restart. */
  private again = false;
  /** What ensure() handed out, per kind. */
  private readonly targets = new Map<KindName, IndexTarget>();
  /** Per kind, the reindex that may be running, for the cleanup after one that died. */
  private readonly reindexes = new Map<KindName, LiveReindex>();

  constructor(
    private readonly es: Client,
    private readonly kinds: readonly { kind: DocumentKind; alias: string }[],
    private readonly reloads: ReloadRequests,
    private readonly log: Logger,
    /** An index was created again: wake the poller so its load begins now. */
    private readonly onCreated: () => void = () => undefined,
    /**
     * Whether no full load ever began through this Redis (no watermark epoch): a first start, or a
     * Redis that lost everything. An index made then is filled by the full load that such a start
     * runs anyway, which is no news worth a warning. (A Redis and an Elasticsearch that both lost
     * everything look the same as a first start, and are logged as one: the load restores both.)
     */
    private readonly neverSynced: () => Promise<boolean> = () => Promise.resolve(false),
  ) {}

  /**
   * The kind's index, created (and its kind's reload asked for) when missing. The same object on
   * every call, brought up to date: the writers given it at start see a plain index that was made
   * again behind an alias as an alias from then on (their writes carry `require_alias`, so one
   * after another delete fails instead of having Elasticsearch guess a mapping).
   */
  async ensure(name: KindName): Promise<IndexTarget> {
    const entry = this.entry(name);
    // The request goes before the index is made: made after, it would be lost to a crash or a
    // Redis away in between, and the next look would find the index there and ask for nothing.
    // A request for an index another syncer made first costs one more load, nothing else.
    let request = '';
    const { created, ...target } = await ensureIndex(
      this.es,
      entry.alias,
      this.log,
      entry.kind.definition,
      async () => {
        request = await this.reloads.request(name);
      },
    );
    if (created) {
      // Asked before the poller is woken, so that its answer predates anything a woken pass
      // writes (one Redis connection answers in order); not awaited first, so that a slow Redis
      // delays only the log line, not the wake-up.
      const firstStart = this.neverSynced().catch(() => false);
      this.onCreated();
      if (await firstStart)
        this.log.info({ index: entry.alias }, 'index is new: the first full load fills it');
      else
        this.log.warn(
          { index: entry.alias },
          'index was missing and is created again: every document of it is queued again',
        );
      await this.recordBirth(name, entry.alias, request);
    }
    const known = this.targets.get(name);
    if (!known) {
      this.targets.set(name, target);
      return target;
    }
    return Object.assign(known, target);
  }

  /**
   * Ask again for the load of `name`'s index if it was born empty and Redis has lost track of it
   * (see the header); resolves to whether it asked.
   */
  async askIfForgotten(name: KindName): Promise<boolean> {
    const entry = this.entry(name);
    const written = await writeIndexOf(this.es, entry.alias);
    if (!written) return false;
    if (written.index === entry.alias) return this.askIfReplaced(name, entry.kind, written);
    if (!written.bornEmpty) return false;
    if (await this.reloads.accountedFor(name, written.uuid)) return false;
    return this.askAgain(
      name,
      written,
      'index has no load on record (redis came back from an older save?)',
    );
  }

  /**
   * A plain index (made before the first start and used as it is, with no alias) can be deleted
   * and made again with no write failing: writes to it go without require_alias, there being no
   * alias to require, so the first one after the delete has Elasticsearch create it from that one
   * document, with a mapping guessed from it. It then holds only what was written since, and a
   * guessed mapping (the id as text) refuses the orphan sweep's sort. Redis records which index
   * each finished load filled (with no record, the index found is taken as that one): a plain
   * index that is not that one, and that no request, birth or load in force accounts for, is
   * asked to be loaded again. One whose mapping Elasticsearch guessed is deleted, whatever
   * accounts for it, and made again as a first start makes it, behind an alias (this process's
   * writers require the alias from then on: see ensure()). One with a mapping of its own
   * (restored from a snapshot, made again by hand) is only loaded. Resolves to whether it asked.
   */
  private async askIfReplaced(
    name: KindName,
    kind: DocumentKind,
    written: WriteIndex,
  ): Promise<boolean> {
    const loaded = await this.reloads.loaded(name);
    if (loaded === written.uuid) return false;
    // A guessed mapping is never right, whatever accounts for the index or whether anything is
    // recorded: a load into it never finishes (its orphan sweep sorts on the id, text there). A
    // reload asked for by an earlier look whose creation failed (a write made the index again
    // first) accounts for it, and kept it so for good.
    if (await hasGuessedMapping(this.es, written.index, kind.definition)) {
      // Everything in it is in Postgres too: the load that follows the new index writes it again.
      // A write that makes it again meanwhile only brings this back at the next look.
      await this.es.indices.delete({ index: written.index }, { ignore: [404] });
      this.log.warn(
        { index: written.index },
        'index was deleted, and a write made it again with a guessed mapping: deleted again, ' +
          'to be made with its own and loaded whole',
      );
      await this.ensure(name);
      return true;
    }
    if (loaded === null) {
      // Nothing to compare with (a load finished by an older version, a Redis restored without
      // the record): this index is the baseline, so that one replaced later is found.
      await this.reloads.adoptLoaded(name, written.uuid);
      return false;
    }
    if (await this.reloads.accountedFor(name, written.uuid)) return false;
    return this.askAgain(
      name,
      written,
      'index is not the one the last full load filled (deleted and made again?)',
    );
  }

  /** Ask for a load of `written` again, say why, and wake the poller; resolves to true. */
  private async askAgain(name: KindName, written: WriteIndex, why: string): Promise<true> {
    await this.reloads.requestAgain(name, written.uuid);
    this.log.warn({ index: written.index }, `${why}: every document of it is queued again`);
    this.onCreated();
    return true;
  }

  /**
   * Which index request `request`, just made, is for (ReloadRequests.born). Not recorded (it was
   * served or replaced already, or Elasticsearch or Redis failed just now), the index may be loaded
   * once more, never less.
   */
  private async recordBirth(name: KindName, alias: string, request: string): Promise<void> {
    try {
      const written = await writeIndexOf(this.es, alias);
      if (written) await this.reloads.born(name, request, written.uuid);
    } catch (err) {
      this.log.warn(
        { index: alias, err: (err as Error).message },
        'could not record which index the reload is for; it may be loaded twice',
      );
    }
  }

  /** From now on, each look cleans up after a reindex of `name` that died (see the header). */
  tidyAfterReindex(name: KindName, live: LiveReindex): void {
    this.reindexes.set(name, live);
  }

  /** Look every `everyMs`, until stop(). */
  start(everyMs = CHECK_MS): void {
    this.timer = setInterval(() => void this.checkAll(), everyMs);
    this.timer.unref();
  }

  /**
   * Look now, and resolve once a look begun after this call has ended (Redis restarted: requests
   * made since its last save may be gone, and a look under way may have read Redis before).
   */
  checkNow(): Promise<void> {
    return this.checkAll();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** A method, not a field read: it changes while a look awaits, which narrowing cannot see. */
  private askedAgain(): boolean {
    return this.again;
  }

  private entry(name: KindName): { kind: DocumentKind; alias: string } {
    const entry = this.kinds.find((k) => k.kind.name === name);
    if (!entry) throw new Error(`no index for ${name}`);
    return entry;
  }

  private checkAll(): Promise<void> {
    if (this.look) {
      this.again = true;
      return this.look;
    }
    this.look = this.lookUntilDone();
    return this.look;
  }

  /** Every kind, again while another look was asked for meanwhile; never throws. */
  private async lookUntilDone(): Promise<void> {
    try {
      do {
        this.again = false;
        // Each kind on its own: one index Elasticsearch will not answer for holds up no other.
        for (const { kind } of this.kinds) {
          try {
            await this.ensure(kind.name);
            await this.askIfForgotten(kind.name);
            const live = this.reindexes.get(kind.name);
            // Never throws. Found something, it waits a few seconds before acting (a reindex's
            // lease may be coming back): rare, and only this look waits.
            if (live)
              await removeReindexLeftovers(this.es, live, this.entry(kind.name).alias, this.log);
          } catch (err) {
            this.log.warn(
              { index: kind.name, err: (err as Error).message },
              'could not check the index; retrying',
            );
          }
        }
      } while (this.askedAgain());
    } finally {
      // In the same step as the last askedAgain() (no await between): a checkNow() after this
      // starts a look of its own instead of joining one that read Redis before it.
      this.look = null;
    }
  }
}
