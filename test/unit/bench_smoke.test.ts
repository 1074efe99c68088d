/**
 * Smoke test of the tree benchmark: tiny trees and short runs, checking that every row is
 * there and well formed. Behaviour only: no assertion depends on how fast anything runs.
 * And the net benchmark's TLS cost table, from rows given here (the suite itself starts node
 * processes for minutes: `npm run bench -- net --quick` runs it).
 */

import { expect } from 'chai';
import { runTreeBench, scalingGoal, splitmix32, treeBenchOps, type TreeBenchResult } from '../../bench/tree.bench.ts';
import { tlsCosts, type NetRow } from '../../bench/net.bench.ts';

describe('bench: tree suite', function () {
  let result: TreeBenchResult;

  before(function () {
    result = runTreeBench({ sizes: [100, 1000], flat: 1000, msPerRun: 20, reps: 1, write: false });
  });

  it('builds every tree with the leaves asked for', function () {
    expect(result.builds.map((build) => build.tree)).to.deep.equal(['100', '1k', 'flat 1k']);
    // Leaves, their directories and the root.
    expect(result.builds.map((build) => build.nodes)).to.deep.equal([100 + 1 + 1, 1000 + 1 + 1, 1000 + 1 + 1]);
    for (const build of result.builds) {
      expect(build.buildMs).to.be.greaterThan(0);
      expect(build.heapUsedBytes).to.be.greaterThan(0);
    }
  });

  it('measures every op on every tree', function () {
    const expected = ['100', '1k', 'flat 1k'].flatMap((tree) => treeBenchOps.map((op) => `${op} ${tree}`));
    expect(result.rows.map((row) => `${row.op} ${row.tree}`)).to.have.members(expected);
    expect(result.rows).to.have.length(expected.length);
    for (const row of result.rows) {
      expect(row.opsPerSec, `${row.op} ${row.tree}`).to.be.greaterThan(0);
      expect(Number.isFinite(row.opsPerSec)).to.equal(true);
      expect(row.nsPerOp).to.be.closeTo(1e9 / row.opsPerSec, 1e-6 * row.nsPerOp);
      expect(row.runsOpsPerSec).to.have.length(1);
      expect(row.timedOps).to.be.greaterThan(0);
    }
  });

  it('measures snapshots of every tree', function () {
    expect(result.snapshots.map((snapshot) => snapshot.tree)).to.deep.equal(['100', '1k', 'flat 1k']);
    for (const snapshot of result.snapshots) {
      expect(snapshot.keepNsPerOp).to.be.greaterThan(0);
      expect(snapshot.encodeRuns).to.be.greaterThanOrEqual(1);
      expect(snapshot.encodedBytes).to.be.greaterThan(snapshot.nodes);
    }
    // More nodes, more bytes.
    const [small, large] = result.snapshots;
    expect(large?.encodedBytes).to.be.greaterThan(small?.encodedBytes ?? Number.POSITIVE_INFINITY);
  });

  it('compares the largest tree with the smallest for every op', function () {
    expect(result.ratios.map((ratio) => ratio.op)).to.deep.equal([...treeBenchOps]);
    for (const ratio of result.ratios) {
      expect(ratio.smallTree).to.equal('100');
      expect(ratio.largeTree).to.equal('1k');
      expect(ratio.ratio).to.be.closeTo(ratio.largeNsPerOp / ratio.smallNsPerOp, 1e-9 * ratio.ratio);
      expect(ratio.goal).to.equal(scalingGoal);
      expect(ratio.pass).to.equal(ratio.ratio <= scalingGoal);
      expect(ratio.flatRatio).to.be.a('number');
    }
  });

  it('rejects options it cannot run', function () {
    expect(() => runTreeBench({ sizes: [], flat: 0, msPerRun: 20, reps: 1, write: false })).to.throw(RangeError);
    expect(() => runTreeBench({ sizes: [100], flat: 0, msPerRun: 20, reps: 0, write: false })).to.throw(RangeError);
  });

  it('draws the same targets from the same seed', function () {
    const draw = (seed: number): number[] => {
      const random = splitmix32(seed);
      return Array.from({ length: 8 }, () => random());
    };
    expect(draw(42)).to.deep.equal(draw(42));
    expect(draw(42)).to.not.deep.equal(draw(43));
    for (const value of draw(7)) expect(value).to.be.within(0, 1 - Number.EPSILON);
  });
});

describe('bench: net suite, the cost of TLS', function () {
  const row = (topology: NetRow['topology'], transport: NetRow['transport'], workload: NetRow['workload'], callers: number, opsPerSecond: number, p50Us: number): NetRow => ({
    topology,
    transport,
    name: `${topology} ${transport} ${workload} ${callers}`,
    workload,
    callers,
    opsPerSecond,
    p50Us,
    p99Us: p50Us * 3,
    errors: 0,
  });

  it('pairs each TLS put row with the plaintext put row of the same topology and callers', () => {
    const rows = [
      row('one node', 'plain', 'put', 1, 2000, 400),
      row('one node', 'plain', 'mix', 1, 3000, 300),
      row('one node', 'plain', 'put', 1024, 20000, 40000),
      row('three nodes', 'plain', 'put', 1, 800, 1000),
      row('one node', 'tls', 'put', 1, 1600, 500),
      row('one node', 'tls', 'put', 1024, 15000, 60000),
      row('three nodes', 'tls', 'put', 1, 400, 2000),
      // No plaintext row for it: no ratio rather than a wrong one.
      row('three nodes', 'tls', 'put', 1024, 9000, 90000),
    ];
    const costs = tlsCosts(rows);
    expect(costs.map((c) => `${c.topology} ${c.callers}`)).to.deep.equal(['one node 1', 'one node 1024', 'three nodes 1']);
    expect(costs[0]).to.deep.include({ plainOpsPerSecond: 2000, tlsOpsPerSecond: 1600, plainP50Us: 400, tlsP50Us: 500 });
    expect(costs[0]?.opsRatio).to.be.closeTo(0.8, 1e-12);
    expect(costs[0]?.p50Ratio).to.be.closeTo(1.25, 1e-12);
    expect(costs[1]?.opsRatio).to.be.closeTo(0.75, 1e-12);
    expect(costs[2]?.p50Ratio).to.be.closeTo(2, 1e-12);
  });
});
