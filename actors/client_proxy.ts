/**
 * The client proxy actor (DESIGN.md): every caller's request goes through it. It keeps one
 * pool of client sessions per namespace (src/client/pool.ts, pure; VRR §4.1: one outstanding
 * request per session) and steps each pool ONCE per drained batch (DESIGN.md convention 5), so
 * the per-request cost is the session logic, not a transition. The pool hands each call to an
 * idle session, opens new ones up to `sessionsMax`, queues the rest up to `waitingMax` and
 * answers `overloaded` beyond that; sessions find the primary, retry with backoff and match
 * replies; the replicas' client table makes a retried write run once.
 */

import { randomInt } from 'node:crypto';
import type { Actor, ActorContext } from '../runtime/actor.ts';
import type { ActorId, Envelope } from '../runtime/envelope.ts';
import { validateClientConfig, type ClientConfig } from '../src/client/config.ts';
import { initialPoolState, poolStats, poolStepAll, type PoolEffect, type PoolInput, type PoolState } from '../src/client/pool.ts';
import type { ClientAnswer } from '../src/vr/messages.ts';
import { randomSessionPrefix } from './session_prefix.ts';
import { isTick, type ProxyAddNamespace, type ProxyCall, type ProxyOutcome, type ProxyResult } from './messages.ts';

export type ProxyNamespace = {
  readonly replicas: readonly ActorId[];
  readonly client: ClientConfig;
};

export type ProxyInit = {
  readonly namespaces: Readonly<Record<string, ProxyNamespace>>;
  /** Sessions per namespace: the most requests one namespace has in flight from this proxy. */
  readonly sessionsMax: number;
  /** Calls waiting for a free session, per namespace; beyond it a call is answered `overloaded`. */
  readonly waitingMax: number;
};

type Caller = { readonly from: ActorId; readonly callId: number };

type Namespace = {
  readonly name: string;
  readonly replicas: readonly ActorId[];
  readonly prefix: string;
  pool: PoolState;
  inputs: PoolInput[];
};

export function createActor(context: ActorContext, init: unknown): Actor {
  const spec = init as ProxyInit;
  const namespaces = new Map<string, Namespace>();
  const byPrefix = new Map<string, Namespace>();
  const addNamespace = (name: string, config: ProxyNamespace): void => {
    if (namespaces.has(name)) return;
    const problem = validateClientConfig(config.client);
    if (problem !== null) throw new RangeError(`proxy namespace ${name}: ${problem}`);
    const prefix = randomSessionPrefix(namespaces.size);
    const ns: Namespace = {
      name,
      replicas: config.replicas,
      prefix,
      pool: initialPoolState({ client: config.client, sessionsMax: spec.sessionsMax, waitingMax: spec.waitingMax, clientIdPrefix: prefix }, randomInt(2 ** 31)),
      inputs: [],
    };
    namespaces.set(name, ns);
    byPrefix.set(prefix, ns);
  };
  for (const [name, config] of Object.entries(spec.namespaces)) addNamespace(name, config);
  /** The proxy's own call ids (unique across callers) to whoever is waiting for the result. */
  const callers = new Map<number, Caller>();
  let nextCallId = 1;
  const counters = { calls: 0, sends: 0, results: 0, unknownNamespace: 0, strayAnswers: 0, malformed: 0 };

  const answer = (caller: Caller, result: ProxyOutcome): void => {
    counters.results += 1;
    const message: ProxyResult = { type: 'result', callId: caller.callId, result };
    context.send(caller.from, message);
  };

  const apply = (ns: Namespace, effects: readonly PoolEffect[]): void => {
    for (const effect of effects) {
      switch (effect.type) {
        case 'send': {
          const replica = ns.replicas[effect.to];
          counters.sends += 1;
          if (replica !== undefined) context.send(replica, effect.request);
          break;
        }
        case 'result': {
          const caller = callers.get(effect.callId);
          if (caller === undefined) break;
          callers.delete(effect.callId);
          answer(caller, effect.result);
          break;
        }
        case 'trace':
          break;
        default: {
          const never: never = effect;
          throw new Error(`unknown pool effect ${JSON.stringify(never)}`);
        }
      }
    }
  };

  const onCall = (from: ActorId, call: ProxyCall): void => {
    counters.calls += 1;
    const caller: Caller = { from, callId: call.callId };
    const ns = typeof call.ns === 'string' ? namespaces.get(call.ns) : undefined;
    if (ns === undefined) {
      counters.unknownNamespace += 1;
      answer(caller, { type: 'unknown_namespace', ns: String(call.ns) });
      return;
    }
    if (typeof call.op !== 'object' || call.op === null) {
      answer(caller, { type: 'invalid_call', reason: 'op must be an object' });
      return;
    }
    const callId = nextCallId;
    nextCallId += 1;
    callers.set(callId, caller);
    ns.inputs.push({ type: 'call', callId, op: call.op });
  };

  const onAnswer = (message: ClientAnswer): void => {
    const clientId = message.clientId;
    const ns = typeof clientId === 'string' ? byPrefix.get(clientId.slice(0, clientId.lastIndexOf('.'))) : undefined;
    if (ns === undefined) {
      counters.strayAnswers += 1;
      return;
    }
    ns.inputs.push({ type: 'receive', message });
  };

  /** A namespace created on the running node (only the node's own host thread sends these). */
  const onAddNamespace = (message: ProxyAddNamespace): void => {
    const valid =
      typeof message.name === 'string' &&
      Array.isArray(message.replicas) &&
      message.replicas.every((replica) => typeof replica === 'string') &&
      typeof message.client === 'object' &&
      message.client !== null &&
      validateClientConfig(message.client) === null;
    if (!valid) {
      counters.malformed += 1;
      return;
    }
    addNamespace(message.name, { replicas: message.replicas, client: message.client });
  };

  return {
    receive(batch: readonly Envelope[]) {
      let ticked = false;
      for (const envelope of batch) {
        const msg = envelope.msg as { type?: unknown } | null;
        if (isTick(msg)) {
          ticked = true;
          continue;
        }
        switch (typeof msg === 'object' && msg !== null ? msg.type : undefined) {
          case 'call':
            onCall(envelope.from, msg as ProxyCall);
            break;
          case 'reply':
          case 'not_primary':
          case 'busy':
            onAnswer(msg as ClientAnswer);
            break;
          case 'add_namespace':
            onAddNamespace(msg as ProxyAddNamespace);
            break;
          default:
            counters.malformed += 1;
        }
      }
      // One transition per namespace for the whole batch; ticks that queued up count once.
      for (const ns of namespaces.values()) {
        if (ticked) ns.inputs.push({ type: 'tick' });
        if (ns.inputs.length === 0) continue;
        const inputs = ns.inputs;
        ns.inputs = [];
        const result = poolStepAll(ns.pool, inputs);
        ns.pool = result.state;
        apply(ns, result.effects);
      }
    },
    status: () => {
      let sessions = 0;
      let busy = 0;
      let waiting = 0;
      for (const ns of namespaces.values()) {
        const stats = poolStats(ns.pool);
        sessions += stats.sessions;
        busy += stats.busy;
        waiting += stats.waiting;
      }
      return { role: 'proxy', sessions, busy, waiting, inFlight: callers.size, ...counters };
    },
  };
}
