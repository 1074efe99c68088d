/**
 * What an actor is to the runtime. An actor module exports `createActor(context, init)`; the
 * runtime feeds it batches of envelopes from its mailbox and gives it `send`. Nothing here
 * knows what the envelopes mean (DESIGN.md: the runtime imports nothing of the core).
 */

import type { ActorId, Envelope } from './envelope.ts';
import type { Logger } from './logger.ts';
import type { Offload } from './offload.ts';

export type ActorContext = {
  readonly self: ActorId;
  /** The thread hosting this actor (a worker's name, or `host`). */
  readonly thread: string;
  /** Queues an envelope; it leaves with the others for its thread at the end of this turn. */
  send(to: ActorId, msg: unknown, control?: true): void;
  readonly log: Logger;
  /** Stateless CPU work on a piscina pool, off this thread. */
  readonly offload: Offload;
};

export interface Actor {
  /** Envelopes from the mailbox, oldest first. A throw is a bug: it crashes the worker. */
  receive(batch: readonly Envelope[]): void;
  /** A small, cloneable summary for `status()` (role, counters). */
  status?(): unknown;
  /** A larger, cloneable view for `inspect()`. */
  inspect?(): unknown;
  /**
   * A control-plane question the actor answers (e.g. a replica's checkpoint for a backup);
   * `request` is plain data from the node, the answer must survive structured clone (or give
   * its large buffers away with `transferWithAnswer`).
   */
  query?(request: unknown): unknown;
  /** Release timers and resources; called on a graceful stop. */
  stop?(): void | Promise<void>;
}

export type ActorFactory = (context: ActorContext, init: unknown) => Actor | Promise<Actor>;

const answerTransfers = new WeakMap<object, readonly ArrayBuffer[]>();

/**
 * Marks a query's answer whose buffers the actor gives away: from a worker they are moved to
 * the asking thread, not copied (a backup's image is up to 64 MiB, and copying it stopped both
 * threads for ~100 ms per 20 MB). The actor must not use them afterwards: they are detached.
 * On the host thread the answer is handed over as it is.
 */
export function transferWithAnswer<T extends object>(answer: T, buffers: readonly ArrayBuffer[]): T {
  answerTransfers.set(answer, buffers);
  return answer;
}

/** The buffer `bytes` views when it views all of it (it can then be given away whole), else null. */
export function wholeBuffer(bytes: Uint8Array): ArrayBuffer | null {
  const buffer = bytes.buffer;
  return buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength ? buffer : null;
}

/** The buffers `transferWithAnswer` gave away with `answer` (none for any other value). */
export function answerTransfersOf(answer: unknown): readonly ArrayBuffer[] {
  return typeof answer === 'object' && answer !== null ? (answerTransfers.get(answer) ?? []) : [];
}

/** How a node describes an actor: where its code is and what it starts with. */
export type ActorSpec = {
  readonly id: ActorId;
  /** URL (file:) of a module exporting `createActor: ActorFactory`. */
  readonly module: string;
  /** Plain data handed to `createActor`; must survive structured clone. */
  readonly init: unknown;
  /** Mailbox capacity (envelopes). */
  readonly mailboxCapacity?: number;
};

export type ActorStatus = {
  readonly id: ActorId;
  readonly mailbox: import('./mailbox.ts').MailboxStats;
  readonly processed: number;
  readonly status: unknown;
};
