/**
 * The data path between threads (DESIGN.md "Performance shape"): a direct MessagePort to every
 * other thread of the node, and per-destination batching: every envelope sent to one thread
 * within one event-loop turn leaves in ONE postMessage, at `flush()` (called at the end of a
 * mailbox drain) or at the latest in the next check phase.
 *
 * This is the MessagePort implementation of `Transport` (transport.ts), and `portTransport` its
 * `TransportKind`: the only place that knows a link is a port. Actors, the actor host and the
 * actor system see the interface only, so a SharedArrayBuffer ring transport can replace it.
 */

import { serialize } from 'node:v8';
import { MessageChannel, MessagePort, type TransferListItem } from 'node:worker_threads';
import type { Codec } from './codec.ts';
import { isEnvelope, type ActorId, type Envelope } from './envelope.ts';
import type { Deliver, LinkSink, PeerLink, Transport, TransportKind, TransportOptions, TransportStats } from './transport.ts';

export type { LinkSink } from './transport.ts';
export type RouterStats = TransportStats;
export type RouterOptions = TransportOptions;

/**
 * With the clone codec the bytes a post copies are not observable; a post is measured with
 * this probability by serializing its batch again with v8.serialize (V8's ValueSerializer, the
 * format structured clone writes): about 1% extra serialization. Drawn at random, not every
 * n-th post, so the sample cannot fall in step with a thread's pattern of destinations (a
 * large prepare to each backup, then a small batch of replies). Bytes from the msgpack codec
 * are counted on every post.
 */
const cloneSizeSampleRate = 1 / 128;

/**
 * Clone sizes are sampled only when asked for: the runtime benchmark sets
 * HARET_MEASURE_POST_BYTES=1 before it starts a node (read when a router is made; workers
 * inherit the environment), so a production node pays nothing for them.
 */
function cloneBytesWanted(): boolean {
  return process.env['HARET_MEASURE_POST_BYTES'] === '1';
}

/**
 * What every router of this thread has posted so far (a thread has one router per node): how
 * the runtime benchmark reads the main thread's figures, whose router no status report carries.
 */
export type ThreadPostTotals = { readonly posts: number; readonly envelopesOut: number; readonly bytesMeasured: number; readonly postsMeasured: number };

const threadTotals = { posts: 0, envelopesOut: 0, bytesMeasured: 0, postsMeasured: 0 };

export function threadPostTotals(): ThreadPostTotals {
  return { ...threadTotals };
}

/** This implementation's end of a link: one port of a MessageChannel. */
type PortLink = PeerLink & { readonly via: 'port'; readonly port: MessagePort };

/** Wraps a port as a link end (tests, and `portTransport.pair`). */
export function portLink(port: MessagePort): PeerLink {
  const link: PortLink = { via: 'port', port };
  return link;
}

function portOf(link: PeerLink): MessagePort {
  // A link of another transport, or a port lost in transit, is our bug: fail loudly.
  const port = (link as Partial<PortLink>).port;
  if (link.via !== 'port' || !(port instanceof MessagePort)) throw new TypeError(`not a MessagePort link (via ${String(link.via)})`);
  return port;
}

export class Router implements Transport {
  readonly #self: string;
  readonly #codec: Codec;
  readonly #deliver: Deliver;
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
  #bytesMeasured = 0;
  #postsMeasured = 0;
  readonly #measureCloneBytes = cloneBytesWanted();

  /**
   * @param self this thread's name in the directory
   * @param directory which thread hosts each actor
   * @param deliver called with envelopes for actors of this thread (never re-entrantly from send)
   */
  constructor(self: string, directory: ReadonlyMap<ActorId, string>, codec: Codec, deliver: Deliver, options: RouterOptions = {}) {
    this.#self = self;
    this.#directory = new Map(directory);
    this.#options = options;
    this.#codec = codec;
    this.#deliver = deliver;
  }

  /** Installs (or replaces, after a restart) the port to thread `name`. */
  setPeer(name: string, link: PeerLink): void {
    const port = portOf(link);
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
      this.#deliver(local, true);
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
      this.#counted(data, batch);
      return;
    } catch {
      // Fall through to one post per envelope.
    }
    for (const envelope of batch) {
      try {
        const { data, transfer } = this.#codec.encode([envelope]);
        port.postMessage(data, transfer);
        this.#counted(data, [envelope]);
      } catch {
        this.#unencodable += 1;
      }
    }
  }

  /** Counts a post that left, and measures its size when it is cheap or its turn to be sampled. */
  #counted(data: unknown, batch: readonly Envelope[]): void {
    let bytes: number | null = null;
    if (data instanceof Uint8Array) bytes = data.byteLength;
    // The first post too: every thread that posted has some figure to scale.
    else if (this.#measureCloneBytes && (this.#postsMeasured === 0 || Math.random() < cloneSizeSampleRate)) {
      try {
        bytes = serialize(data).byteLength;
      } catch {
        // Something structured clone carries and v8.serialize does not: left unmeasured.
      }
    }
    this.#posts += 1;
    this.#out += batch.length;
    threadTotals.posts += 1;
    threadTotals.envelopesOut += batch.length;
    if (bytes === null) return;
    this.#bytesMeasured += bytes;
    this.#postsMeasured += 1;
    threadTotals.bytesMeasured += bytes;
    threadTotals.postsMeasured += 1;
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
    return { posts: this.#posts, envelopesOut: this.#out, envelopesIn: this.#in, unroutable: this.#unroutable, malformed: this.#malformed, unencodable: this.#unencodable, forwarded: this.#forwarded, bytesMeasured: this.#bytesMeasured, postsMeasured: this.#postsMeasured };
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
    if (batch.length > 0) this.#deliver(batch, false);
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

/** The MessagePort mesh as a transport kind: links are MessageChannels, moved to their threads. */
export const portTransport: TransportKind = {
  name: 'port',
  create: (self, directory, codec, deliver, options = {}) => new Router(self, directory, codec, deliver, options),
  pair: () => {
    const channel = new MessageChannel();
    return [portLink(channel.port1), portLink(channel.port2)];
  },
  transferList: (end): TransferListItem[] => [portOf(end)],
};
