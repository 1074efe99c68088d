/**
 * Smoke test of the tree benchmark: tiny trees and short runs, checking that every row is
 * there and well formed. Behaviour only: no assertion depends on how fast anything runs.
 * And the net benchmark's TLS cost table, from rows given here (the suite itself starts node
 * processes for minutes: `npm run bench -- net --quick` runs it). And the recipes benchmark in
 * a tiny configuration (a node process, a node here, one failover, a few leases; no etcd), and
 * its haret/etcd ratio from rows given here. And the runtime benchmark's "where the time goes"
 * table: its arithmetic from snapshots given here, and its figures from a short run of a node.
 */

import { expect } from 'chai';
import { runTreeBench, scalingGoal, splitmix32, treeBenchOps, type TreeBenchResult } from '../../bench/tree.bench.ts';
import { tlsCosts, type NetRow } from '../../bench/net.bench.ts';
import { etcdRatios, runRecipesBench, type LockRow, type RecipesOptions, type RecipesResult } from '../../bench/recipes.bench.ts';
import { drive, prepareBlobs } from '../../bench/runtime.bench.ts';
import { formatTable } from '../../bench/report.ts';
import { breakdown, breakdownColumns, breakdownRows, GcClock, takeSnapshot, type BreakdownSnapshot, type ThreadCounters } from '../../bench/time_breakdown.ts';
import { startNode } from '../../src/node/index.ts';

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

describe('bench: recipes suite', function () {
  // Starts a node process, a node in this process, a leader process and a second node: a few seconds.
  this.timeout(60_000);

  const options: RecipesOptions = {
    lockMs: 100,
    lockWarmMs: 30,
    lockFirstWarmMs: 0,
    // Every contender finishes a cycle however slow the machine: the rows are never empty.
    lockMinCycles: 1,
    contenders: [1, 4],
    etcd: false,
    failoverRounds: 1,
    failoverTtlMs: 600,
    failoverBudgetMs: 20_000,
    // A keep-alive is due 400 ms after each grant: within the window.
    keepAlive: { clients: 2, leasesPerClient: 20, ttlMs: 1200, windowMs: 500, settleMs: 100 },
  };
  let result: RecipesResult;

  before(async function () {
    result = await runRecipesBench(options, () => undefined);
  });

  it('measures every lock row in both setups, and says why etcd did not run', () => {
    const expected = ['TCP', 'in-process'].flatMap((setup) => [`${setup} 1 per lock`, `${setup} 4 per lock`, `${setup} 1 held`]);
    expect(result.locks.map((r) => `${r.setup} ${r.contenders} ${r.leaseMode}`)).to.have.members(expected);
    expect(result.locks).to.have.length(expected.length);
    for (const row of result.locks) {
      const name = `${row.setup} ${row.contenders} ${row.leaseMode}`;
      expect(row.errors, `${name}: ${row.firstError ?? ''}`).to.equal(0);
      expect(row.stuck, name).to.equal(0);
      expect(row.cycles, name).to.be.at.least(row.contenders);
      expect(row.holds, name).to.be.at.most(row.cycles);
      expect(row.holdsPerSecond, name).to.be.closeTo(row.holds / row.seconds, 1e-9);
      expect(row.p50Us, name).to.be.greaterThan(0);
      expect(row.p99Us, name).to.be.at.least(row.p50Us);
    }
    expect(result.etcdNote).to.match(/skipped/);
    expect(etcdRatios(result.locks)).to.deep.equal({ tcp: null, inProcess: null });
  });

  it('measures one failover, from the kill to the new leader, and its bound', () => {
    const f = result.failover;
    expect(f.failures).to.deep.equal([]);
    expect(f.rounds).to.equal(1);
    expect(f.boundMs).to.equal(options.failoverTtlMs + 2 * f.viewChangeTimeoutMs);
    expect(f.observedP50Ms).to.be.greaterThan(0);
    expect(f.standbyP50Ms).to.be.greaterThan(0);
    expect(f.observedMaxMs).to.equal(f.observedP50Ms);
    expect(f.observedMinMs).to.equal(f.observedP50Ms);
  });

  it('counts keep-alives only while leases live', () => {
    const { idle, loaded, grantErrors, leasesLost } = result.keepAlive;
    expect(grantErrors).to.equal(0);
    expect(leasesLost).to.equal(0);
    expect(idle.leases).to.equal(0);
    expect(idle.leasesReported).to.equal(0);
    expect(idle.keepAliveOpsPerSecond).to.equal(0);
    expect(loaded.leases).to.equal(40);
    expect(loaded.leasesReported).to.equal(40);
    expect(loaded.keepAliveOpsPerSecond).to.be.greaterThan(0);
    expect(loaded.idsRenewedPerSecond).to.be.at.least(loaded.keepAliveOpsPerSecond);
    expect(loaded.idsLost).to.equal(0);
    for (const w of [idle, loaded]) {
      expect(w.cpuShare).to.be.greaterThan(0);
      expect(w.busy).to.have.property('main');
    }
  });
});

describe('bench: recipes suite, the etcd ratio', () => {
  const row = (setup: LockRow['setup'], contenders: number, leaseMode: LockRow['leaseMode'], holdsPerSecond: number): LockRow => ({
    setup,
    leaseMode,
    contenders,
    holdsPerSecond,
    holds: holdsPerSecond,
    cycles: holdsPerSecond,
    errors: 0,
    firstError: null,
    seconds: 1,
    p50Us: 100,
    p99Us: 200,
    stuck: 0,
  });

  it('divides the uncontended per-lock rows only', () => {
    const rows = [row('TCP', 1, 'per lock', 2000), row('TCP', 1, 'held', 5000), row('TCP', 16, 'per lock', 9000), row('in-process', 1, 'per lock', 3000), row('etcd', 1, 'per lock', 200)];
    const ratios = etcdRatios(rows);
    expect(ratios.tcp).to.be.closeTo(10, 1e-12);
    expect(ratios.inProcess).to.be.closeTo(15, 1e-12);
    expect(etcdRatios(rows.filter((r) => r.setup !== 'etcd'))).to.deep.equal({ tcp: null, inProcess: null });
  });
});

describe('bench: runtime suite, where the time goes', function () {
  this.timeout(60_000);

  // Before the window every clock is at 0; after it, 1,000 ms have passed on each thread.
  const thread = (activeMs: number, gcMs: number | null, posts: number, envelopesOut: number, bytesMeasured: number, postsMeasured: number): ThreadCounters => ({ activeMs, idleMs: activeMs === 0 ? 0 : 1000 - activeMs, gcMs, posts, envelopesOut, bytesMeasured, postsMeasured });
  const snapshot = (threads: Record<string, ThreadCounters>, processCpuUs: number, atMs: number, entries: number, requests: number): BreakdownSnapshot => ({ threads, processCpuUs, atMs, primary: { actor: 'default/r0', entries, requests } });

  it('divides each thread\'s window by the ops, and sums the threads', () => {
    const before = snapshot({ a: thread(0, 0, 0, 0, 0, 0), b: thread(0, null, 0, 0, 0, 0) }, 0, 0, 10, 10);
    const after = snapshot({ a: thread(400, 40, 100, 1000, 5000, 10), b: thread(100, null, 0, 0, 0, 0), late: thread(50, 1, 1, 1, 1, 1) }, 800_000, 1000, 30, 1010);
    const b = breakdown(before, after, 1000);
    // A thread absent from the first snapshot is left out.
    expect(b.threads.map((t) => t.thread)).to.deep.equal(['a', 'b']);
    const [a, bt] = b.threads;
    expect(a).to.deep.include({ busyUsPerOp: 400, gcUsPerOp: 40, postsPerOp: 0.1, envelopesPerOp: 1, envelopesPerPost: 10 });
    expect(a?.busyShare).to.be.closeTo(0.4, 1e-12);
    expect(a?.gcShareOfBusy).to.be.closeTo(0.1, 1e-12);
    // 500 bytes per measured post, 100 posts, 1000 ops.
    expect(a?.bytesPerOp).to.be.closeTo(50, 1e-9);
    expect(bt).to.deep.include({ gcUsPerOp: null, gcShareOfBusy: null, postsPerOp: 0, envelopesPerPost: 0, bytesPerOp: 0 });
    expect(b.processCpuUsPerOp).to.equal(800);
    expect(b.processCores).to.be.closeTo(0.8, 1e-12);
    expect(b.totalBusyUsPerOp).to.equal(500);
    expect(b.requestsPerEntry).to.equal(50);
    const rows = breakdownRows('case', b);
    expect(rows).to.have.length(3);
    expect(rows[2]?.[10]).to.equal('50.0');
  });

  it('gives no requests per entry when the primary changed in the window', () => {
    const t = { a: thread(0, 0, 0, 0, 0, 0) };
    const before = snapshot(t, 0, 0, 10, 10);
    const after: BreakdownSnapshot = { ...snapshot(t, 0, 1000, 30, 50), primary: { actor: 'default/r1', entries: 30, requests: 50 } };
    expect(breakdown(before, after, 10).requestsPerEntry).to.equal(null);
  });

  it('measures every thread of a running node', async () => {
    const node = await startNode({ logLevel: 'silent' });
    const gc = new GcClock().start();
    try {
      const client = node.client();
      await prepareBlobs(client, 16);
      await drive(client, 'put', 16, 200, null);
      const before = await takeSnapshot(node, gc);
      const run = await drive(client, 'put', 16, 300, null);
      const after = await takeSnapshot(node, gc);
      expect(run.completed).to.be.at.least(run.ops);
      expect(run.ops).to.be.greaterThan(0);
      const b = breakdown(before, after, run.completed);
      const names = b.threads.map((t) => t.thread);
      expect(names).to.include.members(['proxy', 'timer', 'main']);
      expect(names.filter((n) => /r[0-2]$/.test(n))).to.have.length(3);
      for (const t of b.threads) {
        expect(t.gcUsPerOp, t.thread).to.be.a('number');
        expect(t.busyUsPerOp, t.thread).to.be.greaterThan(0);
        if (t.postsPerOp > 0) expect(t.envelopesPerPost, t.thread).to.be.at.least(1);
      }
      // Every op crosses from this thread to the proxy (one turn's calls share an envelope) and
      // from the proxy to the primary (an envelope per request) and back to this thread.
      const main = b.threads.find((t) => t.thread === 'main');
      expect(main?.envelopesPerOp).to.be.greaterThan(0);
      expect(b.threads.find((t) => t.thread === 'proxy')?.envelopesPerOp).to.be.at.least(1);
      // Bytes are sampled; every thread that posted has had at least its first post measured.
      expect(b.totalBytesPerOp).to.be.greaterThan(0);
      expect(main?.bytesPerOp).to.be.greaterThan(0);
      expect(b.requestsPerEntry).to.be.at.least(1);
      expect(b.processCpuUsPerOp).to.be.greaterThan(0);
      const table = formatTable(breakdownColumns, breakdownRows('put, 16 callers', b));
      expect(table.split('\n')).to.have.length(2 + b.threads.length + 1);
      expect(table).to.match(/process \(threads' busy/);
    } finally {
      gc.stop();
      await node.stop();
    }
  });
});
