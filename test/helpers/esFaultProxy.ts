/**
 * A fault-injecting HTTP proxy in front of the real Elasticsearch. It forwards requests and
 * responses as they are (the client insists on `x-elastic-product: Elasticsearch`), and simulates:
 *  - down(): the cluster or the network to it is gone. Connections are destroyed, open or new, so
 *    the client sees a connection error rather than an HTTP status.
 *  - rejectBulkItems(): a real cluster under write pressure (write thread pool queue full). `_bulk`
 *    still answers 200, but some items come back 429 `es_rejected_execution_exception`, unwritten.
 *    The chosen items are left out of the body forwarded to ES, and their 429s spliced into ES's
 *    answer at their original positions.
 *  - damageBulkAnswers(): a broken answer. One item of a `_bulk` is left out of the body forwarded
 *    to ES (so it is NOT written), and the answer either lacks its item ('drop': fewer items than
 *    operations) or has `{}` in its place ('empty': neither `index` nor `delete`). A client that
 *    acknowledges such an answer loses that write.
 *  - rejectBulkItemsTo(): every item whose target index (or alias), and document id, matches is
 *    answered 429 like rejectBulkItems() does, until forward(): one target that is overloaded for
 *    good, or one document's write retried for a long time.
 *  - failBulk(): after `after` more bulk requests, every `_bulk` is answered 400 (a permanent
 *    failure of the whole request, say a target that refuses writes) until forward().
 *  - holdBulkAnswersTo(): a `_bulk` with an item for a matching target is written by ES as sent,
 *    but its answer waits until forward(): a slow answer, or a write retried for a long time.
 *  - rejectSearches(): every `_search` is answered 429 (search thread pool full) until forward(),
 *    while writes go through.
 *  - holdRequests(): a request whose method and path match reaches ES only at forward(): a
 *    request sent by a process that was then paused, applied once it runs again; optionally
 *    answered with an error status all the same (applied, its answer lost on the way).
 *  - limitBulkBytes(): a `_bulk` body over that many bytes is answered 413 with an empty body and
 *    not written, as Elasticsearch answers one over its `http.max_content_length` (100 MB by
 *    default; a test cannot afford documents that big); or with the 429s Elasticsearch gives a
 *    request over its `indexing_pressure.memory.limit` (10 % of the heap: 53,687,091 bytes at a
 *    512 MB heap; checked on Elasticsearch 9.5 with one document of 12 MB, refused on its
 *    primary, and one of 75 MB, refused whole): see BulkLimit.
 * Per document id it counts bulk offers, sends to ES, rejections and damaged items; per target
 * index, items offered and when the last one came. Bodies are buffered whole.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * How limitBulkBytes refuses a body over its limit: 413 (`http.max_content_length`), 429 for the
 * request (indexing pressure on the node it reaches), or 200 with a 429 for every item (indexing
 * pressure on the primary shard, which refuses documents over about a fifth of the limit).
 */
export type BulkLimit = 'content-length' | 'indexing-pressure' | 'primary-pressure';

export interface BulkStats {
  requests: number;
  rejected: number; // items answered 429 by the proxy
  /** id -> times the client put it in a bulk / it was forwarded to ES / the proxy rejected it. */
  offered: Map<string, number>;
  sent: Map<string, number>;
  rejections: Map<string, number>;
  /** id -> times its item was withheld from ES and damaged in the answer. */
  damaged: Map<string, number>;
  /** target index (or alias) of bulk items -> items offered, and when the last one arrived (ms). */
  indices: Map<string, { items: number; lastAt: number }>;
  /** id -> the source line of the last item offered for it (what the client read). */
  lastSource: Map<string, string>;
}

export type BulkDamage = 'drop' | 'empty';

type BulkItem = { action: string; meta: { _id?: string; _index?: string }; lines: string[] };
type BulkResponse = { items: unknown[] } & Record<string, unknown>;

// Hop-by-hop or recomputed. The client compresses nothing by default, and fetch decompresses what
// ES sends, so content-encoding would lie.
const DROPPED = new Set(
  'host connection keep-alive transfer-encoding content-length content-encoding'.split(' '),
);
const BULK = /^\/(?:([^/?]+)\/)?_bulk(?:\?|$)/;
const SEARCH = /^\/(?:[^/?]+\/)?_search(?:\?|$)/;
const bump = (map: Map<string, number>, id: string) => map.set(id, (map.get(id) ?? 0) + 1);
const newStats = (): BulkStats => ({
  requests: 0,
  rejected: 0,
  offered: new Map(),
  sent: new Map(),
  rejections: new Map(),
  damaged: new Map(),
  indices: new Map(),
  lastSource: new Map(),
});

export class EsFaultProxy {
  readonly stats = newStats();
  private isDown = false;
  private reject = { fraction: 0, times: 0 };
  private damage: { mode: BulkDamage; times: number } = { mode: 'drop', times: 0 };
  private failing: { after: number } | null = null;
  private rejectTo: ((index: string, id: string) => boolean) | null = null;
  private refuseSearch = false;
  private maxBulkBytes = Infinity;
  private overBulkBytes: BulkLimit = 'content-length';
  private heldRequests: {
    match: (method: string, path: string) => boolean;
    released: Promise<void>;
    release: () => void;
    seen: number;
    answer: number | undefined;
  } | null = null;
  private hold: {
    match: (index: string) => boolean;
    released: Promise<void>;
    release: () => void;
  } | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly server = http.createServer((req, res) => {
    this.handle(req, res).catch(() => req.socket.destroy());
  });

  private constructor(private readonly target: string) {
    this.server.on('connection', (socket: Socket) => {
      if (this.isDown) return void socket.destroy();
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(target: string): Promise<EsFaultProxy> {
    const proxy = new EsFaultProxy(target);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  forward(): void {
    this.isDown = false;
    this.reject = { fraction: 0, times: 0 };
    this.damage = { mode: 'drop', times: 0 };
    this.failing = null;
    this.rejectTo = null;
    this.refuseSearch = false;
    this.maxBulkBytes = Infinity;
    this.hold?.release();
    this.hold = null;
    this.heldRequests?.release();
    this.heldRequests = null;
  }

  /** See the header; held answers go out at forward(). */
  holdBulkAnswersTo(match: (index: string) => boolean): void {
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    this.hold = { match, released, release };
  }

  /**
   * Hold every matching request unsent until forward(). With `answer`, a held request, once
   * released, is applied by ES all the same but answered with that status (a gateway that lost
   * the answer): the client cannot tell that it took effect.
   */
  holdRequests(match: (method: string, path: string) => boolean, answer?: number): void {
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    this.heldRequests = { match, released, release, seen: 0, answer };
  }

  /** How many requests holdRequests() holds or held. */
  get requestsHeld(): number {
    return this.heldRequests?.seen ?? 0;
  }

  down(): void {
    this.isDown = true;
    for (const socket of this.sockets) socket.destroy();
  }

  /** For the next `times` bulk requests, answer 429 for `fraction` of the items (at least one). */
  rejectBulkItems(fraction: number, times: number): void {
    this.reject = { fraction, times };
  }

  /** For the next `times` bulk requests, withhold one item from ES and damage its answer. */
  damageBulkAnswers(mode: BulkDamage, times: number): void {
    this.damage = { mode, times };
  }

  /** Answer 429 for every bulk item whose target (index, document id) matches, until forward(). */
  rejectBulkItemsTo(match: (index: string, id: string) => boolean): void {
    this.rejectTo = match;
  }

  /** Answer every `_search` 429 until forward(). */
  rejectSearches(): void {
    this.refuseSearch = true;
  }

  /** Refuse every `_bulk` whose body is over `bytes`, unwritten, as `as` says (see the header). */
  limitBulkBytes(bytes: number, as: BulkLimit = 'content-length'): void {
    this.maxBulkBytes = bytes;
    this.overBulkBytes = as;
  }

  /** Let `after` more bulk requests through, then answer every later one 400 until forward(). */
  failBulk(after: number): void {
    this.failing = { after };
  }

  resetStats(): void {
    Object.assign(this.stats, newStats());
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body = Buffer.concat(chunks);
    if (this.refuseSearch && SEARCH.test(req.url ?? '')) {
      const error = {
        type: 'es_rejected_execution_exception',
        reason: 'simulated by esFaultProxy',
      };
      return this.reply(res, 429, { 'content-type': 'application/json' }, { error, status: 429 });
    }
    const bulk = req.method === 'POST' ? BULK.exec(req.url ?? '') : null;
    let items: BulkItem[] = [];
    let rejected = new Set<number>();
    let damaged = new Set<number>();
    const how = { mode: this.damage.mode }; // as chosen now, whatever the test sets meanwhile
    if (bulk && body.length > this.maxBulkBytes) {
      this.stats.requests++;
      if (this.overBulkBytes === 'indexing-pressure') {
        const reason =
          'rejected execution of coordinating operation [coordinating_and_primary_bytes=0, ' +
          `replica_bytes=0, all_bytes=0, coordinating_operation_bytes=${body.length}, ` +
          `max_coordinating_bytes=${this.maxBulkBytes}]`;
        const error = { type: 'es_rejected_execution_exception', reason };
        const answer = { error: { root_cause: [error], ...error }, status: 429 };
        return this.reply(res, 429, { 'content-type': 'application/json' }, answer);
      }
      if (this.overBulkBytes === 'primary-pressure') {
        // As the primary shard words it: its part counted about four times, plus the request's
        // own bytes in flight; here the part as much as the body, which is over the limit.
        const reason =
          `rejected execution of primary operation [coordinating_and_primary_bytes=${body.length}, ` +
          `replica_bytes=0, all_bytes=${body.length}, primary_operation_bytes=${body.length}, ` +
          `max_primary_bytes=${this.maxBulkBytes}]`;
        const error = { type: 'es_rejected_execution_exception', reason };
        const items = parseBulk(body.toString('utf8')).map((item) => ({
          [item.action]: {
            _index: item.meta._index ?? bulk[1],
            _id: item.meta._id,
            status: 429,
            error,
          },
        }));
        const answer = { errors: true, took: 0, items };
        return this.reply(res, 200, { 'content-type': 'application/json' }, answer);
      }
      res.writeHead(413, { 'x-elastic-product': 'Elasticsearch', 'content-length': '0' });
      return void res.end();
    }
    if (bulk) {
      items = parseBulk(body.toString('utf8'));
      this.stats.requests++;
      for (const item of items) this.countTarget(item.meta._index ?? bulk[1] ?? '');
      if (this.refuseWholeBulk()) {
        const error = { type: 'illegal_argument_exception', reason: 'simulated by esFaultProxy' };
        return this.reply(res, 400, { 'content-type': 'application/json' }, { error, status: 400 });
      }
      if (this.reject.times > 0 && items.length > 0) {
        this.reject.times--;
        rejected = pick(items.length, this.reject.fraction);
      } else if (this.rejectTo) {
        const match = this.rejectTo;
        const targets = items.map((item) => item.meta._index ?? bulk[1] ?? '');
        rejected = new Set(
          [...targets.keys()].filter((i) => match(targets[i] ?? '', items[i]?.meta._id ?? '')),
        );
      } else if (this.damage.times > 0 && items.length > 0) {
        this.damage.times--;
        damaged = pick(items.length, 0);
      }
      for (const [i, item] of items.entries()) {
        bump(this.stats.offered, item.meta._id ?? '');
        this.stats.lastSource.set(item.meta._id ?? '', item.lines[1] ?? '');
        const tally = rejected.has(i)
          ? this.stats.rejections
          : damaged.has(i)
            ? this.stats.damaged
            : this.stats.sent;
        bump(tally, item.meta._id ?? '');
      }
      this.stats.rejected += rejected.size;
      const kept = items.filter((_, i) => !rejected.has(i) && !damaged.has(i));
      body = Buffer.from(kept.flatMap((item) => item.lines.map((l) => `${l}\n`)).join(''));
      if (kept.length === 0 && damaged.size > 0) {
        const answer = damage({ errors: false, took: 0, items: [] }, items, damaged, how);
        return this.reply(res, 200, { 'content-type': 'application/json' }, answer);
      }
      if (kept.length === 0) {
        const answer = splice({ errors: true, took: 0, items: [] }, items, rejected, bulk[1]);
        return this.reply(res, 200, { 'content-type': 'application/json' }, answer);
      }
    }
    const held = this.heldRequests;
    const wasHeld = held?.match(req.method ?? 'GET', req.url ?? '/') ?? false;
    if (held && wasHeld) {
      held.seen++;
      await held.released;
    }
    const upstream = await fetch(new URL(req.url ?? '/', this.target), {
      method: req.method ?? 'GET',
      headers: strip(Object.entries(req.headers)),
      ...(body.length > 0 ? { body } : {}),
    });
    if (held && wasHeld && held.answer !== undefined) {
      await upstream.arrayBuffer();
      const error = { type: 'simulated', reason: 'answer lost by esFaultProxy' };
      return this.reply(res, held.answer, { 'content-type': 'application/json' }, { error });
    }
    const raw = Buffer.from(await upstream.arrayBuffer());
    const hold = this.hold;
    if (bulk && hold && items.some((item) => hold.match(item.meta._index ?? bulk[1] ?? '')))
      await hold.released;
    const answer =
      bulk && rejected.size > 0 && upstream.status === 200
        ? splice(JSON.parse(raw.toString()) as BulkResponse, items, rejected, bulk[1])
        : bulk && damaged.size > 0 && upstream.status === 200
          ? damage(JSON.parse(raw.toString()) as BulkResponse, items, damaged, how)
          : raw;
    const headers = strip([...upstream.headers.entries()]);
    this.reply(res, upstream.status, headers, answer);
  }

  private countTarget(index: string): void {
    const seen = this.stats.indices.get(index) ?? { items: 0, lastAt: 0 };
    this.stats.indices.set(index, { items: seen.items + 1, lastAt: Date.now() });
  }

  /** Whether failBulk() says to answer this bulk request 400. */
  private refuseWholeBulk(): boolean {
    if (!this.failing) return false;
    if (this.failing.after <= 0) return true;
    this.failing.after--;
    return false;
  }

  private reply(res: http.ServerResponse, status: number, headers: object, body: object): void {
    // Went down while ES was answering: the client sees the connection drop instead.
    if (this.isDown) return void res.socket?.destroy();
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'x-elastic-product': 'Elasticsearch', ...headers });
    res.end(bytes);
  }
}

function strip(headers: [string, string | string[] | undefined][]) {
  const kept = headers.filter(([name, value]) => value !== undefined && !DROPPED.has(name));
  return Object.fromEntries(kept.map(([name, value]) => [name, String(value)]));
}

function parseBulk(ndjson: string): BulkItem[] {
  const lines = ndjson.split('\n').filter((line) => line.trim() !== '');
  const items: BulkItem[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '{}';
    const parsed = JSON.parse(line) as Record<string, BulkItem['meta']>;
    const action = Object.keys(parsed)[0] ?? 'index';
    const item: BulkItem = { action, meta: parsed[action] ?? {}, lines: [line] };
    if (action !== 'delete') item.lines.push(lines[++i] ?? '{}'); // index/create/update: a source
    items.push(item);
  }
  return items;
}

/** round(n * fraction) distinct random positions out of n, at least one. */
function pick(n: number, fraction: number): Set<number> {
  const shuffled = [...Array(n).keys()].map((i) => ({ i, key: Math.random() }));
  shuffled.sort((a, b) => a.key - b.key);
  return new Set(shuffled.slice(0, Math.max(1, Math.round(n * fraction))).map(({ i }) => i));
}

/** ES's answer for the items it saw, with the rejected items' 429s back in their places. */
function splice(response: BulkResponse, items: BulkItem[], rejected: Set<number>, index?: string) {
  const fromEs = [...response.items];
  const merged = items.map((item, i) => {
    if (!rejected.has(i)) return fromEs.shift();
    const error = {
      type: 'es_rejected_execution_exception',
      reason: 'rejected execution of coordinating operation [simulated by esFaultProxy]',
    };
    const { _index = index, _id } = item.meta;
    return { [item.action]: { _index, _id, status: 429, error } };
  });
  return { ...response, errors: true, items: merged };
}

/** ES's answer for the items it saw, with each damaged item left out ('drop') or `{}` ('empty'). */
function damage(
  response: BulkResponse,
  items: BulkItem[],
  damaged: Set<number>,
  how: { mode: BulkDamage },
) {
  const fromEs = [...response.items];
  const merged = items.flatMap((_, i) => {
    if (!damaged.has(i)) return [fromEs.shift()];
    return how.mode === 'drop' ? [] : [{}];
  });
  return { ...response, items: merged };
}
