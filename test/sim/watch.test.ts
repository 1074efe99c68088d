/**
 * Watches in the simulator (issue 14, ./watchers.ts): the pieces of the watch checker, a
 * targeted run with crashes of the serving replicas, and VOPR seeds with watchers (CI). The
 * checker catching broken hubs is tested in ./mutants.test.ts.
 */

import { expect } from 'chai';
import { changeMatches, entryChanges } from '../../src/tree/events.ts';
import type { TreeOp } from '../../src/tree/ops.ts';
import { applyOp, emptyTree, type Tree } from '../../src/tree/tree.ts';
import { Cluster, WorkloadGenerator, defaultWorkload } from './cluster.ts';
import { reliableNetwork, type NetworkFaults } from './network.ts';
import { Prng } from './prng.ts';
import { deepEqual } from './tree_model.ts';
import { formatFailure, runSeed, type SeedReport } from './vopr.ts';
import { addWatchStats, CommittedHistory, formatWatchStats, treeDiff, watchSimOptions, WatchLinks, type WatchStats } from './watchers.ts';

const watchedPaths = ['/', '/k0', '/k0/x', '/k0/y', '/k1', '/k1/x', '/k2/z'];

describe('sim: watches (the checker\'s pieces)', () => {
  it('the tree diff along a path agrees with entryChanges on random entries', () => {
    const prng = new Prng(11);
    const workload = new WorkloadGenerator(prng.fork(), { ...defaultWorkload, components: 2, multiCasProbability: 0.3 });
    let tree: Tree = emptyTree();
    let compared = 0;
    let nonEmpty = 0;
    for (let entry = 0; entry < 3000; entry++) {
      const ops: TreeOp[] = [];
      const before = tree;
      // An entry of 1 to 4 requests (some of them reads and failures, as in real entries).
      for (let i = 0, n = 1 + prng.int(4); i < n; i++) {
        // Creates first now and then, so that the tree fills up.
        const op: TreeOp = prng.chance(0.3) ? { type: 'create', path: prng.pick(['/k0', '/k1', '/k0/x', '/k0/y', '/k1/x']), nodeType: prng.pick(['directory', 'blob', 'queue', 'set'] as const) } : workload.next();
        ops.push(op);
        tree = applyOp(tree, op).tree;
      }
      const changes = entryChanges(before, ops, tree);
      for (const path of watchedPaths) {
        for (const recursive of [false, true]) {
          const expected = new Map(changes.filter((change) => changeMatches(change, path, recursive)).map((change) => [change.path, change]));
          const diff = treeDiff(before, tree, path, recursive);
          expect(deepEqual(Object.fromEntries(diff), Object.fromEntries(expected)), `entry ${entry} ${path} ${recursive}: ${JSON.stringify([...diff.values()])} vs ${JSON.stringify([...expected.values()])}`).to.equal(true);
          compared += 1;
          if (diff.size > 0) nonEmpty += 1;
        }
      }
    }
    expect(compared).to.equal(3000 * watchedPaths.length * 2);
    expect(nonEmpty, 'the random entries changed watched paths').to.be.greaterThan(1000);
  });

  it('the committed history is known only through a contiguous prefix; firstMatch finds the first op that changed a path', () => {
    const history = new CommittedHistory();
    const t0 = emptyTree();
    const t1 = applyOp(t0, { type: 'create', path: '/a', nodeType: 'directory' }).tree;
    const t2 = applyOp(t1, { type: 'create', path: '/a/b', nodeType: 'blob' }).tree;
    const t3 = applyOp(t2, { type: 'create', path: '/c', nodeType: 'blob' }).tree;
    history.record(1, t0, [{ type: 'create', path: '/a', nodeType: 'directory' }], t1);
    history.record(3, t2, [{ type: 'create', path: '/c', nodeType: 'blob' }], t3);
    expect(history.known).to.equal(1);
    history.record(2, t1, [{ type: 'create', path: '/a/b', nodeType: 'blob' }], t2);
    expect(history.known).to.equal(3);
    // The first record of an op wins (every replica applies the same entry).
    history.record(2, t2, [], t3);
    expect(history.changes(2).map((change) => change.path)).to.deep.equal(['/', '/a', '/a/b']);
    expect(history.firstMatch(0, 3, '/a/b', false)).to.equal(2);
    expect(history.firstMatch(0, 3, '/a', true)).to.equal(1);
    expect(history.firstMatch(1, 3, '/a', false)).to.equal(2);
    expect(history.firstMatch(2, 3, '/a', true)).to.equal(null);
    expect(history.firstMatch(0, 3, '/c', false)).to.equal(3);
  });

  it('links: FIFO within a connection whatever the delays; a lost message breaks its connection for good; a cut link too', () => {
    const faults: NetworkFaults = { ...reliableNetwork, delayMinTicks: 1, delayMaxTicks: 20, delayDistribution: 'uniform', lossProbability: 0 };
    let cut = false;
    let current = faults;
    const links = new WatchLinks(new Prng(5), { faults: () => current, canDeliver: () => !cut }, 1);
    for (let i = 0; i < 50; i++) {
      links.send('w0', 0, 'a', i, i);
      links.send('w0', 0, 'b', 100 + i, i);
    }
    const got: number[] = [];
    for (let t = 0; t < 200; t++) for (const message of links.deliverDue(t)) got.push(message.message as number);
    const a = got.filter((x) => x < 100);
    const b = got.filter((x) => x >= 100);
    expect(a).to.deep.equal(Array.from({ length: 50 }, (_, i) => i));
    expect(b).to.deep.equal(Array.from({ length: 50 }, (_, i) => 100 + i));
    expect(deepEqual(got, [...a, ...b]), 'the two connections interleave').to.equal(false);
    // Loss: after the first lost message of connection c, nothing of c arrives.
    current = { ...faults, lossProbability: 0.2 };
    for (let i = 0; i < 50; i++) links.send('w0', 0, 'c', i, 300 + i);
    const c: number[] = [];
    for (let t = 300; t < 500; t++) for (const message of links.deliverDue(t)) c.push(message.message as number);
    expect(c.length).to.be.lessThan(50);
    expect(c).to.deep.equal(Array.from({ length: c.length }, (_, i) => i));
    expect(links.stats.broken).to.equal(1);
    // A cut link breaks the connections that try it.
    current = faults;
    links.send('w0', 0, 'd', 1, 600);
    cut = true;
    links.send('w0', 0, 'e', 1, 600);
    cut = false;
    links.send('w0', 0, 'e', 2, 601);
    const de: string[] = [];
    for (let t = 600; t < 700; t++) for (const message of links.deliverDue(t)) de.push(`${message.connection}${String(message.message)}`);
    expect(de).to.deep.equal(['d1']);
  });

  it('links: within a live connection, single messages are lost, repeated (never one sent as unrepeatable) and reordered, as drawn', () => {
    const faults: NetworkFaults = { ...reliableNetwork, delayMinTicks: 1, delayMaxTicks: 10, delayDistribution: 'uniform', lossProbability: 0.2, duplicateProbability: 0.2 };
    const links = new WatchLinks(new Prng(9), { faults: () => faults, canDeliver: () => true }, { breakScale: 0, lossScale: 1, duplicateScale: 1, reorderProbability: 0.2 });
    for (let i = 0; i < 500; i++) links.send(0, 'w0', 'a', i, i);
    for (let i = 0; i < 100; i++) links.send('w0', 0, 'b', i, i, false);
    const a: number[] = [];
    const b: number[] = [];
    for (let t = 0; t < 700; t++) for (const message of links.deliverDue(t)) (message.connection === 'a' ? a : b).push(message.message as number);
    expect(links.stats.broken, 'no break: the connection lives on').to.equal(0);
    const distinct = new Set(a);
    expect(distinct.size, 'some lost').to.be.within(300, 499);
    expect(a.length - distinct.size, 'some repeated').to.be.greaterThan(30);
    expect(a.some((x, i) => i > 0 && x < (a[i - 1] as number)), 'some out of order').to.equal(true);
    expect(new Set(b).size, 'never repeated when asked').to.equal(b.length);
    expect(links.stats.lost + distinct.size + new Set(b).size).to.equal(600);
    expect(links.stats.duplicated).to.equal(a.length - distinct.size);
    expect(links.stats.reordered).to.be.greaterThan(50);
    // Healed (no loss, no duplication) and without reordering, a connection is FIFO and exactly once again.
    const healed = new WatchLinks(new Prng(9), { faults: () => ({ ...faults, lossProbability: 0, duplicateProbability: 0 }), canDeliver: () => true }, { breakScale: 1, lossScale: 1, duplicateScale: 1, reorderProbability: 0 });
    for (let i = 0; i < 100; i++) healed.send(0, 'w0', 'c', i, i);
    const c: number[] = [];
    for (let t = 0; t < 200; t++) for (const message of healed.deliverDue(t)) c.push(message.message as number);
    expect(c).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
  });
});

describe('sim: watches across crashes of the serving replicas', () => {
  it('every watcher sees every committed change to its path exactly once, in order, while replicas crash and restart', function () {
    this.timeout(60_000);
    const cluster = new Cluster({
      seed: 77,
      clientCount: 4,
      faults: { ...reliableNetwork, delayMaxTicks: 4, lossProbability: 0.02 },
      workload: null,
      watchers: watchSimOptions({ seed: 78, count: 5, components: 2, startTicksMax: 20, cancelProbability: 0.003, breakScale: 1 }),
    });
    const watch = cluster.watch;
    expect(watch).to.not.equal(null);
    // Writes that mostly succeed, so the watched paths change often (the random workload's mostly fail).
    const prng = new Prng(79);
    const writes: TreeOp[] = [
      { type: 'create', path: '/k0', nodeType: 'directory' },
      { type: 'create', path: '/k1', nodeType: 'directory' },
      { type: 'create', path: '/k0/x', nodeType: 'blob' },
      { type: 'create', path: '/k1/x', nodeType: 'queue' },
    ];
    for (const op of writes) cluster.await(cluster.call('c0', op));
    const write = (): TreeOp => {
      const value = prng.bytes(1 + prng.int(3));
      switch (prng.int(5)) {
        case 0:
          return { type: 'blob_put', path: '/k0/x', value };
        case 1:
          return { type: 'queue_push', path: '/k1/x', value };
        case 2:
          return { type: 'queue_pop', path: '/k1/x' };
        case 3:
          return prng.chance(0.5) ? { type: 'create', path: '/k0/y', nodeType: 'set' } : { type: 'delete', path: '/k0/y' };
        default:
          return { type: 'multi_cas', guards: [], ops: [{ type: 'blob_put', path: '/k0/x', value }, { type: 'set_insert', path: '/k0/y', value }] };
      }
    };
    const runWriting = (ticks: number): void => {
      for (let t = 0; t < ticks && !cluster.halted; t++) {
        for (const clientId of cluster.clientIds) if (cluster.clientHasRoom(clientId) && prng.chance(0.3)) cluster.call(clientId, write());
        cluster.tick();
      }
    };
    // Crash one replica at a time (the primary every other time), each for a while.
    for (let round = 0; round < 8 && !cluster.halted; round++) {
      runWriting(150);
      const victim = round % 2 === 0 ? (cluster.primaryIndex() ?? 0) : (round % 3);
      cluster.crash(victim);
      runWriting(80);
      cluster.restart(victim);
    }
    watch?.settle();
    const target = (): number => cluster.checkers.maxCommitted;
    cluster.runUntil((c) => c.watchersCaughtUp(target()), 3000);
    watch?.finalCheck();
    expect(cluster.violations.map((violation) => violation.message)).to.deep.equal([]);
    expect(cluster.watchersCaughtUp(target()), watch?.behind(target()).join('; ')).to.equal(true);
    const stats = watch?.stats() as WatchStats;
    console.log(`      ${formatWatchStats(stats)}`);
    expect(stats.batches, 'events were delivered').to.be.greaterThan(200);
    expect(stats.attempts, 'watches resumed at other replicas').to.be.greaterThan(stats.watches);
    expect(stats.links.broken, 'connections broke (crashes, losses)').to.be.greaterThan(0);
    // Nothing leaks: once every watcher cancelled, the hubs hold no watch (lost cancels end idle).
    expect([0, 1, 2].reduce((sum, i) => sum + (cluster.replicaStatus(i)?.watches ?? 0), 0)).to.be.greaterThan(0);
    watch?.stop();
    cluster.runTicks(watchSimOptions({ seed: 0 }).hub.idleTicks + 20);
    expect([0, 1, 2].map((i) => cluster.replicaStatus(i)?.watches)).to.deep.equal([0, 0, 0]);
    expect(cluster.violations).to.deep.equal([]);
  });
});

/** CI seeds with watchers (besides the VOPR's own, which run watchers by default too). */
const firstSeed = 50_001;
const seedCount = 30;
const batchSize = 10;

describe('sim: VOPR seeds with watchers', function () {
  let total: WatchStats | null = null;

  for (let from = firstSeed; from < firstSeed + seedCount; from += batchSize) {
    const to = Math.min(from + batchSize, firstSeed + seedCount) - 1;
    it(`seeds ${from}..${to}: every watch stream is the projection of the committed history`, function () {
      this.timeout(120_000);
      const failures: SeedReport[] = [];
      for (let seed = from; seed <= to; seed++) {
        const report = runSeed(seed);
        if (!report.ok) failures.push(report);
        if (report.watch !== null) total = total === null ? report.watch : addWatchStats(total, report.watch);
      }
      expect(failures.length, failures.slice(0, 3).map(formatFailure).join('\n')).to.equal(0);
    });
  }

  it('the seeds exercised deliveries, resumption, compaction and refusals', function () {
    const stats = total;
    expect(stats, 'no seed ran watchers').to.not.equal(null);
    if (stats === null) return;
    console.log(`      ${formatWatchStats(stats)}`);
    expect(stats.batches).to.be.greaterThan(100);
    expect(stats.attempts).to.be.greaterThan(stats.watches);
    expect(stats.links.broken).to.be.greaterThan(0);
    // Inside live connections too: notices lost, repeated and reordered (the client machine's seq checks).
    expect(stats.links.lost).to.be.greaterThan(0);
    expect(stats.links.duplicated).to.be.greaterThan(0);
    expect(stats.links.reordered).to.be.greaterThan(0);
    expect(stats.ended.cancelled).to.be.greaterThan(0);
    expect(stats.refusals['compacted'] ?? 0).to.be.greaterThan(0);
    expect(stats.diffChecks).to.be.greaterThan(0);
  });

  it('watchers leave a seed\'s core run as it was (their draws are a stream of their own)', function () {
    this.timeout(60_000);
    for (const seed of [3, 5]) {
      const without = runSeed(seed, { watchers: false });
      const withWatchers = runSeed(seed);
      expect(without.watch).to.equal(null);
      expect(withWatchers.watch?.watchers ?? 0).to.be.greaterThan(0);
      // Everything up to the end of the probes; the network's sent/delivered counts differ only
      // by the heartbeats of the ticks the watchers' own liveness check adds after them.
      const core = (report: SeedReport): unknown => ({
        calls: report.calls,
        done: report.done,
        pending: report.pending,
        maxCommitted: report.maxCommitted,
        views: report.viewChanges,
        crashes: report.crashes,
        partitions: report.partitions,
        livenessStartTick: report.livenessStartTick,
        linearizability: report.linearizability,
        lost: [report.network.droppedLoss, report.network.droppedPartition, report.network.duplicated, report.network.droppedOverflow],
      });
      expect(core(withWatchers)).to.deep.equal(core(without));
    }
  });

  it('replays a seed with watchers exactly', function () {
    this.timeout(60_000);
    const strip = (report: SeedReport): unknown => ({ ...report, elapsedMs: 0 });
    expect(strip(runSeed(50_003))).to.deep.equal(strip(runSeed(50_003)));
  });
});
