/**
 * A TCP proxy in front of a real service, for fault tests: forward, blackhole (a silent half-open
 * peer), refuse (service down), drop connections once, and optionally lose PostgreSQL
 * notifications the way a transaction-mode pooler silently loses LISTEN. Hazards:
 * - A blackholed connection never comes back, even after forward(): bytes were dropped, so its
 *   protocol stream is corrupt. It stays open and silent (a client's FIN is not answered either)
 *   until dropConnections() or close(), like a peer gone behind a NAT. Only new connections
 *   forward again. Its upstream stays connected too, and its bytes are read and dropped, so the
 *   server never blocks on it (a real half-open peer would leave the server's send buffer full).
 * - refuse() closes the listening socket and listens again on the same port on forward() or
 *   blackhole(). Another process could take the port in between; listen() then rejects loudly.
 * - dropPgNotifications parses plaintext only. After an SSLRequest or GSSENCRequest answered 'S' or
 *   'G' the stream is encrypted: it is then forwarded untouched and notifications are NOT dropped.
 * - No backpressure (writes are not paused on a full buffer): fine for test-sized traffic only.
 */
import net from 'node:net';

export interface FaultProxyOptions {
  /** Drop NotificationResponse ('A') messages from the server: LISTEN "works" but hears nothing. */
  dropPgNotifications?: boolean;
}

/** `silent`: blackholed, every byte either way is read and dropped, and nothing is closed. */
type Pair = { client: net.Socket; upstream: net.Socket | null; silent: boolean };

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const NOTIFICATION_RESPONSE = 0x41; // 'A'

export class FaultProxy {
  mode: 'forward' | 'blackhole' | 'refuse' = 'forward';
  port = 0;
  droppedNotifications = 0;
  private server: net.Server | null = null;
  private readonly pairs = new Set<Pair>();

  constructor(
    private readonly target: { host: string; port: number },
    private readonly options: FaultProxyOptions = {},
  ) {}

  forward(): Promise<void> {
    this.mode = 'forward';
    return this.listen();
  }

  /** Existing and new connections go silent in both directions (a half-open peer). */
  blackhole(): Promise<void> {
    this.mode = 'blackhole';
    for (const pair of this.pairs) pair.silent = true;
    return this.listen();
  }

  /** Reset every connection and stop listening: connects fail with ECONNREFUSED. */
  refuse(): Promise<void> {
    this.mode = 'refuse';
    return this.close();
  }

  /** Reset every current connection once; new ones are served in the current mode. */
  dropConnections(): void {
    for (const pair of this.pairs) {
      pair.client.resetAndDestroy();
      pair.upstream?.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.dropConnections();
    const server = this.server;
    this.server = null;
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(null)));
  }

  /** Listen on 127.0.0.1: a random port the first time, the same one after refuse(). */
  async listen(): Promise<void> {
    if (this.server) return;
    const server = net.createServer({ allowHalfOpen: true }, (client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', resolve);
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  private accept(client: net.Socket): void {
    client.on('error', () => undefined); // resets are the point of this class
    if (this.mode === 'refuse') return void client.destroy(); // accepted while closing
    const pair: Pair = { client, upstream: null, silent: this.mode === 'blackhole' };
    this.pairs.add(pair);
    client.on('close', () => {
      this.pairs.delete(pair);
      pair.upstream?.destroy();
    });
    if (pair.silent) return void client.resume(); // read and drop, never answer
    const upstream = net.connect({ ...this.target, allowHalfOpen: true });
    pair.upstream = upstream;
    upstream.on('error', () => undefined);
    upstream.on('close', () => !pair.silent && client.destroy());
    client.on('end', () => !pair.silent && upstream.end());
    upstream.on('end', () => !pair.silent && client.end());
    const filter = this.options.dropPgNotifications ? this.pgFilter() : null;
    client.on('data', (chunk: Buffer) => {
      filter?.fromClient(chunk);
      if (!pair.silent) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (pair.silent) return;
      const out = filter ? filter.fromServer(chunk) : chunk;
      if (out.length > 0) client.write(out);
    });
  }

  /**
   * Server messages are 1 type byte + int32 length (counting itself); a chunk may hold several or
   * part of one, so the tail waits for the next chunk. Before the startup message the client may
   * send SSLRequest/GSSENCRequest, answered by one bare byte ('N' = go on in plaintext).
   */
  private pgFilter() {
    let startup = true; // the client has not sent its StartupMessage yet
    let bareBytes = 0; // single-byte answers owed by the server
    let encrypted = false;
    let pending: Buffer = Buffer.alloc(0);
    return {
      fromClient: (chunk: Buffer) => {
        if (!startup || chunk.length < 8) return;
        const code = chunk.readInt32BE(4);
        if (chunk.readInt32BE(0) === 8 && (code === SSL_REQUEST || code === GSSENC_REQUEST))
          bareBytes++;
        else startup = false;
      },
      fromServer: (chunk: Buffer): Buffer => {
        if (encrypted) return chunk;
        pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
        const out: Buffer[] = [];
        let at = 0;
        for (; bareBytes > 0 && at < pending.length; bareBytes--, at++) {
          out.push(pending.subarray(at, at + 1));
          encrypted ||= pending[at] === 0x53 || pending[at] === 0x47; // 'S', 'G': TLS or GSSAPI
        }
        while (!encrypted && pending.length - at >= 5) {
          const size = 1 + pending.readInt32BE(at + 1);
          if (pending.length - at < size) break;
          if (pending[at] === NOTIFICATION_RESPONSE) this.droppedNotifications++;
          else out.push(pending.subarray(at, at + size));
          at += size;
        }
        if (encrypted) out.push(pending.subarray(at));
        pending = encrypted ? Buffer.alloc(0) : pending.subarray(at);
        return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
      },
    };
  }
}

/** A proxy listening on 127.0.0.1:<random port> in front of the host and port of `targetUrl`. */
export async function startFaultProxy(
  targetUrl: string,
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  const url = new URL(targetUrl);
  const proxy = new FaultProxy({ host: url.hostname, port: Number(url.port || 5432) }, options);
  await proxy.listen();
  return proxy;
}

/** The same connection URL (user, database, parameters), but through the proxy. */
export function proxiedUrl(url: string, proxy: FaultProxy): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(proxy.port);
  return parsed.toString();
}
