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

import { current, isDraft, produce, type Draft } from 'immer';
import { assertNever } from '../tree/assert.ts';
import type { TreeOp } from '../tree/ops.ts';
import type { ClientAnswer, NotPrimary, Reply, Request, RequestOp } from '../vr/messages.ts';
import { makePrng, nextInt, type Prng } from '../vr/prng.ts';
import { validateClientConfig, type ClientConfig } from './config.ts';
import type { CallResult, ClientEffect, ClientInput } from './io.ts';

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
    queue: [],
  };
}

export function clientStep(state: ClientState, input: ClientInput): ClientStepResult {
  const effects: ClientEffect[] = [];
  const next = produce(state, (draft) => {
    switch (input.type) {
      case 'call':
        onCall(draft, input.callId, input.op, effects);
        break;
      case 'receive':
        onAnswer(draft, input.message, effects);
        break;
      case 'tick':
        onTick(draft, effects);
        break;
      default:
        assertNever(input, 'client input');
    }
    startNext(draft, effects);
  });
  return { state: next, effects };
}

/** True when the session has nothing outstanding or queued. */
export function isIdle(state: ClientState): boolean {
  return state.outstanding === null && state.queue.length === 0;
}

function onCall(draft: Draft<ClientState>, callId: number, op: TreeOp, effects: ClientEffect[]): void {
  if (draft.queue.length >= draft.config.queueMax) {
    effects.push({ type: 'result', callId, result: { type: 'overloaded' } });
    return;
  }
  draft.queue.push({ callId, op: op as Draft<TreeOp> });
}

/** Sends the next request when nothing is outstanding: `register` first, then queued calls. */
function startNext(draft: Draft<ClientState>, effects: ClientEffect[]): void {
  if (draft.outstanding !== null || draft.queue.length === 0) return;
  if (!draft.registered) {
    send(draft, null, 0, { type: 'register' }, effects);
    return;
  }
  const call = draft.queue.shift() as { callId: number; op: TreeOp };
  draft.lastRequestNum += 1;
  send(draft, call.callId, draft.lastRequestNum, { type: 'tree', op: plain(call.op) }, effects);
}

function send(draft: Draft<ClientState>, callId: number | null, requestNum: number, op: RequestOp, effects: ClientEffect[]): void {
  const request: Request = { type: 'request', clientId: draft.clientId, requestNum, op };
  const target = draft.view % draft.config.replicaCount;
  draft.outstanding = { callId, request: request as Draft<Request>, target, attempt: 0, waitTicks: backoff(draft, 0), ageTicks: 0, retrySame: false };
  effects.push({ type: 'send', to: target, request });
}

function resend(draft: Draft<ClientState>, target: number, waitTicks: number, effects: ClientEffect[]): void {
  const outstanding = draft.outstanding;
  if (outstanding === null) return;
  outstanding.target = target;
  outstanding.attempt += 1;
  outstanding.waitTicks = waitTicks;
  outstanding.retrySame = false;
  effects.push({ type: 'send', to: target, request: plain(outstanding.request as Request) });
}

/** Effects outlive the step: never hand out an immer draft (it is revoked when the step ends). */
function plain<T>(value: T): T {
  return isDraft(value) ? (current(value as Draft<T>) as T) : value;
}

/** Doubling backoff with seeded jitter of up to half the base. */
function backoff(draft: Draft<ClientState>, attempt: number): number {
  const base = Math.min(draft.config.retryTicks * 2 ** Math.min(attempt, 16), draft.config.retryTicksMax);
  const jitter = nextInt(draft.prng, Math.max(1, Math.floor(base / 2)));
  draft.prng = jitter.prng;
  return base + jitter.value;
}

function onAnswer(draft: Draft<ClientState>, message: ClientAnswer, effects: ClientEffect[]): void {
  if (message.view > draft.view) draft.view = message.view;
  if (message.epoch > draft.epoch) draft.epoch = message.epoch;
  const outstanding = draft.outstanding;
  if (outstanding === null || message.clientId !== draft.clientId || message.requestNum !== outstanding.request.requestNum) {
    effects.push({ type: 'trace', event: 'client_ignore_stale_answer', detail: { requestNum: message.requestNum } });
    return;
  }
  switch (message.type) {
    case 'reply':
      onReply(draft, message, effects);
      break;
    case 'not_primary':
      onNotPrimary(draft, message, effects);
      break;
    case 'busy':
      // Nothing ran; try the same replica (the primary) again after the time it asked for.
      outstanding.waitTicks = Math.max(outstanding.waitTicks, message.retryAfterTicks);
      outstanding.retrySame = true;
      break;
    default:
      assertNever(message, 'client answer');
  }
}

function onReply(draft: Draft<ClientState>, reply: Reply, effects: ClientEffect[]): void {
  const outstanding = draft.outstanding as Outstanding;
  const body = reply.body;
  // The register request: the session is now known to the cluster.
  if (outstanding.callId === null) {
    if (body.type === 'registered') {
      draft.registered = true;
      draft.lastRequestNum = Math.max(draft.lastRequestNum, body.lastRequestNum);
      draft.outstanding = null;
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
      // Nothing ran; the next call opens a new session.
      draft.registered = false;
      result = { type: 'session_expired' };
      break;
    case 'registered':
      effects.push({ type: 'trace', event: 'client_unexpected_registered' });
      return;
    default:
      return assertNever(body, 'reply body');
  }
  draft.outstanding = null;
  effects.push({ type: 'result', callId: outstanding.callId, result });
}

function onNotPrimary(draft: Draft<ClientState>, message: NotPrimary, effects: ClientEffect[]): void {
  const outstanding = draft.outstanding as Outstanding;
  const primary = draft.view % draft.config.replicaCount;
  // Follow the redirect at once if it points somewhere new; otherwise the backoff decides.
  if (primary !== outstanding.target && primary === message.primary) {
    resend(draft, primary, backoff(draft, outstanding.attempt + 1), effects);
  }
}

function onTick(draft: Draft<ClientState>, effects: ClientEffect[]): void {
  const outstanding = draft.outstanding;
  if (outstanding === null) return;
  outstanding.ageTicks += 1;
  outstanding.waitTicks -= 1;
  if (outstanding.ageTicks >= draft.config.giveUpTicks) {
    giveUp(draft, effects);
    return;
  }
  if (outstanding.waitTicks > 0) return;
  // Silence: the primary may be gone. Try the replica after the one last tried; a backup
  // answers not_primary with the view it knows, which redirects us.
  const target = outstanding.retrySame ? outstanding.target : (outstanding.target + 1) % draft.config.replicaCount;
  resend(draft, target, backoff(draft, outstanding.attempt + 1), effects);
}

function giveUp(draft: Draft<ClientState>, effects: ClientEffect[]): void {
  const outstanding = draft.outstanding as Outstanding;
  draft.outstanding = null;
  // A register that never answered fails the call that was waiting for it.
  const callId = outstanding.callId ?? draft.queue.shift()?.callId ?? null;
  if (callId !== null) effects.push({ type: 'result', callId, result: { type: 'timeout' } });
}
