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
  | { readonly type: 'tick' };

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
  /** The session was expired by the cluster: the op did not execute. */
  | { readonly type: 'session_expired' }
  /** The replicas had executed a later request of this session: this one may or may not have run. */
  | { readonly type: 'stale_request'; readonly lastRequestNum: number }
  /** Too many calls queued on this session: the op was not sent. */
  | { readonly type: 'overloaded' };

export type ClientEffect =
  | { readonly type: 'send'; readonly to: number; readonly request: Request }
  | { readonly type: 'result'; readonly callId: number; readonly result: CallResult }
  | { readonly type: 'trace'; readonly event: string; readonly detail?: Readonly<Record<string, string | number | boolean | null>> };
