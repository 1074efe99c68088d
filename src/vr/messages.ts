/**
 * Every message of the protocol, named as in VR Revisited (VRR §4–5), plus the client-facing
 * answers. Plain data only (structured-clone and msgpack safe). Messages between replicas
 * carry the sender's index in `replica`; messages from clients carry `clientId`.
 */

import type { OpOutcome, TreeOp } from '../tree/ops.ts';

// ---- client requests and the log ----------------------------------------------------------

/**
 * What a client asks for: open (or continue) a session, or run one tree operation. And one the
 * primary makes itself, never a client (README rule 21): `lease_clock`, `elapsedTicks` measured
 * since its previous one, when its commit number was `through`; such a request has client id
 * '' and request number 0 and gets no reply.
 */
export type RequestOp =
  | { readonly type: 'register' }
  | { readonly type: 'tree'; readonly op: TreeOp }
  | { readonly type: 'lease_clock'; readonly elapsedTicks: number; readonly through: number };

/** VRR §4.1 `request`: a client's op with its client id and request number. */
export type Request = {
  readonly type: 'request';
  readonly clientId: string;
  /** Strictly increasing per client; 0 is reserved for `register`. */
  readonly requestNum: number;
  readonly op: RequestOp;
};

/** One log entry: a batch of requests, prepared together under one op number. */
export type LogEntry = {
  readonly op: number;
  /** The view in which the entry was prepared. */
  readonly view: number;
  readonly requests: readonly Request[];
};

// ---- answers to clients ------------------------------------------------------------------

export type ReplyBody =
  /** Result of `register`: whether the session is new, and the last request number it executed. */
  | { readonly type: 'registered'; readonly isNew: boolean; readonly lastRequestNum: number }
  | { readonly type: 'tree'; readonly outcome: OpOutcome }
  /** The session is unknown to the client table (never registered, or expired): nothing ran. */
  | { readonly type: 'session_expired' }
  /** The request was refused before it reached the log (malformed, or over a limit): nothing ran. */
  | { readonly type: 'rejected'; readonly outcome: OpOutcome }
  /**
   * The request number is below the last one the session executed (`lastRequestNum`): this
   * request's answer is no longer kept, so it may or may not have run; nothing ran now. Only a
   * client that moved on without its answer, or two clients sharing one client id, see this.
   */
  | { readonly type: 'stale_request'; readonly lastRequestNum: number };

/** VRR §4.1 `reply`. `op` is the log entry that executed the request (0 when none did). */
export type Reply = {
  readonly type: 'reply';
  readonly epoch: number;
  readonly view: number;
  readonly op: number;
  readonly clientId: string;
  readonly requestNum: number;
  readonly body: ReplyBody;
};

/** From a replica that is not the primary of its view: where to go instead. */
export type NotPrimary = {
  readonly type: 'not_primary';
  readonly epoch: number;
  readonly view: number;
  readonly primary: number;
  readonly clientId: string;
  readonly requestNum: number;
};

/** The primary holds too many requests; retry after this many ticks. Nothing ran. */
export type Busy = {
  readonly type: 'busy';
  readonly epoch: number;
  readonly view: number;
  readonly retryAfterTicks: number;
  readonly clientId: string;
  readonly requestNum: number;
};

export type ClientAnswer = Reply | NotPrimary | Busy;

// ---- replica to replica --------------------------------------------------------------------

/** A checkpoint (VRR §5.1): the applied state after op `op`, encoded by src/vr/checkpoint.ts. */
export type CheckpointImage = { readonly op: number; readonly snapshot: Uint8Array };

export type Prepare = {
  readonly type: 'prepare';
  readonly epoch: number;
  readonly view: number;
  readonly replica: number;
  readonly op: number;
  readonly commit: number;
  readonly entry: LogEntry;
  readonly globalMinAccept: number;
};

/** "I hold every entry up to `op` of this view" (cumulative, VRR §4.1 step 4). */
export type PrepareOk = {
  readonly type: 'prepare_ok';
  readonly epoch: number;
  readonly view: number;
  readonly replica: number;
  readonly op: number;
};

export type Commit = {
  readonly type: 'commit';
  readonly epoch: number;
  readonly view: number;
  readonly replica: number;
  readonly commit: number;
  readonly globalMinAccept: number;
};

/**
 * README rule 22: the primary asks its backups whether `view` is still theirs; a read that
 * arrived before the round may be answered once f backups confirm it.
 */
export type ReadRound = {
  readonly type: 'read_round';
  readonly epoch: number;
  readonly view: number;
  readonly replica: number;
  readonly round: number;
};

/** A backup in normal status in `view` confirms the primary's round. */
export type ReadRoundOk = {
  readonly type: 'read_round_ok';
  readonly epoch: number;
  readonly view: number;
  readonly replica: number;
  readonly round: number;
};

export type StartViewChange = {
  readonly type: 'start_view_change';
  readonly epoch: number;
  readonly view: number;
  readonly replica: number;
};

/** VRR §4.2 step 2, with the log as a suffix after `logStart` (haret RFC 2). */
export type DoViewChange = {
  readonly type: 'do_view_change';
  readonly epoch: number;
  readonly view: number;
  readonly replica: number;
  readonly lastNormalView: number;
  readonly op: number;
  readonly commit: number;
  readonly logStart: number;
  readonly entries: readonly LogEntry[];
  /** The sender's checkpoint at `logStart`, present only when its log no longer reaches back to it. */
  readonly checkpoint: CheckpointImage | null;
};

export type StartView = {
  readonly type: 'start_view';
  readonly epoch: number;
  readonly view: number;
  readonly replica: number;
  readonly op: number;
  readonly commit: number;
  readonly logStart: number;
  readonly entries: readonly LogEntry[];
  readonly checkpoint: CheckpointImage | null;
};

export type Recovery = {
  readonly type: 'recovery';
  readonly epoch: number;
  readonly replica: number;
  readonly nonce: number;
  /** Every op up to this one is committed in what the recovering replica reloaded (0: nothing). */
  readonly committed: number;
};

/**
 * Only the primary fills `state` (VRR §4.3 step 2): its log after the requester's `committed`
 * op, or its checkpoint and what follows when its log no longer reaches back that far.
 */
export type RecoveryResponse = {
  readonly type: 'recovery_response';
  readonly epoch: number;
  readonly view: number;
  readonly replica: number;
  readonly nonce: number;
  readonly state: {
    readonly op: number;
    readonly commit: number;
    readonly logStart: number;
    readonly entries: readonly LogEntry[];
    readonly checkpoint: CheckpointImage | null;
  } | null;
};

export type GetState = {
  readonly type: 'get_state';
  readonly epoch: number;
  readonly view: number;
  readonly replica: number;
  /** The requester holds every entry up to this op. */
  readonly op: number;
  /**
   * Send everything after `op`, not at most `logSuffixMax` entries: a replica catching up with
   * a view must take the view's log in one piece (a prefix of it would shrink its log).
   */
  readonly whole: boolean;
};

/** Entries after `logStart` up to `op`; with a checkpoint when the requester is behind the truncated log. */
export type NewState = {
  readonly type: 'new_state';
  readonly epoch: number;
  readonly view: number;
  readonly replica: number;
  readonly op: number;
  readonly commit: number;
  readonly logStart: number;
  readonly entries: readonly LogEntry[];
  readonly checkpoint: CheckpointImage | null;
  /** True when the suffix reaches the responder's op (it asked for, and got, the whole log). */
  readonly whole: boolean;
};

export type PeerMessage =
  | Prepare
  | PrepareOk
  | Commit
  | ReadRound
  | ReadRoundOk
  | StartViewChange
  | DoViewChange
  | StartView
  | Recovery
  | RecoveryResponse
  | GetState
  | NewState;

export type PeerMessageType = PeerMessage['type'];

/** Anything a replica may receive. */
export type ReplicaMessage = PeerMessage | Request;
