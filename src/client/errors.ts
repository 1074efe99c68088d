/**
 * The one error type callers of haret see. `code` is stable: a tree error's code from
 * DATA_MODEL.md (`does_not_exist`, `cas_failed`, ...) or a service code. `executed` says what
 * is known about the request: `false` it certainly did not run, `'maybe'` it may have (a
 * timeout), `true` it ran and failed (a tree error, which changed nothing).
 */

import { describeTreeError, type TreeError } from '../tree/errors.ts';

export type ServiceErrorCode =
  /** No result within the give-up bound: the op may or may not have executed. */
  | 'timeout'
  /** The cluster expired the session before the op ran: it did not execute. */
  | 'session_expired'
  /** The replicas had executed a later request of the session (a client id used twice): may or may not have executed. */
  | 'stale_request'
  /** Too many calls waiting: not sent. */
  | 'overloaded'
  | 'unknown_namespace'
  /** The client proxy restarted while the call was in flight: it may or may not have executed. */
  | 'proxy_restarted'
  /** The node is stopped or stopping. */
  | 'stopped'
  /** The result did not have the shape the method expects (a bug in haret). */
  | 'internal'
  /** Nothing to talk to: no node could be reached, or the client proxy failed for good. Not executed. */
  | 'unavailable'
  /** The answer to a read over the network did not fit in a frame (it ran; narrow the read). */
  | 'frame_too_large'
  /** The node refused the auth token (missing or wrong): not executed; retrying with the same token cannot help. */
  | 'unauthenticated'
  /**
   * A watch cannot start or resume from its op: every replica keeps history only after
   * `details.oldestOp`. Read again (at `details.currentOp` or later) and watch from there.
   */
  | 'compacted'
  /** A watch's `fromOp` is beyond every replica's commit (`details.currentOp`). */
  | 'future'
  /**
   * A watch fell too far behind: the application did not consume its batches fast enough, or
   * the replica's history moved past what was not yet acknowledged. Watch again from
   * `details.lastOp` (the op the application received through).
   */
  | 'lagging'
  /** This client already has its maximum number of open watches: not opened. */
  | 'too_many_watches';

/** What a watch error knows about positions (ops); null where unknown. */
export type WatchErrorDetails = {
  /** The retained history starts after this op. */
  readonly oldestOp: number | null;
  /** The replica's commit number when it answered. */
  readonly currentOp: number | null;
  /** The op the application received through (its last batch), null before the start. */
  readonly lastOp: number | null;
};

export type HaretErrorCode = TreeError['code'] | ServiceErrorCode;

export class HaretError extends Error {
  override readonly name = 'HaretError';
  readonly code: HaretErrorCode;
  readonly executed: boolean | 'maybe';
  /** The tree error, when the cause is one. */
  readonly treeError: TreeError | null;
  /** In a multi_cas, the index of the op that failed (absent when a guard failed). */
  readonly at: number | undefined;
  /** For an error that ended a watch: the ops it concerns. */
  readonly details: WatchErrorDetails | undefined;

  constructor(code: HaretErrorCode, message: string, executed: boolean | 'maybe', treeError: TreeError | null = null, at?: number, details?: WatchErrorDetails) {
    super(message);
    this.code = code;
    this.executed = executed;
    this.treeError = treeError;
    this.at = at;
    this.details = details;
  }

  static fromTree(error: TreeError, executed: boolean, at?: number): HaretError {
    const where = at === undefined ? '' : ` (transaction op ${at})`;
    return new HaretError(error.code, `${describeTreeError(error)}${where}`, executed, error, at);
  }
}
