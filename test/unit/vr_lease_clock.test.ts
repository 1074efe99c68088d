/**
 * The primary's lease clock (src/vr/README.md rule 21) at the level of `step`: a lease_clock
 * entry only while leases exist, one in flight, `through` the commit number when its interval
 * began, counted time kept across a primary change (never reset), and the gate refusing the
 * system request from a client or with forged numbers from a peer.
 */

import { expect } from 'chai';
import { leaseClockTicksMax, makeReplicaConfig, type ReplicaConfig } from '../../src/vr/config.ts';
import type { ReplicaEffect, ReplicaInput } from '../../src/vr/io.ts';
import type { LogEntry, PeerMessage, Request } from '../../src/vr/messages.ts';
import { initialReplicaState, type ReplicaState } from '../../src/vr/state.ts';
import { stepAll } from '../../src/vr/step.ts';
import { lookup } from '../../src/tree/lookup.ts';
import type { TreeOp } from '../../src/tree/ops.ts';

type Envelope = { readonly from: number; readonly to: number; readonly message: PeerMessage };

/** Three replicas in one thread; messages go only when delivered, and never to or from a replica in `cut`. */
class Trio {
  readonly states: ReplicaState[];
  inFlight: Envelope[] = [];
  readonly cut = new Set<number>();
  readonly traces: string[] = [];
  requestNums = new Map<string, number>();

  constructor(config: ReplicaConfig) {
    this.states = [0, 1, 2].map((i) => initialReplicaState(config, i, 500 + i));
    for (let i = 0; i < 3; i++) this.input(i, { type: 'start', mode: 'fresh', nonce: 0 });
  }

  s(i: number): ReplicaState {
    return this.states[i] as ReplicaState;
  }

  input(i: number, ...inputs: ReplicaInput[]): readonly ReplicaEffect[] {
    const result = stepAll(this.s(i), inputs);
    this.states[i] = result.state;
    for (const effect of result.effects) {
      if (effect.type === 'send' && !this.cut.has(i) && !this.cut.has(effect.to)) this.inFlight.push({ from: i, to: effect.to, message: effect.message });
      if (effect.type === 'trace') this.traces.push(effect.trace.event);
    }
    return result.effects;
  }

  deliverAll(): void {
    for (let guard = 0; this.inFlight.length > 0; guard++) {
      if (guard > 100_000) throw new Error('did not quiesce');
      const envelope = this.inFlight.shift() as Envelope;
      if (!this.cut.has(envelope.to)) this.input(envelope.to, { type: 'receive', message: envelope.message });
    }
  }

  /** Every replica ticks once, then everything is delivered. */
  round(times = 1): void {
    for (let k = 0; k < times; k++) {
      for (let i = 0; i < 3; i++) if (!this.cut.has(i)) this.input(i, { type: 'tick' });
      this.deliverAll();
    }
  }

  send(primary: number, clientId: string, op: TreeOp | 'register'): void {
    const requestNum = op === 'register' ? 0 : (this.requestNums.get(clientId) ?? 0) + 1;
    if (op !== 'register') this.requestNums.set(clientId, requestNum);
    const request: Request = op === 'register' ? { type: 'request', clientId, requestNum, op: { type: 'register' } } : { type: 'request', clientId, requestNum, op: { type: 'tree', op } };
    this.input(primary, { type: 'receive', message: request });
    this.deliverAll();
  }

  clockEntries(i: number): LogEntry[] {
    return this.s(i)
      .log.entries.toArray()
      .filter((entry) => entry.requests.some((request) => request.op.type === 'lease_clock'));
  }
}

const config = makeReplicaConfig({ replicaCount: 3, leaseClockTicks: 5, viewChangeTimeoutTicks: 40, viewChangeJitterTicks: 5, checkpointIntervalOps: 100_000, logRetainOps: 100_000 });

function clockOf(entry: LogEntry): { elapsedTicks: number; through: number } {
  const op = entry.requests[0]?.op;
  if (op?.type !== 'lease_clock') throw new Error('not a lease_clock entry');
  return { elapsedTicks: op.elapsedTicks, through: op.through };
}

/** A lease granted and counted for 12 ticks, then replica 0 cut off until replica 1 is primary of view 1 (one tick per round). */
function trioAfterTakeover(): Trio {
  const trio = new Trio(config);
  trio.send(0, 'c.1', 'register');
  trio.send(0, 'c.1', { type: 'lease_grant', ttlMs: 10_000 });
  trio.round(12);
  trio.cut.add(0);
  let rounds = 0;
  while (!(trio.s(1).status === 'normal' && trio.s(1).view === 1)) {
    trio.round();
    if (++rounds > 200) throw new Error('no view change');
  }
  return trio;
}

describe('vr: the lease clock (README rule 21)', () => {
  it('no lease, no lease_clock entry; with one, an entry every leaseClockTicks, each covering the commit of its interval\'s start', () => {
    const trio = new Trio(config);
    trio.send(0, 'c.1', 'register');
    trio.round(50);
    expect(trio.clockEntries(0)).to.deep.equal([]);
    trio.send(0, 'c.1', { type: 'lease_grant', ttlMs: 10_000 });
    const grantOp = trio.s(0).commit;
    trio.round(16);
    const entries = trio.clockEntries(0);
    expect(entries.length).to.equal(3);
    // The first interval began before the grant committed: it does not cover the grant.
    expect(clockOf(entries[0] as LogEntry).through).to.be.below(grantOp);
    for (const entry of entries) expect(clockOf(entry).elapsedTicks).to.equal(5);
    // Each later entry covers what had committed when the previous one was proposed.
    expect(clockOf(entries[1] as LogEntry).through).to.be.at.least(grantOp);
    // No client, no reply, no session: the entry leaves the client table alone.
    expect(trio.s(1).machine.clients.get('')).to.equal(undefined);
    expect(trio.s(1).machine.leases.clock).to.equal(15);
  });

  it('one entry in flight: a primary that cannot commit keeps counting and proposes nothing more, then logs all it measured', () => {
    const trio = new Trio(config);
    trio.send(0, 'c.1', 'register');
    trio.send(0, 'c.1', { type: 'lease_grant', ttlMs: 10_000 });
    // The replica started between two ticks: its first tick is not counted (LeaseClock.partial).
    trio.round(6);
    expect(trio.clockEntries(0).length).to.equal(1);
    // Backups hear nothing (but do not time out: their idle timers are not ticked).
    trio.cut.add(1);
    trio.cut.add(2);
    for (let k = 0; k < 30; k++) trio.input(0, { type: 'tick' });
    expect(trio.clockEntries(0).length).to.equal(2);
    expect(trio.s(0).commit).to.be.below(trio.s(0).op);
    trio.cut.clear();
    // The prepare re-send brings the backups up to date and the stuck entry commits.
    for (let k = 0; k < 10; k++) {
      trio.input(0, { type: 'tick' });
      trio.deliverAll();
    }
    const entries = trio.clockEntries(0);
    expect(trio.s(0).commit).to.equal(trio.s(0).op);
    expect(entries.length).to.be.at.least(3);
    // The entry after the stall carries every tick measured while the previous one was in flight.
    expect(clockOf(entries[2] as LogEntry).elapsedTicks).to.be.at.least(30);
  });

  it('a lease expires with its nodes after its TTL counted, never sooner, and the count survives a primary change', () => {
    const trio = new Trio(config);
    trio.send(0, 'c.1', 'register');
    trio.send(0, 'c.1', { type: 'lease_grant', ttlMs: 300 }); // 30 ticks
    trio.send(0, 'c.1', { type: 'create', path: '/e', nodeType: 'blob', lease: 1 });
    trio.round(20);
    const countedBefore = trio.s(1).machine.leases.clock;
    expect(countedBefore).to.be.at.least(10);
    expect(lookup(trio.s(1).machine.tree, '/e').ok).to.equal(true);
    // The primary dies; replica 1 takes over (view 1) with the count the log holds, not a fresh TTL.
    trio.cut.add(0);
    let rounds = 0;
    while (!(trio.s(1).status === 'normal' && trio.s(1).view === 1)) {
      trio.round();
      if (++rounds > 200) throw new Error('no view change');
    }
    const lease = trio.s(1).machine.leases.leases.get(1);
    expect(lease, 'the lease survives the view change').to.not.equal(undefined);
    const counted = trio.s(1).machine.leases.clock - (lease?.countFrom ?? 0);
    expect(counted).to.be.at.least(10);
    // It expires within the rest of its TTL plus one interval of the new primary, not 30 ticks later.
    let after = 0;
    while (lookup(trio.s(1).machine.tree, '/e').ok) {
      trio.round();
      if (++after > 60) throw new Error('the lease did not expire');
    }
    expect(after).to.be.at.most(30 - counted + 2 * config.leaseClockTicks + 2);
    expect(trio.s(1).machine.leases.size).to.equal(0);
    expect(lookup(trio.s(2).machine.tree, '/e').ok).to.equal(false);
  });

  it('a new primary does not count the tick that arrives in the step of its takeover (seed 3000097)', () => {
    const trio = trioAfterTakeover();
    const takeover = trio.s(1).primary.leaseClock;
    // Ticks counted after the takeover (with leases present) stay one behind the ticks seen.
    const before = trio.clockEntries(1).length;
    trio.round(config.leaseClockTicks);
    expect(trio.clockEntries(1).length, `${JSON.stringify(takeover)}`).to.equal(before);
    trio.round(1);
    expect(trio.clockEntries(1).length).to.equal(before + 1);
  });

  it('a timer message of several ticks: the interval begins only at its last tick, so none of its ticks counts in an interval begun while it was handled', () => {
    const trio = new Trio(config);
    trio.send(0, 'c.1', 'register');
    trio.send(0, 'c.1', { type: 'lease_grant', ttlMs: 10_000 });
    /** One timer message of `count` ticks to every replica, as the glue hands it (actors/replica.ts). */
    const message = (count: number): void => {
      for (let i = 0; i < 3; i++) {
        const ticks: ReplicaInput[] = [];
        for (let k = 0; k < count; k++) ticks.push(count - 1 - k === 0 ? { type: 'tick' } : { type: 'tick', following: count - 1 - k });
        trio.input(i, ...ticks);
      }
      trio.deliverAll();
    };
    // The first message after the start is skipped whole (partial), so is its every tick.
    message(3);
    expect(trio.s(0).primary.leaseClock.ticks).to.equal(0);
    // Due at the 5th counted tick, mid-message: proposed only at the message's end, with all of
    // its ticks (an entry may cover up to ticksPerWakeup - 1 ticks more than leaseClockTicks).
    message(3);
    message(3);
    const entries = trio.clockEntries(0);
    expect(entries.length).to.equal(1);
    expect(clockOf(entries[0] as LogEntry).elapsedTicks).to.equal(6);
    // The next interval begins at that message boundary: the next message counts whole.
    message(4);
    expect(trio.s(0).primary.leaseClock.ticks).to.equal(4);
    message(4);
    expect(trio.clockEntries(0).map((entry) => clockOf(entry).elapsedTicks)).to.deep.equal([6, 8]);
    // The lease clock counted exactly the ticks of the messages after the first.
    expect(trio.s(1).machine.leases.clock).to.equal(14);
  });

  it('a takeover mid-message: the rest of that message is not counted, the next message is', () => {
    // Replica 1 took over inside a tick input or while handling a message: both leave the clock partial.
    const trio = trioAfterTakeover();
    expect(trio.s(1).primary.leaseClock.partial).to.equal(true);
    // Mid-message ticks of a partial interval are skipped, and it stays partial to the last one.
    trio.input(1, { type: 'tick', following: 2 }, { type: 'tick', following: 1 });
    expect(trio.s(1).primary.leaseClock).to.include({ ticks: 0, partial: true });
    trio.input(1, { type: 'tick' });
    expect(trio.s(1).primary.leaseClock).to.include({ ticks: 0, partial: false });
    trio.input(1, { type: 'tick', following: 1 }, { type: 'tick' });
    expect(trio.s(1).primary.leaseClock.ticks).to.equal(2);
  });

  it('with no lease the interval restarts only at a message\'s last tick', () => {
    const trio = new Trio(config);
    trio.send(0, 'c.1', 'register');
    trio.round(2);
    const commit = trio.s(0).commit;
    trio.send(0, 'c.1', { type: 'create', path: '/x', nodeType: 'blob' });
    expect(trio.s(0).commit).to.be.above(commit);
    trio.input(0, { type: 'tick', following: 1 });
    expect(trio.s(0).primary.leaseClock.through, 'not restarted mid-message').to.equal(commit);
    trio.input(0, { type: 'tick' });
    expect(trio.s(0).primary.leaseClock).to.include({ through: trio.s(0).commit, ticks: 0, partial: false });
  });

  it('the gate: a client may not send a lease_clock; a peer\'s forged one is dropped', () => {
    const trio = new Trio(config);
    trio.input(0, { type: 'receive', message: { type: 'request', clientId: '', requestNum: 0, op: { type: 'lease_clock', elapsedTicks: 1_000, through: 0 } } });
    expect(trio.traces).to.include('drop_malformed');
    expect(trio.s(0).op).to.equal(0);
    const forged = (elapsedTicks: number, through: number, clientId = ''): PeerMessage => ({
      type: 'prepare',
      epoch: 0,
      view: 0,
      replica: 0,
      op: 1,
      commit: 0,
      globalMinAccept: 0,
      entry: { op: 1, view: 0, requests: [{ type: 'request', clientId, requestNum: 0, op: { type: 'lease_clock', elapsedTicks, through } }] },
    });
    for (const message of [forged(leaseClockTicksMax + 1, 0), forged(0, 0), forged(5, 1), forged(5, 0, 'mallory.1')]) {
      trio.traces.length = 0;
      trio.input(1, { type: 'receive', message });
      expect(trio.traces, JSON.stringify(message).slice(0, 200)).to.include('drop_malformed');
      expect(trio.s(1).op).to.equal(0);
    }
    trio.input(1, { type: 'receive', message: forged(5, 0) });
    expect(trio.s(1).op).to.equal(1);
  });
});
