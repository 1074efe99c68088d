/**
 * The data-path seam between threads. Actors never see it: they call `context.send`, and the
 * actor host hands envelopes to a Transport. Today's implementation is the MessagePort mesh
 * (router.ts); a SharedArrayBuffer ring transport with a fixed binary record layout would
 * implement this same interface and leave every actor untouched.
 */

import type { MessagePort } from 'node:worker_threads';
import type { Envelope } from './envelope.ts';

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
};

export interface Transport {
  /** Queues an envelope; everything queued for one thread leaves together at `flush`. */
  send(envelope: Envelope): void;
  /** Sends what is queued, one batch per destination thread. */
  flush(): void;
  /** Which thread hosts an actor, if the directory knows it. */
  hostOf(actor: string): string | undefined;
  /** Installs (or replaces, after a restart) the link to another thread. */
  setPeer(thread: string, port: MessagePort): void;
  /** Forgets the link to a thread that died. */
  dropPeer(thread: string): void;
  close(): void;
  stats(): TransportStats;
}
