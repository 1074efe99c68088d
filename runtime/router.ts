/**
 * The data path between threads (DESIGN.md "Performance shape"): a direct MessagePort to every
 * other thread of the node, and per-destination batching: every envelope sent to one thread
 * within one event-loop turn leaves in ONE postMessage, at `flush()` (called at the end of a
 * mailbox drain) or at the latest in the next check phase.
 *
 * The transport is this one class behind `send`/`flush`/`setPeer`; actors never see a port, so
 * a SharedArrayBuffer ring transport can replace it without touching them.
 */

import type { MessagePort } from 'node:worker_threads';
import type { Codec } from './codec.ts';
import { isEnvelope, type ActorId, type Envelope } from './envelope.ts';
import type { Transport, TransportStats } from './transport.ts';

export type RouterStats = TransportStats;

/**
 * A link that is not a MessagePort: e.g. the TCP link to another node. It takes whole batches
 * (it encodes them itself) and never throws.
 */
export type LinkSink = (batch: readonly Envelope[]) => void;

export type RouterOptions = {
  /**
   * Where envelopes go whose actor is not in the directory. A worker sends them to the host
   * thread, which knows the actors of other nodes and of workers added after this one booted.
   */
  readonly defaultThread?: string;
  /** Names a thread for ids the directory lacks (the host: `node::actor` goes to that node's link). */
  readonly resolve?: (actor: ActorId) => string | undefined;
  /**
   * Envelopes that arrive here for an actor of another thread are passed on, not delivered
   * (the host relays between workers and other nodes). Off on workers, so two stale
   * directories can never bounce an envelope back and forth.
   */
  readonly forward?: boolean;
};

export class Router implements Transport {
  readonly #self: string;
  readonly #codec: Codec;
  readonly #deliver: (batch: readonly Envelope[]) => void;
  readonly #directory: Map<ActorId, string>;
  readonly #options: RouterOptions;
  readonly #peers = new Map<string, MessagePort>();
  readonly #sinks = new Map<string, LinkSink>();
  readonly #outbox = new Map<string, Envelope[]>();
  #local: Envelope[] = [];
  #flushScheduled = false;
  #closed = false;
  #posts = 0;
  #out = 0;
  #in = 0;
  #unroutable = 0;
  #malformed = 0;
  #unencodable = 0;
  #forwarded = 0;

  /**
   * @param self this thread's name in the directory
   * @param directory which thread hosts each actor
   * @param deliver called with envelopes for actors of this thread (never re-entrantly from send)
   */
  constructor(self: string, directory: ReadonlyMap<ActorId, string>, codec: Codec, deliver: (batch: readonly Envelope[]) => void, options: RouterOptions = {}) {
    this.#self = self;
    this.#directory = new Map(directory);
    this.#options = options;
    this.#codec = codec;
    this.#deliver = deliver;
  }

  /** Installs (or replaces, after a restart) the port to thread `name`. */
  setPeer(name: string, port: MessagePort): void {
    this.#peers.get(name)?.close();
    this.#peers.set(name, port);
    port.on('message', (data: unknown) => this.#receive(data));
  }

  /** Forgets the port to a thread that died; envelopes for it are dropped until it is back. */
  dropPeer(name: string): void {
    this.#peers.get(name)?.close();
    this.#peers.delete(name);
  }

  /** Installs a non-port link (e.g. another node's TCP link) under a thread name. */
  setSink(name: string, sink: LinkSink): void {
    this.#sinks.set(name, sink);
  }

  dropSink(name: string): void {
    this.#sinks.delete(name);
  }

  /** Adds or moves actors (a worker added at run time, a namespace on other nodes). */
  addRoutes(entries: readonly (readonly [ActorId, string])[]): void {
    for (const [actor, thread] of entries) this.#directory.set(actor, thread);
  }

  hostOf(actor: ActorId): string | undefined {
    return this.#directory.get(actor) ?? this.#options.resolve?.(actor);
  }

  send(envelope: Envelope): void {
    if (this.#closed) return;
    const thread = this.hostOf(envelope.to) ?? this.#options.defaultThread;
    if (thread === undefined) {
      this.#unroutable += 1;
      return;
    }
    if (thread === this.#self) {
      this.#local.push(envelope);
    } else {
      let queue = this.#outbox.get(thread);
      if (queue === undefined) {
        queue = [];
        this.#outbox.set(thread, queue);
      }
      queue.push(envelope);
    }
    this.#scheduleFlush();
  }

  /** Posts everything queued: one postMessage per destination thread. */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#closed) return;
    for (const [thread, batch] of this.#outbox) {
      if (batch.length === 0) continue;
      this.#outbox.set(thread, []);
      const port = this.#peers.get(thread);
      if (port !== undefined) {
        this.#post(port, batch);
        continue;
      }
      const sink = this.#sinks.get(thread);
      if (sink === undefined) {
        this.#unroutable += batch.length;
        continue;
      }
      this.#posts += 1;
      this.#out += batch.length;
      sink(batch);
    }
    if (this.#local.length > 0) {
      const local = this.#local;
      this.#local = [];
      this.#deliver(local);
    }
  }

  /**
   * One post for the batch. An envelope the codec cannot carry (a function, a symbol: a bug in
   * whoever built it) must not take the others down or crash the thread: the batch is then
   * sent envelope by envelope and the ones that fail are counted and dropped.
   */
  #post(port: MessagePort, batch: readonly Envelope[]): void {
    try {
      const { data, transfer } = this.#codec.encode(batch);
      port.postMessage(data, transfer);
      this.#posts += 1;
      this.#out += batch.length;
      return;
    } catch {
      // Fall through to one post per envelope.
    }
    for (const envelope of batch) {
      try {
        const { data, transfer } = this.#codec.encode([envelope]);
        port.postMessage(data, transfer);
        this.#posts += 1;
        this.#out += 1;
      } catch {
        this.#unencodable += 1;
      }
    }
  }

  close(): void {
    this.#closed = true;
    for (const port of this.#peers.values()) port.close();
    this.#peers.clear();
    this.#sinks.clear();
    this.#outbox.clear();
    this.#local = [];
  }

  stats(): RouterStats {
    return { posts: this.#posts, envelopesOut: this.#out, envelopesIn: this.#in, unroutable: this.#unroutable, malformed: this.#malformed, unencodable: this.#unencodable, forwarded: this.#forwarded };
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      if (this.#flushScheduled) this.flush();
    });
  }

  /** A batch from a peer thread: anything that is not an array of envelopes is counted and dropped. */
  #receive(data: unknown): void {
    let decoded: unknown;
    try {
      decoded = this.#codec.decode(data);
    } catch {
      this.#malformed += 1;
      return;
    }
    if (!Array.isArray(decoded)) {
      this.#malformed += 1;
      return;
    }
    this.#accept(decoded as unknown[]);
  }

  #accept(decoded: readonly unknown[]): void {
    const batch: Envelope[] = [];
    for (const item of decoded) {
      if (!isEnvelope(item)) this.#malformed += 1;
      else if (this.#options.forward === true && this.#isElsewhere(item.to)) {
        this.#forwarded += 1;
        this.send(item);
      } else batch.push(item);
    }
    this.#in += batch.length;
    if (batch.length > 0) this.#deliver(batch);
  }

  /** True when an actor is known to live on another thread (or node) than this one. */
  #isElsewhere(actor: ActorId): boolean {
    const thread = this.hostOf(actor);
    return thread !== undefined && thread !== this.#self;
  }

  /**
   * Takes envelopes from outside the mesh (another node's link): the ones for this thread are
   * delivered, the ones for other threads are sent on. Unlike `send`, never delivered later in
   * this turn's flush: they are in the same position as a batch from a peer port.
   */
  receiveBatch(batch: readonly Envelope[]): void {
    this.#accept(batch);
  }
}
