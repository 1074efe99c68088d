/**
 * Tests of the simulator itself: the PRNG, the network's fault model, the cluster's fault
 * injection and recording, and every checker, each made to fire on a hand-built violation
 * (a checker that cannot fail is a defect).
 */

import { expect } from 'chai';
import { emptyTree, applyOp } from '../../src/tree/tree.ts';
import type { TreeOp } from '../../src/tree/ops.ts';
import { clientTableFromOrdered, emptyClientTable, type ClientRecord } from '../../src/vr/client_table.ts';
import { makeReplicaConfig } from '../../src/vr/config.ts';
import type { ReplicaEffect } from '../../src/vr/io.ts';
import { append, emptyLog, type Log } from '../../src/vr/log.ts';
import type { LogEntry, PeerMessage, ReplyBody, Request } from '../../src/vr/messages.ts';
import { initialReplicaState, type ReplicaState } from '../../src/vr/state.ts';
import { Machine } from '../../src/vr/state_machine.ts';
import { Checkers, machineDifference, type ViolationKind } from './checkers.ts';
import { checkerHistory, Cluster, unreadable, type CallRecord } from './cluster.ts';
import { checkHistory, PENDING, type Operation } from './linearizability.ts';
import { Network, reliableNetwork, type Envelope, type NetworkFaults } from './network.ts';
import { Prng } from './prng.ts';
import { makeTreeModel, opComponents } from './tree_model.ts';
import type { OpOutcome } from '../../src/tree/ops.ts';

// ---- PRNG ------------------------------------------------------------------------------------

describe('sim: prng', () => {
  it('replays the same sequence from the same seed, and another from another seed', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const seqA = Array.from({ length: 20 }, () => a.next());
    expect(Array.from({ length: 20 }, () => b.next())).to.deep.equal(seqA);
    expect(Array.from({ length: 20 }, () => c.next())).to.not.deep.equal(seqA);
  });

  it('draws integers in range, roughly uniformly, and respects chance', () => {
    const prng = new Prng(7);
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < 60_000; i++) {
      const x = prng.int(6);
      expect(x).to.be.within(0, 5);
      counts[x] = (counts[x] ?? 0) + 1;
    }
    for (const count of counts) expect(count).to.be.within(9_400, 10_600);
    let hits = 0;
    for (let i = 0; i < 10_000; i++) if (prng.chance(0.25)) hits++;
    expect(hits).to.be.within(2_300, 2_700);
    expect(prng.chance(0)).to.equal(false);
    expect(prng.chance(1)).to.equal(true);
    for (let i = 0; i < 1000; i++) expect(prng.float()).to.be.within(0, 0.9999999999);
    expect(['a', 'b', 'c']).to.include(prng.pick(['a', 'b', 'c']));
  });

  it('forks independent generators deterministically', () => {
    const a = new Prng(9).fork();
    const b = new Prng(9).fork();
    expect(a.next()).to.equal(b.next());
    const parent = new Prng(9);
    const child = parent.fork();
    expect(child.next()).to.not.equal(parent.next());
  });
});

// ---- network ---------------------------------------------------------------------------------

function faults(overrides: Partial<NetworkFaults>): NetworkFaults {
  return { ...reliableNetwork, ...overrides };
}

/** Sends `count` messages 0 -> 1 at tick 0 and delivers everything; returns the deliveries. */
function sendAndDrain(network: Network<number>, count: number, horizon = 200): Envelope<number>[] {
  for (let i = 0; i < count; i++) network.send(0, 1, i, 0);
  const out: Envelope<number>[] = [];
  for (let t = 0; t <= horizon; t++) out.push(...network.deliverDue(t));
  return out;
}

describe('sim: network', () => {
  it('is deterministic: the same seed gives the same delivery sequence', () => {
    const params = faults({ lossProbability: 0.2, duplicateProbability: 0.1, delayMinTicks: 1, delayMaxTicks: 10 });
    const run = (): string[] => sendAndDrain(new Network<number>(new Prng(5), params), 300).map((e) => `${e.id}:${e.message}@${e.deliverAt}`);
    expect(run()).to.deep.equal(run());
    const other = sendAndDrain(new Network<number>(new Prng(6), params), 300).map((e) => `${e.id}:${e.message}@${e.deliverAt}`);
    expect(other).to.not.deep.equal(run());
  });

  it('loses messages at the configured rate', () => {
    const network = new Network<number>(new Prng(1), faults({ lossProbability: 0.3 }));
    const delivered = sendAndDrain(network, 10_000);
    expect(network.stats.droppedLoss).to.be.within(2_800, 3_200);
    expect(delivered.length).to.equal(10_000 - network.stats.droppedLoss);
  });

  it('duplicates messages at the configured rate', () => {
    const network = new Network<number>(new Prng(2), faults({ duplicateProbability: 0.1 }));
    const delivered = sendAndDrain(network, 10_000);
    expect(network.stats.duplicated).to.be.within(850, 1_150);
    expect(delivered.length).to.equal(10_000 + network.stats.duplicated);
    expect(delivered.filter((e) => e.duplicate).length).to.equal(network.stats.duplicated);
  });

  it('delays within [min, max] and so reorders messages', () => {
    for (const delayDistribution of ['uniform', 'exponential'] as const) {
      const network = new Network<number>(new Prng(3), faults({ delayMinTicks: 2, delayMaxTicks: 9, delayDistribution, delayMeanTicks: 3 }));
      const delivered = sendAndDrain(network, 2_000);
      expect(delivered.length).to.equal(2_000);
      const delays = delivered.map((e) => e.deliverAt - e.sentAt);
      expect(Math.min(...delays)).to.equal(2);
      expect(Math.max(...delays)).to.be.at.most(9);
      expect(new Set(delays).size).to.be.greaterThan(4);
      const order = delivered.map((e) => e.message);
      expect(order).to.not.deep.equal([...order].sort((a, b) => a - b)); // reordered
    }
  });

  it('delivers nothing before its time, and FIFO among messages due at the same tick', () => {
    const network = new Network<string>(new Prng(4), faults({ delayMinTicks: 3, delayMaxTicks: 3 }));
    network.send(0, 1, 'a', 0);
    network.send(0, 1, 'b', 0);
    expect(network.deliverDue(2)).to.deep.equal([]);
    expect(network.deliverDue(3).map((e) => e.message)).to.deep.equal(['a', 'b']);
  });

  it('drops messages sent over a cut link, and in flight when the link is cut; asymmetric cuts block one way', () => {
    const network = new Network<string>(new Prng(5), faults({ delayMinTicks: 2, delayMaxTicks: 2 }));
    network.send(0, 1, 'in flight', 0);
    network.cut(0, 1);
    expect(network.canDeliver(0, 1)).to.equal(false);
    expect(network.canDeliver(1, 0)).to.equal(true);
    network.send(0, 1, 'blocked', 0);
    network.send(1, 0, 'other way', 0);
    expect(network.deliverDue(5).map((e) => e.message)).to.deep.equal(['other way']);
    expect(network.stats.droppedPartition).to.equal(2);
    network.heal();
    network.send(0, 1, 'healed', 5);
    expect(network.deliverDue(10).map((e) => e.message)).to.deep.equal(['healed']);
  });

  it('partitions and isolates symmetrically, clients included', () => {
    const network = new Network<string>(new Prng(6));
    network.partition([0, 'c0'], [1, 2]);
    for (const [from, to] of [[0, 1], [1, 0], ['c0', 2], [2, 'c0']] as const) expect(network.canDeliver(from, to)).to.equal(false);
    expect(network.canDeliver(1, 2)).to.equal(true);
    expect(network.canDeliver(0, 'c0')).to.equal(true);
    network.heal();
    network.isolate(2, [0, 1, 2, 'c0']);
    expect(network.canDeliver(2, 0)).to.equal(false);
    expect(network.canDeliver('c0', 2)).to.equal(false);
    expect(network.canDeliver(0, 1)).to.equal(true);
  });

  it('holds messages on a clogged link until the clog ends', () => {
    const network = new Network<string>(new Prng(7));
    network.clog(0, 1, 10);
    network.send(0, 1, 'held', 0);
    network.send(1, 0, 'free', 0);
    expect(network.deliverDue(1).map((e) => e.message)).to.deep.equal(['free']);
    expect(network.deliverDue(9)).to.deep.equal([]);
    expect(network.deliverDue(10).map((e) => e.message)).to.deep.equal(['held']);
  });

  it('bounds its queue: over the cap a message is dropped and counted', () => {
    const network = new Network<number>(new Prng(8), faults({ queueMax: 5 }));
    for (let i = 0; i < 8; i++) network.send(0, 1, i, 0);
    expect(network.inFlight).to.equal(5);
    expect(network.stats.droppedOverflow).to.equal(3);
  });

  it('applies send filters', () => {
    const network = new Network<string>(new Prng(9));
    const id = network.addFilter((from, _to, message) => from === 0 && message === 'drop me');
    network.send(0, 1, 'drop me', 0);
    network.send(0, 1, 'keep me', 0);
    network.removeFilter(id);
    network.send(0, 1, 'drop me', 0);
    expect(network.deliverDue(1).map((e) => e.message)).to.deep.equal(['keep me', 'drop me']);
    expect(network.stats.droppedFilter).to.equal(1);
  });
});

// ---- checkers on hand-built states --------------------------------------------------------

const config = makeReplicaConfig({ replicaCount: 3 });

function entry(op: number, view: number, value = op): LogEntry {
  return {
    op,
    view,
    requests: [{ type: 'request', clientId: 'c0', requestNum: op, op: { type: 'tree', op: { type: 'blob_put', path: '/k0', value: new Uint8Array([value]) } } }],
  };
}

function logOf(...entries: LogEntry[]): Log {
  return entries.reduce((log, one) => append(log, one), emptyLog());
}

function replicaState(index: number, patch: Partial<ReplicaState> = {}): ReplicaState {
  const base = initialReplicaState(config, index, 1);
  const log = patch.log ?? base.log;
  const op = patch.op ?? log.start + log.entries.size;
  return { ...base, status: 'normal', ...patch, log, op };
}

function kinds(checkers: Checkers): ViolationKind[] {
  return checkers.violations.map((violation) => violation.kind);
}

function observe(checkers: Checkers, before: ReplicaState, after: ReplicaState, effects: readonly ReplicaEffect[] = []): void {
  checkers.afterStep({ replica: after.index, tick: 1, before, after, inputs: [], effects });
}

/** Steps a replica from its initial (stopped) state straight to `after`. */
function appear(checkers: Checkers, after: ReplicaState, effects: readonly ReplicaEffect[] = []): void {
  observe(checkers, initialReplicaState(config, after.index, 1), after, effects);
}

function reply(clientId: string, requestNum: number, op: number, body: ReplyBody): ReplicaEffect {
  return { type: 'reply', clientId, message: { type: 'reply', epoch: 0, view: 0, op, clientId, requestNum, body } };
}

function peer(to: number, message: PeerMessage): ReplicaEffect {
  return { type: 'send', to, message };
}

function machineAfter(ops: readonly TreeOp[], appliedOp: number): Machine {
  let tree = emptyTree();
  for (const op of ops) tree = applyOp(tree, op).tree;
  return new Machine(tree, emptyClientTable(), appliedOp);
}

describe('sim: checkers', () => {
  it('accept a consistent history of states', () => {
    const checkers = new Checkers(3);
    const log = logOf(entry(1, 0), entry(2, 0));
    appear(checkers, replicaState(0, { log, commit: 1 }));
    appear(checkers, replicaState(1, { log, commit: 2 }));
    observe(checkers, replicaState(1, { log, commit: 2 }), replicaState(1, { log, commit: 2 }), [reply('c0', 2, 2, { type: 'tree', outcome: { type: 'ok', version: 1 } })]);
    expect(checkers.violations).to.deep.equal([]);
  });

  it('(a) two primaries of one view: the same replica index in two incarnations', () => {
    const checkers = new Checkers(3);
    const primary = replicaState(1, { view: 1 });
    appear(checkers, primary);
    observe(checkers, primary, primary);
    expect(checkers.violations).to.deep.equal([]);
    checkers.onCrash(1);
    appear(checkers, replicaState(1, { view: 1 }));
    expect(kinds(checkers)).to.deep.equal(['two_primaries']);
    expect(checkers.violations[0]?.message).to.match(/two primaries of epoch 0 view 1/);
  });

  it('(b) committed entries that differ between replicas', () => {
    const checkers = new Checkers(3);
    appear(checkers, replicaState(0, { log: logOf(entry(1, 0, 7)), commit: 1 }));
    appear(checkers, replicaState(2, { log: logOf(entry(1, 0, 8)), commit: 1 }));
    expect(kinds(checkers)).to.deep.equal(['committed_prefix']);
    expect(checkers.violations[0]?.message).to.match(/committed entries differ at op 1/);
  });

  it('(b) a committed entry replaced later in the same replica', () => {
    const checkers = new Checkers(3);
    const before = replicaState(2, { log: logOf(entry(1, 0, 7), entry(2, 0)), commit: 2 });
    appear(checkers, before);
    observe(checkers, before, replicaState(2, { log: logOf(entry(1, 0, 9), entry(2, 0)), commit: 2 }));
    expect(kinds(checkers)).to.include('committed_prefix');
  });

  it('(c) commit going backwards, commit beyond op, op not the log end', () => {
    const checkers = new Checkers(3);
    const log = logOf(entry(1, 0), entry(2, 0));
    const before = replicaState(1, { log, commit: 2 });
    appear(checkers, before);
    observe(checkers, before, replicaState(1, { log, commit: 1 }));
    expect(kinds(checkers)).to.deep.equal(['commit_bounds']);
    expect(checkers.violations[0]?.message).to.match(/backwards from 2 to 1/);

    // Tracked per incarnation, not only against the `before` state handed in.
    const tracked = new Checkers(3);
    appear(tracked, replicaState(1, { log, commit: 2 }));
    appear(tracked, replicaState(1, { log, commit: 1 }));
    expect(kinds(tracked)).to.deep.equal(['commit_bounds']);

    const other = new Checkers(3);
    appear(other, replicaState(1, { log, op: 2, commit: 3 }));
    appear(other, replicaState(2, { log, op: 5, commit: 0 }));
    expect(kinds(other)).to.deep.equal(['commit_bounds', 'commit_bounds']);
  });

  it('(c) a crash resets the commit: recovering from 0 is not going backwards', () => {
    const checkers = new Checkers(3);
    const log = logOf(entry(1, 0), entry(2, 0));
    appear(checkers, replicaState(1, { log, commit: 2 }));
    checkers.onCrash(1);
    appear(checkers, replicaState(1, { status: 'recovering' }));
    expect(checkers.violations).to.deep.equal([]);
  });

  it('(d) a new primary missing a committed op', () => {
    const checkers = new Checkers(3);
    appear(checkers, replicaState(2, { log: logOf(entry(1, 0), entry(2, 0)), commit: 2 }));
    appear(checkers, replicaState(1, { view: 1, log: logOf(entry(1, 0)), commit: 1 }));
    expect(kinds(checkers)).to.deep.equal(['committed_lost']);
    expect(checkers.violations[0]?.message).to.match(/primary of view 1 with op 1, but op 2 was committed/);
  });

  it('(d) a new primary holding a different entry at a committed op', () => {
    const checkers = new Checkers(3);
    appear(checkers, replicaState(0, { log: logOf(entry(1, 0), entry(2, 0)), commit: 2 }));
    appear(checkers, replicaState(1, { view: 1, log: logOf(entry(1, 0), entry(2, 0, 99)), commit: 1 }));
    expect(kinds(checkers)).to.deep.equal(['committed_lost']);
  });

  it('(d) an old primary cut off from a newer view may lack what that view committed', () => {
    const checkers = new Checkers(3);
    appear(checkers, replicaState(0, { log: logOf(entry(1, 0)), commit: 1 }));
    appear(checkers, replicaState(2, { view: 1, log: logOf(entry(1, 0), entry(2, 1)), commit: 2 }));
    const stale = replicaState(0, { log: logOf(entry(1, 0)), commit: 1 });
    observe(checkers, stale, stale);
    expect(checkers.violations).to.deep.equal([]);
  });

  it('(e) two different replies to one request, and a reply beyond the commit', () => {
    const checkers = new Checkers(3);
    const state = replicaState(0, { log: logOf(entry(1, 0), entry(2, 0)), commit: 2 });
    appear(checkers, state, [reply('c0', 1, 1, { type: 'tree', outcome: { type: 'ok', version: 1 } })]);
    observe(checkers, state, state, [reply('c0', 1, 1, { type: 'tree', outcome: { type: 'ok', version: 1 } })]);
    expect(checkers.violations).to.deep.equal([]);
    observe(checkers, state, state, [reply('c0', 1, 1, { type: 'tree', outcome: { type: 'ok', version: 2 } })]);
    expect(kinds(checkers)).to.deep.equal(['reply']);
    observe(checkers, state, state, [reply('c0', 3, 3, { type: 'tree', outcome: { type: 'ok', version: 3 } })]);
    expect(kinds(checkers)).to.deep.equal(['reply', 'reply']);
    expect(checkers.violations[1]?.message).to.match(/beyond its commit 2/);
  });

  it('(e) compares reply bytes by value', () => {
    const checkers = new Checkers(3);
    const state = replicaState(0, { log: logOf(entry(1, 0)), commit: 1 });
    const blob = (bytes: number[]): ReplyBody => ({ type: 'tree', outcome: { type: 'blob', value: new Uint8Array(bytes), version: 1 } });
    appear(checkers, state, [reply('c0', 1, 1, blob([1, 2]))]);
    observe(checkers, state, state, [reply('c0', 1, 1, blob([1, 2]))]);
    expect(checkers.violations).to.deep.equal([]);
    observe(checkers, state, state, [reply('c0', 1, 1, blob([1, 3]))]);
    expect(kinds(checkers)).to.deep.equal(['reply']);
  });

  it('(e) a read\'s reply is not kept: a retried read may run again at a later op with another body, but each execution has one body', () => {
    const checkers = new Checkers(3);
    const request = (clientId: string, requestNum: number, op: TreeOp): Request => ({ type: 'request', clientId, requestNum, op: { type: 'tree', op } });
    const get: TreeOp = { type: 'blob_get', path: '/k0' };
    const log = logOf(
      entry(1, 0),
      { op: 2, view: 0, requests: [request('c1', 1, get)] },
      entry(3, 0),
      { op: 4, view: 0, requests: [request('c1', 1, get)] },
    );
    const blob = (value: number, version: number): ReplyBody => ({ type: 'tree', outcome: { type: 'blob', value: new Uint8Array([value]), version } });
    const state = replicaState(0, { log, commit: 4 });
    appear(checkers, state, [reply('c1', 1, 2, blob(1, 1))]);
    // the retry ran at op 4 and saw the later write
    observe(checkers, state, state, [reply('c1', 1, 4, blob(3, 2))]);
    expect(checkers.violations).to.deep.equal([]);
    // but one execution, two bodies: a violation
    observe(checkers, state, state, [reply('c1', 1, 4, blob(9, 2))]);
    expect(kinds(checkers)).to.deep.equal(['reply']);
    expect(checkers.violations[0]?.message).to.match(/read c1#1 executed at op 4/);
    // a write answered twice must name the same op (it ran once)
    observe(checkers, state, state, [reply('c0', 1, 1, { type: 'tree', outcome: { type: 'ok', version: 1 } })]);
    observe(checkers, state, state, [reply('c0', 1, 3, { type: 'tree', outcome: { type: 'ok', version: 1 } })]);
    expect(kinds(checkers)).to.deep.equal(['reply', 'reply']);
    expect(checkers.violations[1]?.message).to.match(/sent op 1 .* sent op 3/);
  });

  it('(e) stale_request and session_expired are not replies to compare, but stale_request must name a later request', () => {
    const checkers = new Checkers(3);
    const state = replicaState(0, { log: logOf(entry(1, 0), entry(2, 0)), commit: 2 });
    appear(checkers, state, [reply('c0', 1, 1, { type: 'tree', outcome: { type: 'ok', version: 1 } })]);
    observe(checkers, state, state, [reply('c0', 1, 0, { type: 'stale_request', lastRequestNum: 2 }), reply('c0', 1, 0, { type: 'session_expired' })]);
    expect(checkers.violations).to.deep.equal([]);
    observe(checkers, state, state, [reply('c0', 2, 0, { type: 'stale_request', lastRequestNum: 2 })]);
    expect(kinds(checkers)).to.deep.equal(['reply']);
    expect(checkers.violations[0]?.message).to.match(/not a later one/);
  });

  it('(f) replicas that applied the same ops but hold their client tables in another LRU order', () => {
    const checkers = new Checkers(3);
    const log = logOf(entry(1, 0));
    const record: ClientRecord = { requestNum: 0, reply: null, replyOp: 1, lastActiveOp: 1 };
    const table = (ids: string[]) => {
      const built = clientTableFromOrdered(ids.map((id) => [id, record] as const));
      if (!built.ok) throw new Error(built.reason);
      return built.table;
    };
    const base = machineAfter([], 1);
    const ab: Machine = { ...base, clients: table(['a', 'b']) };
    const ba: Machine = { ...base, clients: table(['b', 'a']) };
    expect(machineDifference(ab, { ...base, clients: table(['a', 'b']) })).to.equal(null);
    expect(machineDifference(ab, ba)).to.match(/client tables \(order at position 0: a vs b\)/);
    appear(checkers, replicaState(0, { log, commit: 1, machine: ab }));
    appear(checkers, replicaState(1, { log, commit: 1, machine: ba }));
    expect(kinds(checkers)).to.deep.equal(['applied_state']);
    expect(checkers.violations[0]?.message).to.match(/client tables \(order/);
  });

  it('(f) replicas that applied the same ops but hold different trees', () => {
    const checkers = new Checkers(3);
    const log = logOf(entry(1, 0));
    const same = machineAfter([{ type: 'create', path: '/k0', nodeType: 'blob' }], 1);
    const equal = machineAfter([{ type: 'create', path: '/k0', nodeType: 'blob' }], 1);
    const different = machineAfter([{ type: 'create', path: '/k0', nodeType: 'queue' }], 1);
    appear(checkers, replicaState(0, { log, commit: 1, machine: same }));
    appear(checkers, replicaState(1, { log, commit: 1, machine: equal }));
    expect(checkers.violations).to.deep.equal([]);
    appear(checkers, replicaState(2, { log, commit: 1, machine: different }));
    expect(kinds(checkers)).to.deep.equal(['applied_state']);
    expect(checkers.violations[0]?.message).to.match(/applied up to op 1 but hold different trees/);
  });

  it('(g) a recovering replica sending prepare_ok or a view-change vote', () => {
    const checkers = new Checkers(3);
    const recovering = replicaState(2, { status: 'recovering' });
    observe(checkers, recovering, recovering, [peer(0, { type: 'prepare_ok', epoch: 0, view: 0, replica: 2, op: 0 })]);
    observe(checkers, recovering, recovering, [peer(1, { type: 'start_view_change', epoch: 0, view: 1, replica: 2 })]);
    expect(kinds(checkers)).to.deep.equal(['recovering_vote', 'recovering_vote']);
  });

  it('(g) a replica that recovered in this step may acknowledge the state it recovered into', () => {
    const checkers = new Checkers(3);
    const recovering = replicaState(2, { status: 'recovering' });
    const recovered = replicaState(2, { view: 3, lastNormalView: 3 });
    observe(checkers, recovering, recovered, [peer(0, { type: 'prepare_ok', epoch: 0, view: 3, replica: 2, op: 0 })]);
    expect(checkers.violations).to.deep.equal([]);
    observe(checkers, recovering, recovered, [peer(0, { type: 'do_view_change', epoch: 0, view: 3, replica: 2, lastNormalView: 3, op: 0, commit: 0, logStart: 0, entries: [], checkpoint: null })]);
    expect(kinds(checkers)).to.deep.equal(['recovering_vote']);
  });

  it('finalCheck re-checks every retained committed entry', () => {
    const checkers = new Checkers(3);
    appear(checkers, replicaState(0, { log: logOf(entry(1, 0), entry(2, 0)), commit: 2 }));
    const bad = replicaState(1, { log: logOf(entry(1, 0, 50), entry(2, 0)), commit: 2 });
    expect(checkers.finalCheck([bad], 10).map((violation) => violation.kind)).to.deep.equal(['committed_prefix']);
  });
});

// ---- linearizability over the tree ---------------------------------------------------------

describe('sim: tree model', () => {
  const put = (value: number): TreeOp => ({ type: 'blob_put', path: '/k0', value: new Uint8Array([value]) });
  const get: TreeOp = { type: 'blob_get', path: '/k0' };
  const create: TreeOp = { type: 'create', path: '/k0', nodeType: 'blob' };
  const op = (clientId: string, input: TreeOp, call: number, ret: number, output: OpOutcome | typeof PENDING): Operation<TreeOp, OpOutcome> => ({ clientId, input, call, ret, output });

  it('accepts a sequential history and rejects a stale read', () => {
    const history = [
      op('c0', create, 1, 2, { type: 'ok', version: 0 }),
      op('c0', put(1), 3, 4, { type: 'ok', version: 1 }),
      op('c1', get, 5, 6, { type: 'blob', value: new Uint8Array([1]), version: 1 }),
    ];
    expect(checkHistory(makeTreeModel(), history).linearizable).to.equal(true);
    const stale = [...history.slice(0, 2), op('c1', get, 5, 6, { type: 'blob', value: new Uint8Array([]), version: 0 })];
    expect(checkHistory(makeTreeModel(), stale).linearizable).to.equal(false);
  });

  it('lets a pending write take effect, or not', () => {
    const history = [
      op('c0', create, 1, 2, { type: 'ok', version: 0 }),
      op('c0', put(1), 3, Infinity, PENDING),
      op('c1', get, 5, 6, { type: 'blob', value: new Uint8Array([1]), version: 1 }),
      op('c1', get, 7, 8, { type: 'blob', value: new Uint8Array([1]), version: 1 }),
    ];
    expect(checkHistory(makeTreeModel(), history).linearizable).to.equal(true);
    const flipFlop = [...history.slice(0, 3), op('c1', get, 7, 8, { type: 'blob', value: new Uint8Array([]), version: 0 })];
    expect(checkHistory(makeTreeModel(), flipFlop).linearizable).to.equal(false);
  });

  it('partitions by top-level component, merging components touched together', () => {
    expect(opComponents({ type: 'multi_cas', guards: [{ path: '/k1/x', version: 0 }], ops: [{ type: 'stat', path: '/k2' }] })).to.deep.equal(['k1', 'k2']);
    expect(opComponents({ type: 'list', path: '/', recursive: false })).to.deep.equal(['/']);
    const cross: TreeOp = { type: 'set_union', paths: ['/a', '/b'], sets: [] };
    const model = makeTreeModel({ history: [cross, { type: 'stat', path: '/b' }, { type: 'stat', path: '/c' }] });
    expect(model.partition?.({ type: 'stat', path: '/b' })).to.deep.equal(['a']);
    expect(model.partition?.({ type: 'stat', path: '/c' })).to.deep.equal(['c']);
  });

  it('drops pending reads and rejected calls from the recorded history', () => {
    const base = { callTick: 0, callSeq: 1, returnTick: null, returnSeq: null, source: 'test' as const };
    const records: CallRecord[] = [
      { ...base, clientId: 'c0', callId: 1, op: get, result: null },
      { ...base, clientId: 'c0', callId: 2, op: put(1), result: { type: 'timeout' } },
      { ...base, clientId: 'c0', callId: 3, op: put(2), result: { type: 'rejected', outcome: { type: 'ok', version: 0 } } },
      { ...base, clientId: 'c0', callId: 4, op: get, result: { type: 'done', outcome: { type: 'ok', version: 0 }, epoch: 0, view: 0, op: 1, requestNum: 1 }, returnSeq: 2 },
    ];
    const history = checkerHistory(records);
    expect(history.map((one) => one.output === PENDING ? 'pending' : 'done')).to.deep.equal(['pending', 'done']);
  });
});

describe('sim: indefinite answers', () => {
  const put = (value: number): TreeOp => ({ type: 'blob_put', path: '/k0', value: new Uint8Array([value]) });

  it('keeps a write whose answer says it may have run as pending, and drops one that certainly did not run', () => {
    const base = { callTick: 0, callSeq: 1, returnTick: 1, returnSeq: 2, source: 'test' as const, clientId: 'c0' };
    const records: CallRecord[] = [
      { ...base, callId: 1, op: put(1), result: { type: 'session_expired', executed: 'maybe' } },
      { ...base, callId: 2, op: put(2), result: { type: 'session_expired', executed: false } },
      { ...base, callId: 3, op: put(3), result: { type: 'refused', reason: 'frame_too_large', message: 'too large', executed: true } },
      { ...base, callId: 4, op: put(4), result: { type: 'refused', reason: 'invalid_request', message: 'bad', executed: false } },
      { ...base, callId: 5, op: put(5), result: { type: 'stale_request', lastRequestNum: 3 } },
      { ...base, callId: 6, op: put(6), result: { type: 'overloaded' } },
    ];
    expect(checkerHistory(records).map((one) => [one.input, one.output === PENDING ? 'pending' : 'done'])).to.deep.equal([
      [put(1), 'pending'],
      [put(3), 'pending'],
      [put(5), 'pending'],
    ]);
  });
});

// ---- the cluster -----------------------------------------------------------------------------

describe('sim: cluster', () => {
  it('runs calls through the replicas and records them', () => {
    const cluster = new Cluster({ seed: 11, workload: null });
    const create = cluster.call('c0', { type: 'create', path: '/k0', nodeType: 'queue' });
    expect(cluster.await(create)?.type).to.equal('done');
    const push = cluster.call('c1', { type: 'queue_push', path: '/k0', value: new Uint8Array([5]) });
    const result = cluster.await(push);
    expect(result).to.deep.include({ type: 'done' });
    expect(push.returnTick).to.be.greaterThan(push.callTick);
    expect(cluster.history).to.have.length(2);
    expect(cluster.primaryIndex()).to.equal(0);
    expect(cluster.violations).to.deep.equal([]);
  });

  it('batches requests delivered in the same tick into one log entry', () => {
    const cluster = new Cluster({ seed: 12, clientCount: 3, workload: null });
    // Register every session first (one at a time), then call all three in the same tick.
    for (const clientId of cluster.clientIds) cluster.await(cluster.call(clientId, { type: 'stat', path: '/k0' }));
    const op = cluster.replica(0).op;
    const calls = cluster.clientIds.map((clientId, i) => cluster.call(clientId, { type: 'create', path: `/k${i}`, nodeType: 'blob' }));
    cluster.runUntil(() => calls.every((call) => call.result !== null), 200);
    expect(cluster.replica(0).op).to.equal(op + 1);
    expect(calls.map((call) => call.result?.type === 'done' && call.result.op)).to.deep.equal([op + 1, op + 1, op + 1]);
  });

  it('runs client processes as session hosts: one process runs calls on several sessions at once', () => {
    const cluster = new Cluster({ seed: 19, clientCount: 1, sessionsPerClient: 2, workload: null });
    const first = cluster.call('c0', { type: 'create', path: '/k0', nodeType: 'blob' });
    const second = cluster.call('c0', { type: 'create', path: '/k1', nodeType: 'blob' });
    expect(cluster.clientHasRoom('c0'), 'both sessions busy').to.equal(false);
    const third = cluster.call('c0', { type: 'stat', path: '/k0' });
    cluster.runUntil(() => [first, second, third].every((call) => call.result !== null), 500);
    expect([first, second, third].map((call) => call.result?.type)).to.deep.equal(['done', 'done', 'done']);
    const pool = cluster.client('c0').namespaces.get('sim')?.pool;
    expect(pool?.sessions.map((session) => session.clientId).toArray()).to.deep.equal(['c0.1', 'c0.2']);
    // The third call waited for a session, then ran on one of the two.
    expect(cluster.replica(0).machine.clients.size).to.equal(2);
    expect(cluster.violations).to.deep.equal([]);
  });

  it('runs the replica actor glue: checkpoint images packed by the offload task come back to the replicas', () => {
    const cluster = new Cluster({ seed: 20, replicaConfig: { checkpointIntervalOps: 8 } });
    const imaged = cluster.runUntil((c) => c.replicas.some((state) => state.checkpoint.image !== null), 1500);
    expect(imaged, 'a replica holds the image of its current checkpoint').to.equal(true);
    expect(cluster.imagesEncoded).to.be.greaterThan(0);
    const state = cluster.replicas.find((one) => one.checkpoint.image !== null) as ReplicaState;
    expect(state.checkpoint.image?.op).to.equal(state.checkpoint.machine.appliedOp);
    cluster.runTicks(300);
    expect(cluster.violations).to.deep.equal([]);
  });

  it('is deterministic: the same seed gives the same run', () => {
    const run = (): string => {
      const cluster = new Cluster({ seed: 13, faults: { ...reliableNetwork, delayMaxTicks: 5, duplicateProbability: 0.05 } });
      cluster.runTicks(400);
      return JSON.stringify(cluster.history.map((record) => [record.callTick, record.returnTick, record.op.type, record.result?.type ?? null]));
    };
    expect(run()).to.equal(run());
  });

  it('elects a new primary when the primary is isolated', () => {
    const cluster = new Cluster({ seed: 14, workload: null });
    cluster.runTicks(20);
    cluster.isolate(0);
    expect(cluster.runUntil((c) => c.replica(1).status === 'normal' && c.replica(1).view >= 1, 500)).to.equal(true);
    expect(cluster.primaryIndex()).to.equal(1);
    expect(cluster.violations).to.deep.equal([]);
  });

  it('crashes a replica (state lost, nothing delivered) and restarts it in recovery', () => {
    const cluster = new Cluster({ seed: 17, workload: null });
    for (let i = 0; i < 3; i++) cluster.await(cluster.call('c0', { type: 'create', path: `/k${i}`, nodeType: 'blob' }));
    const commit = cluster.replica(0).commit;
    cluster.crash(2);
    expect(cluster.isDown(2)).to.equal(true);
    expect(cluster.replica(2).status).to.equal('stopped');
    expect(cluster.failedCount()).to.equal(1);
    cluster.runTicks(10);
    expect(cluster.replica(2).status).to.equal('stopped');
    cluster.restart(2);
    expect(cluster.replica(2).status).to.equal('recovering');
    expect(cluster.runUntil((c) => c.replica(2).status === 'normal', 500)).to.equal(true);
    expect(cluster.replica(2).commit).to.be.at.least(commit);
    expect(cluster.violations).to.deep.equal([]);
  });

  it('drops messages by send filter', () => {
    const cluster = new Cluster({ seed: 15, workload: null });
    cluster.dropMessages({ from: 0, types: ['commit', 'prepare'] });
    cluster.runTicks(200);
    // Backups hear nothing from the primary: they move to a new view.
    expect(cluster.replica(1).view).to.be.greaterThan(0);
    expect(cluster.network.stats.droppedFilter).to.be.greaterThan(0);
  });

  it('reports a step that throws as a violation instead of crashing', () => {
    const cluster = new Cluster({ seed: 16, workload: null });
    const state = cluster.replica(1);
    cluster.replaceReplicaState(1, { ...state, commit: state.op + 5 });
    cluster.runTicks(5);
    expect(cluster.violations.map((violation) => violation.kind)).to.deep.equal(['exception']);
    expect(cluster.violations[0]?.message).to.match(/replica 1 threw InvariantViolation/);
    expect(cluster.halted).to.equal(true);
  });

  it('records a linearizable history, and the check fails once one recorded answer is falsified', () => {
    const cluster = new Cluster({ seed: 18, clientCount: 4, faults: { ...reliableNetwork, delayMaxTicks: 4 } });
    cluster.runTicks(600);
    expect(cluster.violations).to.deep.equal([]);
    const history = checkerHistory(cluster.history);
    const model = makeTreeModel({ history: history.map((one) => one.input) });
    expect(checkHistory(model, history).linearizable).to.equal(true);
    const index = history.findIndex((one) => one.output !== PENDING && one.output.type === 'stat');
    expect(index).to.be.at.least(0);
    const falsified = history.map((one, i) => {
      if (i !== index || one.output === PENDING || one.output.type !== 'stat') return one;
      return { ...one, output: { ...one.output, version: one.output.version + 100 } };
    });
    expect(checkHistory(model, falsified).linearizable).to.equal(false);
  });

  it('detects an unreadable (revoked) message', () => {
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    expect(unreadable({ type: 'x', inner: [1, revoked.proxy] })).to.match(/message\.inner\[1\]/);
    expect(unreadable({ type: 'x', bytes: new Uint8Array([1]) })).to.equal(null);
  });
});
