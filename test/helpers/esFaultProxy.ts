/**
 * A fault-injecting HTTP proxy in front of the real Elasticsearch. It forwards requests and
 * responses as they are (the client insists on `x-elastic-product: Elasticsearch`), and simulates:
 *  - down(): the cluster or the network to it is gone. Connections are destroyed, open or new, so
 *    the client sees a connection error rather than an HTTP status.
 *  - rejectBulkItems(): a real cluster under write pressure (write thread pool queue full). `_bulk`
 *    still answers 200, but some items come back 429 `es_rejected_execution_exception`, unwritten.
 *    The chosen items are left out of the body forwarded to ES, and their 429s spliced into ES's
 *    answer at their original positions.
 * Per document id it counts bulk offers, sends to ES and rejections. Bodies are buffered whole.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface BulkStats {
  requests: number;
  rejected: number; // items answered 429 by the proxy
  /** id -> times the client put it in a bulk / it was forwarded to ES / the proxy rejected it. */
  offered: Map<string, number>;
  sent: Map<string, number>;
  rejections: Map<string, number>;
}

type BulkItem = { action: string; meta: { _id?: string; _index?: string }; lines: string[] };
type BulkResponse = { items: unknown[] } & Record<string, unknown>;

// Hop-by-hop or recomputed. The client compresses nothing by default, and fetch decompresses what
// ES sends, so content-encoding would lie.
const DROPPED = new Set(
  'host connection keep-alive transfer-encoding content-length content-encoding'.split(' '),
);
const BULK = /^\/(?:([^/?]+)\/)?_bulk(?:\?|$)/;
const bump = (map: Map<string, number>, id: string) => map.set(id, (map.get(id) ?? 0) + 1);
const newStats = (): BulkStats => ({
  requests: 0,
  rejected: 0,
  offered: new Map(),
  sent: new Map(),
  rejections: new Map(),
});

export class EsFaultProxy {
  readonly stats = newStats();
  private isDown = false;
  private reject = { fraction: 0, times: 0 };
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
  }

  down(): void {
    this.isDown = true;
    for (const socket of this.sockets) socket.destroy();
  }

  /** For the next `times` bulk requests, answer 429 for `fraction` of the items (at least one). */
  rejectBulkItems(fraction: number, times: number): void {
    this.reject = { fraction, times };
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
    const bulk = req.method === 'POST' ? BULK.exec(req.url ?? '') : null;
    let items: BulkItem[] = [];
    let rejected = new Set<number>();
    if (bulk) {
      items = parseBulk(body.toString('utf8'));
      this.stats.requests++;
      if (this.reject.times > 0 && items.length > 0) {
        this.reject.times--;
        rejected = pick(items.length, this.reject.fraction);
      }
      for (const [i, item] of items.entries()) {
        bump(this.stats.offered, item.meta._id ?? '');
        bump(rejected.has(i) ? this.stats.rejections : this.stats.sent, item.meta._id ?? '');
      }
      this.stats.rejected += rejected.size;
      const kept = items.filter((_, i) => !rejected.has(i));
      body = Buffer.from(kept.flatMap((item) => item.lines.map((l) => `${l}\n`)).join(''));
      if (kept.length === 0) {
        const answer = splice({ errors: true, took: 0, items: [] }, items, rejected, bulk[1]);
        return this.reply(res, 200, { 'content-type': 'application/json' }, answer);
      }
    }
    const upstream = await fetch(new URL(req.url ?? '/', this.target), {
      method: req.method ?? 'GET',
      headers: strip(Object.entries(req.headers)),
      ...(body.length > 0 ? { body } : {}),
    });
    const raw = Buffer.from(await upstream.arrayBuffer());
    const answer =
      bulk && rejected.size > 0 && upstream.status === 200
        ? splice(JSON.parse(raw.toString()) as BulkResponse, items, rejected, bulk[1])
        : raw;
    const headers = strip([...upstream.headers.entries()]);
    this.reply(res, upstream.status, headers, answer);
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
