/**
 * The working context of one `stepAll`: the replica state being stepped, and the effects
 * emitted so far, in order.
 *
 * The state being stepped is a plain working copy, not the immer draft (see `beginStep`): the
 * handlers read fields hundreds of times per step, and every read through a draft costs a proxy
 * trap (~70-100 ns), while reading a plain-object child through it copies the parent and
 * creates another proxy. The small children written on the hot path (timers, primary, durable)
 * are copied at the start of the step and written in place; the others (viewChange, recovery,
 * stateTransfer, checkpoint) are readonly here and replaced, never mutated: the base state is
 * frozen. `endStep` hands what changed to the step's one immer `produce`.
 */

import type { List } from 'immutable';
import type { NameMap } from '../tree/name_map.ts';
import type { Log } from './log.ts';
import type { ReplicaEffect, TraceEvent } from './io.ts';
import type { CheckpointImage, ClientAnswer, DoViewChange, PeerMessage, Request, RecoveryResponse } from './messages.ts';
import type { Prng } from '../base/prng.ts';
import type { LeaseClock, ReadPath, ReplicaState, ReplicaStatus } from './state.ts';
import type { ReplicaConfig } from './config.ts';
import type { Machine } from './state_machine.ts';
import { primaryOf } from './config.ts';

export type WorkingState = {
  readonly config: ReplicaConfig;
  readonly index: number;
  epoch: number;
  status: ReplicaStatus;
  view: number;
  lastNormalView: number;
  op: number;
  commit: number;
  log: Log;
  machine: Machine;
  /** Replaced, never mutated. */
  checkpoint: { readonly machine: Machine; readonly image: CheckpointImage | null };
  globalMinAccept: number;
  prng: Prng;
  /** A copy of the state's, written in place. */
  timers: { idleTicks: number; timeoutTicks: number; heartbeatTicks: number; stallTicks: number; recoveryTicks: number };
  /** A copy of the state's (acks too), written in place. */
  primary: { acks: number[]; pending: List<Request>; inProgress: NameMap<number>; leaseClock: LeaseClock; reads: ReadPath };
  /** Replaced, never mutated. */
  viewChange: { readonly startViewChangeFrom: readonly number[]; readonly sentDoViewChange: boolean; readonly doViewChanges: readonly (DoViewChange | null)[] };
  /** Replaced, never mutated. */
  recovery: { readonly nonce: number; readonly responses: readonly (RecoveryResponse | null)[] };
  /** Replaced, never mutated. */
  stateTransfer: { readonly target: number; readonly ticks: number } | null;
  /** A copy of the state's, written in place. */
  durable: { op: number; generation: number; view: number; lastNormalView: number; promiseStored: boolean };
};

/** Compile-time check that the working view covers the state it drafts (fails to compile if not). */
type CoversState = WorkingState extends ReplicaState ? true : never;
const workingStateCoversState: CoversState = true;
void workingStateCoversState;

/** The working copy of `state` for one step; `state` itself is never written. */
export function beginStep(state: ReplicaState): WorkingState {
  // Spelled out rather than spread: spreading a frozen object takes V8's slow path.
  const { timers, primary, durable } = state;
  return {
    config: state.config,
    index: state.index,
    epoch: state.epoch,
    status: state.status,
    view: state.view,
    lastNormalView: state.lastNormalView,
    op: state.op,
    commit: state.commit,
    log: state.log,
    machine: state.machine,
    checkpoint: state.checkpoint,
    globalMinAccept: state.globalMinAccept,
    prng: state.prng,
    timers: { idleTicks: timers.idleTicks, timeoutTicks: timers.timeoutTicks, heartbeatTicks: timers.heartbeatTicks, stallTicks: timers.stallTicks, recoveryTicks: timers.recoveryTicks },
    primary: { acks: primary.acks.slice(), pending: primary.pending, inProgress: primary.inProgress, leaseClock: primary.leaseClock, reads: primary.reads },
    viewChange: state.viewChange,
    recovery: state.recovery,
    stateTransfer: state.stateTransfer,
    durable: { op: durable.op, generation: durable.generation, view: durable.view, lastNormalView: durable.lastNormalView, promiseStored: durable.promiseStored },
  };
}

/**
 * Writes into the step's immer draft the fields the step changed, and only those: unchanged
 * fields stay shared with the base state, and a step that changed nothing yields the base state
 * itself. immer then freezes what is new (autoFreeze).
 */
export function endStep(draft: WorkingState, base: ReplicaState, s: WorkingState): void {
  if (s.epoch !== base.epoch) draft.epoch = s.epoch;
  if (s.status !== base.status) draft.status = s.status;
  if (s.view !== base.view) draft.view = s.view;
  if (s.lastNormalView !== base.lastNormalView) draft.lastNormalView = s.lastNormalView;
  if (s.op !== base.op) draft.op = s.op;
  if (s.commit !== base.commit) draft.commit = s.commit;
  if (s.log !== base.log) draft.log = s.log;
  if (s.machine !== base.machine) draft.machine = s.machine;
  if (s.checkpoint !== base.checkpoint) draft.checkpoint = s.checkpoint;
  if (s.globalMinAccept !== base.globalMinAccept) draft.globalMinAccept = s.globalMinAccept;
  if (s.prng !== base.prng) draft.prng = s.prng;
  const t = s.timers;
  const bt = base.timers;
  if (t.idleTicks !== bt.idleTicks || t.timeoutTicks !== bt.timeoutTicks || t.heartbeatTicks !== bt.heartbeatTicks || t.stallTicks !== bt.stallTicks || t.recoveryTicks !== bt.recoveryTicks) {
    draft.timers = t;
  }
  const p = s.primary;
  const bp = base.primary;
  if (p.pending !== bp.pending || p.inProgress !== bp.inProgress || p.leaseClock !== bp.leaseClock || p.reads !== bp.reads || !sameNumbers(p.acks, bp.acks)) draft.primary = p;
  if (s.viewChange !== base.viewChange) draft.viewChange = s.viewChange;
  if (s.recovery !== base.recovery) draft.recovery = s.recovery;
  if (s.stateTransfer !== base.stateTransfer) draft.stateTransfer = s.stateTransfer;
  const d = s.durable;
  const bd = base.durable;
  if (d.op !== bd.op || d.generation !== bd.generation || d.view !== bd.view || d.lastNormalView !== bd.lastNormalView || d.promiseStored !== bd.promiseStored) {
    draft.durable = d;
  }
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export type Ctx = {
  readonly s: WorkingState;
  readonly out: ReplicaEffect[];
  /** Durable mode: the lowest op after which this step replaced the log, or null. */
  readonly logChange: { truncatedAfter: number | null };
  /** The highest commit number this step told the backups (a prepare carries one); see `announceCommit`. */
  readonly told: { commit: number };
};

export function send(ctx: Ctx, to: number, message: PeerMessage): void {
  if (heldForPromise(ctx, message)) return;
  ctx.out.push({ type: 'send', to, message });
}

export function broadcast(ctx: Ctx, message: PeerMessage): void {
  if (heldForPromise(ctx, message)) return;
  for (let to = 0; to < ctx.s.config.replicaCount; to++) {
    if (to !== ctx.s.index) ctx.out.push({ type: 'send', to, message });
  }
}

/**
 * Whether this replica's current promise (view, lastNormalView) is stored (README rule 18);
 * always in diskless mode.
 */
export function promiseHeld(s: { readonly config: ReplicaConfig; readonly view: number; readonly lastNormalView: number; readonly durable: { readonly view: number; readonly lastNormalView: number; readonly promiseStored: boolean } }): boolean {
  if (!s.config.durable) return true;
  return s.durable.promiseStored && s.durable.view === s.view && s.durable.lastNormalView === s.lastNormalView;
}

/**
 * README rule 18: every message but `recovery` and `get_state` states or relies on this
 * replica's view and lastNormalView (a vote, an acknowledgement, a primary's log, prepares and
 * commits of its view, its view in a recovery_response, a log it serves). Until that promise is
 * stored the message is not sent (traced); once stored, `onPromiseStored` (normal.ts) re-sends
 * what the protocol does not repeat on its own timers. Dropping rather than queueing keeps the
 * core pure and the state small: every such message is repeated by a timer or by its requester.
 */
function heldForPromise(ctx: Ctx, message: PeerMessage): boolean {
  if (message.type === 'recovery' || message.type === 'get_state' || promiseHeld(ctx.s)) return false;
  trace(ctx, 'held_until_promise_stored', { type: message.type, view: ctx.s.view, lastNormalView: ctx.s.lastNormalView });
  return true;
}

export function answer(ctx: Ctx, clientId: string, message: ClientAnswer): void {
  ctx.out.push({ type: 'reply', clientId, message });
}

export function trace(ctx: Ctx, event: string, detail?: TraceEvent['detail']): void {
  ctx.out.push({ type: 'trace', trace: detail === undefined ? { event } : { event, detail } });
}

export function isPrimary(s: { readonly view: number; readonly index: number; readonly config: ReplicaConfig }): boolean {
  return primaryOf(s.view, s.config) === s.index;
}

/** Normal status as the primary of its view. */
export function isNormalPrimary(s: WorkingState | ReplicaState): boolean {
  return s.status === 'normal' && isPrimary(s);
}

/**
 * The highest op this replica may acknowledge: every entry it holds when diskless; in durable
 * mode only those the shell reported stored.
 */
export function ackableOp(s: Parameters<typeof promiseHeld>[0] & { readonly op: number; readonly durable: { readonly op: number } }): number {
  if (!s.config.durable) return s.op;
  // README rule 18: nothing counts until the replica's promise (its view's log label) is stored.
  return promiseHeld(s) ? Math.min(s.op, s.durable.op) : 0;
}
