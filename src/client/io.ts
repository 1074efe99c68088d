/**
 * Inputs and effects of a client session (`clientStep`). A session is VRR's client (§4.1):
 * one outstanding request at a time, numbered, retried until answered; many sessions give a
 * caller concurrency. Time is ticks.
 */

import type { OpOutcome, TreeOp } from '../tree/ops.ts';
import type { ClientAnswer, Request } from '../vr/messages.ts';

export type ClientInput =
  /** A caller's operation; `callId` is the caller's handle for the result. */
  | { readonly type: 'call'; readonly callId: number; readonly op: TreeOp }
  /** An answer from a replica. */
  | { readonly type: 'receive'; readonly message: ClientAnswer }
  /**
   * The node a remote session talks to refused one of its requests for good (the same request
   * would be refused again): the session ends the call. Retryable refusals (timeout,
   * overloaded, ...) are not inputs: the session's own retry timer resends.
   */
  | { readonly type: 'refused'; readonly requestNum: number; readonly reason: RefusalReason; readonly message: string }
  | { readonly type: 'tick' };

/**
 * Why a node refused a request for good: `invalid_request` (the node found it malformed),
 * `unknown_namespace` (that node does not serve the namespace), `frame_too_large` (it ran,
 * but its answer does not fit in a frame), `unavailable` (the namespace cannot serve: more
 * than f of its replicas lost their data or have failing disks; retrying until it is repaired
 * only hangs the caller).
 */
export type RefusalReason = 'invalid_request' | 'unknown_namespace' | 'frame_too_large' | 'unavailable';

/** The typed result a caller gets: the outcome with where it ran, or a service error. */
export type CallResult =
  | {
      readonly type: 'done';
      readonly outcome: OpOutcome;
      readonly epoch: number;
      readonly view: number;
      /** The log entry that executed it. */
      readonly op: number;
      readonly requestNum: number;
    }
  /** Refused before the log (malformed or over a limit): certainly not executed. */
  | { readonly type: 'rejected'; readonly outcome: OpOutcome }
  /** No answer within the give-up bound: the op may or may not have executed. */
  | { readonly type: 'timeout' }
  /**
   * The replicas do not know the session (never registered, or evicted from the client
   * table). This answer ran nothing; `executed` is 'maybe' when the request had been sent
   * before (an earlier attempt may have run before the session was evicted).
   */
  | { readonly type: 'session_expired'; readonly executed: false | 'maybe' }
  /** A node refused the request for good (see RefusalReason). */
  | { readonly type: 'refused'; readonly reason: RefusalReason; readonly message: string; readonly executed: boolean | 'maybe' }
  /** The replicas had executed a later request of this session: this one may or may not have run. */
  | { readonly type: 'stale_request'; readonly lastRequestNum: number }
  /** Too many calls queued on this session: the op was not sent. */
  | { readonly type: 'overloaded' };

export type ClientEffect =
  | { readonly type: 'send'; readonly to: number; readonly request: Request }
  | { readonly type: 'result'; readonly callId: number; readonly result: CallResult }
  | { readonly type: 'trace'; readonly event: string; readonly detail?: Readonly<Record<string, string | number | boolean | null>> };

/**
 * What a caller of a session host gets: a session's result, or a refusal by the host itself
 * (nothing ran in either refusal).
 */
export type CallOutcome =
  | CallResult
  /** No such namespace known to the host. */
  | { readonly type: 'unknown_namespace'; readonly ns: string }
  /** The call itself was malformed (not an op that can be sent). */
  | { readonly type: 'invalid_call'; readonly reason: string };
