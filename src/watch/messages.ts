/**
 * Watches (issue 14): the messages between a subscriber (the embedding API's endpoint, the TCP
 * server on behalf of a remote client, a simulated watcher) and the replica actor that serves
 * the watch, and the events they carry. Pure data; see src/watch/README.md for the design.
 *
 * Positions are log ops. The stream of one watch is a sequence of messages each of which says
 * "complete through op N": `watch_progress {through}` (nothing changed on the watched paths in
 * (previous, through]) and `watch_events {op, events}` (the net changes of entry `op` to the
 * watched paths, and nothing in (previous, op) before it). The first message of a subscription
 * is always a `watch_progress` whose `through` is the op the watch starts after: `fromOp` when
 * it was given, else the serving replica's commit number.
 *
 * Sequence numbers. Every notice of one subscription carries `seq`: the replica numbers the
 * notices it sends for a watch id 1, 2, 3, ... (the opening progress is 1; each part of a
 * multi-part batch has its own; a `watch_ended` takes the next one, or 1 when it refuses a
 * subscription outright). The links between a replica and a subscriber may lose a notice (an
 * actor's bounded mailbox drops an envelope when full), so the subscriber checks that each
 * notice's seq is the last one's + 1: a repeated or older seq is dropped, and a gap means the
 * stream is no longer complete, so the subscriber abandons that subscription and resumes from
 * the op it delivered through with a new one. `watch_ended` is taken whatever its seq: after
 * it nothing more comes for the id either way.
 */

import type { NodeType } from '../tree/node_type.ts';
import type { TreeChangeKind } from '../tree/events.ts';

/** One node's change in one committed entry (net over the entry, src/tree/events.ts). */
export type WatchEvent = {
  readonly kind: TreeChangeKind;
  readonly path: string;
  readonly nodeType: NodeType;
  /** The node's version after the entry; for `deleted`, the version it had before. */
  readonly version: number;
  /**
   * Only when the watch asked for values, and only for a blob that was created or changed:
   * its bytes after the entry, or null when they exceed the value cap (`valueOmitted` true).
   * Queues, sets and directories carry no value (read them at `op`).
   */
  readonly value?: Uint8Array | null;
  readonly valueOmitted?: boolean;
};

// --- subscriber -> replica ---------------------------------------------------------------

/**
 * Start a watch. `watchId` is the subscriber's handle (unique among its watches; a new attempt
 * after a failover uses a new id). `fromOp` null: start after the replica's commit.
 */
export type WatchSubscribe = {
  readonly type: 'watch_subscribe';
  readonly watchId: string;
  readonly path: string;
  readonly recursive: boolean;
  readonly fromOp: number | null;
  readonly values: boolean;
};

/** The subscriber received everything through `through`; keeps the watch alive. */
export type WatchAck = { readonly type: 'watch_ack'; readonly watchId: string; readonly through: number };

/** The subscriber ends the watch; the replica frees it and answers nothing. */
export type WatchCancel = { readonly type: 'watch_cancel'; readonly watchId: string };

export type WatchRequest = WatchSubscribe | WatchAck | WatchCancel;

// --- replica -> subscriber ---------------------------------------------------------------

/**
 * The net changes of entry `op` to the watched paths. A batch too large for one message
 * (`watchMessageEventsMax` events or about `watchMessageBytesMax` bytes) comes as several
 * messages of the same op, every one but the last with `more: true`; the subscriber delivers
 * the op's batch whole, once its last part has arrived (a batch is atomic).
 */
export type WatchEvents = {
  readonly type: 'watch_events';
  readonly watchId: string;
  /** This notice's number in its subscription (1, 2, ...; see the file comment). */
  readonly seq: number;
  readonly op: number;
  readonly events: readonly WatchEvent[];
  readonly more: boolean;
};

export type WatchProgress = { readonly type: 'watch_progress'; readonly watchId: string; readonly seq: number; readonly through: number };

/**
 * Why a replica ended a watch (after this message it sends nothing more for `watchId`):
 * - `compacted`: `fromOp` (or the watch's position) is older than the retained history,
 *   which starts after `oldestOp`; re-read at `currentOp` and watch from there.
 * - `future`: `fromOp` is beyond this replica's commit (`currentOp`): it has not applied it.
 * - `lagging`: the subscriber did not acknowledge fast enough (more than the buffer's bytes
 *   outstanding); it may resume from its last op while that is retained.
 * - `idle`: no acknowledgement for the idle bound: the subscriber is presumed gone.
 * - `not_serving`: the replica cannot serve watches now (recovering, or its history restarted).
 * - `too_many`: the replica serves its maximum number of watches.
 * - `invalid`: the subscription was malformed (bad path, absurd numbers); `message` says why.
 */
export type WatchEndReason = 'compacted' | 'future' | 'lagging' | 'idle' | 'not_serving' | 'too_many' | 'invalid';

export type WatchEnded = {
  readonly type: 'watch_ended';
  readonly watchId: string;
  /** The subscription's next number (1 for a refused subscribe); subscribers accept an end whatever it is. */
  readonly seq: number;
  readonly reason: WatchEndReason;
  /** The retained history starts after this op (events of later ops can be served). */
  readonly oldestOp: number;
  /** The replica's commit number. */
  readonly currentOp: number;
  readonly message: string;
};

export type WatchNotice = WatchEvents | WatchProgress | WatchEnded;

export const watchRequestTypes: ReadonlySet<string> = new Set(['watch_subscribe', 'watch_ack', 'watch_cancel']);
export const watchNoticeTypes: ReadonlySet<string> = new Set(['watch_events', 'watch_progress', 'watch_ended']);

/** Characters of a watch id (subscribers make them: `<connection>.<watch>.<attempt>`). */
export const watchIdCharsMax = 128;

/** Parts of one op's batch: at most this many events, and about this many bytes (one event may exceed it). */
export const watchMessageEventsMax = 1024;
export const watchMessageBytesMax = 256 * 1024;

/**
 * The estimated bytes of a notice, the unit of flow control between a replica and a
 * subscriber: both ends count the same way (the replica stops sending past its buffer of
 * unacknowledged bytes; the subscriber acknowledges every so many bytes received).
 */
export function estimateNoticeBytes(notice: WatchNotice): number {
  if (notice.type !== 'watch_events') return 64;
  let bytes = 64;
  for (const event of notice.events) bytes += estimateEventBytes(event);
  return bytes;
}

export function estimateEventBytes(event: WatchEvent): number {
  return 48 + event.path.length * 3 + (event.value?.byteLength ?? 0);
}
