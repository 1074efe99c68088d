/**
 * The embedding API's endpoint: a host-thread actor that sends callers' operations to the
 * client proxy and settles their promises when results come back.
 *
 * Every call settles, and the ones refused by a limit settle at once:
 * - with its result;
 * - `overloaded` (not sent) when `callsInFlightMax` calls are already in flight: the proxy's
 *   mailbox is sized for that many, so no call is ever dropped by it;
 * - while the proxy restarts (its worker died), new calls wait here and are sent as soon as it
 *   is back (~250 ms); calls it had when it died settle `proxy_restarted` (they may have run);
 * - while the supervisor has given up on it (past its restart limit, until the restart after
 *   the cool-down brings it back), every call settles `unavailable` at once, without waiting;
 * - while the node's health monitor marks the call's namespace unable to serve (src/node/health.ts:
 *   more than f of its replicas recovering, down or with a failing disk), every call to it settles
 *   `unavailable` at once with the monitor's reason, not sent; calls already sent to it when it is
 *   marked settle `unavailable` then too (they may have run);
 * - `stopped` when the node stops;
 * - `timeout` at a backstop deadline (checked by one sweep timer, not a timer per call, so a
 *   million calls in flight cost no timers).
 *
 * Watches (issue 14) bypass the proxy: the endpoint's watch registry (src/client/watch_registry.ts,
 * the same code as a TCP connection's) subscribes at a replica actor directly, as this actor,
 * and the replica's notices come back here. The registry's machines fail over between the
 * namespace's replicas on their own (silence, `not_serving`), so a replica's worker restart
 * or the proxy's needs nothing from this file.
 */

import type { Actor, ActorContext } from '../../runtime/actor.ts';
import type { ActorId, Envelope } from '../../runtime/envelope.ts';
import type { SystemEvent } from '../../runtime/system.ts';
import { assertNever } from '../base/assert.ts';
import type { ProxyOutcome, ProxyResult } from '../../actors/messages.ts';
import type { ProxyCalls, ProxyResults } from '../../actors/client_proxy.ts';
import type { TreeOp } from '../tree/ops.ts';
import { HaretError } from '../client/errors.ts';
import { serviceClientTickMs } from '../client/config.ts';
import { defaultWatchMachineConfig, type WatchSpec } from '../client/watch.ts';
import { WatchRegistry } from '../client/watch_registry.ts';
import type { WatchStream } from '../client/watch_stream.ts';
import { watchNoticeTypes, type WatchNotice, type WatchRequest } from '../watch/messages.ts';
import { replicaId } from './layout.ts';

/** Watches open at once through one node's embedding API, and batches buffered per watch. */
export const embeddedWatchesMax = 16_384;
export const embeddedWatchBatchesMax = 10_000;

type Pending = {
  readonly ns: string;
  readonly op: TreeOp;
  readonly resolve: (outcome: ProxyOutcome) => void;
  readonly reject: (error: HaretError) => void;
  readonly deadline: number;
  /** False while it waits here for the proxy to come back. */
  sent: boolean;
};

/**
 * Calls per `ProxyCalls` envelope at most; a turn with more sends several. When an application
 * fires tens of thousands of calls in one turn, this bounds one message (a structured clone, or
 * a ring record) and the calls one drain pass of the proxy takes (`drainMax` envelopes).
 */
export const callsPerEnvelopeMax = 128;

/** The calls of one namespace made in this turn and not yet handed to the router, in call order. */
type Outgoing = { callIds: number[]; ops: TreeOp[] };

/**
 * The resolving functions of the promise made last. One executor for every call: `new Promise`
 * runs it synchronously, and the call takes the functions at once (no closure per call).
 */
const noop = (): void => undefined;
const captured: { resolve: (outcome: ProxyOutcome) => void; reject: (error: HaretError) => void } = { resolve: noop, reject: noop };
function capture(resolve: (outcome: ProxyOutcome) => void, reject: (error: HaretError) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

/** Where the proxy is: running, restarting after a crash, or given up on by the supervisor. */
export type ProxyState = 'up' | 'down' | 'failed';

export class Endpoint {
  readonly id: ActorId;
  readonly #proxy: ActorId;
  /** The proxy's worker, or null when the proxy runs on the main thread. */
  readonly #proxyWorker: string | null;
  readonly #deadlineMs: number;
  readonly #callsMax: number;
  /** Calls not settled yet, in call order (sent, or held while the proxy is down). */
  readonly #pending = new Map<number, Pending>();
  #context: ActorContext | null = null;
  #nextCallId = 1;
  /**
   * Calls sent in this turn, by namespace: they leave together in one envelope per namespace
   * (at most `callsPerEnvelopeMax` calls each) when the turn's microtasks run out, rather
   * than one envelope per call (see actors/client_proxy.ts for what that saves).
   */
  readonly #outgoing = new Map<string, Outgoing>();
  #outgoingScheduled = false;
  /** A call in `#outgoing` settled before it left (the proxy died, the node stopped, ...): leave it out. */
  #outgoingStale = false;
  #sweep: NodeJS.Timeout | null = null;
  #closed = false;
  #proxyState: ProxyState = 'up';
  /** Why a namespace cannot serve now (the health monitor), or null; absent: every namespace may serve. */
  #namespaceGate: ((ns: string) => string | null) | null = null;
  readonly counters = { calls: 0, overloaded: 0, held: 0, proxyRestarted: 0, unavailable: 0, namespaceUnavailable: 0, timeouts: 0 };
  /** Replica actor id of (namespace, index), or undefined for a namespace the node does not serve. */
  #replicaOf: (ns: string, index: number) => ActorId | undefined = () => undefined;
  /** The replicas (namespace, index) a worker hosts, for watches to leave a worker that died. */
  #replicasIn: (worker: string) => readonly { readonly ns: string; readonly index: number }[] = () => [];
  readonly #watches: WatchRegistry;
  #watchTicker: NodeJS.Timeout | null = null;

  constructor(id: ActorId, proxy: ActorId, proxyWorker: string | null, deadlineMs: number, callsInFlightMax: number, watchBatchesMax = embeddedWatchBatchesMax) {
    this.id = id;
    this.#proxy = proxy;
    this.#proxyWorker = proxyWorker;
    this.#deadlineMs = deadlineMs;
    this.#callsMax = callsInFlightMax;
    this.#watches = new WatchRegistry('e', (ns, replica, request) => this.#sendWatch(ns, replica, request), defaultWatchMachineConfig, { watchesMax: embeddedWatchesMax, bufferedBatchesMax: watchBatchesMax }, Math.random);
  }

  /** The host actor's factory, for ActorSystem's `hostActors`. */
  factory = (context: ActorContext): Actor => {
    this.#context = context;
    return {
      receive: (batch: readonly Envelope[]) => {
        for (const envelope of batch) {
          if (isWatchNotice(envelope.msg)) this.#watches.receive(envelope.msg);
          else this.#onResult(envelope.msg);
        }
      },
      status: () => ({ role: 'endpoint', pending: this.#pending.size, proxy: this.#proxyState, watches: this.#watches.openCount, ...this.counters }),
    };
  };

  get pending(): number {
    return this.#pending.size;
  }

  get proxyState(): ProxyState {
    return this.#proxyState;
  }

  /** Set by the node: where a namespace's replica actors are (namespaces may be added while it runs). */
  setReplicaResolver(resolve: (ns: string, index: number) => ActorId | undefined): void {
    this.#replicaOf = resolve;
  }

  /** Set by the node: which replicas a worker hosts. */
  setWorkerReplicas(replicasIn: (worker: string) => readonly { readonly ns: string; readonly index: number }[]): void {
    this.#replicasIn = replicasIn;
  }

  /** Watches open through this endpoint. */
  get watchesOpen(): number {
    return this.#watches.openCount;
  }

  /**
   * Opens a watch on namespace `ns` of `replicaCount` replicas (NamespaceClient.watch). Throws a
   * HaretError at once when the node is stopped, the namespace cannot serve, or too many
   * watches are open; otherwise every later problem ends the stream with a typed error.
   */
  watch(ns: string, replicaCount: number, spec: WatchSpec): WatchStream {
    if (this.#closed || this.#context === null) throw new HaretError('stopped', 'the node is stopped', false);
    const cannotServe = this.#namespaceGate?.(ns) ?? null;
    if (cannotServe !== null) throw new HaretError('unavailable', `${cannotServe}; the watch was not opened`, false);
    const stream = this.#watches.open(ns, replicaCount, spec);
    if (this.#watchTicker === null) {
      this.#watchTicker = setInterval(() => this.#watches.tick(), serviceClientTickMs);
      this.#watchTicker.unref();
    }
    return stream;
  }

  /** Set once by the node: the health monitor's verdict per namespace (src/node/health.ts). */
  setNamespaceGate(gate: (ns: string) => string | null): void {
    this.#namespaceGate = gate;
  }

  call(ns: string, op: TreeOp): Promise<ProxyOutcome> {
    if (this.#closed || this.#context === null) return Promise.reject(new HaretError('stopped', 'the node is stopped', false));
    const cannotServe = this.#namespaceGate?.(ns) ?? null;
    if (cannotServe !== null) {
      this.counters.namespaceUnavailable += 1;
      return Promise.reject(new HaretError('unavailable', `${cannotServe}; the call was not sent`, false));
    }
    if (this.#proxyState === 'failed') return Promise.reject(unavailable());
    if (this.#pending.size >= this.#callsMax) {
      this.counters.overloaded += 1;
      return Promise.resolve({ type: 'overloaded' });
    }
    this.counters.calls += 1;
    const callId = this.#nextCallId;
    this.#nextCallId += 1;
    const promise = new Promise<ProxyOutcome>(capture);
    const pending: Pending = { ns, op, resolve: captured.resolve, reject: captured.reject, deadline: performance.now() + this.#deadlineMs, sent: false };
    // Not kept here: they would hold this call's promise, and so its result, after it settles.
    captured.resolve = noop;
    captured.reject = noop;
    this.#pending.set(callId, pending);
    if (this.#proxyState === 'up') this.#send(callId, pending);
    else this.counters.held += 1;
    this.#armSweep();
    return promise;
  }

  /**
   * The proxy died: nobody will answer what it had, which may or may not have run. Calls from
   * now on wait here until it is back.
   */
  proxyDown(): void {
    if (this.#proxyState === 'failed') return;
    this.#proxyState = 'down';
    this.#settledUnsent();
    for (const [callId, call] of this.#pending) {
      if (!call.sent) continue;
      this.#pending.delete(callId);
      this.counters.proxyRestarted += 1;
      call.reject(new HaretError('proxy_restarted', 'the client proxy restarted during the call; it may or may not have executed', 'maybe'));
    }
  }

  /**
   * The proxy runs again, after a restart or after the cool-down that follows a failure: the
   * calls that waited for it go now, in call order (after a failure none waited).
   */
  proxyUp(): void {
    if (this.#proxyState === 'up') return;
    this.#proxyState = 'up';
    for (const [callId, call] of this.#pending) if (!call.sent) this.#send(callId, call);
  }

  /** The supervisor gave up on the proxy: every call settles `unavailable`, and so will later ones until it is back. */
  proxyFailed(): void {
    this.proxyDown();
    this.#proxyState = 'failed';
    this.#settledUnsent();
    for (const call of this.#pending.values()) {
      this.counters.unavailable += 1;
      call.reject(unavailable());
    }
    this.#pending.clear();
  }

  /**
   * The runtime's supervision events about the proxy (its worker's, or its own on the main
   * thread): a death holds new calls, a restart releases them, a failure fails them at once.
   */
  onSystemEvent(event: SystemEvent): void {
    switch (event.type) {
      case 'worker_exited':
        if (!event.exit.requested && event.worker === this.#proxyWorker) this.proxyDown();
        // A replica's worker died: its watches resubscribe elsewhere now, not after their silence timeout.
        if (!event.exit.requested) for (const { ns, index } of this.#replicasIn(event.worker)) this.#watches.lost(ns, index);
        return;
      case 'worker_restarted':
        if (event.worker === this.#proxyWorker) this.proxyUp();
        return;
      case 'worker_failed':
        if (event.worker === this.#proxyWorker) this.proxyFailed();
        return;
      case 'host_actor_crashed':
        if (event.actor === this.#proxy) this.proxyDown();
        return;
      case 'host_actor_restarted':
        if (event.actor === this.#proxy) this.proxyUp();
        return;
      case 'host_actor_failed':
        if (event.actor === this.#proxy) this.proxyFailed();
        return;
      case 'actor_crashed':
        // One replica of a worker of several crashed (the worker runs on): its watches resubscribe now.
        for (const { ns, index } of this.#replicasIn(event.worker)) if (replicaId(ns, index) === event.actor) this.#watches.lost(ns, index);
        return;
      case 'actor_restarted':
      case 'actor_failed':
        return;
      default:
        assertNever(event, 'system event');
    }
  }

  /**
   * The health monitor marked `ns` unable to serve: its calls waiting here settle `unavailable`
   * now instead of at the deadline. A sent one may have run (a quorum may have committed it just
   * before), and the proxy's session keeps retrying it until its own give-up time, so it may
   * still run if the namespace comes back by then: `executed` is 'maybe', as for a timeout.
   */
  namespaceUnavailable(ns: string, reason: string): void {
    this.#settledUnsent();
    for (const [callId, call] of this.#pending) {
      if (call.ns !== ns) continue;
      this.#pending.delete(callId);
      this.counters.namespaceUnavailable += 1;
      call.reject(
        call.sent
          ? new HaretError('unavailable', `${reason}; the call may or may not have executed`, 'maybe')
          : new HaretError('unavailable', `${reason}; the call was not sent`, false),
      );
    }
  }

  /** The node stops: every call settles `stopped`. */
  close(): void {
    this.#closed = true;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const call of pending) {
      call.reject(
        call.sent
          ? new HaretError('stopped', 'the node stopped before the call completed; it may or may not have executed', 'maybe')
          : new HaretError('stopped', 'the node stopped before the call was sent', false),
      );
    }
    if (this.#sweep !== null) clearInterval(this.#sweep);
    this.#sweep = null;
    this.#watches.closeAll(new HaretError('stopped', 'the node stopped; the watch ended', false));
    if (this.#watchTicker !== null) clearInterval(this.#watchTicker);
    this.#watchTicker = null;
  }

  #sendWatch(ns: string, replica: number, request: WatchRequest): void {
    const to = this.#replicaOf(ns, replica);
    if (to === undefined || this.#context === null || this.#closed) return;
    this.#context.send(to, request);
  }

  /**
   * Hands a call to the proxy: queued for this turn's envelope of its namespace. `sent` from
   * here on, as when each call went to the router at once: the router too posted only at the
   * end of the turn.
   */
  #send(callId: number, call: Pending): void {
    if (this.#context === null) return;
    call.sent = true;
    let batch = this.#outgoing.get(call.ns);
    if (batch === undefined) {
      batch = { callIds: [], ops: [] };
      this.#outgoing.set(call.ns, batch);
    }
    batch.callIds.push(callId);
    batch.ops.push(call.op);
    if (this.#outgoingScheduled) return;
    this.#outgoingScheduled = true;
    // After every call the code running now makes (a drained batch of results wakes many
    // callers, each making its next call in a microtask of the same turn), before the
    // router's flush at the end of the turn.
    queueMicrotask(this.#flushCalls);
  }

  /** Calls may settle otherwise than by their result now: the next flush leaves out the ones that did. */
  #settledUnsent(): void {
    if (this.#outgoing.size > 0) this.#outgoingStale = true;
  }

  /** Sends this turn's calls: one envelope per namespace and `callsPerEnvelopeMax` calls. */
  readonly #flushCalls = (): void => {
    this.#outgoingScheduled = false;
    const stale = this.#outgoingStale;
    this.#outgoingStale = false;
    const context = this.#context;
    if (context === null || this.#closed) {
      this.#outgoing.clear();
      return;
    }
    for (const [ns, batch] of this.#outgoing) {
      let { callIds, ops } = batch;
      if (stale) {
        // Only the calls still waiting for their result (rare: a call settled in the same turn).
        const kept: Outgoing = { callIds: [], ops: [] };
        for (let i = 0; i < callIds.length; i++) {
          if (!this.#pending.has(callIds[i] as number)) continue;
          kept.callIds.push(callIds[i] as number);
          kept.ops.push(ops[i] as TreeOp);
        }
        ({ callIds, ops } = kept);
      }
      for (let start = 0; start < callIds.length; start += callsPerEnvelopeMax) {
        const whole = start === 0 && callIds.length <= callsPerEnvelopeMax;
        const message: ProxyCalls = {
          type: 'calls',
          ns,
          callIds: whole ? callIds : callIds.slice(start, start + callsPerEnvelopeMax),
          ops: whole ? ops : ops.slice(start, start + callsPerEnvelopeMax),
        };
        context.send(this.#proxy, message);
      }
    }
    this.#outgoing.clear();
  };

  /** The proxy's results: one per envelope (`ProxyResult`), or a step's for us in one (`ProxyResults`). */
  #onResult(msg: unknown): void {
    if (typeof msg !== 'object' || msg === null) return;
    const type = (msg as { type?: unknown }).type;
    if (type === 'results') {
      const { callIds, results } = msg as ProxyResults;
      if (!Array.isArray(callIds) || !Array.isArray(results)) return;
      const count = Math.min(callIds.length, results.length);
      for (let i = 0; i < count; i++) this.#settleCall(callIds[i] as number, results[i] as ProxyOutcome);
    } else if (type === 'result') {
      const result = msg as ProxyResult;
      this.#settleCall(result.callId, result.result);
    }
  }

  #settleCall(callId: number, outcome: ProxyOutcome): void {
    const call = this.#pending.get(callId);
    if (call === undefined || !call.sent) return;
    this.#pending.delete(callId);
    call.resolve(outcome);
  }

  #armSweep(): void {
    if (this.#sweep !== null) return;
    this.#sweep = setInterval(() => {
      const now = performance.now();
      this.#settledUnsent();
      for (const [callId, call] of this.#pending) {
        if (call.deadline > now) continue;
        this.#pending.delete(callId);
        this.counters.timeouts += 1;
        call.reject(
          call.sent
            ? new HaretError('timeout', 'no result before the call deadline; it may or may not have executed', 'maybe')
            : new HaretError('unavailable', 'the client proxy did not come back before the call deadline; the call was not sent', false),
        );
      }
    }, 1000);
    // The sweep alone never keeps the process alive; open ports do while the node runs.
    this.#sweep.unref();
  }
}

/** A replica's watch notice (the registry checks the rest; a stray id is counted and dropped). */
function isWatchNotice(msg: unknown): msg is WatchNotice {
  if (typeof msg !== 'object' || msg === null) return false;
  const { type, watchId } = msg as { type?: unknown; watchId?: unknown };
  return typeof type === 'string' && watchNoticeTypes.has(type) && typeof watchId === 'string';
}

function unavailable(): HaretError {
  return new HaretError('unavailable', 'the client proxy failed past its restart limit and waits out a cool-down before its next restart; the call was not sent', false);
}
