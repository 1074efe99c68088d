/**
 * Scenario: a registration flood fills the client table (the production wedge).
 *
 * Goal: once a namespace's client table is full, further registrations each evict the least
 * recently active session, cheaply (no scan or sort of the table: src/vr/client_table.ts),
 * on the primary and every backup alike; every registration is answered, evicted sessions are
 * answered session_expired, and the group stays in its view.
 *
 * Method: three replicas driven through the pure core (`stepAll`) in rounds: each round every
 * replica receives what was sent to it in the previous round, in one step, and one tick. The
 * simulator's checkers (../sim/checkers.ts) run after every step, so replicas that applied the
 * same prefix must hold the same client table, LRU order included. clientTableMax is 2,000 and
 * 6,000 sessions register, in arrival order opposite to their ids' order (so "ties by client
 * id", the old order, would keep other sessions than "ties in log order"). Then every session
 * sends one request.
 */

import { expect } from 'chai';
import { makeReplicaConfig, type ReplicaConfig } from '../../src/vr/config.ts';
import type { ReplicaEffect, ReplicaInput } from '../../src/vr/io.ts';
import type { ClientAnswer, PeerMessage, Request } from '../../src/vr/messages.ts';
import { initialReplicaState, type ReplicaState } from '../../src/vr/state.ts';
import { stepAll } from '../../src/vr/step.ts';
import { Checkers, machineDifference } from '../sim/checkers.ts';

/** Three replicas and the messages between them, delivered round by round. */
class Rounds {
  readonly config: ReplicaConfig;
  readonly states: ReplicaState[];
  readonly checkers: Checkers;
  /** Per replica, the inputs for its next step. */
  #inbox: ReplicaInput[][];
  readonly answers: { readonly from: number; readonly clientId: string; readonly message: ClientAnswer }[] = [];
  readonly traces: string[] = [];
  round = 0;

  constructor(config: ReplicaConfig) {
    this.config = config;
    this.states = Array.from({ length: config.replicaCount }, (_, i) => initialReplicaState(config, i, 500 + i));
    this.checkers = new Checkers(config.replicaCount);
    this.#inbox = this.states.map(() => [{ type: 'start', mode: 'fresh', nonce: 0 }]);
  }

  /** Client requests, to be received by `replica` in the next round. */
  request(replica: number, requests: readonly Request[]): void {
    for (const message of requests) this.#inbox[replica]?.push({ type: 'receive', message });
  }

  /** One round: every replica takes its inbox and a tick in one step. */
  step(): void {
    this.round += 1;
    const inboxes = this.#inbox;
    this.#inbox = this.states.map(() => []);
    for (let i = 0; i < this.states.length; i++) {
      const inputs: ReplicaInput[] = [...(inboxes[i] ?? []), { type: 'tick' }];
      const before = this.states[i] as ReplicaState;
      const { state, effects } = stepAll(before, inputs);
      this.states[i] = state;
      this.checkers.afterStep({ replica: i, tick: this.round, before, after: state, inputs, effects });
      this.#route(i, effects);
    }
  }

  /** Rounds until nothing is in flight and every replica has applied the primary's commit. */
  settle(maxRounds: number): void {
    for (let n = 0; n < maxRounds; n++) {
      this.step();
      const commit = (this.states[0] as ReplicaState).commit;
      const quiet = this.#inbox.every((inbox) => inbox.length === 0);
      if (quiet && this.states.every((s) => s.commit === commit && s.op === commit)) return;
    }
    throw new Error(`not settled within ${maxRounds} rounds: ${this.states.map((s) => `${s.status}@${s.view} op${s.op} c${s.commit}`).join(' | ')}`);
  }

  #route(from: number, effects: readonly ReplicaEffect[]): void {
    for (const effect of effects) {
      if (effect.type === 'send') this.#inbox[effect.to]?.push({ type: 'receive', message: effect.message as PeerMessage });
      else if (effect.type === 'reply') this.answers.push({ from, clientId: effect.clientId, message: effect.message });
      else if (effect.type === 'trace') this.traces.push(effect.trace.event);
    }
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
