/**
 * The client proxy actor (DESIGN.md): every caller's request goes through it. It keeps a pool
 * of client sessions per namespace (src/client, pure; VRR §4.1: one outstanding request per
 * session), hands each call to an idle session, opening a new one while under `sessionsMax`,
 * and queues the rest (bounded; beyond it a call is answered `overloaded`). Sessions find the
 * primary, retry with backoff and match replies; the replicas' client table makes a retried
 * write run once.
 */

import { randomBytes, randomInt } from 'node:crypto';
import type { Actor, ActorContext } from '../runtime/actor.ts';
import type { ActorId, Envelope } from '../runtime/envelope.ts';
import { validateClientConfig, type ClientConfig } from '../src/client/config.ts';
import type { ClientEffect } from '../src/client/io.ts';
import { clientStep, initialClientState, type ClientState } from '../src/client/session.ts';
import type { TreeOp } from '../src/tree/ops.ts';
import type { ClientAnswer } from '../src/vr/messages.ts';
import { isTick, type ProxyCall, type ProxyOutcome, type ProxyResult } from './messages.ts';

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

type Session = {
  readonly clientId: string;
  state: ClientState;
  /** The caller whose call this session is running, or null when idle. */
  caller: Caller | null;
};

type Pool = {
  readonly name: string;
  readonly config: ProxyNamespace;
  readonly sessions: Session[];
  readonly idle: Session[];
  readonly waiting: { readonly caller: Caller; readonly op: TreeOp }[];
  waitingHead: number;
};

export function createActor(context: ActorContext, init: unknown): Actor {
  const spec = init as ProxyInit;
  for (const [ns, config] of Object.entries(spec.namespaces)) {
    const problem = validateClientConfig(config.client);
    if (problem !== null) throw new RangeError(`proxy namespace ${ns}: ${problem}`);
  }
  // Session ids must never repeat across restarts of this proxy: a fresh random prefix each time.
  const prefix = `${context.self}.${randomBytes(6).toString('hex')}`;
  let sessionCount = 0;
  const pools = new Map<string, Pool>();
  const byClientId = new Map<string, { pool: Pool; session: Session }>();
  const counters = { calls: 0, sends: 0, results: 0, overloaded: 0, unknownNamespace: 0, strayAnswers: 0, malformed: 0 };
  for (const [name, config] of Object.entries(spec.namespaces)) {
    pools.set(name, { name, config, sessions: [], idle: [], waiting: [], waitingHead: 0 });
  }

  const answer = (caller: Caller, result: ProxyOutcome): void => {
    counters.results += 1;
    const message: ProxyResult = { type: 'result', callId: caller.callId, result };
    context.send(caller.from, message);
  };

  const apply = (pool: Pool, session: Session, effects: readonly ClientEffect[]): void => {
    for (const effect of effects) {
      switch (effect.type) {
        case 'send': {
          const replica = pool.config.replicas[effect.to];
          counters.sends += 1;
          if (replica !== undefined) context.send(replica, effect.request);
          break;
        }
        case 'result': {
          const caller = session.caller;
          session.caller = null;
          if (caller !== null) answer(caller, effect.result);
          release(pool, session);
          break;
        }
        case 'trace':
          break;
        default: {
          const never: never = effect;
          throw new Error(`unknown client effect ${JSON.stringify(never)}`);
        }
      }
    }
  };

  /** A session that finished its call takes the next waiting one, or goes idle. */
  const release = (pool: Pool, session: Session): void => {
    if (pool.waitingHead < pool.waiting.length) {
      const next = pool.waiting[pool.waitingHead] as { caller: Caller; op: TreeOp };
      pool.waitingHead += 1;
      if (pool.waitingHead === pool.waiting.length) {
        pool.waiting.length = 0;
        pool.waitingHead = 0;
      }
      run(pool, session, next.caller, next.op);
      return;
    }
    pool.idle.push(session);
  };

  const run = (pool: Pool, session: Session, caller: Caller, op: TreeOp): void => {
    session.caller = caller;
    const result = clientStep(session.state, { type: 'call', callId: caller.callId, op });
    session.state = result.state;
    apply(pool, session, result.effects);
  };

  const onCall = (from: ActorId, call: ProxyCall): void => {
    counters.calls += 1;
    const caller: Caller = { from, callId: call.callId };
    const pool = pools.get(call.ns);
    if (pool === undefined) {
      counters.unknownNamespace += 1;
      answer(caller, { type: 'unknown_namespace', ns: String(call.ns) });
      return;
    }
    if (typeof call.op !== 'object' || call.op === null) {
      answer(caller, { type: 'invalid_call', reason: 'op must be an object' });
      return;
    }
    let session = pool.idle.pop();
    if (session === undefined && pool.sessions.length < spec.sessionsMax) {
      sessionCount += 1;
      const clientId = `${prefix}.${sessionCount}`;
      session = { clientId, state: initialClientState(clientId, pool.config.client, randomInt(2 ** 31)), caller: null };
      pool.sessions.push(session);
      byClientId.set(clientId, { pool, session });
    }
    if (session !== undefined) {
      run(pool, session, caller, call.op);
      return;
    }
    if (pool.waiting.length - pool.waitingHead >= spec.waitingMax) {
      counters.overloaded += 1;
      answer(caller, { type: 'overloaded' });
      return;
    }
    pool.waiting.push({ caller, op: call.op });
  };

  const onAnswer = (message: ClientAnswer): void => {
    const owner = typeof message.clientId === 'string' ? byClientId.get(message.clientId) : undefined;
    if (owner === undefined) {
      counters.strayAnswers += 1;
      return;
    }
    const result = clientStep(owner.session.state, { type: 'receive', message });
    owner.session.state = result.state;
    apply(owner.pool, owner.session, result.effects);
  };

  const onTick = (): void => {
    // Only sessions with a call in flight have timers to run; idle ones are skipped.
    for (const pool of pools.values()) {
      for (const session of pool.sessions) {
        if (session.caller === null && session.state.outstanding === null) continue;
        const result = clientStep(session.state, { type: 'tick' });
        session.state = result.state;
        apply(pool, session, result.effects);
      }
    }
  };

  return {
    receive(batch: readonly Envelope[]) {
      let ticked = false;
      for (const envelope of batch) {
        const msg = envelope.msg as { type?: unknown } | null;
        if (isTick(msg)) {
          if (!ticked) onTick();
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
          default:
            counters.malformed += 1;
        }
      }
    },
    status: () => {
      let sessions = 0;
      let busy = 0;
      let waiting = 0;
      for (const pool of pools.values()) {
        sessions += pool.sessions.length;
        busy += pool.sessions.length - pool.idle.length;
        waiting += pool.waiting.length - pool.waitingHead;
      }
      return { role: 'proxy', sessions, busy, waiting, ...counters };
    },
  };
}
