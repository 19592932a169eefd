/**
 * Which writing transactions the live path has already put in the queue, so the poller does not
 * read them a second time (which would index every live edit twice).
 *
 * A transaction may be skipped by the poller only when both hold:
 *  1. Every notification it sent has been received. NOTIFY delivers in commit order, so once our
 *     own heartbeat (a NOTIFY on the same connection) comes back, every transaction that committed
 *     before it has been heard in full: `barrier()` seals what was heard so far. A transaction that
 *     said "many rows" (keys not listed) is never skipped. "In full" needs the triggers' help: a
 *     transaction's statements read the doorbell one by one, so some could ring and others stay
 *     silent; since migrations/0006 a transaction that rang keeps ringing, and one that stayed
 *     silent says "many" in every message after, so heard messages never miss a statement unsaid.
 *  2. Its films are durably in the Redis queue: a drain of the capture's pending ids that began
 *     after the seal has completed. Skipped before that, a crash would lose the change, since the
 *     watermark moves past it.
 * A (re)connect forgets whatever was heard but not sealed: the old connection may have delivered
 * part of a transaction's messages. A Redis restart (the poller sees its run_id change) forgets
 * what was handled: a Redis with persistence comes back with what it last saved, without the
 * films queued since. Anything not proven handled is simply read again.
 */

/** Bounded memory whatever the write rate: past this the oldest entries are re-read instead. */
const MAX_HANDLED = 200_000;

export class HandledTransactions {
  /** Heard since the last barrier: txid -> whether every message listed its keys. */
  private heard = new Map<string, boolean>();
  /** Sealed by a barrier, waiting for a drain that began after it. */
  private sealed: { txids: Map<string, boolean>; afterDrain: number }[] = [];
  private readonly handled = new Set<string>();
  private drainsBegun = 0;

  /** A notification of transaction `txid`; `listed` is false for a "many rows" message. */
  heardFrom(txid: string, listed: boolean): void {
    this.heard.set(txid, (this.heard.get(txid) ?? true) && listed);
  }

  /**
   * A message of `txid` was not acted on (another syncer captured when it came): if earlier ones
   * were heard, the transaction is not queued whole here. Nothing is kept for one not heard.
   */
  missed(txid: string): void {
    if (this.heard.has(txid)) this.heard.set(txid, false);
  }

  /** Something was heard since the last barrier (only then does a barrier seal anything). */
  get unsealed(): boolean {
    return this.heard.size > 0;
  }

  /** Our heartbeat came back: everything that committed before it has been heard. */
  barrier(): void {
    if (this.heard.size === 0) return;
    this.sealed.push({ txids: this.heard, afterDrain: this.drainsBegun });
    this.heard = new Map();
  }

  /**
   * The listener (re)connected or lost its connection: unsealed messages may be partial, so none
   * of their transactions is to be skipped. Marked, not dropped: a reconnect's reset comes after
   * the new connection's first messages may have been taken (it waits for the doorbell), and a
   * transaction dropped here would look whole from its messages after it.
   */
  reset(): void {
    for (const txid of this.heard.keys()) this.heard.set(txid, false);
  }

  /** A drain of pending ids into the queue begins; pass the result to drained() on success. */
  beginDrain(): number {
    return ++this.drainsBegun;
  }

  drained(drain: number): void {
    const ready = this.sealed.filter((s) => s.afterDrain < drain);
    if (ready.length === 0) return;
    this.sealed = this.sealed.filter((s) => s.afterDrain >= drain);
    for (const { txids } of ready) {
      for (const [txid, listed] of txids) if (listed) this.handled.add(txid);
    }
    if (this.handled.size > MAX_HANDLED) {
      const excess = this.handled.size - MAX_HANDLED;
      let i = 0;
      for (const txid of this.handled) {
        if (i++ >= excess) break;
        this.handled.delete(txid);
      }
    }
  }

  /** For the poller: this transaction's rows are in the queue already. */
  has(txid: string): boolean {
    return this.handled.has(txid);
  }

  /**
   * Redis restarted, maybe with older data: what was queued may be gone, so nothing counts as
   * handled any more (the poller reads it again). Nor will what is heard or sealed now: a drain
   * may have sent its films to the server as it was, and the next drain, into the server as it
   * is, would then prove nothing about them (kept, they became handled, and their rows skipped).
   * What is heard is kept as not to be skipped, not dropped: more messages of a transaction may
   * still come, and would otherwise look like the whole of it.
   */
  forgetAll(): void {
    this.handled.clear();
    this.sealed = [];
    for (const txid of this.heard.keys()) this.heard.set(txid, false);
  }

  /** Transactions below every watermark's xmin can never be read again. */
  forgetBelow(xmin: string): void {
    const floor = BigInt(xmin);
    for (const txid of this.handled) if (BigInt(txid) < floor) this.handled.delete(txid);
  }

  get size(): number {
    return this.handled.size;
  }
}
