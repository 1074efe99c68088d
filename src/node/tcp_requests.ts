/**
 * Measures the requests of remote sessions (src/node/request_metrics.ts, path `tcp`): the TCP
 * server forwards each request to a replica as `host/net`, and the replica's answer comes back
 * to `host/net`; the node sees both there (src/node/node.ts wires `sent` and `answered`), so
 * this matches them by client id and request number without touching the server.
 *
 * Bounded: at most `trackedMax` requests are waited for; beyond it, or past `forgetAfterMs`
 * without an answer (the server answered `timeout`, the client gave up, a replica died), the
 * oldest are forgotten and counted as untracked.
 */

import type { Request } from '../vr/messages.ts';
import type { ClientAnswer } from '../vr/messages.ts';
import { answerCode, requestOpType, type RequestMetrics } from './request_metrics.ts';

type Tracked = { readonly ns: string; readonly type: string; readonly startedMs: number };

export const tcpTrackedMax = 65_536;
export const tcpForgetAfterMs = 60_000;

export class TcpRequests {
  readonly #metrics: RequestMetrics;
  readonly #namespaceOf: (replica: string) => string | null;
  /** In arrival order, so the oldest is first. */
  readonly #waiting = new Map<string, Tracked>();
  #untracked = 0;

  /** `namespaceOf`: the namespace of a replica actor id, or null for another actor. */
  constructor(metrics: RequestMetrics, namespaceOf: (replica: string) => string | null) {
    this.#metrics = metrics;
    this.#namespaceOf = namespaceOf;
  }

  /** Requests whose answer was never seen (forgotten by age or by the bound). */
  get untracked(): number {
    return this.#untracked;
  }

  /** The server forwards `message` to `to`. */
  sent(to: string, message: { readonly type: string }, nowMs = performance.now()): void {
    if (message.type !== 'request') return;
    const request = message as Request;
    const ns = this.#namespaceOf(to);
    if (ns === null) return;
    const key = keyOf(request.clientId, request.requestNum);
    // A retry of the same request restarts its clock: it is one more attempt.
    this.#waiting.delete(key);
    this.#waiting.set(key, { ns, type: requestOpType(request.op), startedMs: nowMs });
    this.#forgetOld(nowMs);
  }

  /** A replica's answer reaches the server. */
  answered(answer: ClientAnswer, nowMs = performance.now()): void {
    const key = keyOf(answer.clientId, answer.requestNum);
    const tracked = this.#waiting.get(key);
    if (tracked === undefined) return;
    this.#waiting.delete(key);
    const { code, committed } = answerCode(answer);
    this.#metrics.settled('tcp', tracked.ns, tracked.type, code, committed, tracked.startedMs, nowMs);
  }

  #forgetOld(nowMs: number): void {
    for (const [key, tracked] of this.#waiting) {
      if (this.#waiting.size <= tcpTrackedMax && nowMs - tracked.startedMs < tcpForgetAfterMs) return;
      this.#waiting.delete(key);
      this.#untracked += 1;
    }
  }
}

function keyOf(clientId: string, requestNum: number): string {
  return `${clientId}\u0000${requestNum}`;
}
