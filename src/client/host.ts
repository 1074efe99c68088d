/**
 * The session host, pure: every client session of one client process, for any number of
 * namespaces. `hostStepAll(state, inputs) -> { state, effects }`.
 *
 * One host runs inside the node's client proxy actor (embedded callers, actors/client_proxy.ts)
 * and one inside each remote connection of the client library (src/net/connect.ts): the same
 * code decides which session takes a call, which replica a request goes to, when to retry and
 * what a caller is told. The shells only carry its effects: a `send` becomes an envelope to a
 * replica actor or a `request` frame naming the replica; a `result` settles a caller.
 *
 * Per namespace the host holds one session pool (pool.ts: sessions, waiting calls, pool-wide
 * primary tracking); a batch of inputs is stepped with ONE `poolStepAll` per namespace that has
 * inputs (DESIGN.md convention 5). Answers and refusals find their namespace by the client id's
 * prefix (`${prefix}.${n}`), so the shells need not say which namespace an answer is for.
 *
 * Randomness arrives as data (DESIGN.md convention 2): a namespace is added with the
 * client-id prefix and PRNG seed its shell drew.
 */

import { assertNever } from '../base/assert.ts';
import type { TreeOp } from '../tree/ops.ts';
import type { ClientAnswer, Request } from '../vr/messages.ts';
import { validateClientConfig, type ClientConfig } from './config.ts';
import type { CallOutcome, RefusalReason } from './io.ts';
import { initialPoolState, poolStats, poolStepAll, validatePoolConfig, type PoolInput, type PoolState, type PoolStats } from './pool.ts';

export type HostConfig = {
  /** Session behaviour (ticks); the replica count comes with each namespace. */
  readonly client: Omit<ClientConfig, 'replicaCount'>;
  /** Sessions per namespace: the most calls of one namespace in flight at once. */
  readonly sessionsMax: number;
  /** Calls waiting for a session, per namespace; beyond it a call is answered `overloaded`. */
  readonly waitingMax: number;
};

export type HostInput =
  /** Serve a namespace of `replicaCount` replicas (ignored when already served). */
  | {
      readonly type: 'add_namespace';
      readonly ns: string;
      readonly replicaCount: number;
      /** Client ids are `${clientIdPrefix}.${n}`; must never repeat across hosts or restarts. */
      readonly clientIdPrefix: string;
      readonly seed: number;
    }
  /** A caller's operation; `callId` is the caller's handle for the result. */
  | { readonly type: 'call'; readonly callId: number; readonly ns: string; readonly op: TreeOp }
  /** A replica's answer to one of the host's sessions. */
  | { readonly type: 'receive'; readonly message: ClientAnswer }
  /** A node refused a session's request for good (remote sessions; see ClientInput). */
  | { readonly type: 'refused'; readonly clientId: string; readonly requestNum: number; readonly reason: RefusalReason; readonly message: string }
  | { readonly type: 'tick' };

export type HostEffect =
  /** Send `request` to replica `replica` of namespace `ns`. */
  | { readonly type: 'send'; readonly ns: string; readonly replica: number; readonly request: Request }
  | { readonly type: 'result'; readonly callId: number; readonly result: CallOutcome }
  | { readonly type: 'trace'; readonly event: string; readonly detail?: Readonly<Record<string, string | number | boolean | null>> };

type HostNamespace = { readonly ns: string; readonly replicaCount: number; readonly prefix: string; readonly pool: PoolState };

export type HostState = {
  readonly config: HostConfig;
  /** By namespace name. Frozen; replaced when a pool or the set of namespaces changes. */
  readonly namespaces: ReadonlyMap<string, HostNamespace>;
  /** Namespace name by client-id prefix. */
  readonly byPrefix: ReadonlyMap<string, string>;
};

export type HostStepResult = { readonly state: HostState; readonly effects: readonly HostEffect[] };

/** Upper bound on namespaces per host (convention 8); a node serves at most 64 cluster namespaces plus its own. */
export const hostNamespacesMax = 1024;

export function validateHostConfig(config: HostConfig): string | null {
  const client = validateClientConfig({ ...config.client, replicaCount: 1 });
  if (client !== null) return client;
  const pool = validatePoolConfig({ client: { ...config.client, replicaCount: 1 }, sessionsMax: config.sessionsMax, waitingMax: config.waitingMax, clientIdPrefix: 'p' });
  return pool === null ? null : pool.reason;
}

export function initialHostState(config: HostConfig): HostState {
  const problem = validateHostConfig(config);
  if (problem !== null) throw new RangeError(problem);
  return Object.freeze({ config: Object.freeze({ ...config, client: Object.freeze({ ...config.client }) }), namespaces: new Map(), byPrefix: new Map() });
}

export function hostServes(state: HostState, ns: string): boolean {
  return state.namespaces.has(ns);
}

/** Sessions, busy sessions and waiting calls summed over namespaces. */
export function hostStats(state: HostState): PoolStats {
  let sessions = 0;
  let busy = 0;
  let waiting = 0;
  for (const { pool } of state.namespaces.values()) {
    const stats = poolStats(pool);
    sessions += stats.sessions;
    busy += stats.busy;
    waiting += stats.waiting;
  }
  return { sessions, busy, waiting };
}

/**
 * Steps the host through a batch of inputs. Inputs for one namespace keep their order; a tick
 * reaches every namespace; each namespace with inputs takes one pool step. Effects come out
 * namespace by namespace (refusals by the host itself first).
 */
export function hostStepAll(state: HostState, inputs: readonly HostInput[]): HostStepResult {
  const effects: HostEffect[] = [];
  let namespaces: Map<string, HostNamespace> | null = null;
  let byPrefix: Map<string, string> | null = null;
  const batches = new Map<string, PoolInput[]>();
  for (const input of inputs) {
    switch (input.type) {
      case 'add_namespace': {
        const problem = addProblem(state.config, namespaces ?? state.namespaces, byPrefix ?? state.byPrefix, input);
        if (problem !== null) {
          effects.push({ type: 'trace', event: 'host_add_namespace_refused', detail: { ns: String(input.ns).slice(0, 64), problem } });
          break;
        }
        namespaces ??= new Map(state.namespaces);
        byPrefix ??= new Map(state.byPrefix);
        const client: ClientConfig = { ...state.config.client, replicaCount: input.replicaCount };
        const pool = initialPoolState({ client, sessionsMax: state.config.sessionsMax, waitingMax: state.config.waitingMax, clientIdPrefix: input.clientIdPrefix }, input.seed);
        namespaces.set(input.ns, Object.freeze({ ns: input.ns, replicaCount: input.replicaCount, prefix: input.clientIdPrefix, pool }));
        byPrefix.set(input.clientIdPrefix, input.ns);
        break;
      }
      case 'call':
        if (!(namespaces ?? state.namespaces).has(input.ns)) {
          effects.push({ type: 'result', callId: input.callId, result: { type: 'unknown_namespace', ns: input.ns } });
        } else if (typeof input.op !== 'object' || input.op === null) {
          effects.push({ type: 'result', callId: input.callId, result: { type: 'invalid_call', reason: 'op must be an object' } });
        } else {
          // The host's inputs are the pool's as they are (a call's `ns` is one field more), so
          // they are handed on rather than copied: a copy per input per step is only garbage.
          batchOf(batches, input.ns).push(input);
        }
        break;
      case 'receive': {
        const ns = namespaceOf(byPrefix ?? state.byPrefix, input.message.clientId);
        if (ns === undefined) effects.push({ type: 'trace', event: 'host_stray_answer' });
        else batchOf(batches, ns).push(input);
        break;
      }
      case 'refused': {
        const ns = namespaceOf(byPrefix ?? state.byPrefix, input.clientId);
        if (ns === undefined) effects.push({ type: 'trace', event: 'host_stray_refusal' });
        else batchOf(batches, ns).push(input);
        break;
      }
      case 'tick':
        for (const ns of (namespaces ?? state.namespaces).keys()) batchOf(batches, ns).push(input);
        break;
      default:
        assertNever(input, 'host input');
    }
  }
  for (const [ns, batch] of batches) {
    const current = (namespaces ?? state.namespaces).get(ns) as HostNamespace;
    const stepped = poolStepAll(current.pool, batch);
    for (const effect of stepped.effects) {
      if (effect.type === 'send') effects.push({ type: 'send', ns, replica: effect.to, request: effect.request });
      else effects.push(effect);
    }
    if (stepped.state !== current.pool) {
      namespaces ??= new Map(state.namespaces);
      // Spelled out, not spread: on Node 20 adding a field to a spread-built object costs ~1 µs.
      namespaces.set(ns, Object.freeze({ ns: current.ns, replicaCount: current.replicaCount, prefix: current.prefix, pool: stepped.state }));
    }
  }
  if (namespaces === null && byPrefix === null) return { state, effects };
  return { state: Object.freeze({ config: state.config, namespaces: namespaces ?? state.namespaces, byPrefix: byPrefix ?? state.byPrefix }), effects };
}

/** The namespace of a session's client id (`${prefix}.${n}`), or undefined. */
function namespaceOf(byPrefix: ReadonlyMap<string, string>, clientId: unknown): string | undefined {
  if (typeof clientId !== 'string') return undefined;
  return byPrefix.get(clientId.slice(0, clientId.lastIndexOf('.')));
}

/**
 * The batch of inputs for namespace `ns`, made on its first input. Module functions rather than
 * closures made per step: under tsx every named closure costs a `__name` call when it is made.
 */
function batchOf(batches: Map<string, PoolInput[]>, ns: string): PoolInput[] {
  let batch = batches.get(ns);
  if (batch === undefined) {
    batch = [];
    batches.set(ns, batch);
  }
  return batch;
}

function addProblem(
  config: HostConfig,
  namespaces: ReadonlyMap<string, HostNamespace>,
  byPrefix: ReadonlyMap<string, string>,
  input: Extract<HostInput, { type: 'add_namespace' }>,
): string | null {
  if (typeof input.ns !== 'string' || input.ns.length === 0) return 'ns must be a name';
  if (namespaces.has(input.ns)) return 'already served';
  if (namespaces.size >= hostNamespacesMax) return `at most ${hostNamespacesMax} namespaces`;
  if (!Number.isSafeInteger(input.replicaCount) || input.replicaCount < 1 || input.replicaCount % 2 !== 1) return 'replicaCount must be odd and positive';
  if (typeof input.clientIdPrefix !== 'string' || byPrefix.has(input.clientIdPrefix) || input.clientIdPrefix.includes('.')) return 'clientIdPrefix must be new and hold no dot';
  if (!Number.isSafeInteger(input.seed)) return 'seed must be an integer';
  const pool = validatePoolConfig({ client: { ...config.client, replicaCount: input.replicaCount }, sessionsMax: config.sessionsMax, waitingMax: config.waitingMax, clientIdPrefix: input.clientIdPrefix });
  return pool === null ? null : pool.reason;
}
