/**
 * The replica core, hand-driven (src/vr/step.ts): replicas are constructed, fed specific
 * inputs, and the returned effects and states are checked. A tiny `Group` below holds a few
 * replica states and delivers their messages by hand (FIFO, with selection and loss), nothing
 * more: no clock, no randomness beyond the replicas' own seeded PRNGs.
 */

import { expect } from 'chai';
import type { NodeType } from '../../src/tree/node_type.ts';
import type { TreeOp } from '../../src/tree/ops.ts';
import { encodeCheckpoint } from '../../src/vr/checkpoint.ts';
import { makeReplicaConfig, type ReplicaConfig } from '../../src/vr/config.ts';
import type { ReplicaEffect, ReplicaInput } from '../../src/vr/io.ts';
import { emptyLog, entryAt } from '../../src/vr/log.ts';
import { protocolNumberMax } from '../../src/base/limits.ts';
import type {
  ClientAnswer,
  Commit,
  DoViewChange,
  LogEntry,
  PeerMessage,
  PeerMessageType,
  Prepare,
  Reply,
  ReplicaMessage,
  Request,
  StartView,
} from '../../src/vr/messages.ts';
import { initialReplicaState, type ReplicaState } from '../../src/vr/state.ts';
import { Machine } from '../../src/vr/state_machine.ts';
import { step, stepAll } from '../../src/vr/step.ts';
import { lookupTyped } from '../../src/tree/lookup.ts';
import { encodeSnapshot, treesEqual } from '../../src/tree/snapshot.ts';

// ---- helpers -------------------------------------------------------------------------------

type Envelope = { readonly from: number; readonly to: number; readonly message: PeerMessage };
type Answer = { readonly from: number; readonly clientId: string; readonly message: ClientAnswer };
type MessageOf<T extends PeerMessageType> = Extract<PeerMessage, { type: T }>;

const receive = (message: ReplicaMessage): ReplicaInput => ({ type: 'receive', message });
const tick: ReplicaInput = { type: 'tick' };
const startFresh: ReplicaInput = { type: 'start', mode: 'fresh', nonce: 0 };

const register = (clientId: string): Request => ({ type: 'request', clientId, requestNum: 0, op: { type: 'register' } });
const treeRequest = (clientId: string, requestNum: number, op: TreeOp): Request => ({ type: 'request', clientId, requestNum, op: { type: 'tree', op } });
const create = (clientId: string, requestNum: number, path: string, nodeType: NodeType = 'blob'): Request =>
  treeRequest(clientId, requestNum, { type: 'create', path, nodeType });
const push = (clientId: string, requestNum: number, path: string, byte: number): Request =>
  treeRequest(clientId, requestNum, { type: 'queue_push', path, value: Uint8Array.of(byte) });

function sends<T extends PeerMessageType>(effects: readonly ReplicaEffect[], type: T): { to: number; message: MessageOf<T> }[] {
  const out: { to: number; message: MessageOf<T> }[] = [];
  for (const effect of effects) {
    if (effect.type === 'send' && effect.message.type === type) out.push({ to: effect.to, message: effect.message as MessageOf<T> });
  }
  return out;
}

const allSends = (effects: readonly ReplicaEffect[]): { to: number; message: PeerMessage }[] =>
  effects.flatMap((effect) => (effect.type === 'send' ? [{ to: effect.to, message: effect.message }] : []));

const answers = (effects: readonly ReplicaEffect[]): { clientId: string; message: ClientAnswer }[] =>
  effects.flatMap((effect) => (effect.type === 'reply' ? [{ clientId: effect.clientId, message: effect.message }] : []));

const replies = (effects: readonly ReplicaEffect[]): Reply[] =>
  answers(effects).flatMap((answer) => (answer.message.type === 'reply' ? [answer.message] : []));

const traceEvents = (effects: readonly ReplicaEffect[]): string[] =>
  effects.flatMap((effect) => (effect.type === 'trace' ? [effect.trace.event] : []));

const entryOps = (state: ReplicaState): number[] => state.log.entries.toArray().map((e) => e.op);

/** Byte-identical machines: same applied op, same tree, same client table. */
function expectSameMachine(actual: Machine, expected: Machine, label: string): void {
  expect(actual.appliedOp, `${label}: applied op`).to.equal(expected.appliedOp);
  expect(treesEqual(actual.tree, expected.tree), `${label}: tree`).to.equal(true);
  expect(encodeSnapshot(actual.tree), `${label}: tree bytes`).to.deep.equal(encodeSnapshot(expected.tree));
  expect(encodeCheckpoint(actual).snapshot, `${label}: checkpoint bytes (tree + client table)`).to.deep.equal(encodeCheckpoint(expected).snapshot);
}

/**
 * A few replicas and the messages between them, delivered by hand. `cut` replicas neither send
 * nor receive (their messages are lost).
 */
class Group {
  readonly states: ReplicaState[];
  inFlight: Envelope[] = [];
  readonly answers: Answer[] = [];
  /** Every trace event of every replica, in order. */
  readonly traces: string[] = [];
  readonly cut = new Set<number>();

  readonly config: ReplicaConfig;

  constructor(config: ReplicaConfig, start = true) {
    this.config = config;
    this.states = Array.from({ length: config.replicaCount }, (_, i) => initialReplicaState(config, i, 1000 + i));
    if (start) for (let i = 0; i < config.replicaCount; i++) this.input(i, startFresh);
  }

  s(i: number): ReplicaState {
    const state = this.states[i];
    if (state === undefined) throw new Error(`no replica ${i}`);
    return state;
  }

  /** Runs the inputs in ONE stepAll on replica i; records its sends and answers. */
  input(i: number, ...inputs: ReplicaInput[]): readonly ReplicaEffect[] {
    const result = stepAll(this.s(i), inputs);
    this.states[i] = result.state;
    for (const effect of result.effects) {
      if (effect.type === 'send' && !this.cut.has(i) && !this.cut.has(effect.to)) this.inFlight.push({ from: i, to: effect.to, message: effect.message });
      if (effect.type === 'reply') this.answers.push({ from: i, clientId: effect.clientId, message: effect.message });
      if (effect.type === 'trace') this.traces.push(effect.trace.event);
    }
    return result.effects;
  }

  /** Client requests to replica i, all in one stepAll. */
  request(i: number, ...requests: Request[]): readonly ReplicaEffect[] {
    return this.input(i, ...requests.map(receive));
  }

  tick(i: number, times = 1): ReplicaEffect[] {
    const out: ReplicaEffect[] = [];
    for (let k = 0; k < times; k++) out.push(...this.input(i, tick));
    return out;
  }

  /** Delivers the first in-flight message matching `pick`; returns the receiver's effects. */
  deliver(pick: (envelope: Envelope) => boolean): readonly ReplicaEffect[] {
    const index = this.inFlight.findIndex(pick);
    if (index < 0) throw new Error(`no such message in flight: ${this.inFlight.map((e) => `${e.message.type} ${e.from}->${e.to}`).join(', ')}`);
    const [envelope] = this.inFlight.splice(index, 1) as [Envelope];
    if (this.cut.has(envelope.to)) return [];
    return this.input(envelope.to, receive(envelope.message));
  }

  /** Delivers matching messages (FIFO) until none remain; returns how many were delivered. */
  deliverAll(pick: (envelope: Envelope) => boolean = () => true, limit = 10_000): number {
    let delivered = 0;
    while (this.inFlight.some(pick)) {
      this.deliver(pick);
      if (++delivered > limit) throw new Error('delivery did not quiesce');
    }
    return delivered;
  }

  drop(pick: (envelope: Envelope) => boolean): void {
    this.inFlight = this.inFlight.filter((envelope) => !pick(envelope));
  }

  /** A request at the primary of view 0, delivered everywhere until quiet (committed at the primary). */
  commitAtPrimary(...requests: Request[]): readonly ReplicaEffect[] {
    const effects = this.request(0, ...requests);
    this.deliverAll();
    return effects;
  }
}

const to = (replica: number) => (envelope: Envelope) => envelope.to === replica;
const ofType = (type: PeerMessageType) => (envelope: Envelope) => envelope.message.type === type;
const both =
  (...picks: ((envelope: Envelope) => boolean)[]) =>
  (envelope: Envelope) =>
    picks.every((pick) => pick(envelope));

function prepareMessage(view: number, replica: number, entry: LogEntry, commit: number, globalMinAccept = 0): Prepare {
  return { type: 'prepare', epoch: 0, view, replica, op: entry.op, commit, entry, globalMinAccept };
}

function entry(op: number, view: number, requests: readonly Request[]): LogEntry {
  return { op, view, requests };
}

/** A replica started fresh, alone. */
/**
 * A started replica. Durable: a brand-new replica's first promise (view 0) is reported stored,
 * as its shell does when it creates the namespace (README rule 18).
 */
function fresh(config: ReplicaConfig, index: number, seed = 7): ReplicaState {
  const started = step(initialReplicaState(config, index, seed), startFresh).state;
  if (!config.durable) return started;
  return step(started, { type: 'persisted', generation: started.durable.generation, op: started.op }).state;
}

/** Feeds inputs one step at a time; returns the final state and every effect. */
function feed(state: ReplicaState, inputs: readonly ReplicaInput[]): { state: ReplicaState; effects: ReplicaEffect[] } {
  let current = state;
  const effects: ReplicaEffect[] = [];
  for (const input of inputs) {
    const result = step(current, input);
    current = result.state;
    effects.push(...result.effects);
  }
  return { state: current, effects };
}

const config3 = makeReplicaConfig({ replicaCount: 3 });
/** Every read logged, as in VRR §4.1 (README rule 22 off): the tests of the logged read. */
const loggedReads = makeReplicaConfig({ replicaCount: 3, readsSkipLog: false });

// ---- start ---------------------------------------------------------------------------------

describe('vr step: start', () => {
  it('a replica is stopped until start; three fresh replicas start normal in view 0 with replica 0 primary', () => {
    const stopped = initialReplicaState(config3, 0, 1);
    expect(stopped.status).to.equal('stopped');
    const group = new Group(config3);
    for (let i = 0; i < 3; i++) {
      const s = group.s(i);
      expect(s.status, `replica ${i}`).to.equal('normal');
      expect(s.view).to.equal(0);
      expect(s.lastNormalView).to.equal(0);
      expect(s.op).to.equal(0);
      expect(s.commit).to.equal(0);
    }
    expect(group.inFlight).to.deep.equal([]);
    // replica 0 is the primary: it takes a request; replica 1 redirects to it
    expect(sends(group.request(0, register('c')), 'prepare')).to.have.length(2);
    const redirected = answers(group.request(1, register('c')));
    expect(redirected).to.have.length(1);
    expect(redirected[0]?.message).to.include({ type: 'not_primary', view: 0, primary: 0 });
  });

  it('a second start is ignored (traced)', () => {
    const s = fresh(config3, 1);
    const again = step(s, startFresh);
    expect(traceEvents(again.effects)).to.deep.equal(['drop_start_already_started']);
    expect(again.state).to.equal(s);
  });

  it('a stopped replica takes part in nothing and ignores ticks', () => {
    const stopped = initialReplicaState(config3, 1, 1);
    const prepare = prepareMessage(0, 0, entry(1, 0, [register('c')]), 0);
    const r1 = step(stopped, receive(prepare));
    expect(allSends(r1.effects)).to.deep.equal([]);
    expect(traceEvents(r1.effects)).to.deep.equal(['drop_not_participating']);
    const r2 = step(stopped, receive(register('c')));
    expect(answers(r2.effects)).to.deep.equal([]);
    const r3 = feed(stopped, Array.from({ length: 100 }, () => tick));
    expect(r3.effects).to.deep.equal([]);
    expect(r3.state.status).to.equal('stopped');
  });
});

// ---- normal operation ----------------------------------------------------------------------

describe('vr step: normal operation (VRR §4.1)', () => {
  it('a register then a tree request each get their reply after f prepare_ok, not before', () => {
    const group = new Group(config3);
    const r1 = group.request(0, register('alice'));
    const prepares = sends(r1, 'prepare');
    expect(prepares.map((p) => p.to).sort()).to.deep.equal([1, 2]);
    expect(prepares[0]?.message).to.deep.include({ view: 0, op: 1, commit: 0, replica: 0 });
    expect(prepares[0]?.message.entry.requests).to.deep.equal([register('alice')]);
    expect(answers(r1), 'no reply before a quorum').to.deep.equal([]);
    expect(group.s(0)).to.include({ op: 1, commit: 0 });

    // backup 1 takes the prepare and acknowledges it
    const b1 = group.deliver(both(to(1), ofType('prepare')));
    expect(sends(b1, 'prepare_ok')).to.deep.equal([{ to: 0, message: { type: 'prepare_ok', epoch: 0, view: 0, replica: 1, op: 1 } }]);
    expect(group.s(1)).to.include({ op: 1, commit: 0 });

    // f = 1 prepare_ok: committed, replied
    const p1 = group.deliver(both(to(0), ofType('prepare_ok')));
    expect(group.s(0).commit).to.equal(1);
    expect(replies(p1)).to.deep.equal([
      { type: 'reply', epoch: 0, view: 0, op: 1, clientId: 'alice', requestNum: 0, body: { type: 'registered', isNew: true, lastRequestNum: 0 } },
    ]);
    expect(group.s(0).machine.clients.get('alice')).to.deep.include({ requestNum: 0 });

    const r2 = group.request(0, create('alice', 1, '/a'));
    expect(sends(r2, 'prepare').map((p) => p.message.op)).to.deep.equal([2, 2]);
    expect(sends(r2, 'prepare')[0]?.message.commit, 'the prepare carries the commit number').to.equal(1);
    expect(replies(r2)).to.deep.equal([]);
    group.deliver(both(to(2), ofType('prepare')));
    group.deliver(both(to(2), ofType('prepare')));
    expect(group.s(2)).to.include({ op: 2, commit: 1 });
    const p2 = group.deliver(both(to(0), ofType('prepare_ok'), (e) => e.from === 2 && (e.message as MessageOf<'prepare_ok'>).op === 2));
    const reply = replies(p2);
    expect(reply).to.have.length(1);
    expect(reply[0]).to.deep.include({ op: 2, clientId: 'alice', requestNum: 1 });
    const body = reply[0]?.body;
    if (body?.type !== 'tree') throw new Error(`expected a tree reply, got ${JSON.stringify(body)}`);
    expect(body.outcome.type, 'create succeeded').to.equal('ok');
    expect(group.s(0).commit).to.equal(2);
    // backups learn the commit number from the next message from the primary and apply
    group.tick(0, config3.commitIntervalTicks);
    group.deliverAll();
    for (const i of [1, 2]) {
      expect(group.s(i).commit, `backup ${i}`).to.equal(2);
      expectSameMachine(group.s(i).machine, group.s(0).machine, `backup ${i}`);
    }
  });

  it('several requests in ONE stepAll become ONE log entry and one prepare per backup', () => {
    const group = new Group(config3);
    const effects = group.request(0, register('a'), register('b'), register('c'));
    const prepares = sends(effects, 'prepare');
    expect(prepares.map((p) => p.to).sort()).to.deep.equal([1, 2]);
    expect(group.s(0).op).to.equal(1);
    const logged = entryAt(group.s(0).log, 1);
    expect(logged?.requests.map((r) => r.clientId)).to.deep.equal(['a', 'b', 'c']);
    expect(prepares[0]?.message.entry).to.deep.equal(logged);
    // one acknowledgement commits the whole batch and answers every request in it
    group.deliver(to(1));
    const committed = group.deliver(both(to(0), ofType('prepare_ok')));
    expect(replies(committed).map((r) => [r.clientId, r.op])).to.deep.equal([
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ]);
  });

  it('the same requests in separate steps become separate entries', () => {
    const group = new Group(config3);
    group.request(0, register('a'));
    group.request(0, register('b'));
    expect(group.s(0).op).to.equal(2);
    expect(entryOps(group.s(0))).to.deep.equal([1, 2]);
  });

  it('batchMax splits a step\'s requests into several entries', () => {
    const group = new Group(makeReplicaConfig({ batchMax: 2 }));
    const effects = group.request(0, register('a'), register('b'), register('c'), register('d'), register('e'));
    expect(group.s(0).op).to.equal(3);
    expect([1, 2, 3].map((op) => entryAt(group.s(0).log, op)?.requests.map((r) => r.clientId))).to.deep.equal([['a', 'b'], ['c', 'd'], ['e']]);
    const prepares = sends(effects, 'prepare');
    expect(prepares).to.have.length(6);
    expect(prepares.filter((p) => p.to === 1).map((p) => p.message.op)).to.deep.equal([1, 2, 3]);
  });

  it('at most pipelineMax entries are uncommitted; the rest wait in pending and go out as commits advance', () => {
    const group = new Group(makeReplicaConfig({ batchMax: 1, pipelineMax: 2 }));
    const effects = group.request(0, register('a'), register('b'), register('c'), register('d'), register('e'));
    expect(group.s(0).op).to.equal(2);
    expect(group.s(0).primary.pending.size).to.equal(3);
    expect(sends(effects, 'prepare').map((p) => p.message.op).sort()).to.deep.equal([1, 1, 2, 2]);
    // op 1 acknowledged: committed, so op 3 may go
    group.deliver(both(to(1), (e) => (e.message as Prepare).op === 1));
    const afterOne = group.deliver(both(to(0), ofType('prepare_ok')));
    expect(group.s(0).commit).to.equal(1);
    expect(group.s(0).op).to.equal(3);
    expect(group.s(0).primary.pending.size).to.equal(2);
    expect(sends(afterOne, 'prepare').map((p) => p.message.op)).to.deep.equal([3, 3]);
    expect(entryAt(group.s(0).log, 3)?.requests.map((r) => r.clientId)).to.deep.equal(['c']);
    // everything acknowledged: everything committed, pending empty
    group.deliverAll();
    expect(group.s(0)).to.include({ op: 5, commit: 5 });
    expect(group.s(0).primary.pending.size).to.equal(0);
    expect(group.answers.filter((a) => a.message.type === 'reply').map((a) => a.clientId)).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
  });

  it('beyond pendingMax held requests, the primary answers busy and logs nothing for them', () => {
    const config = makeReplicaConfig({ batchMax: 1, pipelineMax: 1, pendingMax: 2 });
    const group = new Group(config);
    const effects = group.request(0, register('a'), register('b'), register('c'), register('d'));
    const busy = answers(effects).filter((a) => a.message.type === 'busy');
    expect(busy.map((a) => a.clientId)).to.deep.equal(['c', 'd']);
    expect(busy[0]?.message).to.deep.equal({ type: 'busy', epoch: 0, view: 0, retryAfterTicks: config.commitIntervalTicks, clientId: 'c', requestNum: 0 });
    expect(group.s(0).op).to.equal(1);
    expect(group.s(0).primary.pending.size).to.equal(1);
    const logged = [...group.s(0).log.entries.toArray().flatMap((e) => e.requests), ...group.s(0).primary.pending.toArray()].map((r) => r.clientId);
    expect(logged).to.deep.equal(['a', 'b']);
    // one more fits (pending 1 < 2), the next does not
    expect(answers(group.request(0, register('e')))).to.deep.equal([]);
    expect(answers(group.request(0, register('f'))).map((a) => a.message.type)).to.deep.equal(['busy']);
  });

  it('a backup answers a client request with not_primary {view, primary}', () => {
    const group = new Group(config3);
    for (const backup of [1, 2]) {
      const effects = group.request(backup, create('x', 3, '/a'));
      expect(answers(effects)).to.deep.equal([
        { clientId: 'x', message: { type: 'not_primary', epoch: 0, view: 0, primary: 0, clientId: 'x', requestNum: 3 } },
      ]);
      expect(allSends(effects)).to.deep.equal([]);
      expect(group.s(backup).op).to.equal(0);
    }
  });

  it('a replica changing views answers not_primary with the new view and its primary', () => {
    const group = new Group(config3);
    group.tick(2, group.s(2).timers.timeoutTicks);
    expect(group.s(2)).to.include({ status: 'view_change', view: 1 });
    const effects = group.request(2, register('x'));
    expect(answers(effects)).to.deep.equal([
      { clientId: 'x', message: { type: 'not_primary', epoch: 0, view: 1, primary: 1, clientId: 'x', requestNum: 0 } },
    ]);
    // the would-be primary itself, still in view_change, redirects too (to itself: the client retries)
    group.deliver(both(to(1), ofType('start_view_change')));
    expect(group.s(1).status).to.equal('view_change');
    expect(answers(group.request(1, register('y')))[0]?.message).to.include({ type: 'not_primary', view: 1, primary: 1 });
  });

  it('a recovering replica drops a client request silently (traced)', () => {
    const recovering = step(initialReplicaState(config3, 1, 3), { type: 'start', mode: 'recovering', nonce: 5 }).state;
    const result = step(recovering, receive(register('x')));
    expect(answers(result.effects)).to.deep.equal([]);
    expect(allSends(result.effects)).to.deep.equal([]);
    expect(traceEvents(result.effects)).to.deep.equal(['drop_request_not_ready']);
  });

  it('a malformed tree op is answered rejected with a typed error and never logged', () => {
    const group = new Group(config3);
    group.commitAtPrimary(register('alice'));
    const before = group.s(0);
    const bad = { type: 'request', clientId: 'alice', requestNum: 1, op: { type: 'tree', op: { type: 'create', path: 'no-slash', nodeType: 'blob' } } } as unknown as Request;
    const effects = group.request(0, bad);
    expect(allSends(effects)).to.deep.equal([]);
    const reply = replies(effects);
    expect(reply).to.have.length(1);
    expect(reply[0]).to.deep.include({ op: 0, clientId: 'alice', requestNum: 1 });
    const body = reply[0]?.body;
    if (body?.type !== 'rejected' || body.outcome.type !== 'error') throw new Error(`expected a rejection, got ${JSON.stringify(body)}`);
    expect(body.outcome.error.code).to.equal('bad_path');
    const unknownOp = { ...bad, op: { type: 'tree', op: { type: 'explode', path: '/a' } } } as unknown as Request;
    const second = replies(group.request(0, unknownOp));
    expect(second[0]?.body).to.deep.include({ type: 'rejected' });
    if (second[0]?.body.type === 'rejected' && second[0].body.outcome.type === 'error') expect(second[0].body.outcome.error.code).to.equal('invalid_request');
    expect(group.s(0).op).to.equal(before.op);
    expect(group.s(0).log).to.equal(before.log);
    expect(group.s(0).machine.clients.get('alice')?.requestNum, 'the client table is unchanged').to.equal(0);
  });

  it('an op over a tree limit is rejected (too_large) before the log', () => {
    const config = makeReplicaConfig({ treeLimits: { ...config3.treeLimits, valueBytesMax: 4 } });
    const group = new Group(config);
    group.commitAtPrimary(register('alice'));
    group.commitAtPrimary(create('alice', 1, '/b'));
    const op = group.s(0).op;
    const effects = group.request(0, treeRequest('alice', 2, { type: 'blob_put', path: '/b', value: new Uint8Array(10) }));
    const body = replies(effects)[0]?.body;
    expect(body).to.deep.equal({ type: 'rejected', outcome: { type: 'error', error: { code: 'too_large', what: 'value_bytes', limit: 4 } } });
    expect(group.s(0).op).to.equal(op);
    expect(allSends(effects)).to.deep.equal([]);
  });

  it('a request from an unregistered client, with nothing uncommitted, is answered session_expired and not logged', () => {
    const group = new Group(config3);
    const effects = group.request(0, create('stranger', 1, '/a'));
    expect(replies(effects)).to.deep.equal([
      { type: 'reply', epoch: 0, view: 0, op: 0, clientId: 'stranger', requestNum: 1, body: { type: 'session_expired' } },
    ]);
    expect(allSends(effects)).to.deep.equal([]);
    expect(group.s(0).op).to.equal(0);
  });

  it('a request sent while its session\'s register is still in progress is dropped (one outstanding request, VRR §4.1); once registered it is logged', () => {
    const group = new Group(config3);
    group.request(0, register('alice'));
    const early = group.request(0, create('alice', 1, '/a'));
    expect(answers(early)).to.deep.equal([]);
    expect(traceEvents(early)).to.include('drop_request_other_in_progress');
    expect(group.s(0).op, 'only the register is logged').to.equal(1);
    group.deliverAll();
    group.commitAtPrimary(create('alice', 1, '/a'));
    expect(group.answers.map((a) => (a.message.type === 'reply' ? a.message.body.type : a.message.type))).to.deep.equal(['registered', 'tree']);
  });

  it('a request of an unknown session is logged while other entries are uncommitted (a view change may leave its register there), and applying it decides', () => {
    const group = new Group(config3);
    group.request(0, register('alice'));
    const effects = group.request(0, create('stranger', 1, '/a'));
    expect(answers(effects)).to.deep.equal([]);
    expect(group.s(0).op).to.equal(2);
    group.deliverAll();
    expect(group.answers.map((a) => (a.message.type === 'reply' ? [a.clientId, a.message.body.type] : a.message.type))).to.deep.equal([
      ['alice', 'registered'],
      ['stranger', 'session_expired'],
    ]);
  });

  it('a duplicate of the last executed write gets the identical cached reply, without a new entry; an older one is answered stale_request', () => {
    const group = new Group(config3);
    group.commitAtPrimary(register('alice'));
    group.commitAtPrimary(create('alice', 1, '/a'));
    const first = group.answers.filter((a) => a.message.type === 'reply' && a.message.requestNum === 1);
    expect(first).to.have.length(1);
    const original = first[0]?.message as Reply;
    const op = group.s(0).op;

    const dup = group.request(0, create('alice', 1, '/a'));
    expect(replies(dup)).to.deep.equal([original]);
    expect(allSends(dup), 'no prepare').to.deep.equal([]);
    expect(group.s(0).op).to.equal(op);

    group.commitAtPrimary(create('alice', 2, '/b'));
    expect(group.s(0).op).to.equal(op + 1);
    const old = group.request(0, create('alice', 1, '/a'));
    // README deviation 16: VRR §4.1 drops it; the client would only time out.
    expect(replies(old)).to.deep.equal([
      { type: 'reply', epoch: 0, view: 0, op: 0, clientId: 'alice', requestNum: 1, body: { type: 'stale_request', lastRequestNum: 2 } },
    ]);
    expect(allSends(old)).to.deep.equal([]);
    expect(group.s(0).op).to.equal(op + 1);
  });

  it('a retry of a request still in progress is not logged twice', () => {
    const group = new Group(config3);
    group.commitAtPrimary(register('alice'));
    group.request(0, create('alice', 1, '/a'));
    const op = group.s(0).op;
    const retry = group.request(0, create('alice', 1, '/a'));
    expect(group.s(0).op).to.equal(op);
    expect(allSends(retry)).to.deep.equal([]);
    expect(answers(retry)).to.deep.equal([]);
    expect(traceEvents(retry)).to.include('drop_request_in_progress');
    group.deliverAll();
    expect(group.answers.filter((a) => a.message.type === 'reply' && a.message.requestNum === 1)).to.have.length(1);
  });

  it('a backup receiving a prepare with a gap sends get_state and does not acknowledge the gapped op', () => {
    const backup = fresh(config3, 1);
    const prepare = prepareMessage(0, 0, entry(2, 0, [register('b')]), 0);
    const result = step(backup, receive(prepare));
    expect(sends(result.effects, 'prepare_ok')).to.deep.equal([]);
    expect(sends(result.effects, 'get_state')).to.deep.equal([{ to: 0, message: { type: 'get_state', epoch: 0, view: 0, replica: 1, op: 0, whole: false } }]);
    expect(result.state.op).to.equal(0);
    expect(result.state.stateTransfer).to.deep.equal({ target: 0, ticks: 0 });
    // a second gapped prepare does not ask again while the first request is out
    const again = step(result.state, receive(prepareMessage(0, 0, entry(3, 0, [register('c')]), 0)));
    expect(sends(again.effects, 'get_state')).to.deep.equal([]);
    expect(sends(again.effects, 'prepare_ok')).to.deep.equal([]);
  });

  it('an old or repeated prepare is answered with prepare_ok for the backup\'s latest op', () => {
    const e1 = entry(1, 0, [register('a')]);
    const e2 = entry(2, 0, [register('b')]);
    const { state } = feed(fresh(config3, 2), [receive(prepareMessage(0, 0, e1, 0)), receive(prepareMessage(0, 0, e2, 0))]);
    expect(state.op).to.equal(2);
    for (const old of [prepareMessage(0, 0, e1, 0), prepareMessage(0, 0, e2, 0)]) {
      const result = step(state, receive(old));
      expect(sends(result.effects, 'prepare_ok')).to.deep.equal([{ to: 0, message: { type: 'prepare_ok', epoch: 0, view: 0, replica: 2, op: 2 } }]);
      expect(result.state.op).to.equal(2);
      expect(entryOps(result.state)).to.deep.equal([1, 2]);
    }
  });

  it('prepare_ok is cumulative: one prepare_ok for op 3 commits ops 1..3', () => {
    const group = new Group(config3);
    group.request(0, register('a'));
    group.request(0, register('b'));
    group.request(0, register('c'));
    expect(group.s(0)).to.include({ op: 3, commit: 0 });
    group.drop(to(2));
    group.deliverAll(to(1));
    // only the acknowledgement of op 3 arrives
    group.drop((e) => e.message.type === 'prepare_ok' && e.message.op < 3);
    expect(group.inFlight.map((e) => [e.message.type, (e.message as MessageOf<'prepare_ok'>).op])).to.deep.equal([['prepare_ok', 3]]);
    const effects = group.deliver(to(0));
    expect(group.s(0).commit).to.equal(3);
    expect(replies(effects).map((r) => [r.clientId, r.op])).to.deep.equal([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
  });

  it('a prepare_ok beyond the primary\'s op is dropped', () => {
    const group = new Group(config3);
    group.request(0, register('a'));
    const effects = group.input(0, receive({ type: 'prepare_ok', epoch: 0, view: 0, replica: 1, op: 9 }));
    expect(traceEvents(effects)).to.include('drop_prepare_ok_beyond_op');
    expect(group.s(0).commit).to.equal(0);
  });

  it('the idle primary sends commit heartbeats every commitIntervalTicks', () => {
    const config = makeReplicaConfig({ commitIntervalTicks: 4 });
    const group = new Group(config);
    group.commitAtPrimary(register('a'));
    for (let k = 1; k < 4; k++) expect(allSends(group.tick(0)), `tick ${k}`).to.deep.equal([]);
    const beat = group.tick(0);
    const commits = sends(beat, 'commit');
    expect(commits.map((c) => c.to).sort()).to.deep.equal([1, 2]);
    expect(commits[0]?.message).to.deep.include({ type: 'commit', view: 0, replica: 0, commit: 1 });
    expect(allSends(group.tick(0, 3))).to.deep.equal([]);
    expect(sends(group.tick(0), 'commit')).to.have.length(2);
  });

  it('a backup learns a new commit number at once (README rule 20), or from the heartbeat when that commit is lost', () => {
    const group = new Group(config3);
    group.request(0, register('a'));
    // prepares out, prepare_oks back: the primary commits, and with no prepare to carry it, announces it
    group.deliverAll(ofType('prepare'));
    group.deliverAll(ofType('prepare_ok'));
    expect(group.s(0).commit).to.equal(1);
    expect(group.inFlight.filter((envelope) => envelope.message.type === 'commit').map((envelope) => [envelope.to, (envelope.message as { commit: number }).commit])).to.deep.equal([
      [1, 1],
      [2, 1],
    ]);
    // the announcement lost: the backup still holds op 1 uncommitted until the heartbeat
    group.drop(ofType('commit'));
    expect(group.s(1).commit).to.equal(0);
    group.tick(0, config3.commitIntervalTicks);
    group.deliverAll();
    expect(group.s(1).commit).to.equal(1);
    expect(group.s(1).machine.clients.has('a')).to.equal(true);
  });

  it('with uncommitted entries and no progress, the primary re-sends every unacknowledged prepare after prepareResendTicks', () => {
    const config = makeReplicaConfig({ prepareResendTicks: 3, commitIntervalTicks: 5 });
    const group = new Group(config);
    group.request(0, register('a'));
    group.request(0, register('b'));
    group.drop(() => true); // every prepare lost
    expect(allSends(group.tick(0, 2))).to.deep.equal([]);
    const resent = sends(group.tick(0), 'prepare');
    expect(resent.map((p) => [p.to, p.message.op])).to.deep.equal([
      [1, 1],
      [1, 2],
      [2, 1],
      [2, 2],
    ]);
    expect(resent[0]?.message.entry).to.deep.equal(entryAt(group.s(0).log, 1));
    // the re-sent prepares get the group going again
    group.deliverAll();
    expect(group.s(0).commit).to.equal(2);
  });

  it('the re-send skips what each backup acknowledged (n = 5)', () => {
    const config = makeReplicaConfig({ replicaCount: 5, prepareResendTicks: 3, commitIntervalTicks: 5 });
    const group = new Group(config);
    group.request(0, register('a'));
    group.request(0, register('b'));
    group.deliver(both(to(1), (e) => (e.message as Prepare).op === 1));
    group.drop((e) => e.message.type === 'prepare');
    group.deliver(both(to(0), ofType('prepare_ok')));
    expect(group.s(0).commit, 'f = 2: one ack does not commit').to.equal(0);
    expect(allSends(group.tick(0, 2))).to.deep.equal([]);
    const resent = sends(group.tick(0), 'prepare');
    expect(resent.map((p) => [p.to, p.message.op])).to.deep.equal([
      [1, 2],
      [2, 1],
      [2, 2],
      [3, 1],
      [3, 2],
      [4, 1],
      [4, 2],
    ]);
  });

  it('messages with another epoch are dropped', () => {
    const backup = fresh(config3, 1);
    const prepare = { ...prepareMessage(0, 0, entry(1, 0, [register('a')]), 0), epoch: 1 };
    const result = step(backup, receive(prepare));
    expect(traceEvents(result.effects)).to.deep.equal(['drop_other_epoch']);
    expect(result.state.op).to.equal(0);
  });
});

// ---- the client table at the primary -------------------------------------------------------

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const blobGet = (clientId: string, requestNum: number, path: string): Request => treeRequest(clientId, requestNum, { type: 'blob_get', path });
const blobPut = (clientId: string, requestNum: number, path: string, value: Uint8Array): Request => treeRequest(clientId, requestNum, { type: 'blob_put', path, value });

/** The last reply the group's primary sent to `clientId` for `requestNum`. */
function lastReply(group: Group, clientId: string, requestNum: number): Reply {
  const found = group.answers.filter((a) => a.clientId === clientId && a.message.type === 'reply' && a.message.requestNum === requestNum).at(-1);
  if (found === undefined) throw new Error(`no reply to ${clientId}#${requestNum}`);
  return found.message as Reply;
}

function blobText(state: ReplicaState, path: string): string {
  const found = lookupTyped(state.machine.tree, path, 'blob');
  if (!found.ok) throw new Error(`no blob at ${path}`);
  return new TextDecoder().decode(found.node.value);
}

/** A do_view_change from replica 2 making replica 1 primary of view 4 with `entries`, all committed. */
function committedLogForNewPrimary(entries: readonly LogEntry[]): DoViewChange {
  return { type: 'do_view_change', epoch: 0, view: 4, replica: 2, lastNormalView: 3, op: entries.length, commit: entries.length, logStart: 0, entries: [...entries], checkpoint: null };
}

describe('vr step: the client table at the primary (VRR §4.1; README deviations 8 and 16)', () => {
  it('a second request of a session while one is in progress is dropped and never runs; its retry runs once the first is applied', () => {
    const group = new Group(config3);
    group.commitAtPrimary(register('alice'));
    group.request(0, create('alice', 1, '/a'));
    const op = group.s(0).op;
    const second = group.request(0, create('alice', 2, '/b'));
    expect(traceEvents(second)).to.include('drop_request_other_in_progress');
    expect(answers(second)).to.deep.equal([]);
    expect(allSends(second), 'no prepare').to.deep.equal([]);
    expect(group.s(0).op).to.equal(op);
    // two in flight in one step: only the first goes into the log
    group.commitAtPrimary(register('bob'));
    const both = group.request(0, create('bob', 1, '/c'), create('bob', 2, '/d'));
    expect(traceEvents(both)).to.include('drop_request_other_in_progress');
    expect(entryAt(group.s(0).log, group.s(0).op)?.requests.map((r) => `${r.clientId}#${r.requestNum}`)).to.deep.equal(['bob#1']);
    group.deliverAll();
    const ran = group.answers.flatMap((a) => (a.message.type === 'reply' && a.message.body.type === 'tree' ? [`${a.clientId}#${a.message.requestNum}`] : []));
    expect(ran).to.deep.equal(['alice#1', 'bob#1']);
    for (const path of ['/b', '/d']) expect(lookupTyped(group.s(0).machine.tree, path, 'blob').ok, `${path} never created`).to.equal(false);
    expect(group.s(0).primary.inProgress.size, 'nothing left in progress').to.equal(0);
    // the client's retries now run
    group.commitAtPrimary(create('alice', 2, '/b'));
    group.commitAtPrimary(create('bob', 2, '/d'));
    expect(lastReply(group, 'alice', 2).body).to.deep.include({ type: 'tree' });
    expect(lookupTyped(group.s(0).machine.tree, '/b', 'blob').ok).to.equal(true);
    expect(lookupTyped(group.s(0).machine.tree, '/d', 'blob').ok).to.equal(true);
  });

  it('across a view change the new primary rebuilds in-progress requests from its uncommitted log and releases them at commit: no session stays blocked', () => {
    const group = new Group(config3);
    group.commitAtPrimary(register('alice'));
    group.commitAtPrimary(register('bob'));
    group.request(0, create('alice', 1, '/a'));
    group.deliverAll(both(ofType('prepare'), (e) => e.to !== 0));
    group.drop(to(0)); // the old primary never hears the acknowledgements
    group.cut.add(0);
    group.tick(2, group.s(2).timers.timeoutTicks);
    group.deliver(both(to(1), ofType('start_view_change')));
    group.deliver(both(to(2), ofType('start_view_change')));
    group.deliver(both(to(1), ofType('do_view_change')));
    expect(group.s(1)).to.include({ status: 'normal', view: 1 });
    expect(group.s(1).primary.inProgress.get('alice'), 'alice#1 is uncommitted in the new primary\'s log').to.equal(1);
    expect(group.s(1).primary.inProgress.has('bob'), 'bob has nothing uncommitted').to.equal(false);
    expect(traceEvents(group.request(1, create('alice', 2, '/b')))).to.include('drop_request_other_in_progress');
    group.deliverAll();
    expect(lastReply(group, 'alice', 1)).to.deep.include({ view: 1 });
    expect(group.s(1).primary.inProgress.has('alice')).to.equal(false);
    group.request(1, create('alice', 2, '/b'));
    group.request(1, create('bob', 1, '/c'));
    group.deliverAll();
    expect(lastReply(group, 'alice', 2).body).to.deep.include({ type: 'tree' });
    expect(lastReply(group, 'bob', 1).body).to.deep.include({ type: 'tree' });

    // A request whose prepare reached no backup is forgotten by the next view change: its
    // session is not blocked either.
    const lost = new Group(config3);
    lost.commitAtPrimary(register('carol'));
    lost.cut.add(0);
    lost.request(0, create('carol', 1, '/a'));
    expect(traceEvents(lost.request(0, create('carol', 2, '/b')))).to.include('drop_request_other_in_progress');
    lost.tick(2, lost.s(2).timers.timeoutTicks);
    lost.deliverAll();
    expect(lost.s(1)).to.include({ status: 'normal', view: 1 });
    expect(lost.s(1).primary.inProgress.size).to.equal(0);
    lost.request(1, create('carol', 2, '/b'));
    lost.deliverAll();
    expect(lastReply(lost, 'carol', 2).body).to.deep.include({ type: 'tree' });
  });

  it('a read\'s reply is not kept: its record holds the request number, replyOp and lastActiveOp only', () => {
    const group = new Group(loggedReads);
    group.commitAtPrimary(register('alice'));
    group.commitAtPrimary(create('alice', 1, '/b'));
    group.commitAtPrimary(blobPut('alice', 2, '/b', utf8('v1')));
    const put = group.s(0).machine.clients.get('alice');
    expect(put?.reply, 'a write\'s reply is kept').to.deep.include({ type: 'tree' });
    group.commitAtPrimary(blobGet('alice', 3, '/b'));
    const read = lastReply(group, 'alice', 3);
    expect(read.body).to.deep.include({ type: 'tree' });
    expect(group.s(0).machine.clients.get('alice')).to.deep.equal({ requestNum: 3, reply: null, replyOp: read.op, lastActiveOp: read.op });
    // multi_cas of reads only is a read; with a write in it, a write
    group.commitAtPrimary(treeRequest('alice', 4, { type: 'multi_cas', guards: [], ops: [{ type: 'blob_get', path: '/b' }, { type: 'stat', path: '/b' }] }));
    expect(group.s(0).machine.clients.get('alice')?.reply).to.equal(null);
    group.commitAtPrimary(treeRequest('alice', 5, { type: 'multi_cas', guards: [], ops: [{ type: 'blob_get', path: '/b' }, { type: 'blob_put', path: '/b', value: utf8('v2') }] }));
    expect(group.s(0).machine.clients.get('alice')?.reply).to.deep.include({ type: 'tree' });
    // the backups hold the same table
    group.tick(0, config3.commitIntervalTicks);
    group.deliverAll();
    for (const i of [1, 2]) expectSameMachine(group.s(i).machine, group.s(0).machine, `backup ${i}`);
  });

  it('a retried read runs again at a later op and sees the current tree; a retried write gets its cached reply', () => {
    const group = new Group(loggedReads);
    group.commitAtPrimary(register('alice'));
    group.commitAtPrimary(register('bob'));
    group.commitAtPrimary(create('bob', 1, '/b'));
    group.commitAtPrimary(blobPut('bob', 2, '/b', utf8('v1')));
    const write = lastReply(group, 'bob', 2);
    group.commitAtPrimary(blobGet('alice', 1, '/b'));
    const first = lastReply(group, 'alice', 1);
    const body = first.body;
    if (body.type !== 'tree' || body.outcome.type !== 'blob') throw new Error(`unexpected ${JSON.stringify(body)}`);
    expect(new TextDecoder().decode(body.outcome.value)).to.equal('v1');
    group.commitAtPrimary(blobPut('bob', 3, '/b', utf8('v2')));
    // alice never saw her answer and retries: the read is logged again
    const op = group.s(0).op;
    const retry = group.request(0, blobGet('alice', 1, '/b'));
    expect(group.s(0).op, 'logged again').to.equal(op + 1);
    expect(sends(retry, 'prepare')).to.have.length(2);
    group.deliverAll();
    const again = lastReply(group, 'alice', 1);
    expect(again.op).to.equal(op + 1);
    const againBody = again.body;
    if (againBody.type !== 'tree' || againBody.outcome.type !== 'blob') throw new Error(`unexpected ${JSON.stringify(againBody)}`);
    expect(new TextDecoder().decode(againBody.outcome.value), 'the current value').to.equal('v2');
    expect(blobText(group.s(0), '/b')).to.equal('v2');
    // the record moved only its activity: same number, the op that first ran it
    expect(group.s(0).machine.clients.get('alice')).to.deep.equal({ requestNum: 1, reply: null, replyOp: first.op, lastActiveOp: op + 1 });
    expect(group.s(0).machine.clients.ids(), 'alice is now the most recently active').to.deep.equal(['bob', 'alice']);
    // a retried write is answered from the table, the same reply, nothing logged
    const cached = group.request(0, blobPut('bob', 3, '/b', utf8('v2')));
    expect(replies(cached)).to.deep.equal([lastReply(group, 'bob', 3)]);
    expect(allSends(cached)).to.deep.equal([]);
    expect(write.op).to.be.below(op);
  });

  it('a read retried as a write (a client bug) is dropped with a trace, at admission and when found in the log', () => {
    const group = new Group(loggedReads);
    group.commitAtPrimary(register('alice'));
    group.commitAtPrimary(blobGet('alice', 1, '/nothing'));
    const op = group.s(0).op;
    const bad = group.request(0, create('alice', 1, '/x'));
    expect(traceEvents(bad)).to.include('drop_retry_read_as_write');
    expect(answers(bad)).to.deep.equal([]);
    expect(group.s(0).op).to.equal(op);
    // in a log (e.g. from an older primary): applying it answers nothing and runs nothing
    const entries = [entry(1, 3, [register('carol')]), entry(2, 3, [treeRequest('carol', 1, { type: 'stat', path: '/' })]), entry(3, 3, [create('carol', 1, '/x')])];
    const result = step(fresh(config3, 1), receive(committedLogForNewPrimary(entries)));
    expect(result.state).to.include({ status: 'normal', view: 4, commit: 3 });
    expect(replies(result.effects).map((r) => [r.requestNum, r.body.type])).to.deep.equal([
      [0, 'registered'],
      [1, 'tree'],
    ]);
    expect(traceEvents(result.effects)).to.include('drop_request_at_apply');
    expect(lookupTyped(result.state.machine.tree, '/x', 'blob').ok).to.equal(false);
    expect(result.state.primary.inProgress.size).to.equal(0);
  });

  it('a stale request (below the session\'s last executed one) is answered stale_request, at admission and when found in the log', () => {
    const group = new Group(config3);
    group.commitAtPrimary(register('alice'));
    group.commitAtPrimary(create('alice', 1, '/a'));
    group.commitAtPrimary(create('alice', 2, '/b'));
    const op = group.s(0).op;
    const stale = group.request(0, create('alice', 1, '/a'));
    expect(replies(stale)).to.deep.equal([
      { type: 'reply', epoch: 0, view: 0, op: 0, clientId: 'alice', requestNum: 1, body: { type: 'stale_request', lastRequestNum: 2 } },
    ]);
    expect(group.s(0).op, 'nothing logged').to.equal(op);
    // in a log: applying it runs nothing, and the primary answers the same way
    const entries = [entry(1, 3, [register('alice')]), entry(2, 3, [create('alice', 2, '/b')]), entry(3, 3, [create('alice', 1, '/a')])];
    const result = step(fresh(config3, 1), receive(committedLogForNewPrimary(entries)));
    expect(replies(result.effects).map((r) => [r.requestNum, r.op, r.body])).to.deep.equal([
      [0, 1, { type: 'registered', isNew: true, lastRequestNum: 0 }],
      [2, 2, { type: 'tree', outcome: { type: 'ok', version: 0 } }],
      [1, 0, { type: 'stale_request', lastRequestNum: 2 }],
    ]);
    expect(lookupTyped(result.state.machine.tree, '/a', 'blob').ok).to.equal(false);
  });
});

describe('vr step: reads without the log (README rule 22)', () => {
  /** alice registered, /b holds "v1"; everything delivered. */
  function withValue(config: ReplicaConfig = config3): Group {
    const group = new Group(config);
    group.commitAtPrimary(register('alice'));
    group.commitAtPrimary(create('alice', 1, '/b'));
    group.commitAtPrimary(blobPut('alice', 2, '/b', utf8('v1')));
    return group;
  }

  const blobValue = (reply: Reply): string => {
    const body = reply.body;
    if (body.type !== 'tree' || body.outcome.type !== 'blob') throw new Error(`unexpected ${JSON.stringify(body)}`);
    return new TextDecoder().decode(body.outcome.value);
  };

  it('a read is answered after f backups confirm a round started after it, at the commit number, with no log entry and no change to the client table', () => {
    const group = withValue();
    const op = group.s(0).op;
    const clients = group.s(0).machine.clients;
    const effects = group.request(0, blobGet('alice', 3, '/b'));
    expect(replies(effects), 'not before the confirmation').to.deep.equal([]);
    expect(sends(effects, 'prepare'), 'nothing logged').to.deep.equal([]);
    const rounds = sends(effects, 'read_round');
    expect(rounds.map((r) => r.to).sort()).to.deep.equal([1, 2]);
    expect(rounds[0]?.message).to.deep.include({ view: 0, round: 1 });
    expect(group.s(0).primary.inProgress.get('alice'), 'the session\'s one request in progress').to.equal(3);
    // one backup's confirmation is f = 1
    group.deliver(both(to(1), ofType('read_round')));
    const answered = group.deliver(both(to(0), ofType('read_round_ok')));
    const [reply] = replies(answered);
    expect(reply).to.deep.include({ clientId: 'alice', requestNum: 3, op, view: 0 });
    expect(blobValue(reply as Reply)).to.equal('v1');
    expect(group.s(0).op).to.equal(op);
    expect(group.s(0).machine.clients).to.equal(clients);
    expect(group.s(0).primary.inProgress.has('alice')).to.equal(false);
    expect(group.s(0).primary.reads.waiting.size).to.equal(0);
  });

  it('a read waits for the commit of what the primary had logged when it arrived (its readIndex)', () => {
    const group = withValue();
    group.commitAtPrimary(register('bob'));
    // bob's put is prepared, not committed, when alice's read arrives
    group.request(0, blobPut('bob', 1, '/b', utf8('v2')));
    const readIndex = group.s(0).op;
    group.request(0, blobGet('alice', 3, '/b'));
    group.deliverAll(ofType('read_round'));
    const confirmed = group.deliverAll(ofType('read_round_ok'));
    expect(confirmed).to.equal(2);
    expect(group.answers.filter((a) => a.clientId === 'alice' && a.message.requestNum === 3), 'the put is not committed yet').to.deep.equal([]);
    group.deliverAll();
    const reply = lastReply(group, 'alice', 3);
    expect(reply.op).to.equal(readIndex);
    expect(blobValue(reply), 'the read sees the write that was logged before it').to.equal('v2');
  });

  it('every read of one step shares one round; a read arriving after a round started waits for the next', () => {
    const group = withValue();
    group.commitAtPrimary(register('bob'), register('carol'));
    const first = group.request(0, blobGet('alice', 3, '/b'), blobGet('bob', 1, '/b'));
    expect(sends(first, 'read_round')).to.have.length(2);
    const later = group.request(0, blobGet('carol', 1, '/b'));
    expect(sends(later, 'read_round').map((r) => r.message.round)).to.deep.equal([2, 2]);
    // round 1 confirmed: alice and bob are answered, carol waits for round 2
    const confirmed = group.deliver(both(to(1), ofType('read_round')));
    expect(sends(confirmed, 'read_round_ok')[0]?.message.round).to.equal(1);
    const answered = group.deliver(both(to(0), ofType('read_round_ok')));
    expect(replies(answered).map((r) => r.clientId)).to.deep.equal(['alice', 'bob']);
    group.deliverAll();
    expect(lastReply(group, 'carol', 1).body.type).to.equal('tree');
  });

  it('lost rounds are started again after commitIntervalTicks; a forged confirmation of a round never started is dropped', () => {
    const group = withValue();
    group.request(0, blobGet('alice', 3, '/b'));
    group.drop(ofType('read_round'));
    const forged = group.input(0, receive({ type: 'read_round_ok', epoch: 0, view: 0, replica: 1, round: 9 }));
    expect(traceEvents(forged)).to.include('drop_read_round_ok');
    expect(replies(forged)).to.deep.equal([]);
    const ticks = group.tick(0, config3.commitIntervalTicks);
    expect(sends(ticks, 'read_round').map((r) => r.message.round)).to.deep.equal([2, 2]);
    group.deliverAll();
    expect(blobValue(lastReply(group, 'alice', 3))).to.equal('v1');
  });

  it('a backup confirms only a round of its own view\'s primary in normal status; a deposed primary drops its waiting reads', () => {
    const group = withValue();
    const stale = group.input(1, receive({ type: 'read_round', epoch: 0, view: 0, replica: 0, round: 1 }));
    expect(sends(stale, 'read_round_ok')).to.have.length(1);
    // backup 1 moves on to view 1 (a view change it started): it no longer confirms view 0
    group.tick(1, config3.viewChangeTimeoutTicks + config3.viewChangeJitterTicks);
    expect(group.s(1).view).to.equal(1);
    const refused = group.input(1, receive({ type: 'read_round', epoch: 0, view: 0, replica: 0, round: 2 }));
    expect(sends(refused, 'read_round_ok')).to.deep.equal([]);
    expect(traceEvents(refused)).to.include('drop_read_round');
    // the old primary holds a read, then learns of view 1: the read is dropped, never answered
    group.request(0, blobGet('alice', 3, '/b'));
    group.drop(() => true);
    group.input(0, receive({ type: 'start_view_change', epoch: 0, view: 1, replica: 2 }));
    expect(group.s(0).primary.reads.waiting.size).to.equal(0);
    expect(group.answers.filter((a) => a.message.requestNum === 3)).to.deep.equal([]);
  });

  it('one replica (f = 0) answers at once; with readsSkipLog off, or a session idle for half of sessionIdleOps, the read is logged', () => {
    const solo = withValue(makeReplicaConfig({ replicaCount: 1 }));
    const effects = solo.request(0, blobGet('alice', 3, '/b'));
    expect(blobValue(replies(effects)[0] as Reply)).to.equal('v1');
    expect(allSends(effects)).to.deep.equal([]);

    const logged = withValue(loggedReads);
    const op = logged.s(0).op;
    expect(sends(logged.request(0, blobGet('alice', 3, '/b')), 'prepare')).to.have.length(2);
    expect(logged.s(0).op).to.equal(op + 1);

    const idle = withValue(makeReplicaConfig({ replicaCount: 3, sessionIdleOps: 4 }));
    idle.commitAtPrimary(register('bob'));
    idle.commitAtPrimary(create('bob', 1, '/c'));
    idle.commitAtPrimary(create('bob', 2, '/d'));
    // alice last acted at op 3; the commit is 6: more than 4 / 2 ops ago
    const refresh = idle.request(0, blobGet('alice', 3, '/b'));
    expect(sends(refresh, 'prepare'), 'logged, so the session stays alive').to.have.length(2);
  });

  it('beyond pendingMax waiting reads and requests, a read is answered busy', () => {
    const group = withValue(makeReplicaConfig({ replicaCount: 3, pendingMax: 1 }));
    group.commitAtPrimary(register('bob'));
    group.request(0, blobGet('alice', 3, '/b'));
    const refused = group.request(0, blobGet('bob', 1, '/b'));
    expect(answers(refused).map((a) => a.message.type)).to.deep.equal(['busy']);
  });
});

describe('vr step: a namespace with larger tree limits (config.treeLimits reach the backups)', () => {
  it('with valueBytesMax 2 MiB a 1.5 MiB put commits on all three replicas, in view 0', () => {
    const config = makeReplicaConfig({ treeLimits: { ...config3.treeLimits, valueBytesMax: 2 * 1024 * 1024 } });
    const group = new Group(config);
    group.commitAtPrimary(register('alice'));
    group.commitAtPrimary(create('alice', 1, '/big'));
    const value = new Uint8Array(1536 * 1024).fill(7);
    group.request(0, blobPut('alice', 2, '/big', value));
    // deliver everything, with heartbeats, for longer than a view-change timeout
    for (let round = 0; round < 2 * config.viewChangeTimeoutTicks; round++) {
      for (const i of [0, 1, 2]) group.input(i, tick);
      group.deliverAll();
    }
    expect(group.traces.filter((event) => event.startsWith('drop_malformed') || event === 'view_change_started')).to.deep.equal([]);
    expect(lastReply(group, 'alice', 2).body).to.deep.equal({ type: 'tree', outcome: { type: 'ok', version: 1 } });
    for (const i of [0, 1, 2]) {
      expect(group.s(i), `replica ${i}`).to.include({ status: 'normal', view: 0, commit: 3 });
      const found = lookupTyped(group.s(i).machine.tree, '/big', 'blob');
      expect(found.ok && found.node.value.length, `replica ${i} holds the value`).to.equal(value.length);
    }
  });
});

// ---- malformed input -----------------------------------------------------------------------

describe('vr step: malformed messages', () => {
  it('are traced drop_malformed and change nothing (the very same state)', () => {
    const group = new Group(config3);
    group.commitAtPrimary(register('a'));
    group.request(0, register('b')); // something uncommitted too
    const bad: unknown[] = [
      null,
      42,
      { type: 'nonsense', epoch: 0, replica: 1 },
      { type: 'prepare_ok', epoch: 0, view: 0, replica: 1, op: -1 },
      { type: 'prepare_ok', epoch: 0, view: 0, replica: 7, op: 1 },
      { type: 'prepare_ok', epoch: 0, view: 0, replica: 1, op: 1.5 },
      prepareMessage(0, 2, entry(3, 0, [register('z')]), 0), // not the primary of view 0
      { ...prepareMessage(0, 0, entry(3, 0, [register('z')]), 0), op: 4 }, // entry op mismatch
      { type: 'request', clientId: '', requestNum: 0, op: { type: 'register' } },
      { type: 'request', clientId: 'a', requestNum: 3, op: { type: 'register' } },
      { type: 'request', clientId: 'a', requestNum: 0, op: { type: 'tree', op: { type: 'stat', path: '/' } } },
      { type: 'start_view_change', epoch: 0, view: 1 },
    ];
    for (const replica of [0, 1]) {
      const before = group.s(replica);
      for (const message of bad) {
        const result = step(before, receive(message as ReplicaMessage));
        expect(result.state, `${replica}: ${JSON.stringify(message)}`).to.equal(before);
        expect(result.effects, `${replica}: ${JSON.stringify(message)}`).to.have.length(1);
        expect(traceEvents(result.effects)).to.deep.equal(['drop_malformed']);
      }
      // a message from the replica itself
      const self = step(before, receive({ type: 'prepare_ok', epoch: 0, view: 0, replica, op: 1 }));
      expect(self.state).to.equal(before);
      expect(traceEvents(self.effects)).to.deep.equal(['drop_malformed']);
    }
  });
});

// ---- view change ---------------------------------------------------------------------------

describe('vr step: view change (VRR §4.2)', () => {
  it('a backup\'s timeout is randomised within [viewChangeTimeoutTicks, + jitter) and replays from its seed', () => {
    const config = makeReplicaConfig({ viewChangeTimeoutTicks: 20, viewChangeJitterTicks: 10 });
    const timeouts = new Set<number>();
    for (let seed = 0; seed < 40; seed++) {
      const a = fresh(config, 1, seed).timers.timeoutTicks;
      expect(a).to.be.within(20, 29);
      expect(fresh(config, 1, seed).timers.timeoutTicks).to.equal(a);
      timeouts.add(a);
    }
    expect(timeouts.size, 'not constant').to.be.above(1);
  });

  it('a backup that hears nothing for its timeout starts a view change: view_change, view + 1, start_view_change to all', () => {
    const group = new Group(config3);
    const timeout = group.s(2).timers.timeoutTicks;
    expect(timeout).to.be.within(config3.viewChangeTimeoutTicks, config3.viewChangeTimeoutTicks + config3.viewChangeJitterTicks - 1);
    expect(allSends(group.tick(2, timeout - 1))).to.deep.equal([]);
    expect(group.s(2)).to.include({ status: 'normal', view: 0 });
    const effects = group.tick(2);
    expect(group.s(2)).to.include({ status: 'view_change', view: 1, lastNormalView: 0 });
    expect(traceEvents(effects)).to.include('view_change_started');
    expect(sends(effects, 'start_view_change')).to.deep.equal([
      { to: 0, message: { type: 'start_view_change', epoch: 0, view: 1, replica: 2 } },
      { to: 1, message: { type: 'start_view_change', epoch: 0, view: 1, replica: 2 } },
    ]);
  });

  it('a backup that hears the primary\'s heartbeats does not start a view change', () => {
    const group = new Group(config3);
    for (let round = 0; round < 30; round++) {
      group.tick(0);
      group.tick(1);
      group.deliverAll();
    }
    expect(group.s(1)).to.include({ status: 'normal', view: 0 });
  });

  it('start_view_change → do_view_change → start_view: the group moves to view 1 keeping the uncommitted entry', () => {
    const group = new Group(config3);
    group.request(0, register('alice'));
    group.deliverAll(both(ofType('prepare'), (e) => e.to !== 0));
    group.drop(to(0)); // the old primary hears nothing more for now (its prepare_oks are lost)
    expect(group.s(0).commit).to.equal(0);
    expect(group.s(1).op).to.equal(1);

    group.tick(2, group.s(2).timers.timeoutTicks);
    expect(group.s(2)).to.include({ status: 'view_change', view: 1 });

    // replica 1, the primary of view 1, joins: it broadcasts its own start_view_change and,
    // with f = 1 vote, records its own do_view_change (it does not send it to itself)
    const r1 = group.deliver(both(to(1), ofType('start_view_change')));
    expect(group.s(1)).to.include({ status: 'view_change', view: 1 });
    expect(sends(r1, 'start_view_change').map((s) => s.to).sort()).to.deep.equal([0, 2]);
    expect(sends(r1, 'do_view_change')).to.deep.equal([]);
    expect(group.s(1).viewChange.sentDoViewChange).to.equal(true);

    // replica 2, with f start_view_change from others, sends do_view_change to the new primary
    const r2 = group.deliver(both(to(2), ofType('start_view_change')));
    const dvc = sends(r2, 'do_view_change');
    expect(dvc).to.have.length(1);
    expect(dvc[0]?.to).to.equal(1);
    expect(dvc[0]?.message).to.deep.include({ view: 1, replica: 2, lastNormalView: 0, op: 1, commit: 0 });
    expect(group.s(2).status).to.equal('view_change');

    // the new primary with f + 1 do_view_change (its own included) enters normal, lastNormalView = view
    const started = group.deliver(both(to(1), ofType('do_view_change')));
    expect(group.s(1)).to.include({ status: 'normal', view: 1, lastNormalView: 1, op: 1, commit: 0 });
    const startViews = sends(started, 'start_view');
    expect(startViews.map((s) => s.to).sort()).to.deep.equal([0, 2]);
    expect(startViews[0]?.message).to.deep.include({ view: 1, replica: 1, op: 1, commit: 0 });
    expect(traceEvents(started)).to.include('view_started');

    // a backup receiving start_view enters normal with lastNormalView = view and acknowledges
    const b2 = group.deliver(both(to(2), ofType('start_view')));
    expect(group.s(2)).to.include({ status: 'normal', view: 1, lastNormalView: 1, op: 1 });
    expect(sends(b2, 'prepare_ok')).to.deep.equal([{ to: 1, message: { type: 'prepare_ok', epoch: 0, view: 1, replica: 2, op: 1 } }]);

    // the old primary, which missed the view change, installs start_view too
    const b0 = group.deliver(both(to(0), ofType('start_view')));
    expect(group.s(0)).to.include({ status: 'normal', view: 1, lastNormalView: 1, op: 1 });
    expect(sends(b0, 'prepare_ok')).to.deep.equal([{ to: 1, message: { type: 'prepare_ok', epoch: 0, view: 1, replica: 0, op: 1 } }]);

    // the new primary commits the entry from view 0 and answers the client
    group.deliverAll();
    expect(group.s(1).commit).to.equal(1);
    const reply = group.answers.find((a) => a.message.type === 'reply');
    expect(reply?.from).to.equal(1);
    expect(reply?.message).to.deep.include({ view: 1, op: 1, clientId: 'alice', requestNum: 0 });
    for (const i of [0, 1, 2]) expect(group.s(i)).to.include({ status: 'normal', view: 1 });
    // and takes new requests
    group.request(1, create('alice', 1, '/a'));
    group.deliverAll();
    expect(group.s(1).commit).to.equal(2);
  });

  it('the new primary takes the log with the largest lastNormalView, even when its own log has a larger op', () => {
    // replica 1 holds ops 1..3 from view 0 (lastNormalView 0); replica 2 reports view 3's log (op 2)
    const own = [1, 2, 3].map((op) => entry(op, 0, [register(`old${op}`)]));
    let r1 = fresh(config3, 1);
    r1 = feed(r1, own.map((e) => receive(prepareMessage(0, 0, e, 0)))).state;
    expect(r1.op).to.equal(3);
    const theirs = [entry(1, 0, [register('c9')]), entry(2, 3, [create('c9', 1, '/x')])];
    const dvc: DoViewChange = {
      type: 'do_view_change',
      epoch: 0,
      view: 4, // primary of view 4 is replica 1
      replica: 2,
      lastNormalView: 3,
      op: 2,
      commit: 1,
      logStart: 0,
      entries: theirs,
      checkpoint: null,
    };
    const result = step(r1, receive(dvc));
    const s = result.state;
    expect(s).to.include({ status: 'normal', view: 4, lastNormalView: 4, op: 2, commit: 1 });
    expect(s.log.entries.toArray()).to.deep.equal(theirs);
    const startViews = sends(result.effects, 'start_view');
    expect(startViews.map((sv) => sv.to).sort()).to.deep.equal([0, 2]);
    expect(startViews[0]?.message).to.deep.include({ view: 4, op: 2, commit: 1 });
    expect(s.machine.clients.has('c9')).to.equal(true);
    expect(s.machine.clients.has('old1')).to.equal(false);
    // it applies and replies for the newly committed entry
    expect(replies(result.effects).map((r) => [r.clientId, r.op, r.view, r.body.type])).to.deep.equal([['c9', 1, 4, 'registered']]);
  });

  it('among others\' do_view_change, the largest lastNormalView wins over a larger op; ties go to the larger op (n = 5)', () => {
    const config = makeReplicaConfig({ replicaCount: 5 });
    const prefix = [entry(1, 0, [register('p')]), entry(2, 0, [create('p', 1, '/p')])];
    const logA = [...prefix, entry(3, 4, [create('p', 2, '/a3')]), entry(4, 4, [create('p', 3, '/a4')]), entry(5, 4, [create('p', 4, '/a5')])];
    const logB = [...prefix, entry(3, 5, [create('p', 2, '/b3')]), entry(4, 5, [create('p', 3, '/b4')])];
    const dvc = (replica: number, lastNormalView: number, entries: LogEntry[]): DoViewChange => ({
      type: 'do_view_change',
      epoch: 0,
      view: 6, // primary of view 6 is replica 1
      replica,
      lastNormalView,
      op: entries.length,
      commit: 2,
      logStart: 0,
      entries,
      checkpoint: null,
    });
    // lastNormalView 5 (op 4) beats lastNormalView 4 (op 5)
    {
      const first = step(fresh(config, 1), receive(dvc(0, 4, logA)));
      expect(first.state.status, 'f = 2: one do_view_change is not enough').to.equal('view_change');
      const second = step(first.state, receive(dvc(2, 5, logB)));
      expect(second.state).to.include({ status: 'normal', view: 6, lastNormalView: 6, op: 4, commit: 2 });
      expect(second.state.log.entries.toArray()).to.deep.equal(logB);
      expect(sends(second.effects, 'start_view')).to.have.length(4);
    }
    // equal lastNormalView: the larger op wins, whichever arrives first
    for (const order of [
      [dvc(0, 5, logA), dvc(2, 5, logB)],
      [dvc(2, 5, logB), dvc(0, 5, logA)],
    ]) {
      const { state } = feed(fresh(config, 1), order.map(receive));
      expect(state).to.include({ status: 'normal', op: 5 });
      expect(state.log.entries.toArray()).to.deep.equal(logA);
    }
  });

  it('the new primary commits the largest commit among the do_view_change messages', () => {
    const config = makeReplicaConfig({ replicaCount: 5 });
    const log = [entry(1, 0, [register('p')]), entry(2, 0, [create('p', 1, '/p')]), entry(3, 0, [create('p', 2, '/q')])];
    const dvc = (replica: number, commit: number, lastNormalView: number): DoViewChange => ({
      type: 'do_view_change',
      epoch: 0,
      view: 6,
      replica,
      lastNormalView,
      op: 3,
      commit,
      logStart: 0,
      entries: log,
      checkpoint: null,
    });
    const { state } = feed(fresh(config, 1), [receive(dvc(0, 1, 2)), receive(dvc(3, 2, 2))]);
    expect(state).to.include({ status: 'normal', op: 3, commit: 2 });
  });

  it('a replica that hears a prepare from the primary of a higher view joins it in normal status keeping its log and lastNormalView, and asks the primary for the whole log after its commit', () => {
    const e = [1, 2, 3].map((op) => entry(op, 0, [register(`c${op}`)]));
    const { state: behind } = feed(fresh(config3, 2), [
      receive(prepareMessage(0, 0, e[0] as LogEntry, 0)),
      receive(prepareMessage(0, 0, e[1] as LogEntry, 1)),
      receive(prepareMessage(0, 0, e[2] as LogEntry, 1)),
    ]);
    expect(behind).to.include({ view: 0, op: 3, commit: 1 });
    const fromView1 = prepareMessage(1, 1, entry(5, 1, [register('n')]), 2);
    const result = step(behind, receive(fromView1));
    const s = result.state;
    // the log is not truncated: should another view change come first, this replica takes part
    // as one that never heard of view 1
    expect(s).to.include({ status: 'normal', view: 1, lastNormalView: 0, op: 3, commit: 1 });
    expect(entryOps(s)).to.deep.equal([1, 2, 3]);
    expect(traceEvents(result.effects)).to.include('catch_up_to_view');
    expect(sends(result.effects, 'get_state')).to.deep.equal([{ to: 1, message: { type: 'get_state', epoch: 0, view: 1, replica: 2, op: 1, whole: true } }]);
    expect(sends(result.effects, 'prepare_ok')).to.deep.equal([]);
  });

  it('a replica that hears a commit from the primary of a higher view catches up the same way; new_state from that primary completes it and sets lastNormalView', () => {
    const e1 = entry(1, 0, [register('a')]);
    const e2 = entry(2, 0, [register('b')]);
    const { state: behind } = feed(fresh(config3, 2), [receive(prepareMessage(0, 0, e1, 0)), receive(prepareMessage(0, 0, e2, 1))]);
    const commit: Commit = { type: 'commit', epoch: 0, view: 4, replica: 1, commit: 6, globalMinAccept: 0 };
    const result = step(behind, receive(commit));
    expect(result.state).to.include({ status: 'normal', view: 4, lastNormalView: 0, op: 2, commit: 1 });
    expect(sends(result.effects, 'get_state')).to.deep.equal([{ to: 1, message: { type: 'get_state', epoch: 0, view: 4, replica: 2, op: 1, whole: true } }]);
    // an answer from a replica other than the view's primary is not the view's log: ignored
    const e = [2, 3].map((op) => entry(op, 4, [register(`v${op}`)]));
    const fromBackup = step(result.state, receive({ type: 'new_state', epoch: 0, view: 4, replica: 0, op: 3, commit: 3, logStart: 1, entries: e, checkpoint: null, whole: true }));
    expect(fromBackup.state).to.include({ lastNormalView: 0, op: 2 });
    // nor is a part of the primary's log: taking it would shrink ours
    const part = step(result.state, receive({ type: 'new_state', epoch: 0, view: 4, replica: 1, op: 2, commit: 2, logStart: 1, entries: [e[0] as LogEntry], checkpoint: null, whole: false }));
    expect(part.state).to.include({ lastNormalView: 0, op: 2 });
    expect(part.state.log).to.equal(result.state.log);
    const fromPrimary = step(result.state, receive({ type: 'new_state', epoch: 0, view: 4, replica: 1, op: 3, commit: 2, logStart: 1, entries: e, checkpoint: null, whole: true }));
    expect(fromPrimary.state).to.include({ lastNormalView: 4, op: 3, commit: 2, stateTransfer: null });
    expect(sends(fromPrimary.effects, 'prepare_ok').map((s) => s.message.op)).to.deep.equal([3]);
  });

  it('a replica catching up with a view acknowledges no prepare until it has the view\'s log', () => {
    const e1 = entry(1, 0, [register('a')]);
    const { state: behind } = feed(fresh(config3, 2), [receive(prepareMessage(0, 0, e1, 0))]);
    const caughtUp = step(behind, receive({ type: 'commit', epoch: 0, view: 1, replica: 1, commit: 3, globalMinAccept: 0 }));
    // it applies nothing either: its entry at op 1 may not be view 1's
    expect(caughtUp.state).to.include({ view: 1, lastNormalView: 0, op: 1, commit: 0 });
    const next = step(caughtUp.state, receive(prepareMessage(1, 1, entry(2, 1, [register('z')]), 0)));
    expect(sends(next.effects, 'prepare_ok')).to.deep.equal([]);
    expect(next.state.op).to.equal(1);
  });

  it('during a view change a replica repeats start_view_change, and do_view_change once sent, every commitIntervalTicks', () => {
    const group = new Group(config3);
    group.tick(2, group.s(2).timers.timeoutTicks);
    group.drop(() => true);
    const interval = config3.commitIntervalTicks;
    expect(allSends(group.tick(2, interval - 1))).to.deep.equal([]);
    const repeat = group.tick(2);
    expect(sends(repeat, 'start_view_change').map((s) => [s.to, s.message.view])).to.deep.equal([
      [0, 1],
      [1, 1],
    ]);
    expect(sends(repeat, 'do_view_change')).to.deep.equal([]);
    // a vote from replica 0 makes it send its do_view_change; it repeats that too
    group.drop(() => true);
    const voted = group.input(2, receive({ type: 'start_view_change', epoch: 0, view: 1, replica: 0 }));
    expect(sends(voted, 'do_view_change').map((s) => s.to)).to.deep.equal([1]);
    const again = group.tick(2, interval);
    expect(sends(again, 'start_view_change')).to.have.length(2);
    expect(sends(again, 'do_view_change').map((s) => [s.to, s.message.view])).to.deep.equal([[1, 1]]);
  });

  it('a view change that does not complete within the timeout moves on to the next view', () => {
    const group = new Group(config3);
    group.tick(2, group.s(2).timers.timeoutTicks);
    expect(group.s(2).view).to.equal(1);
    const timeout = group.s(2).timers.timeoutTicks;
    group.tick(2, timeout - 1);
    expect(group.s(2)).to.include({ status: 'view_change', view: 1 });
    const effects = group.tick(2);
    expect(group.s(2)).to.include({ status: 'view_change', view: 2 });
    expect(sends(effects, 'start_view_change').map((s) => s.message.view)).to.deep.equal([2, 2]);
  });

  it('a replica still changing views that hears a prepare from the primary of that view catches up: joins it, fetches the log from that primary, acknowledges nothing yet', () => {
    const group = new Group(config3);
    group.tick(2, group.s(2).timers.timeoutTicks);
    expect(group.s(2)).to.include({ status: 'view_change', view: 1 });
    const result = step(group.s(2), receive(prepareMessage(1, 1, entry(1, 1, [register('x')]), 0)));
    expect(result.state).to.include({ status: 'normal', view: 1, lastNormalView: 0, op: 0 });
    expect(sends(result.effects, 'get_state').map((s) => s.to)).to.deep.equal([1]);
    expect(sends(result.effects, 'prepare_ok')).to.deep.equal([]);
  });

  it('messages from an older view are dropped', () => {
    const group = new Group(config3);
    group.tick(2, group.s(2).timers.timeoutTicks);
    group.deliverAll();
    expect(group.s(1)).to.include({ status: 'normal', view: 1 });
    const stale = step(group.s(2), receive(prepareMessage(0, 0, entry(1, 0, [register('x')]), 0)));
    expect(traceEvents(stale.effects)).to.include('drop_stale_view');
    expect(stale.state.op).to.equal(group.s(2).op);
  });
});

// ---- recovery ------------------------------------------------------------------------------

/**
 * Replicas 0 and 1 commit five ops while replica 2 is cut off; with a checkpoint every 2 ops and
 * logRetainOps 1 the primary's log is truncated through op 4 (checkpoint 4). Op 6 is prepared
 * and held by replica 1 but not yet committed.
 */
function groupWithTruncatedPrimary(): Group {
  const config = makeReplicaConfig({ checkpointIntervalOps: 2, logRetainOps: 1 });
  const group = new Group(config);
  group.cut.add(2);
  group.commitAtPrimary(register('alice'));
  group.commitAtPrimary(create('alice', 1, '/q', 'queue'));
  group.commitAtPrimary(push('alice', 2, '/q', 1));
  group.commitAtPrimary(push('alice', 3, '/q', 2));
  group.commitAtPrimary(register('bob'), push('alice', 4, '/q', 3));
  group.request(0, push('alice', 5, '/q', 4));
  group.deliverAll(both(to(1), ofType('prepare')));
  group.drop(ofType('prepare_ok'));
  const primary = group.s(0);
  expect(primary).to.include({ op: 6, commit: 5 });
  expect(primary.checkpoint.machine.appliedOp).to.equal(4);
  expect(primary.log.start, 'the primary\'s log is truncated through the checkpoint').to.equal(4);
  expect(group.s(1)).to.include({ op: 6, commit: 5 });
  return group;
}

describe('vr step: recovery (VRR §4.3)', () => {
  it('a recovering replica broadcasts recovery {nonce, committed 0} and takes part in nothing else', () => {
    const config = config3;
    const start = step(initialReplicaState(config, 2, 9), { type: 'start', mode: 'recovering', nonce: 77 });
    expect(start.state.status).to.equal('recovering');
    expect(sends(start.effects, 'recovery')).to.deep.equal([
      { to: 0, message: { type: 'recovery', epoch: 0, replica: 2, nonce: 77, committed: 0 } },
      { to: 1, message: { type: 'recovery', epoch: 0, replica: 2, nonce: 77, committed: 0 } },
    ]);
    const e1 = entry(1, 0, [register('a')]);
    const sv: StartView = { type: 'start_view', epoch: 0, view: 1, replica: 1, op: 1, commit: 0, logStart: 0, entries: [e1], checkpoint: null };
    const inputs: ReplicaInput[] = [
      receive(prepareMessage(0, 0, e1, 0)),
      receive({ type: 'commit', epoch: 0, view: 0, replica: 0, commit: 0, globalMinAccept: 0 }),
      receive({ type: 'start_view_change', epoch: 0, view: 1, replica: 1 }),
      receive({ type: 'start_view_change', epoch: 0, view: 1, replica: 0 }),
      receive({ type: 'do_view_change', epoch: 0, view: 2, replica: 0, lastNormalView: 0, op: 1, commit: 0, logStart: 0, entries: [e1], checkpoint: null }),
      receive(sv),
      receive({ type: 'get_state', epoch: 0, view: 0, replica: 1, op: 0, whole: false }),
      receive({ type: 'new_state', epoch: 0, view: 0, replica: 0, op: 1, commit: 1, logStart: 0, entries: [e1], checkpoint: null, whole: true }),
      receive({ type: 'recovery', epoch: 0, replica: 1, nonce: 3, committed: 0 }),
      receive({ type: 'prepare_ok', epoch: 0, view: 0, replica: 1, op: 1 }),
      receive(register('client')),
      ...Array.from({ length: 200 }, () => tick),
    ];
    const { state, effects } = feed(start.state, inputs);
    expect(traceEvents(effects)).to.not.include('drop_malformed');
    const sentTypes = new Set(allSends(effects).map((s) => s.message.type));
    expect([...sentTypes], 'a recovering replica only repeats its recovery').to.deep.equal(['recovery']);
    expect(answers(effects)).to.deep.equal([]);
    expect(state).to.include({ status: 'recovering', op: 0, commit: 0, view: 0 });
  });

  it('recovers after f+1 recovery_response including the primary\'s: installs checkpoint + entries, applies only what follows the checkpoint, then sends prepare_ok', () => {
    const group = groupWithTruncatedPrimary();
    const config = group.config;
    // replica 2 restarts with nothing and recovers
    group.cut.delete(2);
    group.states[2] = initialReplicaState(config, 2, 4242);
    const start = group.input(2, { type: 'start', mode: 'recovering', nonce: 77 });
    expect(sends(start, 'recovery').map((s) => s.to)).to.deep.equal([0, 1]);

    // the backup's response (no state) alone is not enough
    const fromBackup = group.deliver(both(to(1), ofType('recovery')));
    const backupResponse = sends(fromBackup, 'recovery_response');
    expect(backupResponse).to.have.length(1);
    expect(backupResponse[0]?.message).to.deep.include({ view: 0, replica: 1, nonce: 77, state: null });
    group.deliver(both(to(2), ofType('recovery_response')));
    expect(group.s(2).status).to.equal('recovering');

    // the primary's response carries its checkpoint (its log no longer reaches back to op 0)
    const fromPrimary = group.deliver(both(to(0), ofType('recovery')));
    const primaryResponse = sends(fromPrimary, 'recovery_response')[0]?.message;
    const state = primaryResponse?.state;
    if (state === null || state === undefined) throw new Error('the primary must send its state');
    expect(state.checkpoint?.op).to.equal(4);
    expect(state.logStart).to.equal(4);
    expect(state.entries.map((e) => e.op)).to.deep.equal([5, 6]);
    expect(state).to.deep.include({ op: 6, commit: 5 });

    const recovered = group.deliver(both(to(2), ofType('recovery_response')));
    const s = group.s(2);
    expect(s).to.include({ status: 'normal', view: 0, lastNormalView: 0, op: 6, commit: 5 });
    expect(s.log.start).to.equal(4);
    expect(traceEvents(recovered)).to.include('recovered');
    // the tree and the client table equal the primary's: ops 1..4 came with the checkpoint and
    // were not applied again (the queue would hold duplicates), op 5 was applied once
    expectSameMachine(s.machine, group.s(0).machine, 'recovered replica');
    expect(s.machine.clients.get('alice')?.requestNum).to.equal(4);
    expect(s.machine.clients.has('bob')).to.equal(true);
    expect(entryAt(s.log, 6)).to.deep.equal(entryAt(group.s(0).log, 6));
    // then it tells the primary what it holds
    expect(sends(recovered, 'prepare_ok')).to.deep.equal([{ to: 0, message: { type: 'prepare_ok', epoch: 0, view: 0, replica: 2, op: 6 } }]);
    group.deliverAll();
    expect(group.s(0).commit).to.equal(6);
  });

  it('the primary\'s response alone (fewer than f+1) does not recover; a response with another nonce does not count', () => {
    const group = groupWithTruncatedPrimary();
    group.cut.delete(2);
    group.states[2] = initialReplicaState(group.config, 2, 4242);
    group.input(2, { type: 'start', mode: 'recovering', nonce: 77 });
    group.deliver(both(to(0), ofType('recovery')));
    group.deliver(both(to(2), ofType('recovery_response')));
    expect(group.s(2).status, 'one response of f+1 = 2').to.equal('recovering');
    const wrongNonce = group.input(2, receive({ type: 'recovery_response', epoch: 0, view: 0, replica: 1, nonce: 76, state: null }));
    expect(traceEvents(wrongNonce)).to.include('drop_recovery_response');
    expect(group.s(2).status).to.equal('recovering');
    group.deliver(both(to(1), ofType('recovery')));
    group.deliver(both(to(2), ofType('recovery_response')));
    expect(group.s(2)).to.include({ status: 'normal', op: 6, commit: 5 });
    expectSameMachine(group.s(2).machine, group.s(0).machine, 'recovered replica');
  });

  it('f+1 responses without the primary\'s state do not recover', () => {
    const config = makeReplicaConfig({ replicaCount: 5 });
    const start = step(initialReplicaState(config, 4, 1), { type: 'start', mode: 'recovering', nonce: 5 });
    const { state } = feed(
      start.state,
      [1, 2, 3].map((replica) => receive({ type: 'recovery_response', epoch: 0, view: 0, replica, nonce: 5, state: null })),
    );
    expect(state.status).to.equal('recovering');
  });

  it('a replica recovering into a later view sets lastNormalView to that view', () => {
    const group = new Group(config3);
    group.tick(2, group.s(2).timers.timeoutTicks);
    group.deliverAll();
    expect(group.s(1)).to.include({ status: 'normal', view: 1 });
    group.request(1, register('alice'));
    group.deliverAll();
    expect(group.s(1).commit).to.equal(1);
    group.states[0] = initialReplicaState(config3, 0, 99);
    group.input(0, { type: 'start', mode: 'recovering', nonce: 3 });
    group.deliverAll();
    expect(group.s(0)).to.include({ status: 'normal', view: 1, lastNormalView: 1, op: 1, commit: 1 });
    expectSameMachine(group.s(0).machine, group.s(1).machine, 'recovered replica');
  });

  it('recovery without a truncated log installs the primary\'s log from op 0', () => {
    const group = new Group(config3);
    group.cut.add(2);
    group.commitAtPrimary(register('alice'));
    group.commitAtPrimary(register('bob'));
    group.commitAtPrimary(create('alice', 1, '/q', 'queue'), push('bob', 1, '/q', 9));
    group.cut.delete(2);
    group.states[2] = initialReplicaState(config3, 2, 1);
    group.input(2, { type: 'start', mode: 'recovering', nonce: 1 });
    group.deliverAll();
    expect(group.s(0)).to.include({ op: 3, commit: 3 }); // the create and the push were one batch
    expect(group.s(2)).to.include({ status: 'normal', op: 3, commit: 3 });
    expectSameMachine(group.s(2).machine, group.s(0).machine, 'recovered replica');
  });
});

// ---- state transfer ------------------------------------------------------------------------

describe('vr step: state transfer (VRR §5.2) and checkpoints (§5.1)', () => {
  it('a lagging backup behind the primary\'s truncated log receives new_state with a checkpoint and ends with the primary\'s machine', () => {
    const group = groupWithTruncatedPrimary();
    group.cut.delete(2);
    // the next prepare reveals the gap to replica 2 (bob's: alice's request 5 is still in progress)
    group.request(0, push('bob', 1, '/q', 5));
    expect(group.s(0).op).to.equal(7);
    const gap = group.deliver(both(to(2), ofType('prepare')));
    const getState = sends(gap, 'get_state');
    expect(getState).to.deep.equal([{ to: 0, message: { type: 'get_state', epoch: 0, view: 0, replica: 2, op: 0, whole: false } }]);
    expect(sends(gap, 'prepare_ok')).to.deep.equal([]);

    const answered = group.deliver(both(to(0), ofType('get_state')));
    const newState = sends(answered, 'new_state')[0]?.message;
    if (newState === undefined) throw new Error('no new_state');
    expect(newState.checkpoint, 'the requester is behind the truncated log: a checkpoint').to.not.equal(null);
    expect(newState.checkpoint?.op).to.equal(4);
    expect(newState.logStart).to.equal(4);
    expect(newState.entries.map((e) => e.op)).to.deep.equal([5, 6, 7]);
    expect(newState).to.deep.include({ op: 7, commit: 5 });

    const installed = group.deliver(both(to(2), ofType('new_state')));
    expect(group.s(2)).to.include({ status: 'normal', op: 7, commit: 5 });
    expect(group.s(2).stateTransfer).to.equal(null);
    expect(sends(installed, 'prepare_ok')).to.deep.equal([{ to: 0, message: { type: 'prepare_ok', epoch: 0, view: 0, replica: 2, op: 7 } }]);

    // everything delivered and one heartbeat later, the three machines are identical
    group.deliverAll();
    group.tick(0, group.config.commitIntervalTicks);
    group.deliverAll();
    expect(group.s(0).commit).to.equal(7);
    for (const i of [1, 2]) {
      expect(group.s(i).commit, `replica ${i}`).to.equal(7);
      expectSameMachine(group.s(i).machine, group.s(0).machine, `replica ${i}`);
    }
  });

  it('get_state from a replica in the same view within the retained log is answered with the suffix only', () => {
    const group = new Group(config3);
    group.cut.add(2);
    group.commitAtPrimary(register('a'));
    group.commitAtPrimary(register('b'));
    const result = step(group.s(0), receive({ type: 'get_state', epoch: 0, view: 0, replica: 2, op: 1, whole: false }));
    const reply = sends(result.effects, 'new_state')[0]?.message;
    expect(reply).to.deep.include({ op: 2, commit: 2, logStart: 1, checkpoint: null });
    expect(reply?.entries.map((e) => e.op)).to.deep.equal([2]);
  });

  it('a late, shorter new_state never cuts off entries already held (and acknowledged) in the same view', () => {
    const e = [1, 2, 3].map((op) => entry(op, 0, [register(`c${op}`)]));
    // op 3 arrives before op 2 is known: a gap, get_state goes out
    const { state: gapped } = feed(fresh(config3, 2), [receive(prepareMessage(0, 0, e[0] as LogEntry, 0)), receive(prepareMessage(0, 0, e[2] as LogEntry, 0))]);
    expect(gapped.stateTransfer).to.not.equal(null);
    const filled = step(gapped, receive(prepareMessage(0, 0, e[1] as LogEntry, 0)));
    const held = step(filled.state, receive(prepareMessage(0, 0, e[2] as LogEntry, 0)));
    expect(held.state.op).to.equal(3);
    // the answer to the old get_state ends at op 2: nothing is removed
    const late = step(held.state, receive({ type: 'new_state', epoch: 0, view: 0, replica: 0, op: 2, commit: 1, logStart: 1, entries: [e[1] as LogEntry], checkpoint: null, whole: true }));
    expect(late.state).to.include({ op: 3, stateTransfer: null });
    expect(entryOps(late.state)).to.deep.equal([1, 2, 3]);
  });

  it('get_state for another view is dropped; one from a replica not behind gets an empty suffix at our op (ending its wait)', () => {
    const group = new Group(config3);
    group.commitAtPrimary(register('a'));
    const otherView = step(group.s(0), receive({ type: 'get_state', epoch: 0, view: 1, replica: 2, op: 0, whole: false }));
    expect(sends(otherView.effects, 'new_state')).to.deep.equal([]);
    const notBehind = step(group.s(0), receive({ type: 'get_state', epoch: 0, view: 0, replica: 2, op: 1, whole: false }));
    expect(sends(notBehind.effects, 'new_state').map((s) => s.message)).to.deep.equal([
      { type: 'new_state', epoch: 0, view: 0, replica: 0, op: 1, commit: 1, logStart: 1, entries: [], checkpoint: null, whole: true },
    ]);
  });

  it('an unanswered get_state goes to the next replica after stateTransferRetryTicks', () => {
    const config = makeReplicaConfig({ stateTransferRetryTicks: 4 });
    const gapped = step(fresh(config, 1), receive(prepareMessage(0, 0, entry(3, 0, [register('x')]), 0))).state;
    expect(gapped.stateTransfer?.target).to.equal(0);
    const { state, effects } = feed(gapped, [tick, tick, tick, tick]);
    expect(sends(effects, 'get_state').map((g) => g.to)).to.deep.equal([2]);
    expect(state.stateTransfer?.target).to.equal(2);
  });

  it('while every replica keeps up, the log is truncated up to min(checkpoint op, globalMinAccept)', () => {
    const config = makeReplicaConfig({ checkpointIntervalOps: 2 });
    const group = new Group(config);
    for (const client of ['a', 'b', 'c', 'd', 'e']) group.commitAtPrimary(register(client));
    const primary = group.s(0);
    expect(primary).to.include({ op: 5, commit: 5 });
    expect(primary.checkpoint.machine.appliedOp).to.equal(4);
    expect(primary.globalMinAccept).to.equal(5);
    expect(primary.log.start).to.equal(4);
    expect(entryOps(primary)).to.deep.equal([5]);
  });

  it('a replica lagging by less than logRetainOps keeps the log: it catches up from entries, without a checkpoint', () => {
    const config = makeReplicaConfig({ checkpointIntervalOps: 2, logRetainOps: 100 });
    const group = new Group(config);
    group.cut.add(2);
    for (const client of ['a', 'b', 'c', 'd', 'e']) group.commitAtPrimary(register(client));
    expect(group.s(0).checkpoint.machine.appliedOp).to.equal(4);
    expect(group.s(0).log.start, 'globalMinAccept is 0: nothing truncated').to.equal(0);
    group.cut.delete(2);
    group.request(0, register('f'));
    group.deliver(both(to(2), ofType('prepare')));
    const answered = group.deliver(both(to(0), ofType('get_state')));
    const newState = sends(answered, 'new_state')[0]?.message;
    expect(newState).to.deep.include({ logStart: 0, checkpoint: null, op: 6 });
    group.deliverAll();
    expect(group.s(2).op).to.equal(6);
  });

  it('a replica lagging further than logRetainOps keeps at most logRetainOps committed entries for it (README deviation 13)', () => {
    // checkpoint every 2 ops, keep 3 for laggards; replica 2 is down from the start
    const config = makeReplicaConfig({ checkpointIntervalOps: 2, logRetainOps: 3 });
    const group = new Group(config);
    group.cut.add(2);
    for (const client of ['a', 'b', 'c', 'd']) group.commitAtPrimary(register(client));
    let primary = group.s(0);
    expect(primary).to.include({ op: 4, commit: 4, globalMinAccept: 0 });
    expect(primary.checkpoint.machine.appliedOp).to.equal(4);
    // truncated up to min(checkpoint 4, max(globalMinAccept 0, commit 4 - 3)) = 1
    expect(primary.log.start).to.equal(1);
    for (const client of ['e', 'f', 'g', 'h']) group.commitAtPrimary(register(client));
    primary = group.s(0);
    // commit 8, checkpoint 8: min(8, max(0, 8 - 3)) = 5; the log never holds more than logRetainOps + checkpointIntervalOps entries
    expect(primary.log.start).to.equal(5);
    expect(primary.op - primary.log.start).to.be.at.most(config.logRetainOps + config.checkpointIntervalOps);
  });

  it('sessions idle for more than sessionIdleOps expire at a checkpoint; their requests are then answered session_expired', () => {
    const config = makeReplicaConfig({ checkpointIntervalOps: 2, sessionIdleOps: 1 });
    const group = new Group(config);
    group.commitAtPrimary(register('alice')); // op 1
    group.commitAtPrimary(register('bob')); // op 2: checkpoint, alice idle 1: kept
    expect(group.s(0).machine.clients.has('alice')).to.equal(true);
    group.commitAtPrimary(create('bob', 1, '/b1')); // op 3
    group.commitAtPrimary(create('bob', 2, '/b2')); // op 4: checkpoint, alice idle 3: expired
    expect(group.s(0).machine.clients.has('alice')).to.equal(false);
    expect(group.s(0).machine.clients.has('bob')).to.equal(true);
    const op = group.s(0).op;
    const effects = group.request(0, create('alice', 1, '/a'));
    expect(replies(effects).map((r) => r.body)).to.deep.equal([{ type: 'session_expired' }]);
    expect(group.s(0).op, 'nothing logged').to.equal(op);
    // registering again opens a new session
    group.commitAtPrimary(register('alice'));
    const again = group.answers.at(-1)?.message;
    expect(again?.type === 'reply' ? again.body : null).to.deep.equal({ type: 'registered', isNew: true, lastRequestNum: 0 });
    // the backups expired the same session (replicated, deterministic)
    group.tick(0, config.commitIntervalTicks);
    group.deliverAll();
    expectSameMachine(group.s(1).machine, group.s(0).machine, 'backup 1');
  });

  it('re-registering a live session continues it: isNew false with its last request number', () => {
    const group = new Group(config3);
    group.commitAtPrimary(register('alice'));
    group.commitAtPrimary(create('alice', 1, '/a'));
    group.commitAtPrimary(create('alice', 2, '/b'));
    group.commitAtPrimary(register('alice'));
    const last = group.answers.at(-1)?.message;
    expect(last?.type === 'reply' ? last.body : null).to.deep.equal({ type: 'registered', isNew: false, lastRequestNum: 2 });
  });

  it('a new_state nobody asked for is dropped', () => {
    const backup = fresh(config3, 1);
    const e1 = entry(1, 0, [register('a')]);
    const result = step(backup, receive({ type: 'new_state', epoch: 0, view: 0, replica: 0, op: 1, commit: 1, logStart: 0, entries: [e1], checkpoint: null, whole: true }));
    expect(traceEvents(result.effects)).to.include('drop_new_state');
    expect(result.state.op).to.equal(0);
  });
});

describe('vr step: durable mode (PROTOCOL.md "Durability")', () => {
  const durable = makeReplicaConfig({ replicaCount: 3, durable: true, checkpointIntervalOps: 2 });

  it('a durable backup acknowledges an entry only once the shell reports it stored', () => {
    const result = step(fresh(durable, 1), receive(prepareMessage(0, 0, entry(1, 0, [register('a')]), 0)));
    const kinds = result.effects.filter((e) => e.type !== 'trace').map((e) => (e.type === 'persist' ? `persist:${e.record.kind}` : e.type === 'send' ? `send:${e.message.type}` : e.type));
    expect(kinds).to.deep.equal(['persist:entries']);
    const persist = result.effects.find((e) => e.type === 'persist');
    if (persist?.type !== 'persist') throw new Error('no persist effect');
    expect(persist).to.include({ generation: 1, op: 1 }); // generation 1: the fresh replica's promise
    const stored = step(result.state, { type: 'persisted', generation: persist.generation, op: persist.op });
    expect(sends(stored.effects, 'prepare_ok').map((x) => x.message.op)).to.deep.equal([1]);
  });

  it('a persisted answer about a suffix since replaced (older generation) is ignored', () => {
    const e = [1, 2].map((op) => entry(op, 0, [register(`c${op}`)]));
    const { state: backup } = feed(fresh(durable, 2), e.map((x, i) => receive(prepareMessage(0, 0, x, i))));
    // view 1 replaces op 2 before the write of op 2 is reported: the generation moves on
    const startView: StartView = { type: 'start_view', epoch: 0, view: 1, replica: 1, op: 2, commit: 1, logStart: 1, entries: [entry(2, 1, [register('z')])], checkpoint: null };
    const replaced = step(backup, receive(startView));
    // fresh promise 1, the replaced suffix 2, the new view's promise 3 (README rule 18)
    expect(replaced.state.durable.generation).to.equal(3);
    const stale = step(replaced.state, { type: 'persisted', generation: 1, op: 2 });
    expect(traceEvents(stale.effects)).to.include('drop_persisted_stale');
    expect(sends(stale.effects, 'prepare_ok')).to.deep.equal([]);
    const current = step(replaced.state, { type: 'persisted', generation: 3, op: 2 });
    expect(sends(current.effects, 'prepare_ok').map((x) => x.message.op)).to.deep.equal([2]);
  });

  it('a durable primary counts its own entry towards a commit only once it is stored', () => {
    let primary = fresh(durable, 0);
    let result = step(primary, receive(register('a')));
    primary = result.state;
    const persist = result.effects.find((e) => e.type === 'persist');
    if (persist?.type !== 'persist') throw new Error('no persist effect');
    expect(primary.primary.acks[0]).to.equal(0);
    // a backup's acknowledgement alone is one replica: no commit yet (f + 1 = 2)
    result = step(primary, receive({ type: 'prepare_ok', epoch: 0, view: 0, replica: 1, op: 1 }));
    expect(result.state.commit).to.equal(0);
    result = step(result.state, { type: 'persisted', generation: persist.generation, op: persist.op });
    expect(result.state.commit).to.equal(1);
    expect(result.effects.some((e) => e.type === 'reply')).to.equal(true);
  });

  it('a diskless replica emits no persist effects', () => {
    const result = step(fresh(config3, 1), receive(prepareMessage(0, 0, entry(1, 0, [register('a')]), 0)));
    expect(result.effects.some((e) => e.type === 'persist')).to.equal(false);
  });

  it('a replaced suffix is persisted as truncate_after then entries; a checkpoint as a checkpoint record', () => {
    const e = [1, 2, 3].map((op) => entry(op, 0, [register(`c${op}`)]));
    const { state: backup } = feed(fresh(durable, 2), e.map((x, i) => receive(prepareMessage(0, 0, x, i === 0 ? 0 : 1))));
    expect(backup).to.include({ op: 3, commit: 1 });
    // view 1's log keeps op 2 but replaces op 3
    const replacement = entry(3, 1, [register('z')]);
    const startView: StartView = { type: 'start_view', epoch: 0, view: 1, replica: 1, op: 3, commit: 2, logStart: 1, entries: [e[1] as LogEntry, replacement], checkpoint: null };
    const result = step(backup, receive(startView));
    const records = result.effects.flatMap((x) => (x.type === 'persist' ? [x.record] : []));
    expect(records.map((r) => r.kind)).to.deep.equal(['checkpoint', 'truncate_after', 'entries', 'promise']);
    expect(records[1]).to.deep.equal({ kind: 'truncate_after', op: 2 });
    expect(records[2]).to.deep.equal({ kind: 'entries', entries: [replacement] });
    expect(records[3]).to.deep.equal({ kind: 'promise', view: 1, lastNormalView: 1 });
    // README rule 18: the prepare_ok for view 1 waits for the promise to be stored
    expect(result.effects.some((x) => x.type === 'send')).to.equal(false);
    const stored = step(result.state, { type: 'persisted', generation: result.state.durable.generation, op: result.state.op });
    expect(sends(stored.effects, 'prepare_ok').map((x) => x.message)).to.deep.equal([{ type: 'prepare_ok', epoch: 0, view: 1, replica: 2, op: 3 }]);
  });

  it('a restarted durable replica reloads its checkpoint and entries, then asks only for what follows its checkpoint', () => {
    const e = [1, 2, 3].map((op) => entry(op, 0, [register(`c${op}`)]));
    const { state: before } = feed(fresh(durable, 2), e.map((x, i) => receive(prepareMessage(0, 0, x, i))));
    expect(before.checkpoint.machine.appliedOp).to.equal(2);
    const restarted = step(initialReplicaState(durable, 2, 9), { type: 'start', mode: 'recovering', nonce: 77, stored: { checkpoint: before.checkpoint.machine, entries: [e[2] as LogEntry] } });
    expect(restarted.state).to.include({ status: 'recovering', commit: 2, op: 3 });
    expect(restarted.state.machine.clients.has('c2')).to.equal(true);
    const recovery = sends(restarted.effects, 'recovery').map((s) => s.message);
    expect(recovery[0]).to.include({ nonce: 77, committed: 2 });
    expect(restarted.effects.some((x) => x.type === 'persist')).to.equal(false);
  });
});

describe('vr step: a checkpoint beyond our commit replaces our uncommitted entries', () => {
  it('a replica whose log reaches past the suffix start but not its commit installs the checkpoint instead of keeping its own entries', () => {
    // replica 2 holds ops 1..4 of view 0, only op 1 committed; ops 2..4 were discarded by view 1
    const e = [1, 2, 3, 4].map((op) => entry(op, 0, [register(`old${op}`)]));
    const { state: backup } = feed(fresh(config3, 2), e.map((x, i) => receive(prepareMessage(0, 0, x, i === 0 ? 0 : 1))));
    expect(backup).to.include({ op: 4, commit: 1 });
    // view 1's primary no longer has its log before op 3: it sends its checkpoint at op 3
    const group = new Group(makeReplicaConfig({ replicaCount: 3, checkpointIntervalOps: 3 }));
    for (const client of ['a', 'b', 'c']) group.commitAtPrimary(register(client));
    const image = encodeCheckpoint(group.s(0).checkpoint.machine);
    expect(image.op).to.equal(3);
    const fresh4 = entry(4, 1, [register('new4')]);
    const startView: StartView = { type: 'start_view', epoch: 0, view: 1, replica: 1, op: 4, commit: 3, logStart: 3, entries: [fresh4], checkpoint: image };
    const result = step(backup, receive(startView));
    expect(result.state).to.include({ view: 1, status: 'normal', op: 4, commit: 3 });
    expect(entryOps(result.state)).to.deep.equal([4]);
    expect(result.state.log.entries.first()).to.equal(fresh4);
    expect(result.state.machine.clients.has('old2')).to.equal(false);
    expect(result.state.machine.clients.has('c')).to.equal(true);
  });
});

// ---- protocol numbers ------------------------------------------------------------------------

describe('vr step: protocol numbers are bounded (README rule 17; issue 12)', () => {
  const svc = (view: number, replica: number): ReplicaMessage => ({ type: 'start_view_change', epoch: 0, view, replica });

  /** Crashes the primary of view 0 (replica 0, cut off) and lets the survivors change view. */
  function crashPrimaryAndChangeView(group: Group): void {
    group.cut.add(0);
    group.drop((envelope) => envelope.to === 0 || envelope.from === 0);
    for (let round = 0; round < 400 && !(group.s(1).status === 'normal' && group.s(1).view >= 1); round++) {
      group.tick(1);
      group.tick(2);
      group.deliverAll();
    }
  }

  for (const view of [2 ** 53 - 1, protocolNumberMax + 1]) {
    it(`a forged start_view_change at view ${view} is dropped; the next primary crash elects a new primary normally`, () => {
      const group = new Group(config3);
      group.commitAtPrimary(register('a'));
      for (const target of [1, 2]) {
        const before = group.s(target);
        const forged = step(before, receive(svc(view, target === 1 ? 2 : 1)));
        expect(forged.state, `replica ${target}`).to.equal(before);
        expect(traceEvents(forged.effects)).to.deep.equal(['drop_malformed']);
      }
      // Before the gate bounded views, the survivors died here on 'view change must move forward'.
      expect(() => crashPrimaryAndChangeView(group)).to.not.throw();
      expect(group.s(1)).to.include({ status: 'normal', view: 1, lastNormalView: 1, commit: 1 });
      expect(group.s(2)).to.include({ status: 'normal', view: 1 });
      const effects = group.request(1, register('b'));
      expect(sends(effects, 'prepare')).to.have.length(2);
      group.deliverAll();
      expect(group.s(1).commit).to.equal(2);
    });
  }

  it('a group driven to view protocolNumberMax (a validly shaped forged message) stays there when its primary crashes: traced, never an assertion', () => {
    const group = new Group(config3);
    group.commitAtPrimary(register('a'));
    // At the bound the message is well formed, so the gate lets it through (only authenticating
    // the cluster link keeps it out); the group moves to that view. primaryOf(2^48) is replica 1.
    group.input(2, receive(svc(protocolNumberMax, 0)));
    group.deliverAll();
    expect(group.s(1)).to.include({ status: 'normal', view: protocolNumberMax, commit: 1 });
    const traces: string[] = [];
    expect(() => {
      group.cut.add(1);
      group.drop((envelope) => envelope.to === 1 || envelope.from === 1);
      for (let round = 0; round < 300; round++) {
        for (const i of [0, 2]) traces.push(...traceEvents(group.tick(i)));
        group.deliverAll();
      }
    }).to.not.throw();
    expect(traces).to.include('view_numbers_exhausted');
    expect(traces).to.not.include('view_change_started');
    for (const i of [0, 2]) expect(group.s(i).view, `replica ${i}`).to.equal(protocolNumberMax);
    expect(group.s(0).commit, 'the old primary keeps what it committed').to.equal(1);
  });

  it('a primary at op protocolNumberMax logs nothing more: a new request is answered busy, traced', () => {
    const primary = fresh(config3, 0);
    const machine = new Machine(primary.machine.tree, primary.machine.clients, protocolNumberMax);
    const atBound: ReplicaState = {
      ...primary,
      op: protocolNumberMax,
      commit: protocolNumberMax,
      log: emptyLog(protocolNumberMax),
      machine,
      checkpoint: { machine, image: null },
      primary: { ...primary.primary, acks: [protocolNumberMax, 0, 0] },
    };
    const result = step(atBound, receive(register('late')));
    expect(result.state.op).to.equal(protocolNumberMax);
    expect(traceEvents(result.effects)).to.include('op_numbers_exhausted');
    expect(sends(result.effects, 'prepare')).to.deep.equal([]);
    expect(answers(result.effects).map((a) => a.message.type)).to.deep.equal(['busy']);
    expect(result.state.primary.pending.size).to.equal(0);
  });
});
