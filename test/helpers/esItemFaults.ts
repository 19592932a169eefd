/**
 * A second fault-injecting HTTP proxy for Elasticsearch, meant to sit behind (or instead of)
 * esFaultProxy.ts, for what that one does not do:
 *  - rejectItems(fraction, status): `_bulk` answers 200 but a share of the items come back with
 *    `status` (429, 500, 503 ...) unwritten, the way a cluster with a busy or a failing shard
 *    answers. The chosen items are left out of the body sent on, and their errors spliced into the
 *    answer at their original positions. Until stopRejecting().
 *  - hold(): requests are accepted and then wait, unanswered, until release(), as if the cluster
 *    were frozen (a GC pause, SIGSTOP). Used when there is no local Elasticsearch process to stop.
 * Hazards: bodies are buffered whole (test-sized traffic only); items are chosen with Math.random
 * (which ones is not part of any replayable schedule, only the share is).
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

type BulkItem = { action: string; meta: { _id?: string; _index?: string }; lines: string[] };
type BulkResponse = { items?: unknown[] } & Record<string, unknown>;

const DROPPED = new Set(
  'host connection keep-alive transfer-encoding content-length content-encoding'.split(' '),
);
const BULK = /^\/(?:([^/?]+)\/)?_bulk(?:\?|$)/;
const ERROR_TYPES: Record<number, string> = {
  429: 'es_rejected_execution_exception',
  500: 'exception',
  503: 'unavailable_shards_exception',
};

export class EsItemFaults {
  /** Items answered with an error by this proxy, and requests that were held. */
  readonly stats = { rejected: 0, held: 0 };
  private reject: { fraction: number; status: number } | null = null;
  private gate: { promise: Promise<void>; open: () => void } | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly server = http.createServer((req, res) => {
    this.handle(req, res).catch(() => req.socket.destroy());
  });

  private constructor(private readonly target: string) {
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(target: string): Promise<EsItemFaults> {
    const proxy = new EsItemFaults(target);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  rejectItems(fraction: number, status: number): void {
    this.reject = { fraction, status };
  }

  stopRejecting(): void {
    this.reject = null;
  }

  hold(): void {
    if (this.gate) return;
    let open: () => void = () => undefined;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.gate = { promise, open };
  }

  release(): void {
    this.gate?.open();
    this.gate = null;
  }

  async close(): Promise<void> {
    this.release();
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (this.gate) {
      this.stats.held++;
      await this.gate.promise;
    }
    let body = Buffer.concat(chunks);
    const bulk = req.method === 'POST' ? BULK.exec(req.url ?? '') : null;
    const reject = this.reject;
    let items: BulkItem[] = [];
    let rejected = new Set<number>();
    if (bulk && reject) {
      items = parseBulk(body.toString('utf8'));
      rejected = pick(items.length, reject.fraction);
      this.stats.rejected += rejected.size;
      const kept = items.filter((_, i) => !rejected.has(i));
      body = Buffer.from(kept.flatMap((item) => item.lines.map((l) => `${l}\n`)).join(''));
      if (kept.length === 0) {
        const answer = splice({ items: [] }, items, rejected, reject.status, bulk[1]);
        return reply(res, 200, { 'content-type': 'application/json' }, answer);
      }
    }
    const upstream = await fetch(new URL(req.url ?? '/', this.target), {
      method: req.method ?? 'GET',
      headers: strip(Object.entries(req.headers)),
      ...(body.length > 0 ? { body } : {}),
    });
    const raw = Buffer.from(await upstream.arrayBuffer());
    const answer =
      bulk && reject && rejected.size > 0 && upstream.status === 200
        ? splice(
            JSON.parse(raw.toString()) as BulkResponse,
            items,
            rejected,
            reject.status,
            bulk[1],
          )
        : raw;
    reply(res, upstream.status, strip([...upstream.headers.entries()]), answer);
  }
}

function reply(res: http.ServerResponse, status: number, headers: object, body: object): void {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'x-elastic-product': 'Elasticsearch', ...headers });
  res.end(bytes);
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
    if (action !== 'delete') item.lines.push(lines[++i] ?? '{}');
    items.push(item);
  }
  return items;
}

/** round(n * fraction) distinct random positions out of n, at least one when n > 0. */
function pick(n: number, fraction: number): Set<number> {
  if (n === 0) return new Set();
  const shuffled = [...Array(n).keys()].map((i) => ({ i, key: Math.random() }));
  shuffled.sort((a, b) => a.key - b.key);
  return new Set(shuffled.slice(0, Math.max(1, Math.round(n * fraction))).map(({ i }) => i));
}

/**
 * ES's answer for the items it saw, with the rejected items' errors back in their places. A
 * response filtered by `filter_path` (items.*.status,items.*.error) is matched the same way.
 */
function splice(
  response: BulkResponse,
  items: BulkItem[],
  rejected: Set<number>,
  status: number,
  index?: string,
) {
  const fromEs = [...(response.items ?? [])];
  const merged = items.map((item, i) => {
    if (!rejected.has(i)) return fromEs.shift();
    const error = {
      type: ERROR_TYPES[status] ?? 'exception',
      reason: `simulated by esItemFaults (status ${status})`,
    };
    const { _index = index, _id } = item.meta;
    return { [item.action]: { _index, _id, status, error } };
  });
  return { ...response, errors: true, items: merged };
}
