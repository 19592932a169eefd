/**
 * The LISTEN side: one dedicated connection (pg-listen) that hears the triggers' messages.
 *
 * NOTIFY is a hint, not a record: messages sent while we are disconnected are gone. So after every
 * (re)connect the listener first LISTENs, then proves the connection works, then asks for a
 * catch-up pass (`onConnected`), which reads the durable trace. pg-listen's own reconnection gives
 * up after a few seconds and its health check has no timeout, so it is switched off and this class
 * supervises the connection itself: reconnect forever with capped backoff, and a heartbeat that
 * sends a NOTIFY to itself and must hear it back in time. That also catches the worst cases: a
 * half-open socket (no error, no data) and a pooler that silently drops LISTEN.
 */
import { randomBytes } from 'node:crypto';
import pgListen, { type Subscriber } from 'pg-listen';
import type { Logger } from '../logger.js';
import { RetryDelays } from '../util/backoff.js';
import { sleep } from '../util/sleep.js';
import { CHANNEL, parseNotification, type ChangeNotification } from './notification.js';
import { withTimeout } from '../util/timeouts.js';
import { isTransientError } from '../errors.js';

// pg-listen is CommonJS with `exports.default`.
const createSubscriber = pgListen.default;

/** The sending transaction of a payload that did not parse (a message of a newer format, say). */
const TXID_IN_PAYLOAD = /"x"\s*:\s*"(\d{1,20})"/;

export interface ListenerHandlers {
  onChange(change: ChangeNotification): void;
  /**
   * A message that did not parse, with the transaction it names if that much can be read: the
   * transaction's other messages are then not all of it.
   */
  onMalformed?(txid: string | undefined): void;
  /** Called after every successful (re)connect, once LISTEN is proven to work. */
  onConnected(): void;
  /**
   * Called with the server-side session of a connection we gave up on (half-open). That session
   * may live on at the server; if its socket buffer fills, it stops draining the notification
   * queue, and a full queue makes every NOTIFY (every catalog write) fail. End it.
   */
  onAbandonedSession?(pid: number): void;
  /**
   * Our own heartbeat came back. Notifications arrive in commit order, so every transaction that
   * committed before it has been heard in full by now. Called in stream order, before any later
   * notification.
   */
  onBarrier?(): void;
  /**
   * A connection was given up (or failed before it was in use): called at once, before anything
   * else is heard. Messages it delivered may be part of a transaction's only.
   */
  onDisconnected?(): void;
  /** A heartbeat came back on the current connection (every `heartbeatMs`): we still listen. */
  onHeartbeat?(): void;
}

export interface ListenerOptions {
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  maxBackoffMs?: number;
}

export class ListenSelfCheckError extends Error {
  constructor(timeoutMs: number) {
    super(
      `LISTEN self-check failed: a NOTIFY sent on the listener connection did not come back within ` +
        `${timeoutMs} ms. Does the listener's connection (DATABASE_LISTEN_URL, or DATABASE_URL when ` +
        'that is unset) go through a pooler in transaction mode (PgBouncer)? LISTEN needs a ' +
        'direct connection or session pooling: point DATABASE_LISTEN_URL straight at PostgreSQL.',
    );
    this.name = 'ListenSelfCheckError';
  }
}

export class ChangeListener {
  connected = false;
  private stopRequested = false;
  private readonly wake = new AbortController();
  private readonly heartbeatChannel = `etl_heartbeat_${randomBytes(6).toString('hex')}`;
  private readonly heartbeatMs: number;
  private readonly heartbeatTimeoutMs: number;
  private readonly maxBackoffMs: number;
  private running: Promise<void> | null = null;
  /** Resolvers waiting for a heartbeat echo, by sequence number. */
  private readonly echoes = new Map<string, () => void>();
  private sequence = 0;
  /** The server process of the current connection, learned from our own heartbeat echo. */
  private backendPid: number | null = null;
  /** The connection notifications currently come from. */
  private current: Subscriber | null = null;
  /**
   * Connections given up: a half-open socket can still deliver what it had buffered after its
   * replacement took over, and those late messages must not mix with the new connection's.
   */
  private readonly retired = new WeakSet<Subscriber>();

  constructor(
    private readonly databaseUrl: string,
    private readonly log: Logger,
    private readonly handlers: ListenerHandlers,
    options: ListenerOptions = {},
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 5_000;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 5_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
  }

  /**
   * Connect, LISTEN and pass the self-check once, then keep the connection alive in the
   * background. Rejects if the first connection fails for a reason no retry cures (a refused
   * login, a database that does not exist, a LISTEN that does not hear itself: a pooler): a
   * misconfiguration. An outage at start (a connect or LISTEN that times out or is refused, the
   * server restarting) is what the reconnect loop is for: the syncer starts and polls meanwhile,
   * as it does whenever the connection is lost. Dying instead would leave a syncer restarted
   * during a network fault on the listener's path down until someone restarts it again.
   */
  async start(): Promise<void> {
    let first: Subscriber | null = null;
    try {
      first = await this.connect();
    } catch (err) {
      if (!isTransientError(err)) throw err;
      this.log.warn(
        { err: (err as Error).message },
        'listener cannot connect yet; polling meanwhile',
      );
    }
    this.running = this.supervise(first);
  }

  async stop(): Promise<void> {
    this.stopRequested = true;
    this.wake.abort();
    await this.running;
  }

  /** A method, not a field read: it changes while we await, which narrowing cannot see. */
  private stopped(): boolean {
    return this.stopRequested;
  }

  private async connect(): Promise<Subscriber> {
    const subscriber = createSubscriber(
      { connectionString: this.databaseUrl, application_name: 'movies-etl listener' },
      {
        paranoidChecking: false, // our heartbeat replaces it (it has no timeout)
        retryLimit: 1, // no internal reconnect: supervise() owns reconnection
        parse: (raw: string) => raw, // we validate payloads ourselves; a parse error must not look like a dead connection
        serialize: (raw: unknown) => String(raw),
      },
    );
    subscriber.events.on('error', (err: Error) => {
      this.log.warn({ err: err.message }, 'listener connection error');
      this.connected = false;
    });
    subscriber.notifications.on(CHANNEL, (payload: string | undefined) => {
      if (!this.retired.has(subscriber)) this.receive(payload);
    });
    subscriber.events.on(
      'notification',
      (n: { channel: string; processId: number; payload?: unknown }) => {
        if (n.channel !== this.heartbeatChannel) return;
        this.backendPid = n.processId;
        if (this.current === subscriber) this.handlers.onBarrier?.();
        const resolve = typeof n.payload === 'string' ? this.echoes.get(n.payload) : undefined;
        resolve?.();
      },
    );
    try {
      await withTimeout(subscriber.connect(), this.heartbeatTimeoutMs * 2, 'connect');
      await withTimeout(
        Promise.all([subscriber.listenTo(CHANNEL), subscriber.listenTo(this.heartbeatChannel)]),
        this.heartbeatTimeoutMs,
        'LISTEN',
      );
      if (!(await this.heartbeat(subscriber)))
        throw new ListenSelfCheckError(this.heartbeatTimeoutMs);
    } catch (err) {
      this.retire(subscriber);
      throw err;
    }
    this.connected = true;
    this.current = subscriber;
    this.log.info({ channel: CHANNEL }, 'listening for changes');
    this.handlers.onConnected();
    return subscriber;
  }

  private receive(payload: string | undefined): void {
    const parsed = parseNotification(payload);
    if (!parsed.ok) {
      this.log.warn(
        { reason: parsed.reason, payload: payload?.slice(0, 200), bytes: payload?.length ?? 0 },
        'skipping malformed notification',
      );
      this.handlers.onMalformed?.(TXID_IN_PAYLOAD.exec(payload ?? '')?.[1]);
      return;
    }
    try {
      this.handlers.onChange(parsed.change);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'change handler failed');
    }
  }

  /**
   * A heartbeat now: resolves true once it came back (onBarrier has run), false when there is no
   * working connection to send it on or it timed out.
   */
  async barrier(): Promise<boolean> {
    const subscriber = this.current;
    if (!subscriber || !this.connected) return false;
    return this.heartbeat(subscriber);
  }

  /** NOTIFY ourselves and wait for the echo: proves the socket and the LISTEN both work. */
  private async heartbeat(subscriber: Subscriber): Promise<boolean> {
    const token = String(++this.sequence);
    const echoed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.heartbeatTimeoutMs);
      this.echoes.set(token, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    try {
      await withTimeout(
        subscriber.notify(this.heartbeatChannel, token),
        this.heartbeatTimeoutMs,
        'NOTIFY',
      );
      return await echoed;
    } catch {
      return false;
    } finally {
      this.echoes.delete(token);
    }
  }

  private async supervise(first: Subscriber | null): Promise<void> {
    let subscriber: Subscriber | null = first;
    let attempt = 0;
    const delays = new RetryDelays({ initialMs: 250, maxMs: this.maxBackoffMs });
    while (!this.stopped()) {
      if (subscriber) {
        await this.watch(subscriber);
        this.connected = false;
        this.current = null;
        this.retire(subscriber);
        subscriber = null;
        const abandoned = this.backendPid;
        this.backendPid = null;
        if (abandoned !== null && !this.stopped()) this.handlers.onAbandonedSession?.(abandoned);
        if (this.stopped()) break;
        this.log.warn('listener connection lost; reconnecting');
      }
      await sleep(delays.next(), this.wake.signal);
      if (this.stopped()) break;
      try {
        subscriber = await this.connect();
        attempt = 0;
        delays.reset();
      } catch (err) {
        attempt++;
        this.log.warn({ err: (err as Error).message, attempt }, 'listener reconnect failed');
      }
    }
  }

  /** Nothing more is heard from it, and what it delivered is not trusted to be whole. */
  private retire(subscriber: Subscriber): void {
    this.retired.add(subscriber);
    this.handlers.onDisconnected?.();
    void closeQuietly(subscriber);
  }

  /** Returns when the connection stops answering heartbeats, or on stop(). */
  private async watch(subscriber: Subscriber): Promise<void> {
    while (!this.stopped()) {
      await sleep(this.heartbeatMs, this.wake.signal);
      if (this.stopped()) return;
      if (!this.connected || !(await this.heartbeat(subscriber))) return;
      this.handlers.onHeartbeat?.();
    }
  }
}

/** Close without waiting on a half-open socket: end() can hang until TCP gives up. */
async function closeQuietly(subscriber: Subscriber): Promise<void> {
  subscriber.events.removeAllListeners('error');
  subscriber.events.on('error', () => undefined);
  await withTimeout(subscriber.close(), 1_000, 'close').catch(() => undefined);
}
