/**
 * The embedding API's endpoint: a host-thread actor that sends callers' operations to the
 * client proxy and settles their promises when results come back. Every call settles: with
 * its result, with `proxy_restarted` if the proxy dies under it, with `stopped` when the node
 * stops, or with `timeout` at a backstop deadline (checked by one sweep timer, not a timer per
 * call, so a million calls in flight cost no timers).
 */

import type { Actor, ActorContext } from '../../runtime/actor.ts';
import type { ActorId, Envelope } from '../../runtime/envelope.ts';
import type { ProxyCall, ProxyOutcome, ProxyResult } from '../../actors/messages.ts';
import type { TreeOp } from '../tree/ops.ts';
import { HaretError } from './errors.ts';

type Pending = {
  readonly resolve: (outcome: ProxyOutcome) => void;
  readonly reject: (error: HaretError) => void;
  readonly deadline: number;
};

export class Endpoint {
  readonly id: ActorId;
  readonly #proxy: ActorId;
  readonly #deadlineMs: number;
  readonly #pending = new Map<number, Pending>();
  #context: ActorContext | null = null;
  #nextCallId = 1;
  #sweep: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(id: ActorId, proxy: ActorId, deadlineMs: number) {
    this.id = id;
    this.#proxy = proxy;
    this.#deadlineMs = deadlineMs;
  }

  /** The host actor's factory, for ActorSystem's `hostActors`. */
  factory = (context: ActorContext): Actor => {
    this.#context = context;
    return {
      receive: (batch: readonly Envelope[]) => {
        for (const envelope of batch) this.#onResult(envelope.msg);
      },
      status: () => ({ role: 'endpoint', pending: this.#pending.size }),
    };
  };

  get pending(): number {
    return this.#pending.size;
  }

  call(ns: string, op: TreeOp): Promise<ProxyOutcome> {
    if (this.#closed || this.#context === null) return Promise.reject(new HaretError('stopped', 'the node is stopped', false));
    const callId = this.#nextCallId;
    this.#nextCallId += 1;
    const message: ProxyCall = { type: 'call', callId, ns, op };
    const promise = new Promise<ProxyOutcome>((resolve, reject) => {
      this.#pending.set(callId, { resolve, reject, deadline: performance.now() + this.#deadlineMs });
    });
    this.#context.send(this.#proxy, message);
    this.#armSweep();
    return promise;
  }

  /** The proxy died: nobody will answer what is in flight. */
  failAll(code: 'proxy_restarted' | 'stopped'): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    const error =
      code === 'stopped'
        ? new HaretError('stopped', 'the node stopped before the call completed; it may or may not have executed', 'maybe')
        : new HaretError('proxy_restarted', 'the client proxy restarted during the call; it may or may not have executed', 'maybe');
    for (const call of pending) call.reject(error);
  }

  close(): void {
    this.#closed = true;
    this.failAll('stopped');
    if (this.#sweep !== null) clearInterval(this.#sweep);
    this.#sweep = null;
  }

  #onResult(msg: unknown): void {
    const result = msg as ProxyResult;
    if (typeof result !== 'object' || result === null || result.type !== 'result') return;
    const call = this.#pending.get(result.callId);
    if (call === undefined) return;
    this.#pending.delete(result.callId);
    call.resolve(result.result);
  }

  #armSweep(): void {
    if (this.#sweep !== null) return;
    this.#sweep = setInterval(() => {
      const now = performance.now();
      for (const [callId, call] of this.#pending) {
        if (call.deadline > now) continue;
        this.#pending.delete(callId);
        call.reject(new HaretError('timeout', 'no result before the call deadline; it may or may not have executed', 'maybe'));
      }
    }, 1000);
    // The sweep alone never keeps the process alive; open ports do while the node runs.
    this.#sweep.unref();
  }
}
