/**
 * Leases, locks and elections in the simulator (./leases.ts): the checkers on hand-made
 * committed logs (each must catch what it is for), the linearizability model leaving the lease
 * components out, and fixed VOPR seeds with leases under primary crashes, partitions and view
 * changes (and one-replica seeds, where an expiry is judged to the tick). The checkers catching
 * broken lease clocks in the core are tested in ./mutants.test.ts.
 */

import { expect } from 'chai';
import type { TreeOp } from '../../src/tree/ops.ts';
import { makeReplicaConfig } from '../../src/vr/config.ts';
import type { LogEntry, Request, RequestOp } from '../../src/vr/messages.ts';
import { Cluster } from './cluster.ts';
import { encodeToken, LeaseLedger, leaseComponents, leaseSimOptions } from './leases.ts';
import { makeTreeModel } from './tree_model.ts';
import { formatFailure, runSeed, type SeedReport } from './vopr.ts';

const config = makeReplicaConfig({ replicaCount: 3, checkpointIntervalOps: 1024 });

function request(clientId: string, requestNum: number, op: RequestOp): Request {
  return { type: 'request', clientId, requestNum, op };
}

function tree(clientId: string, requestNum: number, op: TreeOp): Request {
  return request(clientId, requestNum, { type: 'tree', op });
}

function clock(elapsedTicks: number, through: number): Request {
  return request('', 0, { type: 'lease_clock', elapsedTicks, through });
}

/**
 * A ledger fed `entries` (ops 1, 2, ...), each first committed at the tick given with it; a
 * lease_clock entry's request made (its ticks measured) at `proposed`, when given.
 */
function ledgerOf(entries: readonly { readonly tick: number; readonly requests: readonly Request[]; readonly proposed?: number }[]): { ledger: LeaseLedger; reports: string[] } {
  const reports: string[] = [];
  const ledger = new LeaseLedger(config, (message) => reports.push(message));
  entries.forEach((entry, i) => {
    const logEntry: LogEntry = { op: i + 1, view: 0, requests: entry.requests };
    if (entry.proposed !== undefined) ledger.proposed(0, i + 1, entry.proposed);
    ledger.commitReached(i + 1, entry.tick);
    ledger.committed(logEntry);
  });
  return { ledger, reports };
}

/** Owner l0 grants a 30-tick lease (id 1) at op 2, hangs a node on it at op 3; the clock then runs. */
function expiryLog(expiredAtTick: number): { ledger: LeaseLedger; reports: string[] } {
  return ledgerOf([
    { tick: 5, requests: [request('l0.1', 0, { type: 'register' })] },
    { tick: 10, requests: [tree('l0.1', 1, { type: 'lease_grant', ttlMs: 295 })] },
    { tick: 11, requests: [tree('l0.1', 2, { type: 'create', path: '/leases/1/e0', nodeType: 'blob', lease: 1 })] },
    // Its interval began before the grant committed: the grant does not count these ticks.
    { tick: 12, requests: [clock(3, 1)] },
    // Through op 2: the grant counts from here; 30 ticks reach its TTL.
    { tick: expiredAtTick, requests: [clock(30, 2)] },
  ]);
}

describe('sim: leases (the checkers on hand-made logs)', () => {
  it('an expiry committed ttlTicks after the renewal committed passes; one tick sooner is early', () => {
    const onTime = expiryLog(40);
    expect(onTime.reports).to.deep.equal([]);
    expect(onTime.ledger.stats.expiries).to.equal(1);
    expect(onTime.ledger.stats.expirySlackMin).to.equal(0);
    expect(onTime.ledger.ends.get(1)).to.deep.equal({ op: 5, how: 'expired' });
    expect(onTime.ledger.leases.size).to.equal(0);

    const early = expiryLog(39);
    expect(early.reports).to.have.length(1);
    expect(early.reports[0]).to.match(/lease 1 .* expired early: .* op 5 .* tick 39, 29 ticks after its last renewal \(op 2\) was first committed at tick 10/);
  });

  /** A grant committed at tick 10 (op 2), then clock entries measured at `proposed` with `elapsed` ticks through op `through`. */
  function clockLog(clocks: readonly { readonly proposed: number; readonly elapsed: number; readonly through: number }[]): string[] {
    return ledgerOf([
      { tick: 5, requests: [request('l0.1', 0, { type: 'register' })] },
      { tick: 10, requests: [tree('l0.1', 1, { type: 'lease_grant', ttlMs: 3000 })] },
      ...clocks.map((entry) => ({ tick: entry.proposed + 2, proposed: entry.proposed, requests: [clock(entry.elapsed, entry.through)] })),
    ]).reports;
  }

  it('the clock: each entry counts at most the ticks since the previous one was proposed', () => {
    expect(clockLog([{ proposed: 8, elapsed: 3, through: 1 }, { proposed: 28, elapsed: 20, through: 1 }, { proposed: 40, elapsed: 12, through: 2 }])).to.deep.equal([]);
    const fast = clockLog([{ proposed: 8, elapsed: 3, through: 1 }, { proposed: 28, elapsed: 21, through: 1 }]);
    expect(fast).to.have.length(1);
    expect(fast[0]).to.match(/op 4 .*proposed at tick 28, 21 ticks.* previous committed one was proposed at tick 8: the lease clock runs fast/);
  });

  it('the clock: an entry\'s through op was committed by the tick its interval began', () => {
    // Op 2 committed at tick 10: an interval that began at tick 10 may cover it, one that began at 9 may not.
    expect(clockLog([{ proposed: 30, elapsed: 20, through: 2 }])).to.deep.equal([]);
    const covering = clockLog([{ proposed: 30, elapsed: 21, through: 2 }]);
    expect(covering).to.have.length(1);
    expect(covering[0]).to.match(/op 2 was first committed at tick 10, after its interval began at tick 9/);
  });

  it('a lease left alive past max(renewal, healed) + ttl + leaseClockTicks + bound is overdue', () => {
    const { ledger } = ledgerOf([
      { tick: 5, requests: [request('l0.1', 0, { type: 'register' })] },
      { tick: 10, requests: [tree('l0.1', 1, { type: 'lease_grant', ttlMs: 300 })] },
    ]);
    // Deadline: max(10, 100) + 30 + leaseClockTicks 20 + bound 50 = 200.
    expect(ledger.overdue(200, 100, 50)).to.equal(null);
    expect(ledger.overdue(201, 100, 50)).to.match(/lease 1 \(owner l0, ttl 30 ticks\) is still alive at tick 201 .* deadline 200/);
  });

  it('keep-alive answers must agree with the log', () => {
    const { ledger } = expiryLog(40);
    const reports: string[] = [];
    const checked = new LeaseLedger(config, (message) => reports.push(message));
    // The same log, and claims against it: alive before the expiry, not alive after, either at its op.
    for (const [op, end] of ledger.ends) checked.ends.set(op, end);
    checked.checkKeepAlive('l0.2', 4, [1], [true]);
    checked.checkKeepAlive('l0.2', 5, [1], [true]);
    checked.checkKeepAlive('l0.2', 6, [1], [false]);
    expect(reports).to.deep.equal([]);
    checked.checkKeepAlive('l0.2', 6, [1], [true]);
    checked.checkKeepAlive('l0.2', 4, [1], [false]);
    expect(reports).to.have.length(2);
    expect(reports[0]).to.match(/answered lease 1 alive, but the log expired it at op 5/);
  });

  /** Two owners, a lock register and a node each in /lock/L (a: lock-0000000000, b: lock-0000000001). */
  function lockLog(last: readonly Request[]): { ledger: LeaseLedger; reports: string[] } {
    return ledgerOf([
      { tick: 1, requests: [request('a.1', 0, { type: 'register' }), request('b.1', 0, { type: 'register' })] },
      { tick: 2, requests: [tree('a.1', 1, { type: 'lease_grant', ttlMs: 1000 }), tree('b.1', 1, { type: 'lease_grant', ttlMs: 1000 })] },
      { tick: 3, requests: [tree('a.1', 2, { type: 'create', path: '/lockreg/R', nodeType: 'blob' })] },
      { tick: 4, requests: [tree('a.1', 3, { type: 'create', path: '/lock/L/lock-', nodeType: 'blob', lease: 1, sequential: true })] },
      { tick: 5, requests: [tree('b.1', 2, { type: 'create', path: '/lock/L/lock-', nodeType: 'blob', lease: 2, sequential: true })] },
      { tick: 6, requests: last },
    ]);
  }

  const fencedWrite = (clientId: string, requestNum: number, node: string, token: { op: number; seq: number } | Uint8Array): Request =>
    tree(clientId, requestNum, {
      type: 'multi_cas',
      guards: [{ path: `/lock/L/${node}`, version: 0 }],
      ops: [{ type: 'blob_put', path: '/lockreg/R', value: token instanceof Uint8Array ? token : encodeToken(token) }],
    });

  it('fencing: the lowest node\'s holder with its own token passes, then the next holder after a release', () => {
    const { ledger, reports } = ledgerOf([
      { tick: 1, requests: [request('a.1', 0, { type: 'register' }), request('b.1', 0, { type: 'register' })] },
      { tick: 2, requests: [tree('a.1', 1, { type: 'lease_grant', ttlMs: 1000 }), tree('b.1', 1, { type: 'lease_grant', ttlMs: 1000 })] },
      { tick: 3, requests: [tree('a.1', 2, { type: 'create', path: '/lockreg/R', nodeType: 'blob' })] },
      // Both creates in one entry: one op, so the sequence number tells the tokens apart.
      {
        tick: 4,
        requests: [
          tree('a.1', 3, { type: 'create', path: '/lock/L/lock-', nodeType: 'blob', lease: 1, sequential: true }),
          tree('b.1', 2, { type: 'create', path: '/lock/L/lock-', nodeType: 'blob', lease: 2, sequential: true }),
        ],
      },
      { tick: 5, requests: [fencedWrite('a.1', 4, 'lock-0000000000', { op: 4, seq: 0 })] },
      { tick: 6, requests: [tree('a.1', 5, { type: 'delete', path: '/lock/L/lock-0000000000' })] },
      // a's late write: its node is gone, the guard fails, nothing to judge.
      { tick: 7, requests: [fencedWrite('a.1', 6, 'lock-0000000000', { op: 4, seq: 0 }), fencedWrite('b.1', 3, 'lock-0000000001', { op: 4, seq: 1 })] },
    ]);
    expect(reports).to.deep.equal([]);
    expect(ledger.stats.lockWrites).to.equal(2);
    expect(ledger.stats.lockHolders).to.equal(2);
  });

  it('fencing: a write by a holder whose node is not the lowest breaks mutual exclusion', () => {
    const { reports } = lockLog([fencedWrite('b.1', 3, 'lock-0000000001', { op: 5, seq: 1 })]);
    expect(reports).to.have.length(1);
    expect(reports[0]).to.match(/b\.1's fenced write of \/lockreg\/R at op 6 .*mutual exclusion broken: .*lock-0000000000, lock-0000000001/);
  });

  it('fencing: a token that is not the node\'s create op and sequence is refused', () => {
    const { reports } = lockLog([fencedWrite('a.1', 4, 'lock-0000000000', { op: 5, seq: 0 })]);
    expect(reports).to.have.length(1);
    expect(reports[0]).to.match(/token 5\.0 is not its node's \(create op and sequence 4\.0\)/);
    const garbled = lockLog([fencedWrite('a.1', 4, 'lock-0000000000', new Uint8Array([1, 2]))]);
    expect(garbled.reports).to.have.length(1);
  });

  it('the replay judges only requests that ran: a retried write answered from the client table is not a new write', () => {
    const { ledger, reports } = ledgerOf([
      { tick: 1, requests: [request('a.1', 0, { type: 'register' })] },
      { tick: 2, requests: [tree('a.1', 1, { type: 'lease_grant', ttlMs: 1000 })] },
      { tick: 3, requests: [tree('a.1', 2, { type: 'create', path: '/lockreg/R', nodeType: 'blob' })] },
      { tick: 4, requests: [tree('a.1', 3, { type: 'create', path: '/lock/L/lock-', nodeType: 'blob', lease: 1, sequential: true })] },
      { tick: 5, requests: [fencedWrite('a.1', 4, 'lock-0000000000', { op: 4, seq: 0 })] },
      { tick: 6, requests: [tree('a.1', 5, { type: 'delete', path: '/lock/L/lock-0000000000' })] },
      // The same request number again (an old primary's copy): not run, not judged.
      { tick: 7, requests: [fencedWrite('a.1', 4, 'lock-0000000000', { op: 4, seq: 0 })] },
    ]);
    expect(reports).to.deep.equal([]);
    expect(ledger.stats.lockWrites).to.equal(1);
  });
});

describe('sim: leases (the linearizability model leaves their components out)', () => {
  it('ops in lease components are dropped; an op touching both kinds is a caller error', () => {
    const lockCreate: TreeOp = { type: 'create', path: '/lock/L/lock-', nodeType: 'blob', lease: 1, sequential: true };
    const mixed: TreeOp = { type: 'multi_cas', guards: [{ path: '/lock/L/lock-0000000000', version: 0 }], ops: [{ type: 'blob_put', path: '/k0', value: new Uint8Array() }] };
    const plain: TreeOp = { type: 'create', path: '/k0', nodeType: 'blob' };
    const model = makeTreeModel({ history: [lockCreate, plain], excludedComponents: leaseComponents });
    expect(model.partition?.(lockCreate)).to.deep.equal([]);
    expect(model.partition?.({ type: 'lease_keepalive', ids: [1] })).to.deep.equal([]);
    expect(model.partition?.(plain)).to.deep.equal(['k0']);
    expect(() => model.partition?.(mixed)).to.throw(/excluded and checked components/);
    // Without the option the lease component is a partition like any other.
    expect(makeTreeModel({ history: [lockCreate] }).partition?.(lockCreate)).to.deep.equal(['lock']);
  });
});

describe('sim: leases in VOPR seeds', function () {
  this.timeout(60_000);

  /** Runs a seed, counting crashes of the replica that was normal primary the tick before. */
  function run(seed: number, options: Parameters<typeof runSeed>[1] = {}): { report: SeedReport; primaryCrashes: number } {
    let primary: number | null = null;
    let primaryCrashes = 0;
    const report = runSeed(seed, {
      ...options,
      inspect: (cluster: Cluster) => {
        if (primary !== null && cluster.isDown(primary)) primaryCrashes += 1;
        primary = cluster.primaryIndex();
      },
    });
    expect(report.ok, formatFailure(report)).to.equal(true);
    expect(report.leases).to.not.equal(null);
    return { report, primaryCrashes };
  }

  for (const seed of [12, 33, 36]) {
    it(`seed ${seed}: primary crashes, partitions and view changes; leases expire on time across primaries, the lock and the election hold`, () => {
      const { report, primaryCrashes } = run(seed);
      const leases = report.leases!;
      expect(primaryCrashes, 'a primary crashed').to.be.greaterThan(0);
      expect(report.partitions, 'partitions').to.be.greaterThan(0);
      expect(leases.clockViews, 'lease clocks of several primaries committed').to.be.greaterThan(1);
      expect(leases.expiriesAcrossViews, 'expiries judged across primary changes').to.be.greaterThan(0);
      expect(leases.expiries).to.be.greaterThan(0);
      expect(leases.revokes).to.be.greaterThan(0);
      expect(leases.ephemeralCreates).to.be.greaterThan(0);
      expect(leases.sequentialCreates).to.be.greaterThan(0);
      expect(leases.lockHolders, 'the lock changed hands').to.be.greaterThan(1);
      expect(leases.leaderTerms, 'leadership changed').to.be.greaterThan(1);
      expect(leases.compared, 'the replay was compared with replicas').to.be.greaterThan(0);
    });
  }

  it('one replica, a clock entry every other tick: expiries are judged to the tick (slack 0 seen)', () => {
    const slacks: number[] = [];
    for (const seed of [23, 30]) {
      const { report } = run(seed);
      expect(report.params.replicaCount).to.equal(1);
      slacks.push(report.leases!.expirySlackMin ?? -1);
    }
    expect(slacks).to.include(0);
  });

  it('--no-leases: no lease clients, and the seed draws everything else as with them', () => {
    const with_ = runSeed(28);
    const without = runSeed(28, { leases: false });
    expect(without.ok, formatFailure(without)).to.equal(true);
    expect(without.leases).to.equal(null);
    expect(without.replay).to.match(/--no-leases$/);
    expect(without.params).to.deep.equal(with_.params);
    expect(without.calls).to.be.lessThan(with_.calls);
  });

  it('a targeted run: lapsed leases still expire after the primary crashes and the view changes', () => {
    const cluster = new Cluster({ seed: 5, replicaCount: 3, workload: null, leases: leaseSimOptions({ seed: 5, startTicksMax: 5, lapseProbability: 1 }) });
    cluster.runTicks(300);
    const primary = cluster.primaryIndex();
    expect(primary).to.not.equal(null);
    expect(cluster.leases!.ledger.leases.size, 'leases exist when the primary crashes').to.be.greaterThan(0);
    cluster.crash(primary as number);
    cluster.runUntil((c) => c.primaryIndex() !== null && c.primaryIndex() !== primary, 1000);
    cluster.restart(primary as number);
    cluster.leases!.settle(cluster.now);
    const leases = cluster.leases!;
    cluster.runUntil(() => leases.allExpired(), leases.ticksToLastDeadline(cluster.now));
    leases.finalCheck();
    expect(cluster.violations).to.deep.equal([]);
    expect(leases.allExpired()).to.equal(true);
    expect(leases.stats().expiriesAcrossViews).to.be.greaterThan(0);
  });
});
