/**
 * The working context of one `stepAll`: the immer draft of the replica state, typed as plainly
 * writable (immer's own Draft type would recurse into the opaque Immutable.js values), and the
 * effects emitted so far, in order.
 */

import { current, isDraft, type Draft } from 'immer';
import type { List, Map as ImmutableMap } from 'immutable';
import type { Log } from './log.ts';
import type { ReplicaEffect, TraceEvent } from './io.ts';
import type { CheckpointImage, ClientAnswer, DoViewChange, PeerMessage, Request, RecoveryResponse } from './messages.ts';
import type { Prng } from './prng.ts';
import type { ReplicaState, ReplicaStatus } from './state.ts';
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
  checkpoint: { machine: Machine; image: CheckpointImage | null };
  globalMinAccept: number;
  prng: Prng;
  timers: { idleTicks: number; timeoutTicks: number; heartbeatTicks: number; stallTicks: number; recoveryTicks: number };
  primary: { acks: number[]; pending: List<Request>; inProgress: ImmutableMap<string, number> };
  viewChange: { startViewChangeFrom: number[]; sentDoViewChange: boolean; doViewChanges: (DoViewChange | null)[] };
  recovery: { nonce: number; responses: (RecoveryResponse | null)[] };
  stateTransfer: { target: number; ticks: number } | null;
  durable: { op: number; generation: number };
};

/** Compile-time check that the working view covers the state it drafts (fails to compile if not). */
type CoversState = WorkingState extends ReplicaState ? true : never;
const workingStateCoversState: CoversState = true;
void workingStateCoversState;

export type Ctx = {
  readonly s: WorkingState;
  readonly out: ReplicaEffect[];
  /** Durable mode: the lowest op after which this step replaced the log, or null. */
  readonly logChange: { truncatedAfter: number | null };
};

export function send(ctx: Ctx, to: number, message: PeerMessage): void {
  ctx.out.push({ type: 'send', to, message });
}

export function broadcast(ctx: Ctx, message: PeerMessage): void {
  for (let to = 0; to < ctx.s.config.replicaCount; to++) {
    if (to !== ctx.s.index) ctx.out.push({ type: 'send', to, message });
  }
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
 * A value read back out of the draft, as a plain (non-proxy) value. Anything stored inside an
 * Immutable.js structure must be plain: immer revokes its proxies when the step ends.
 */
export function plain<T>(value: T): T {
  return isDraft(value) ? (current(value as Draft<T>) as T) : value;
}

/**
 * The highest op this replica may acknowledge: every entry it holds when diskless; in durable
 * mode only those the shell reported stored.
 */
export function ackableOp(s: { readonly config: ReplicaConfig; readonly op: number; readonly durable: { readonly op: number } }): number {
  return s.config.durable ? Math.min(s.op, s.durable.op) : s.op;
}
