/**
 * The request-path metrics (issue 17): requests by namespace, op type and result code, commits,
 * and commit latency, from the arrival of a request at the node to its reply. They are
 * observed on the main thread, where the node sees both ends of a request:
 *
 * - `embedded`: a call of the embedding API (NamespaceClient -> the node's endpoint), from the
 *   call to its settled outcome: what the application waits, the proxy's retries included
 *   (src/node/measured_endpoint.ts);
 * - `tcp`: a request a remote session sent through the node's TCP client API, from the server
 *   forwarding it to the replica's answer coming back (src/node/tcp_requests.ts). The client
 *   library owns its sessions and retries, so each attempt is one request here.
 *
 * A request is committed when its answer says it ran in the log (a `done` result, a reply with
 * a tree outcome or a registration), whether the tree op succeeded or failed with a tree error;
 * only committed requests are in the latency histogram, so its count equals the commits.
 *
 * The children of each label set are kept, so an observation costs a map lookup and two adds.
 */

import { Counter, Histogram, type Registry } from 'prom-client';
import type { CallOutcome } from '../client/io.ts';
import { HaretError } from '../client/errors.ts';
import type { OpOutcome } from '../tree/ops.ts';
import type { ClientAnswer, RequestOp } from '../vr/messages.ts';
import { assertNever } from '../base/assert.ts';

export type RequestPath = 'embedded' | 'tcp';

/** Seconds; from a sub-millisecond embedded round trip to a give-up time. */
export const commitLatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

type Children = { readonly requests: Counter.Internal; readonly commits: Counter.Internal | null; readonly latency: Histogram.Internal<'path' | 'namespace'> | null };

/** Label sets kept at most; beyond it (a flood of distinct codes cannot come from our own types) nothing new is cached. */
const childrenCachedMax = 10_000;

export class RequestMetrics {
  readonly #requests: Counter<'path' | 'namespace' | 'type' | 'code'>;
  readonly #commits: Counter<'path' | 'namespace'>;
  readonly #latency: Histogram<'path' | 'namespace'>;
  readonly #children = new Map<string, Children>();

  constructor(registry: Registry) {
    this.#requests = new Counter({ name: 'haret_requests_total', help: 'Requests answered, by path (embedded or tcp), namespace, op type and result code', labelNames: ['path', 'namespace', 'type', 'code'], registers: [registry] });
    this.#commits = new Counter({ name: 'haret_commits_total', help: 'Requests that ran in the log (committed), by path and namespace', labelNames: ['path', 'namespace'], registers: [registry] });
    this.#latency = new Histogram({
      name: 'haret_commit_latency_seconds',
      help: 'Time from a request arriving at the node to its reply, for committed requests, by path and namespace',
      labelNames: ['path', 'namespace'],
      buckets: commitLatencyBuckets,
      registers: [registry],
    });
  }

  /** One request answered: `startedMs` and `endedMs` on the performance.now() scale. */
  settled(path: RequestPath, ns: string, type: string, code: string, committed: boolean, startedMs: number, endedMs: number): void {
    const children = this.#childrenOf(path, ns, type, code, committed);
    children.requests.inc();
    if (children.commits === null || children.latency === null) return;
    children.commits.inc();
    children.latency.observe(Math.max(0, endedMs - startedMs) / 1000);
  }

  #childrenOf(path: RequestPath, ns: string, type: string, code: string, committed: boolean): Children {
    const key = `${path}\u0000${ns}\u0000${type}\u0000${code}\u0000${committed ? 1 : 0}`;
    const cached = this.#children.get(key);
    if (cached !== undefined) return cached;
    const children: Children = {
      requests: this.#requests.labels({ path, namespace: ns, type, code }),
      commits: committed ? this.#commits.labels({ path, namespace: ns }) : null,
      latency: committed ? this.#latency.labels({ path, namespace: ns }) : null,
    };
    if (this.#children.size < childrenCachedMax) this.#children.set(key, children);
    return children;
  }
}

/** The code of an op outcome: `ok`, or the tree error's code. */
function treeCode(outcome: OpOutcome): string {
  return outcome.type === 'error' ? outcome.error.code : 'ok';
}

/** An embedded call's result: its code, and whether it ran in the log. */
export function callOutcomeCode(outcome: CallOutcome): { readonly code: string; readonly committed: boolean } {
  switch (outcome.type) {
    case 'done':
      return { code: treeCode(outcome.outcome), committed: true };
    case 'rejected':
      return { code: 'rejected', committed: false };
    case 'refused':
      return { code: outcome.reason, committed: false };
    case 'timeout':
    case 'session_expired':
    case 'stale_request':
    case 'overloaded':
    case 'unknown_namespace':
    case 'invalid_call':
      return { code: outcome.type, committed: false };
    default:
      return assertNever(outcome, 'call outcome');
  }
}

/** An embedded call that rejected (the node's own refusals: unavailable, stopped, proxy_restarted, timeout). */
export function callErrorCode(error: unknown): string {
  return error instanceof HaretError ? error.code : 'failed';
}

/** A VR request's op type as a label: the tree op's type, or `register` / `lease_clock`. */
export function requestOpType(op: RequestOp): string {
  return op.type === 'tree' ? op.op.type : op.type;
}

/** A replica's answer to a forwarded request: its code, and whether it ran in the log. */
export function answerCode(answer: ClientAnswer): { readonly code: string; readonly committed: boolean } {
  switch (answer.type) {
    case 'not_primary':
    case 'busy':
      return { code: answer.type, committed: false };
    case 'reply': {
      const body = answer.body;
      switch (body.type) {
        case 'tree':
          return { code: treeCode(body.outcome), committed: true };
        case 'registered':
          return { code: 'ok', committed: true };
        case 'rejected':
        case 'session_expired':
        case 'stale_request':
          return { code: body.type, committed: false };
        default:
          return assertNever(body, 'reply body');
      }
    }
    default:
      return assertNever(answer, 'client answer');
  }
}
