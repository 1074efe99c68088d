/**
 * Inputs to and effects of the replica's `step`. Effects are data; the shell executes them
 * in order (actors/interpret.ts, test/sim). Durability contract (DESIGN.md convention 7): in
 * durable mode an acknowledgement (prepare_ok, and the primary's own count towards a commit)
 * covers only entries whose `persist` the shell has reported back with a `persisted` input.
 */

import type { CheckpointImage, ClientAnswer, LogEntry, PeerMessage, ReplicaMessage } from './messages.ts';
import type { Machine } from './state_machine.ts';
import type { Tree } from '../tree/lookup.ts';
import type { TreeOp } from '../tree/ops.ts';

/**
 * `fresh`: a brand-new replica. `restart`: durable, storage intact (`stored` with its promise):
 * resume per README rule 18 without the recovery protocol. `recovering`: VRR §4.3 (diskless, or
 * storage missing or damaged).
 */
export type StartMode = 'fresh' | 'restart' | 'recovering';

/** What a durable replica reloads from its own storage before recovering the rest. */
export type StoredState = {
  /** The latest checkpoint written; everything up to its op is committed. */
  readonly checkpoint: Machine | null;
  /** Log entries written after the checkpoint, in op order. */
  readonly entries: readonly LogEntry[];
  /**
   * README rule 18: the latest promise stored (absent: none, as with missing storage). Whether
   * the replica was primary or changing views is derived: primary of `view`, or
   * lastNormalView < view.
   */
  readonly promise?: { readonly view: number; readonly lastNormalView: number };
};

/**
 * Durable mode only: what to write. The shell writes records in order and, once one is stored,
 * feeds back `persisted {generation, op}` from its effect; only then does the replica
 * acknowledge the entries (DESIGN.md convention 7), so writes overlap with everything else.
 */
export type PersistRecord =
  /** Discard stored entries after `op` (a new view replaced them). */
  | { readonly kind: 'truncate_after'; readonly op: number }
  /** Append entries (contiguous, after what is stored). */
  | { readonly kind: 'entries'; readonly entries: readonly LogEntry[] }
  /**
   * A new checkpoint; stored entries up to its op may be dropped. `image` null: the replica
   * reached it by applying its own committed entries, which storage already holds in order, so
   * the shell may store it whenever it likes (e.g. from a later `checkpoint_encoded` image).
   * `image` set: installed from a peer (state transfer, recovery), so the stored entries up to
   * its op are not its history: the shell stores this image before any later record.
   */
  | { readonly kind: 'checkpoint'; readonly machine: Machine; readonly image: CheckpointImage | null }
  /**
   * README rule 18: the replica's promise (superblock, fsynced). Its `persisted` answer is what
   * lets messages depending on it leave; always the last record of its step.
   */
  | { readonly kind: 'promise'; readonly view: number; readonly lastNormalView: number };

export type ReplicaInput =
  /**
   * Begin: `fresh` joins view 0 with an empty log; `restart` reloads `stored` and resumes per
   * README rule 18 (falls back to recovery when `stored` has no promise); `recovering` runs VRR
   * §4.3 with `nonce`, first reloading `stored` when the replica is durable.
   */
  | { readonly type: 'start'; readonly mode: StartMode; readonly nonce: number; readonly stored?: StoredState }
  /**
   * Durable mode: the shell finished a persist effect, echoing its generation and op. Entries up
   * to `op` may now be acknowledged (the replica's own count at the primary, prepare_ok at a
   * backup); an answer from an older generation (a suffix since replaced) is ignored. Every
   * record of one step carries the step's pair, so the shell answers only once the last of them
   * (and so every record before it) is stored.
   */
  | { readonly type: 'persisted'; readonly generation: number; readonly op: number }
  /**
   * The shell wrote the current checkpoint's image ahead of need, in slices between batches
   * (actors/replica.ts, src/vr/checkpoint_writer.ts). It is kept when it is the image of the
   * checkpoint still current, so a later state transfer or recovery ships it without encoding
   * it in one go; a stale one is ignored.
   */
  | { readonly type: 'checkpoint_encoded'; readonly image: CheckpointImage }
  /** A message from a peer (validated again here) or a client request. */
  | { readonly type: 'receive'; readonly message: ReplicaMessage }
  /**
   * One unit of time from the timer service; the only clock the protocol knows. `following`:
   * how many ticks of the same timer message come right after this one in this transition (a
   * message may carry several, README rule 21); absent or 0 at a message's last tick.
   */
  | { readonly type: 'tick'; readonly following?: number };

export type TraceEvent = {
  readonly event: string;
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
};

/**
 * A committed entry was applied to the machine (VRR §4.1 step 5; every replica, every entry,
 * in op order): the tree before and after it and the entry's tree ops in the order applied,
 * from which the shell's watch hub derives the entry's events (src/watch/README.md). Not
 * emitted for ops a replica skips by installing a checkpoint; the hub tells that gap by the
 * commit number. The trees are persistent values: carrying them costs two references.
 */
export type AppliedEntry = {
  readonly type: 'applied';
  readonly op: number;
  readonly before: Tree;
  readonly after: Tree;
  readonly ops: readonly TreeOp[];
  /** Requests in the entry (registrations, reads and the primary's own included): the batch size, for metrics. */
  readonly requests: number;
};

export type ReplicaEffect =
  | AppliedEntry
  | { readonly type: 'persist'; readonly record: PersistRecord; readonly generation: number; readonly op: number }
  | { readonly type: 'send'; readonly to: number; readonly message: PeerMessage }
  | { readonly type: 'reply'; readonly clientId: string; readonly message: ClientAnswer }
  | { readonly type: 'trace'; readonly trace: TraceEvent };

export type StepResult<S> = { readonly state: S; readonly effects: readonly ReplicaEffect[] };
