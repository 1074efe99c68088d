/**
 * A client session, pure: `clientStep(state, input) -> { state, effects }` (VRR §4.1 and §6).
 *
 * - Registers first (a committed `register` request) and learns whether the session is new
 *   and the last request number the cluster executed for it.
 * - Numbers requests; keeps one outstanding; queues the rest (bounded).
 * - Tracks the primary from the views in answers; follows `not_primary` at once.
 * - Retries with doubling backoff and seeded jitter, rotating replicas on silence; the
 *   replicas' client table makes a retried write execute at most once.
 * - Gives up after `giveUpTicks` with a typed `timeout` (the op may or may not have run).
 */

import { produce } from 'immer';
import { assertNever } from '../base/assert.ts';
import type { TreeOp } from '../tree/ops.ts';
import type { ClientAnswer, NotPrimary, Reply, Request, RequestOp } from '../vr/messages.ts';
import { makePrng, nextInt, type Prng } from '../base/prng.ts';
import { validateClientConfig, type ClientConfig } from './config.ts';
import type { CallResult, ClientEffect, ClientInput, RefusalReason } from './io.ts';

type Outstanding = {
  /** The caller's handle; null for the session's own `register`. */
  readonly callId: number | null;
  readonly request: Request;
  readonly target: number;
  readonly attempt: number;
  /** Ticks until the next retry. */
  readonly waitTicks: number;
  /** Ticks since first sent, against `giveUpTicks`. */
  readonly ageTicks: number;
  /** After `busy`: retry the same replica rather than the next one. */
  readonly retrySame: boolean;
};

export type ClientState = {
  readonly clientId: string;
  readonly config: ClientConfig;
  readonly prng: Prng;
  readonly epoch: number;
  /** The highest view heard of; its primary is where requests go. */
  readonly view: number;
  readonly registered: boolean;
  readonly lastRequestNum: number;
  readonly outstanding: Outstanding | null;
  readonly queue: readonly { readonly callId: number; readonly op: TreeOp }[];
};

/** The empty call queue, shared: a session is mostly idle or running one call, and a shared frozen value needs no freezing per step. */
const emptyQueue: ClientState['queue'] = Object.freeze([]);

export type ClientStepResult = { readonly state: ClientState; readonly effects: readonly ClientEffect[] };

export function initialClientState(clientId: string, config: ClientConfig, seed: number): ClientState {
  const problem = validateClientConfig(config);
  if (problem !== null) throw new RangeError(problem);
  return {
    clientId,
    config,
    prng: makePrng(seed),
    epoch: 0,
    view: 0,
    registered: false,
    lastRequestNum: 0,
    outstanding: null,
    queue: emptyQueue,
  };
}

/**
 * The session being stepped: a plain copy of the state's fields, whose values are replaced,
 * never mutated. The same handlers serve `clientStep` (one session, one produce per input) and
 * the session pool (`pool.ts`: many sessions, one produce per batch).
 */
export type SessionWorking = { -readonly [K in keyof ClientState]: ClientState[K] };

/** The working copy of `state`; spelled out rather than spread (spreading a frozen object takes V8's slow path). */
export function beginSession(state: ClientState): SessionWorking {
  return {
    clientId: state.clientId,
    config: state.config,
    prng: state.prng,
    epoch: state.epoch,
    view: state.view,
    registered: state.registered,
    lastRequestNum: state.lastRequestNum,
    outstanding: state.outstanding,
    queue: state.queue,
  };
}

/** True when the step replaced any field of `state` (clientId and config never change). */
export function sessionChanged(state: ClientState, w: SessionWorking): boolean {
  return (
    w.prng !== state.prng ||
    w.epoch !== state.epoch ||
    w.view !== state.view ||
    w.registered !== state.registered ||
    w.lastRequestNum !== state.lastRequestNum ||
    w.outstanding !== state.outstanding ||
    w.queue !== state.queue
  );
}

/** Runs one input through the session's handlers, then sends the next request if it can. */
export function sessionHandle(w: SessionWorking, input: ClientInput, effects: ClientEffect[]): void {
  switch (input.type) {
    case 'call':
      onCall(w, input.callId, input.op, effects);
      break;
    case 'receive':
      onAnswer(w, input.message, effects);
      break;
    case 'refused':
      onRefused(w, input.requestNum, input.reason, input.message, effects);
      break;
    case 'tick':
      onTick(w, effects);
      break;
    default:
      assertNever(input, 'client input');
  }
  startNext(w, effects);
}

/**
 * One immer `produce` per call (DESIGN.md convention 5), writing only the fields the step
 * replaced. The handlers work on a plain copy of the state's fields rather than on the draft:
 * every read through an immer draft costs a proxy trap (~70-100 ns), and a read of a plain
 * object or array field creates a child draft and copies its parent, which made one call
 * cost ~17 µs. The values they hold are replaced, never mutated (the state is frozen).
 */
export function clientStep(state: ClientState, input: ClientInput): ClientStepResult {
  const effects: ClientEffect[] = [];
  const w = beginSession(state);
  sessionHandle(w, input, effects);
  const next = produce(state, (draft) => {
    const d = draft as SessionWorking;
    // clientId and config never change.
    if (w.prng !== state.prng) d.prng = w.prng;
    if (w.epoch !== state.epoch) d.epoch = w.epoch;
    if (w.view !== state.view) d.view = w.view;
    if (w.registered !== state.registered) d.registered = w.registered;
    if (w.lastRequestNum !== state.lastRequestNum) d.lastRequestNum = w.lastRequestNum;
    if (w.outstanding !== state.outstanding) d.outstanding = w.outstanding;
    if (w.queue !== state.queue) d.queue = w.queue;
  });
  return { state: next, effects };
}

/** True when the session has nothing outstanding or queued. */
export function isIdle(state: ClientState): boolean {
  return state.outstanding === null && state.queue.length === 0;
}

function onCall(w: SessionWorking, callId: number, op: TreeOp, effects: ClientEffect[]): void {
  if (w.queue.length >= w.config.queueMax) {
    effects.push({ type: 'result', callId, result: { type: 'overloaded' } });
    return;
  }
  if (w.outstanding === null && w.queue.length === 0 && w.registered) {
    // What `startNext` would do with this call at once; sent without the queue it would pass
    // through (a new array and record per call, garbage straight away).
    w.lastRequestNum += 1;
    send(w, callId, w.lastRequestNum, { type: 'tree', op }, effects);
    return;
  }
  w.queue = w.queue.length === 0 ? [{ callId, op }] : [...w.queue, { callId, op }];
}

/** Sends the next request when nothing is outstanding: `register` first, then queued calls. */
function startNext(w: SessionWorking, effects: ClientEffect[]): void {
  if (w.outstanding !== null || w.queue.length === 0) return;
  if (!w.registered) {
    send(w, null, 0, { type: 'register' }, effects);
    return;
  }
  const call = w.queue[0] as { readonly callId: number; readonly op: TreeOp };
  w.queue = w.queue.length === 1 ? emptyQueue : w.queue.slice(1);
  w.lastRequestNum += 1;
  send(w, call.callId, w.lastRequestNum, { type: 'tree', op: call.op }, effects);
}

function send(w: SessionWorking, callId: number | null, requestNum: number, op: RequestOp, effects: ClientEffect[]): void {
  const request: Request = { type: 'request', clientId: w.clientId, requestNum, op };
  const target = primaryIndex(w);
  w.outstanding = { callId, request, target, attempt: 0, waitTicks: backoff(w, 0), ageTicks: 0, retrySame: false };
  effects.push({ type: 'send', to: target, request });
}

/**
 * The primary of the highest view heard of: `view mod replicas` (VRR §4; the replicas' own rule
 * is `primaryOf` in src/vr/config.ts, and docs/protocol.md section 9 gives it to every client).
 */
function primaryIndex(w: SessionWorking): number {
  return w.view % w.config.replicaCount;
}

function resend(w: SessionWorking, target: number, waitTicks: number, effects: ClientEffect[]): void {
  const outstanding = w.outstanding;
  if (outstanding === null) return;
  w.outstanding = outstandingWith(outstanding, target, outstanding.attempt + 1, waitTicks, outstanding.ageTicks, false);
  effects.push({ type: 'send', to: target, request: outstanding.request });
}

/**
 * A copy of `o` with new retry fields. Spelled out rather than spread: `o` is frozen, spreading
 * a frozen object takes V8's slow path, and one field order keeps one hidden class.
 */
function outstandingWith(o: Outstanding, target: number, attempt: number, waitTicks: number, ageTicks: number, retrySame: boolean): Outstanding {
  return { callId: o.callId, request: o.request, target, attempt, waitTicks, ageTicks, retrySame };
}

/** Doubling backoff with seeded jitter of up to half the base. */
function backoff(w: SessionWorking, attempt: number): number {
  const base = Math.min(w.config.retryTicks * 2 ** Math.min(attempt, 16), w.config.retryTicksMax);
  const jitter = nextInt(w.prng, Math.max(1, Math.floor(base / 2)));
  w.prng = jitter.prng;
  return base + jitter.value;
}

function onAnswer(w: SessionWorking, message: ClientAnswer, effects: ClientEffect[]): void {
  if (message.view > w.view) w.view = message.view;
  if (message.epoch > w.epoch) w.epoch = message.epoch;
  const outstanding = w.outstanding;
  if (outstanding === null || message.clientId !== w.clientId || message.requestNum !== outstanding.request.requestNum) {
    effects.push({ type: 'trace', event: 'client_ignore_stale_answer', detail: { requestNum: message.requestNum } });
    return;
  }
  switch (message.type) {
    case 'reply':
      onReply(w, outstanding, message, effects);
      break;
    case 'not_primary':
      onNotPrimary(w, outstanding, message, effects);
      break;
    case 'busy':
      // Nothing ran; try the same replica (the primary) again after the time it asked for.
      w.outstanding = outstandingWith(outstanding, outstanding.target, outstanding.attempt, Math.max(outstanding.waitTicks, message.retryAfterTicks), outstanding.ageTicks, true);
      break;
    default:
      assertNever(message, 'client answer');
  }
}

function onReply(w: SessionWorking, outstanding: Outstanding, reply: Reply, effects: ClientEffect[]): void {
  const body = reply.body;
  // The register request: the session is now known to the cluster.
  if (outstanding.callId === null) {
    if (body.type === 'registered') {
      w.registered = true;
      w.lastRequestNum = Math.max(w.lastRequestNum, body.lastRequestNum);
      w.outstanding = null;
    }
    return;
  }
  let result: CallResult;
  switch (body.type) {
    case 'tree':
      result = { type: 'done', outcome: body.outcome, epoch: reply.epoch, view: reply.view, op: reply.op, requestNum: reply.requestNum };
      break;
    case 'rejected':
      result = { type: 'rejected', outcome: body.outcome };
      break;
    case 'session_expired':
      // This answer ran nothing, but an earlier attempt may have run before the replicas
      // evicted the session. The next call registers again.
      w.registered = false;
      result = { type: 'session_expired', executed: outstanding.attempt > 0 ? 'maybe' : false };
      break;
    case 'stale_request':
      // Someone else used this client id (a session never moves on without its answer):
      // nothing can be known of this request. The next call starts above what ran.
      w.lastRequestNum = Math.max(w.lastRequestNum, body.lastRequestNum);
      result = { type: 'stale_request', lastRequestNum: body.lastRequestNum };
      break;
    case 'registered':
      effects.push({ type: 'trace', event: 'client_unexpected_registered' });
      return;
    default:
      return assertNever(body, 'reply body');
  }
  w.outstanding = null;
  effects.push({ type: 'result', callId: outstanding.callId, result });
}

/**
 * A node refused the outstanding request for good. A refused `register` fails the call waiting
 * for it (nothing of that call was sent). Otherwise the call ends: `frame_too_large` means it
 * ran; the others mean this attempt ran nothing, so only an earlier attempt may have.
 */
function onRefused(w: SessionWorking, requestNum: number, reason: RefusalReason, message: string, effects: ClientEffect[]): void {
  const outstanding = w.outstanding;
  if (outstanding === null || outstanding.request.requestNum !== requestNum) {
    effects.push({ type: 'trace', event: 'client_ignore_stale_refusal', detail: { requestNum } });
    return;
  }
  w.outstanding = null;
  if (outstanding.callId === null) {
    const first = w.queue[0];
    if (first === undefined) return;
    w.queue = w.queue.length === 1 ? emptyQueue : w.queue.slice(1);
    effects.push({ type: 'result', callId: first.callId, result: { type: 'refused', reason, message, executed: false } });
    return;
  }
  const executed = reason === 'frame_too_large' ? true : outstanding.attempt > 0 ? 'maybe' : false;
  effects.push({ type: 'result', callId: outstanding.callId, result: { type: 'refused', reason, message, executed } });
}

function onNotPrimary(w: SessionWorking, outstanding: Outstanding, message: NotPrimary, effects: ClientEffect[]): void {
  const primary = primaryIndex(w);
  // Follow the redirect at once if it points somewhere new; otherwise the backoff decides.
  if (primary !== outstanding.target && primary === message.primary) {
    resend(w, primary, backoff(w, outstanding.attempt + 1), effects);
  }
}

function onTick(w: SessionWorking, effects: ClientEffect[]): void {
  const before = w.outstanding;
  if (before === null) return;
  const outstanding = outstandingWith(before, before.target, before.attempt, before.waitTicks - 1, before.ageTicks + 1, before.retrySame);
  w.outstanding = outstanding;
  if (outstanding.ageTicks >= w.config.giveUpTicks) {
    giveUp(w, outstanding, effects);
    return;
  }
  if (outstanding.waitTicks > 0) return;
  // Silence: the primary may be gone. Try the replica after the one last tried; a backup
  // answers not_primary with the view it knows, which redirects us.
  const target = outstanding.retrySame ? outstanding.target : (outstanding.target + 1) % w.config.replicaCount;
  resend(w, target, backoff(w, outstanding.attempt + 1), effects);
}

function giveUp(w: SessionWorking, outstanding: Outstanding, effects: ClientEffect[]): void {
  w.outstanding = null;
  // A register that never answered fails the call that was waiting for it.
  let callId = outstanding.callId;
  if (callId === null && w.queue.length > 0) {
    callId = (w.queue[0] as { readonly callId: number }).callId;
    w.queue = w.queue.length === 1 ? emptyQueue : w.queue.slice(1);
  }
  if (callId !== null) effects.push({ type: 'result', callId, result: { type: 'timeout' } });
}
