/**
 * The data-path seam between threads. Actors never see it: they call `context.send`, and the
 * actor host hands envelopes to a Transport. The actor system and every worker reach the data
 * path only through the two types here: `Transport` (one per thread) and `TransportKind` (how
 * to build one and the links between threads). Today's implementation is the MessagePort mesh
 * (router.ts); a SharedArrayBuffer ring transport with a fixed binary record layout would
 * implement these same two types (its links carrying the shared buffers instead of ports) and
 * leave the system, the workers and every actor untouched.
 */

import type { TransferListItem } from 'node:worker_threads';
import type { Codec } from './codec.ts';
import type { ActorId, Envelope } from './envelope.ts';

export type TransportStats = {
  readonly posts: number;
  readonly envelopesOut: number;
  readonly envelopesIn: number;
  /** Envelopes for an actor the directory does not know, or a thread with no link. */
  readonly unroutable: number;
  /** Batches from a peer that did not decode into envelopes. */
  readonly malformed: number;
  /** Envelopes the codec could not carry (dropped). */
  readonly unencodable: number;
  /** Envelopes received here for another thread and passed on (the host relays). */
  readonly forwarded: number;
  /**
   * Bytes of the posts whose size was measured, and how many posts those were: their ratio
   * estimates the bytes per post (the runtime benchmark's "where the time goes" table).
   * Optional: a transport that cannot tell leaves them out.
   */
  readonly bytesMeasured?: number;
  readonly postsMeasured?: number;
};

/**
 * One end of a link between two threads of a node, made by `TransportKind.pair`. Opaque to
 * everyone but the implementation that made it (`via` names it, so a transport refuses an end
 * it cannot use); it crosses to a worker inside a control message, with `transferList(end)`
 * moved rather than copied.
 */
export interface PeerLink {
  readonly via: string;
}

/**
 * A link that is not between two threads of this node: e.g. the TCP link to another node. It
 * takes whole batches (it encodes them itself) and never throws.
 */
export type LinkSink = (batch: readonly Envelope[]) => void;

export type TransportOptions = {
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

export interface Transport {
  /** Queues an envelope; everything queued for one thread leaves together at `flush`. */
  send(envelope: Envelope): void;
  /** Sends what is queued, one batch per destination thread. */
  flush(): void;
  /** Which thread hosts an actor, if the directory knows it. */
  hostOf(actor: ActorId): string | undefined;
  /** Adds or moves actors (a worker added at run time, a namespace on other nodes). */
  addRoutes(entries: readonly (readonly [ActorId, string])[]): void;
  /** Installs (or replaces, after a restart) the link to another thread of this node. */
  setPeer(thread: string, link: PeerLink): void;
  /** Forgets the link to a thread that died; envelopes for it are dropped until it is back. */
  dropPeer(thread: string): void;
  /** Installs a link to something outside this node's threads (another node) under a thread name. */
  setSink(thread: string, sink: LinkSink): void;
  dropSink(thread: string): void;
  /**
   * Takes envelopes from outside the node's threads (another node's link): the ones for this
   * thread are delivered, the ones for other threads are sent on.
   */
  receiveBatch(batch: readonly Envelope[]): void;
  close(): void;
  stats(): TransportStats;
}

/**
 * Called with envelopes for actors of this thread (never re-entrantly from `send`). `local`:
 * the batch was sent on this thread and is handed over by the transport's own flush (no other
 * thread was involved), so the receiver may run it as soon as the flush returns instead of a
 * turn of the event loop later.
 */
export type Deliver = (batch: readonly Envelope[], local: boolean) => void;

/** One implementation of the data path: how a thread builds its transport, and how two threads are linked. */
export interface TransportKind {
  readonly name: string;
  /**
   * @param self this thread's name in the directory
   * @param directory which thread hosts each actor (copied)
   */
  create(self: string, directory: ReadonlyMap<ActorId, string>, codec: Codec, deliver: Deliver, options?: TransportOptions): Transport;
  /** A new link between two threads: one end for each. */
  pair(): readonly [PeerLink, PeerLink];
  /** What must be moved, not copied, when an end is posted to the thread that will use it. */
  transferList(end: PeerLink): TransferListItem[];
}
