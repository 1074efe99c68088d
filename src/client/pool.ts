/**
 * A pool of client sessions, pure: `poolStepAll(state, inputs) -> { state, effects }`.
 *
 * VRR §4.1 lets a client have one request outstanding at a time, so a proxy that serves many
 * callers at once holds many sessions (client ids). The pool hands each call to an idle
 * session, opens a new one while fewer than `sessionsMax` exist, and otherwise queues the call
 * (FIFO, at most `waitingMax`; beyond that it is answered `overloaded` at once, DESIGN.md
 * convention 8). A session that finishes its call takes the next waiting call, else goes idle.
 *
 * Each session behaves exactly as `clientStep` (session.ts): the same plain-object handlers
 * run here (register first, request numbers, backoff with seeded jitter rotating replicas on
 * silence, not_primary redirect, busy, give-up with `timeout`, re-register after
 * `session_expired`). What the pool adds:
 *
 * - One immer `produce` per batch of inputs, not per input (DESIGN.md convention 5): the
 *   handlers work on a plain working copy, and the collections that grow with the number of
 *   sessions are Immutable.js structures held as opaque values (a step never copies O(n)),
 *   edited as transients within the batch (a node already copied in this batch is written in
 *   place) and sealed at its end.
 * - Primary tracking is pool-wide (decision): the pool keeps the highest view and epoch any of
 *   its sessions heard of (VRR §4.1: the client learns the view, hence the primary, from
 *   answers), and a session about to be stepped first adopts it. So after a view change
 *   (VRR §4.2) one not_primary redirect teaches every session where the primary is, and a new
 *   session sends its register to the current primary rather than to replica 0. Nothing else is
 *   shared: each session keeps its own request numbers, PRNG and retry state.
 * - A tick advances only busy sessions (a set of their indices), so its cost does not grow
 *   with idle sessions.
 *
 * Session n (counting from 1) has client id `${clientIdPrefix}.${n}` and sits at index n - 1 of
 * `sessions`; sessions are never closed (the replicas' client table ages them out, VRR §6),
 * so the list only grows, up to `sessionsMax`.
 */

import { produce } from 'immer';
import { List, Set as ImmutableSet } from 'immutable';
import { assert, assertNever } from '../base/assert.ts';
import type { TreeOp } from '../tree/ops.ts';
import type { ClientAnswer } from '../vr/messages.ts';
import { makePrng, nextInt, type Prng } from '../base/prng.ts';
import { validateClientConfig, type ClientConfig } from './config.ts';
import type { ClientEffect, ClientInput, RefusalReason } from './io.ts';
import { beginSession, initialClientState, isIdle, sessionChanged, sessionHandle, type ClientState, type SessionWorking } from './session.ts';

// ---- configuration ---------------------------------------------------------------------------

export type PoolConfig = {
  readonly client: ClientConfig;
  /** Sessions the pool may open: the most calls it has in flight at once. */
  readonly sessionsMax: number;
  /** Calls waiting for a session; beyond it a call is answered `overloaded`. 0: none wait. */
  readonly waitingMax: number;
  /** Client ids are `${clientIdPrefix}.${n}`; it must never repeat across restarts of the owner. */
  readonly clientIdPrefix: string;
};

/** Upper bounds on the configuration (convention 8: everything has a limit). */
export const poolLimits = {
  sessionsMax: 1_000_000,
  waitingMax: 1_000_000,
  /** The replicas accept client ids of up to 256 characters (src/vr/validate.ts); this leaves room for `.${n}`. */
  clientIdPrefixLength: 240,
} as const;

export type PoolConfigProblem = {
  readonly field: 'client' | 'sessionsMax' | 'waitingMax' | 'clientIdPrefix';
  readonly reason: string;
};

export function validatePoolConfig(config: PoolConfig): PoolConfigProblem | null {
  const client = validateClientConfig(config.client);
  if (client !== null) return { field: 'client', reason: client };
  const { sessionsMax, waitingMax, clientIdPrefix } = config;
  if (!Number.isSafeInteger(sessionsMax) || sessionsMax < 1 || sessionsMax > poolLimits.sessionsMax) {
    return { field: 'sessionsMax', reason: `pool config.sessionsMax must be an integer in 1..${poolLimits.sessionsMax}` };
  }
  if (!Number.isSafeInteger(waitingMax) || waitingMax < 0 || waitingMax > poolLimits.waitingMax) {
    return { field: 'waitingMax', reason: `pool config.waitingMax must be an integer in 0..${poolLimits.waitingMax}` };
  }
  if (typeof clientIdPrefix !== 'string' || clientIdPrefix.length === 0 || clientIdPrefix.length > poolLimits.clientIdPrefixLength) {
    return { field: 'clientIdPrefix', reason: `pool config.clientIdPrefix must be a string of 1..${poolLimits.clientIdPrefixLength} characters` };
  }
  return null;
}

// ---- inputs, effects, state ------------------------------------------------------------------

export type PoolInput =
  /** A caller's operation; `callId` is the caller's handle for the result. */
  | { readonly type: 'call'; readonly callId: number; readonly op: TreeOp }
  /** An answer from a replica to one of the pool's sessions (found by its client id). */
  | { readonly type: 'receive'; readonly message: ClientAnswer }
  /** A node refused a session's request for good (found by its client id; see ClientInput). */
  | { readonly type: 'refused'; readonly clientId: string; readonly requestNum: number; readonly reason: RefusalReason; readonly message: string }
  | { readonly type: 'tick' };

/** The same effects as a session's: `send` a request to replica `to`, a call's `result`, a `trace`. */
export type PoolEffect = ClientEffect;

export type WaitingCall = { readonly callId: number; readonly op: TreeOp };

export type PoolState = {
  readonly config: PoolConfig;
  /** Seeds the PRNG of every new session (DESIGN.md convention 2). */
  readonly prng: Prng;
  /** The highest view and epoch any session heard of (pool-wide primary tracking, see above). */
  readonly view: number;
  readonly epoch: number;
  /** Session n at index n - 1. Opaque: Immutable.js, never drafted by immer. */
  readonly sessions: List<ClientState>;
  /** Indices of sessions with a call in flight (not `isIdle`). */
  readonly busy: ImmutableSet<number>;
  /** Indices of idle sessions, a stack: the most recently used is reused first. */
  readonly idle: List<number>;
  /** Calls waiting for a session, oldest first. */
  readonly waiting: List<WaitingCall>;
};

export type PoolStepResult = { readonly state: PoolState; readonly effects: readonly PoolEffect[] };

export type PoolStats = { readonly sessions: number; readonly busy: number; readonly waiting: number };

export function initialPoolState(config: PoolConfig, seed: number): PoolState {
  const problem = validatePoolConfig(config);
  if (problem !== null) throw new RangeError(problem.reason);
  return Object.freeze({
    config: Object.freeze({ ...config, client: Object.freeze({ ...config.client }) }),
    prng: Object.freeze(makePrng(seed)),
    view: 0,
    epoch: 0,
    sessions: List<ClientState>(),
    busy: ImmutableSet<number>(),
    idle: List<number>(),
    waiting: List<WaitingCall>(),
  });
}

export function poolStats(state: PoolState): PoolStats {
  return { sessions: state.sessions.size, busy: state.busy.size, waiting: state.waiting.size };
}

/**
 * The pool's invariants, O(sessions): for tests and the simulator, not the hot path. Returns a
 * reason, or null when they hold.
 */
export function checkPoolInvariants(state: PoolState): string | null {
  const { sessions, busy, idle, waiting, config } = state;
  if (sessions.size > config.sessionsMax) return `${sessions.size} sessions, over sessionsMax ${config.sessionsMax}`;
  if (waiting.size > config.waitingMax) return `${waiting.size} waiting, over waitingMax ${config.waitingMax}`;
  if (busy.size + idle.size !== sessions.size) return `busy ${busy.size} + idle ${idle.size} != sessions ${sessions.size}`;
  if (waiting.size > 0 && (idle.size > 0 || sessions.size < config.sessionsMax)) return 'a call waits while a session could take it';
  for (let index = 0; index < sessions.size; index++) {
    const session = sessions.get(index) as ClientState;
    if (session.clientId !== clientIdOf(config, index)) return `session ${index} has client id ${session.clientId}`;
    if (busy.has(index) === isIdle(session)) return `session ${index} is ${isIdle(session) ? 'idle' : 'busy'} but ${busy.has(index) ? 'in' : 'not in'} the busy set`;
    if (session.view > state.view || session.epoch > state.epoch) return `session ${index} heard of a later view or epoch than the pool`;
  }
  if (new globalThis.Set(idle).size !== idle.size) return 'a session is idle twice';
  return null;
}

// ---- the step ----------------------------------------------------------------------------------

/** The pool being stepped: plain fields; the collections are transients of this batch. */
type PoolWorking = {
  readonly config: PoolConfig;
  readonly clientIdDot: string;
  prng: Prng;
  view: number;
  epoch: number;
  sessions: List<ClientState>;
  busy: ImmutableSet<number>;
  idle: List<number>;
  waiting: List<WaitingCall>;
  /**
   * Sessions that went idle in this batch, most recent last: the top of the idle stack, kept
   * out of `idle` and still in `busy` until the batch ends or a tick needs the busy set. Under
   * load a released session is taken by the next call of the same batch, and this saves the
   * four Immutable.js edits of that round trip (busy remove and add, idle push and pop).
   */
  freed: number[];
  /** Which collections this batch wrote (a transient is a new object even when unwritten). */
  sessionsWritten: boolean;
  busyWritten: boolean;
  idleWritten: boolean;
  waitingWritten: boolean;
};

/**
 * Steps the pool through a batch of inputs, in order, with ONE immer `produce` (DESIGN.md
 * convention 5); effects come out in input order. Each input yields O(1) effects except a tick,
 * which yields O(busy sessions) <= sessionsMax; the batch size is the caller's (its mailbox bound).
 */
export function poolStepAll(state: PoolState, inputs: readonly PoolInput[]): PoolStepResult {
  const effects: PoolEffect[] = [];
  const w: PoolWorking = {
    config: state.config,
    clientIdDot: `${state.config.clientIdPrefix}.`,
    prng: state.prng,
    view: state.view,
    epoch: state.epoch,
    sessions: state.sessions.asMutable(),
    busy: state.busy.asMutable(),
    idle: state.idle.asMutable(),
    waiting: state.waiting.asMutable(),
    freed: [],
    sessionsWritten: false,
    busyWritten: false,
    idleWritten: false,
    waitingWritten: false,
  };
  for (const input of inputs) {
    switch (input.type) {
      case 'call':
        onCall(w, input, effects);
        break;
      // A pool's receive and refused inputs are a session's as they are (refused names the
      // client id as well): handed on, not copied.
      case 'receive':
        onReceive(w, input.message.clientId, input, effects);
        break;
      case 'refused':
        onReceive(w, input.clientId, input, effects);
        break;
      case 'tick':
        onTick(w, effects);
        break;
      default:
        assertNever(input, 'pool input');
    }
  }
  settleFreed(w);
  const next = produce(state, (draft) => {
    // Through `unknown`: immer's Draft type maps the Immutable.js values as if they were drafted; they are not.
    const d = draft as unknown as { -readonly [K in keyof PoolState]: PoolState[K] };
    // config never changes. The sealed collections are opaque to immer (not drafted, not frozen
    // by it): Immutable.js values cannot be written in place once sealed.
    if (w.prng !== state.prng) d.prng = w.prng;
    if (w.view !== state.view) d.view = w.view;
    if (w.epoch !== state.epoch) d.epoch = w.epoch;
    if (w.sessionsWritten) d.sessions = w.sessions.asImmutable();
    if (w.busyWritten) d.busy = w.busy.asImmutable();
    if (w.idleWritten) d.idle = w.idle.asImmutable();
    if (w.waitingWritten) d.waiting = w.waiting.asImmutable();
  });
  return { state: next, effects };
}

function clientIdOf(config: PoolConfig, index: number): string {
  return `${config.clientIdPrefix}.${index + 1}`;
}

/** A call's input, which is the session's input too (handed on, not copied). */
type CallInput = Extract<ClientInput, { type: 'call' }>;

/** A call: an idle session, else a new one while under sessionsMax, else the waiting queue, else `overloaded`. */
function onCall(w: PoolWorking, call: CallInput, effects: PoolEffect[]): void {
  const freed = w.freed.pop();
  if (freed !== undefined) {
    // Still in the busy set (see `freed`).
    run(w, freed, call, effects);
    return;
  }
  const idle = w.idle.last();
  if (idle !== undefined) {
    w.idle = w.idle.pop();
    w.idleWritten = true;
    start(w, idle, call, effects);
    return;
  }
  if (w.sessions.size < w.config.sessionsMax) {
    const index = w.sessions.size;
    const seed = nextInt(w.prng, 0x1_0000_0000);
    w.prng = seed.prng;
    w.sessions = w.sessions.push(initialClientState(clientIdOf(w.config, index), w.config.client, seed.value));
    w.sessionsWritten = true;
    start(w, index, call, effects);
    return;
  }
  if (w.waiting.size >= w.config.waitingMax) {
    effects.push({ type: 'result', callId: call.callId, result: { type: 'overloaded' } });
    return;
  }
  w.waiting = w.waiting.push(Object.freeze({ callId: call.callId, op: call.op }));
  w.waitingWritten = true;
}

/** Gives a call to an idle session (index) outside the busy set. */
function start(w: PoolWorking, index: number, call: CallInput, effects: PoolEffect[]): void {
  w.busy = w.busy.add(index);
  w.busyWritten = true;
  run(w, index, call, effects);
}

/** Gives a call to an idle session (index) in the busy set; it sends at once (its register or the request). */
function run(w: PoolWorking, index: number, call: CallInput, effects: PoolEffect[]): void {
  const session = stepSession(w, index, call, effects);
  // An idle session's queue is empty and queueMax >= 1, so the call is taken and sent.
  assert(!isIdle(session), `pool: session ${index} stayed idle after a call`);
}

/** A session that finished its call takes the next waiting one, else goes idle. */
function release(w: PoolWorking, index: number, effects: PoolEffect[]): void {
  const next = w.waiting.first();
  if (next !== undefined) {
    w.waiting = w.waiting.shift();
    w.waitingWritten = true;
    run(w, index, { type: 'call', callId: next.callId, op: next.op }, effects);
    return;
  }
  w.freed.push(index);
}

/** Moves the sessions freed in this batch out of the busy set onto the idle stack, oldest first. */
function settleFreed(w: PoolWorking): void {
  if (w.freed.length === 0) return;
  for (const index of w.freed) {
    w.busy = w.busy.remove(index);
    w.idle = w.idle.push(index);
  }
  w.freed.length = 0;
  w.busyWritten = true;
  w.idleWritten = true;
}

/** An answer or a refusal for the session named by `clientId`. */
function onReceive(w: PoolWorking, clientId: unknown, input: Extract<ClientInput, { type: 'receive' | 'refused' }>, effects: PoolEffect[]): void {
  const index = sessionIndexOf(w, clientId);
  if (index === null) {
    // Not one of ours (a previous incarnation's session, or garbage): convention 6, trace and drop.
    effects.push({ type: 'trace', event: 'pool_stray_answer', detail: { clientId: typeof clientId === 'string' ? clientId.slice(0, 256) : null } });
    return;
  }
  const before = w.sessions.get(index) as ClientState;
  const wasBusy = !isIdle(before);
  // An idle session traces the late answer as stale (and learns its view); it stays idle.
  const after = stepSession(w, index, input, effects);
  if (wasBusy && isIdle(after)) release(w, index, effects);
}

/** Advances the busy sessions only (VRR §4.1: a client's timer runs while it waits for a reply). */
function onTick(w: PoolWorking, effects: PoolEffect[]): void {
  settleFreed(w);
  if (w.busy.size === 0) return;
  // A snapshot (release() edits the set), in ascending session order so that which session
  // takes which waiting call, and the order of the effects, are stated rather than whatever
  // the hash trie's iteration order is (sorting 1,024 indices costs a few µs, a tick ~200 µs).
  // A session that takes a waiting call in this tick was already ticked; its new call's clock
  // starts at the next tick, as with `clientStep`.
  const busy = new Int32Array(w.busy.size);
  let at = 0;
  w.busy.forEach((index) => {
    busy[at++] = index;
  });
  busy.sort();
  for (const index of busy) {
    const after = stepSession(w, index, { type: 'tick' }, effects);
    if (isIdle(after)) release(w, index, effects);
  }
}

/**
 * Steps one session with the session handlers (session.ts), after it adopts the pool's view
 * and epoch, and stores it if it changed. Returns the session as it now is.
 */
function stepSession(w: PoolWorking, index: number, input: ClientInput, effects: PoolEffect[]): ClientState {
  const before = w.sessions.get(index);
  assert(before !== undefined, `pool: no session ${index}`);
  const s = beginSession(before);
  if (w.view > s.view) s.view = w.view;
  if (w.epoch > s.epoch) s.epoch = w.epoch;
  sessionHandle(s, input, effects);
  if (s.view > w.view) w.view = s.view;
  if (s.epoch > w.epoch) w.epoch = s.epoch;
  if (!sessionChanged(before, s)) return before;
  const after = freezeSession(before, s);
  w.sessions = w.sessions.set(index, after);
  w.sessionsWritten = true;
  return after;
}

/**
 * Seals a stepped session. The sessions live inside an Immutable.js list, where immer's
 * autoFreeze does not reach, so the pool freezes what the handlers created (the record, a new
 * outstanding request, a new queue); a caller's op (possibly holding a Uint8Array) is left as is.
 */
function freezeSession(before: ClientState, s: SessionWorking): ClientState {
  if (s.outstanding !== before.outstanding && s.outstanding !== null) {
    Object.freeze(s.outstanding.request);
    Object.freeze(s.outstanding);
  }
  if (s.queue !== before.queue) Object.freeze(s.queue);
  return Object.freeze(s);
}

/**
 * `${clientIdPrefix}.${n}` -> n - 1 when session n exists, else null. Parsed by hand (no
 * substring, no number-to-string round trip): this runs once per answer.
 */
function sessionIndexOf(w: PoolWorking, clientId: unknown): number | null {
  if (typeof clientId !== 'string' || !clientId.startsWith(w.clientIdDot)) return null;
  const start = w.clientIdDot.length;
  // n <= sessionsMax <= 1,000,000: at most 7 digits, no leading zero.
  if (clientId.length === start || clientId.length - start > 7 || clientId.charCodeAt(start) === 48) return null;
  let n = 0;
  for (let i = start; i < clientId.length; i++) {
    const digit = clientId.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return null;
    n = n * 10 + digit;
  }
  return n <= w.sessions.size ? n - 1 : null;
}
