/**
 * Scenario: a registration flood fills the client table (the production wedge).
 *
 * Goal: once a namespace's client table is full, further registrations each evict the least
 * recently active session, cheaply (no scan or sort of the table: src/vr/client_table.ts),
 * on the primary and every backup alike; every registration is answered, evicted sessions are
 * answered session_expired, and the group stays in its view.
 *
 * Method: three replicas, each the replica actor's glue over the pure core (actors/replica.ts),
 * driven in rounds: each round every replica receives what was sent to it in the previous
 * round and a tick, in one batch (one step). The
 * simulator's checkers (../sim/checkers.ts) run after every step, so replicas that applied the
 * same prefix must hold the same client table, LRU order included. clientTableMax is 2,000 and
 * 6,000 sessions register, in arrival order opposite to their ids' order (so "ties by client
 * id", the old order, would keep other sessions than "ties in log order"). Then every session
 * sends one request.
 */

import { expect } from 'chai';
import { createReplica, type ReplicaGlue } from '../../actors/replica.ts';
import type { Envelope } from '../../runtime/envelope.ts';
import { makeReplicaConfig, type ReplicaConfig } from '../../src/vr/config.ts';
import type { ClientAnswer, Request } from '../../src/vr/messages.ts';
import type { ReplicaState } from '../../src/vr/state.ts';
import { stepAll } from '../../src/vr/step.ts';
import { Checkers, machineDifference } from '../sim/checkers.ts';

/** Where the flood's requests come from, and so where the replicas route their answers. */
const flood = 'flood';

/**
 * Three replicas (the replica actor's glue, actors/replica.ts, as the product runs it) and the
 * envelopes between them, delivered round by round.
 */
class Rounds {
  readonly config: ReplicaConfig;
  readonly checkers: Checkers;
  readonly #replicas: ReplicaGlue[] = [];
  readonly #ids: readonly string[];
  /** Per replica, the envelopes for its next step. */
  #inbox: Envelope[][];
  readonly answers: { readonly from: number; readonly clientId: string; readonly message: ClientAnswer }[] = [];
  readonly traces: string[] = [];
  round = 0;

  constructor(config: ReplicaConfig) {
    this.config = config;
    this.checkers = new Checkers(config.replicaCount);
    this.#ids = Array.from({ length: config.replicaCount }, (_, i) => `r${i}`);
    this.#inbox = this.#ids.map(() => []);
    for (let i = 0; i < config.replicaCount; i++) {
      const ports = {
        send: (to: string, msg: unknown): void => this.#send(i, to, msg),
        persist(): void {
          throw new Error('persist effect in a diskless group');
        },
        trace: (trace: { readonly event: string }): void => {
          this.traces.push(trace.event);
        },
        // Checkpoint images are encoded by the core on demand here; the background encoder never runs.
        encodeCheckpoint(): void {},
        nowMs: (): number => 0,
      };
      const spec = { ns: 'flood', index: i, config, replicas: this.#ids, defaultProxy: flood, mode: 'fresh' as const, nonce: 0, seed: 500 + i };
      // The simulator's checkers run after every step, before its effects leave.
      const step = (before: ReplicaState, inputs: Parameters<typeof stepAll>[1]): ReturnType<typeof stepAll> => {
        const result = stepAll(before, inputs);
        this.checkers.afterStep({ replica: i, tick: this.round, before, after: result.state, inputs, effects: result.effects });
        return result;
      };
      this.#replicas.push(createReplica(ports, spec, { step }));
    }
  }

  get states(): ReplicaState[] {
    return this.#replicas.map((replica) => replica.state);
  }

  /** Client requests, to be received by `replica` in the next round. */
  request(replica: number, requests: readonly Request[]): void {
    for (const msg of requests) this.#inbox[replica]?.push({ from: flood, to: this.#ids[replica] as string, msg });
  }

  /** One round: every replica takes its inbox and a tick in one batch (one step). */
  step(): void {
    this.round += 1;
    const inboxes = this.#inbox;
    this.#inbox = this.#ids.map(() => []);
    this.#replicas.forEach((replica, i) => replica.receive([...(inboxes[i] ?? []), { from: 'timer', to: this.#ids[i] as string, msg: { type: 'tick' } }]));
  }

  /** Rounds until nothing is in flight and every replica has applied the primary's commit. */
  settle(maxRounds: number): void {
    for (let n = 0; n < maxRounds; n++) {
      this.step();
      const states = this.states;
      const commit = (states[0] as ReplicaState).commit;
      const quiet = this.#inbox.every((inbox) => inbox.length === 0);
      if (quiet && states.every((s) => s.commit === commit && s.op === commit)) return;
    }
    throw new Error(`not settled within ${maxRounds} rounds: ${this.states.map((s) => `${s.status}@${s.view} op${s.op} c${s.commit}`).join(' | ')}`);
  }

  #send(from: number, to: string, msg: unknown): void {
    if (to === flood) {
      const message = msg as ClientAnswer;
      this.answers.push({ from, clientId: message.clientId, message });
      return;
    }
    const index = this.#ids.indexOf(to);
    if (index < 0) throw new Error(`replica ${from} sent to unknown actor ${to}`);
    this.#inbox[index]?.push({ from: this.#ids[from] as string, to, msg });
  }
}

const register = (clientId: string): Request => ({ type: 'request', clientId, requestNum: 0, op: { type: 'register' } });
const create = (clientId: string): Request => ({ type: 'request', clientId, requestNum: 1, op: { type: 'tree', op: { type: 'create', path: `/${clientId}`, nodeType: 'blob' } } });

describe('scenario: a registration flood fills the client table', () => {
  it('every registration is answered, the least recently active sessions are evicted and answered session_expired, and the view never changes', () => {
    const tableMax = 2_000;
    const sessions = 3 * tableMax;
    const config = makeReplicaConfig({ clientTableMax: tableMax, checkpointIntervalOps: 16, pendingMax: 100_000 });
    const group = new Rounds(config);
    group.step();
    // Arrival order i = 0.. with ids counting down: by id, the last to arrive sort first.
    const idOf = (i: number): string => `s${String(sessions - i).padStart(5, '0')}`;
    // 300 a round: entries of 256 and 44, so the 4,000th arrival falls inside an entry (a tie)
    const perRound = 300;
    for (let i = 0; i < sessions; i += perRound) {
      group.request(0, Array.from({ length: Math.min(perRound, sessions - i) }, (_, k) => register(idOf(i + k))));
      group.step();
    }
    group.settle(200);

    const registered = group.answers.filter((a) => a.message.type === 'reply' && a.message.body.type === 'registered');
    expect(registered.length, 'every registration is answered').to.equal(sessions);
    expect(new Set(registered.map((a) => a.clientId)).size).to.equal(sessions);
    expect(registered.every((a) => a.from === 0)).to.equal(true);

    // Exactly the last tableMax to arrive stay, in arrival order, on every replica.
    const kept = Array.from({ length: tableMax }, (_, k) => idOf(sessions - tableMax + k));
    for (const state of group.states) {
      const held = Array.from(state.machine.clients.entries(), ([id]) => id);
      expect([...held].sort(), `replica ${state.index}: the sessions kept`).to.deep.equal([...kept].sort());
      expect(held, `replica ${state.index}: least recently active first`).to.deep.equal(kept);
    }
    expect(machineDifference(group.states[0]!.machine, group.states[1]!.machine)).to.equal(null);
    expect(machineDifference(group.states[0]!.machine, group.states[2]!.machine)).to.equal(null);

    // Every session sends one request: evicted ones are told, kept ones run.
    const answeredBefore = group.answers.length;
    for (let i = 0; i < sessions; i += perRound) {
      group.request(0, Array.from({ length: Math.min(perRound, sessions - i) }, (_, k) => create(idOf(i + k))));
      group.step();
    }
    group.settle(200);
    const outcomes = new Map<string, string>();
    for (const a of group.answers.slice(answeredBefore)) if (a.message.type === 'reply') outcomes.set(a.clientId, a.message.body.type);
    expect(outcomes.size, 'every request is answered').to.equal(sessions);
    for (let i = 0; i < sessions; i++) {
      const expected = i < sessions - tableMax ? 'session_expired' : 'tree';
      if (outcomes.get(idOf(i)) !== expected) expect.fail(`session ${idOf(i)} (arrival ${i}) was answered ${outcomes.get(idOf(i))}, not ${expected}`);
    }

    expect(group.traces.filter((event) => event === 'view_change_started'), 'no view change').to.deep.equal([]);
    for (const state of group.states) expect(state).to.include({ status: 'normal', view: 0 });
    group.checkers.finalCheck(group.states, group.round);
    expect(group.checkers.violations).to.deep.equal([]);
  });
});
