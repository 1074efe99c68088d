/**
 * The client proxy actor (DESIGN.md): every embedded caller's request goes through it. It runs
 * a session host (src/client/host.ts, pure; the same code as the client library's remote
 * connections) and steps it ONCE per drained batch (DESIGN.md convention 5). This actor only
 * carries the host's effects: a `send` becomes an envelope to the replica actor, a `result`
 * goes back to the caller that asked. The replicas' client table makes a retried write run once.
 *
 * Calls arrive one per envelope (`ProxyCall`) or many per envelope (`ProxyCalls`, what the
 * endpoint sends: the calls of one event-loop turn); the results of one step go back to each
 * caller in one envelope (`ProxyResults`). Measured here, cloning a call or a result (post and
 * receive) costs ~1.8 µs in an envelope of its own and ~0.9 µs as an entry of a batch, besides
 * the router's and the mailbox's work per envelope.
 */

import { randomBytes, randomInt } from 'node:crypto';
import type { Actor, ActorContext } from '../runtime/actor.ts';
import type { ActorId, Envelope } from '../runtime/envelope.ts';
import type { ClientConfig } from '../src/client/config.ts';
import { hostStats, hostStepAll, initialHostState, type HostEffect, type HostInput, type HostState } from '../src/client/host.ts';
import { sessionPrefix, sessionPrefixRandomBytes } from '../src/client/session_prefix.ts';
import type { ClientAnswer } from '../src/vr/messages.ts';
import type { TreeOp } from '../src/tree/ops.ts';
import { isTick, type ProxyAddNamespace, type ProxyCall, type ProxyOutcome } from './messages.ts';

export type ProxyInit = {
  /** Actor ids of each namespace's replicas, by index. */
  readonly namespaces: Readonly<Record<string, readonly ActorId[]>>;
  /** Session behaviour in client ticks. */
  readonly client: Omit<ClientConfig, 'replicaCount'>;
  /** Sessions per namespace: the most requests one namespace has in flight from this proxy. */
  readonly sessionsMax: number;
  /** Calls waiting for a free session, per namespace; beyond it a call is answered `overloaded`. */
  readonly waitingMax: number;
};

/**
 * The calls of one namespace that a caller made in one turn, in call order: `ops[i]` is call
 * `callIds[i]`. Each is answered as a `ProxyCall` with that id would be.
 */
export type ProxyCalls = { readonly type: 'calls'; readonly ns: string; readonly callIds: readonly number[]; readonly ops: readonly TreeOp[] };

/** The results one step of the proxy has for one caller: `results[i]` ends call `callIds[i]`. */
export type ProxyResults = { readonly type: 'results'; readonly callIds: readonly number[]; readonly results: readonly ProxyOutcome[] };

type Caller = { readonly from: ActorId; readonly callId: number };

/** Results of this step for one caller, gathered for one envelope. */
type Outgoing = { callIds: number[]; results: ProxyOutcome[] };

export function createActor(context: ActorContext, init: unknown): Actor {
  const spec = init as ProxyInit;
  let host: HostState = initialHostState({ client: spec.client, sessionsMax: spec.sessionsMax, waitingMax: spec.waitingMax });
  /** Replica actor ids by namespace, for the host's `send` effects. */
  const replicas = new Map<string, readonly ActorId[]>();
  /** The proxy's own call ids (unique across callers) to whoever is waiting for the result. */
  const callers = new Map<number, Caller>();
  let nextCallId = 1;
  let inputs: HostInput[] = [];
  const counters = { calls: 0, sends: 0, results: 0, strayAnswers: 0, malformed: 0 };

  const addNamespace = (name: string, actors: readonly ActorId[]): void => {
    if (replicas.has(name)) return;
    replicas.set(name, actors);
    inputs.push({ type: 'add_namespace', ns: name, replicaCount: actors.length, clientIdPrefix: sessionPrefix(randomBytes(sessionPrefixRandomBytes), replicas.size), seed: randomInt(2 ** 31) });
  };
  for (const [name, actors] of Object.entries(spec.namespaces)) addNamespace(name, actors);

  /** Results of the current step by caller; sent as one `ProxyResults` each at its end. */
  const outgoing = new Map<ActorId, Outgoing>();

  const answer = (caller: Caller, result: ProxyOutcome): void => {
    counters.results += 1;
    let batch = outgoing.get(caller.from);
    if (batch === undefined) {
      batch = { callIds: [], results: [] };
      outgoing.set(caller.from, batch);
    }
    batch.callIds.push(caller.callId);
    batch.results.push(result);
  };

  const sendResults = (): void => {
    for (const [to, batch] of outgoing) {
      const message: ProxyResults = { type: 'results', callIds: batch.callIds, results: batch.results };
      context.send(to, message);
    }
    outgoing.clear();
  };

  const apply = (effects: readonly HostEffect[]): void => {
    for (const effect of effects) {
      switch (effect.type) {
        case 'send': {
          const replica = replicas.get(effect.ns)?.[effect.replica];
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
          if (effect.event === 'host_stray_answer') counters.strayAnswers += 1;
          break;
        default: {
          const never: never = effect;
          throw new Error(`unknown host effect ${JSON.stringify(never)}`);
        }
      }
    }
  };

  const onCall = (from: ActorId, callerId: number, ns: string, op: TreeOp): void => {
    counters.calls += 1;
    const callId = nextCallId;
    nextCallId += 1;
    callers.set(callId, { from, callId: callerId });
    // The host answers an unknown namespace or a malformed op itself.
    inputs.push({ type: 'call', callId, ns, op });
  };

  /** A turn's calls from one caller; a batch that is not one (a bug on the host thread) is counted and dropped. */
  const onCalls = (from: ActorId, calls: ProxyCalls): void => {
    const { callIds, ops } = calls;
    if (!Array.isArray(callIds) || !Array.isArray(ops) || callIds.length !== ops.length) {
      counters.malformed += 1;
      return;
    }
    const ns = String(calls.ns);
    for (let i = 0; i < callIds.length; i++) onCall(from, callIds[i] as number, ns, ops[i] as TreeOp);
  };

  /** A namespace created on the running node (only the node's own host thread sends these). */
  const onAddNamespace = (message: ProxyAddNamespace): void => {
    const valid = typeof message.name === 'string' && Array.isArray(message.replicas) && message.replicas.length > 0 && message.replicas.every((replica) => typeof replica === 'string');
    if (!valid) {
      counters.malformed += 1;
      return;
    }
    addNamespace(message.name, message.replicas);
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
          case 'calls':
            onCalls(envelope.from, msg as ProxyCalls);
            break;
          case 'call': {
            const call = msg as ProxyCall;
            onCall(envelope.from, call.callId, String(call.ns), call.op);
            break;
          }
          case 'reply':
          case 'not_primary':
          case 'busy':
            inputs.push({ type: 'receive', message: msg as ClientAnswer });
            break;
          case 'add_namespace':
            onAddNamespace(msg as ProxyAddNamespace);
            break;
          default:
            counters.malformed += 1;
        }
      }
      // One host step for the whole batch; ticks that queued up count once.
      if (ticked) inputs.push({ type: 'tick' });
      if (inputs.length === 0) return;
      const stepped = hostStepAll(host, inputs);
      inputs = [];
      host = stepped.state;
      apply(stepped.effects);
      sendResults();
    },
    status: () => ({ role: 'proxy', ...hostStats(host), inFlight: callers.size, ...counters }),
  };
}
