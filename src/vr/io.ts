/**
 * Inputs to and effects of the replica's `step`. Effects are data; the shell executes them
 * strictly in order (actors/interpret.ts, test/sim). Ordering contract: a `send` that
 * acknowledges (prepare_ok, do_view_change, recovery_response) always comes after any
 * `persist` it depends on (DESIGN.md convention 7).
 */

import type { ClientAnswer, PeerMessage, ReplicaMessage } from './messages.ts';

export type StartMode = 'fresh' | 'recovering';

export type ReplicaInput =
  /** Begin: `fresh` joins view 0 with an empty log; `recovering` runs VRR §4.3 with `nonce`. */
  | { readonly type: 'start'; readonly mode: StartMode; readonly nonce: number }
  /** A message from a peer (validated again here) or a client request. */
  | { readonly type: 'receive'; readonly message: ReplicaMessage }
  /** One unit of time from the timer service; the only clock the protocol knows. */
  | { readonly type: 'tick' };

export type TraceEvent = {
  readonly event: string;
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
};

export type ReplicaEffect =
  | { readonly type: 'send'; readonly to: number; readonly message: PeerMessage }
  | { readonly type: 'reply'; readonly clientId: string; readonly message: ClientAnswer }
  | { readonly type: 'trace'; readonly trace: TraceEvent };

export type StepResult<S> = { readonly state: S; readonly effects: readonly ReplicaEffect[] };
