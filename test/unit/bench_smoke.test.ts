/**
 * Smoke test of the tree benchmark: tiny trees and short runs, checking that every row is
 * there and well formed. Behaviour only: no assertion depends on how fast anything runs.
 */

import { expect } from 'chai';
import { runTreeBench, scalingGoal, splitmix32, treeBenchOps, type TreeBenchResult } from '../../bench/tree.bench.ts';

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
