/**
 * Inputs to and effects of the replica's `step`. Effects are data; the shell executes them
 * strictly in order (actors/interpret.ts, test/sim). Ordering contract: a `send` that
 * acknowledges (prepare_ok, do_view_change, recovery_response) always comes after any
 * `persist` it depends on (DESIGN.md convention 7).
 */

import type { ClientAnswer, LogEntry, PeerMessage, ReplicaMessage } from './messages.ts';
import type { Machine } from './state_machine.ts';

export type StartMode = 'fresh' | 'recovering';

/** What a durable replica reloads from its own storage before recovering the rest. */
export type StoredState = {
  /** The latest checkpoint written; everything up to its op is committed. */
  readonly checkpoint: Machine | null;
  /** Log entries written after the checkpoint, in op order. */
  readonly entries: readonly LogEntry[];
};

/**
 * Durable mode only: what to write before any later effect runs. The shell completes a persist
 * before it executes the effects after it (acknowledgements among them), so an ack never
 * leaves before the entries it vouches for are stored.
 */
export type PersistRecord =
  /** Discard stored entries after `op` (a new view replaced them). */
  | { readonly kind: 'truncate_after'; readonly op: number }
  /** Append entries (contiguous, after what is stored). */
  | { readonly kind: 'entries'; readonly entries: readonly LogEntry[] }
  /** A new checkpoint; stored entries up to its op may be dropped. */
  | { readonly kind: 'checkpoint'; readonly machine: Machine };

export type ReplicaInput =
  /**
   * Begin: `fresh` joins view 0 with an empty log; `recovering` runs VRR §4.3 with `nonce`,
   * first reloading `stored` when the replica is durable.
   */
  | { readonly type: 'start'; readonly mode: StartMode; readonly nonce: number; readonly stored?: StoredState }
  /** A message from a peer (validated again here) or a client request. */
  | { readonly type: 'receive'; readonly message: ReplicaMessage }
  /** One unit of time from the timer service; the only clock the protocol knows. */
  | { readonly type: 'tick' };

export type TraceEvent = {
  readonly event: string;
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
};

export type ReplicaEffect =
  | { readonly type: 'persist'; readonly record: PersistRecord }
  | { readonly type: 'send'; readonly to: number; readonly message: PeerMessage }
  | { readonly type: 'reply'; readonly clientId: string; readonly message: ClientAnswer }
  | { readonly type: 'trace'; readonly trace: TraceEvent };

export type StepResult<S> = { readonly state: S; readonly effects: readonly ReplicaEffect[] };
