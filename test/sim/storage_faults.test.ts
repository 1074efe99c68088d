/**
 * Issue 13, the simulator's storage faults: a whole durable group crashes at once and some
 * replicas find their storage damaged (a missing file, or a corrupted record in the middle).
 * With at most f damaged the group comes back and no acknowledged write is lost or reordered;
 * with more than f damaged it stops safely: nobody answers a client, no checker fires.
 */

import { expect } from 'chai';
import { Cluster } from './cluster.ts';
import type { StorageDamageKind } from './storage.ts';

const queue = '/q';
const pushes = 12;

/** A durable 3-replica group holding a queue of `pushes` acknowledged values 1..pushes. */
function loadedGroup(seed: number): Cluster {
  const cluster = new Cluster({ seed, durable: true, workload: null, replicaConfig: { checkpointIntervalOps: 4 } });
  expect(cluster.await(cluster.call('c0', { type: 'create', path: queue, nodeType: 'queue' }))?.type).to.equal('done');
  for (let value = 1; value <= pushes; value++) {
    expect(cluster.await(cluster.call('c0', { type: 'queue_push', path: queue, value: new Uint8Array([value]) }))?.type).to.equal('done');
  }
  // Let commits and writes settle so every replica's store holds entries past its checkpoint.
  cluster.runTicks(30);
  return cluster;
}

/** Crashes every replica at once, damages the given stores, and restarts them all. */
function crashGroup(cluster: Cluster, damaged: readonly { replica: number; kind: StorageDamageKind; at: number }[]): void {
  for (let replica = 0; replica < 3; replica++) cluster.crash(replica);
  for (const { replica, kind, at } of damaged) cluster.damageStore(replica, kind, at);
  // Restarts in reverse order, a few ticks apart.
  for (const replica of [2, 1, 0]) {
    cluster.runTicks(3);
    cluster.restart(replica);
    // README rule 18: a damaged store holds no trusted promise, so that replica starts in
    // recovery (with its trusted prefix); an intact one resumes from its promise.
    const isDamaged = damaged.some((d) => d.replica === replica);
    if (isDamaged) expect(cluster.replica(replica).status).to.equal('recovering');
    else expect(cluster.replica(replica).status).to.not.equal('recovering');
  }
}

describe('sim: storage faults (issue 13)', () => {
  for (const [kind, replica] of [['corrupt', 1], ['missing', 1], ['missing', 0], ['corrupt', 0]] as const) {
    it(`one replica (${replica}) with a ${kind} store after a group crash: the group comes back, no acknowledged write lost or reordered`, () => {
      const cluster = loadedGroup(31 + replica);
      const before = cluster.stores[replica]?.stored();
      crashGroup(cluster, [{ replica, kind, at: 0.5 }]);
      const after = cluster.stores[replica]?.stored();
      expect(after?.promise).to.equal(undefined);
      if (kind === 'missing') expect(after).to.deep.equal({ checkpoint: null, entries: [] });
      else expect(after?.entries.length).to.be.lessThan(before?.entries.length ?? 0);
      // The damaged replica did not resume from its log: it recovers (README rule 18).
      expect(cluster.runUntil((c) => c.replicas.every((s) => s.status === 'normal'), 3000)).to.equal(true);
      // Every acknowledged push is still there, in order.
      for (let value = 1; value <= pushes; value++) {
        const popped = cluster.await(cluster.call('c1', { type: 'queue_pop', path: queue }), 3000);
        expect(popped?.type).to.equal('done');
        if (popped?.type !== 'done') return;
        expect(popped.outcome).to.deep.include({ type: 'element', value: new Uint8Array([value]) });
      }
      cluster.runTicks(50);
      cluster.checkers.finalCheck(cluster.replicas, cluster.now);
      expect(cluster.violations).to.deep.equal([]);
    });
  }

  it('two of three replicas damaged after a group crash: the group stops safely (no answer, no violation)', () => {
    for (const seed of [41, 42, 43]) {
      const cluster = loadedGroup(seed);
      crashGroup(cluster, [
        { replica: 0, kind: 'missing', at: 0 },
        { replica: 1, kind: 'corrupt', at: 0.3 },
      ]);
      const crashTick = cluster.now;
      const read = cluster.call('c1', { type: 'queue_len', path: queue });
      const write = cluster.call('c0', { type: 'queue_push', path: queue, value: new Uint8Array([99]) });
      cluster.runTicks(2000);
      expect(cluster.replica(0).status).to.equal('recovering');
      expect(cluster.replica(1).status).to.equal('recovering');
      for (const call of [read, write]) expect(call.result?.type).to.not.equal('done');
      expect(cluster.history.filter((call) => call.result?.type === 'done' && (call.returnTick ?? 0) > crashTick)).to.deep.equal([]);
      cluster.checkers.finalCheck(cluster.replicas, cluster.now);
      expect(cluster.violations).to.deep.equal([]);
    }
  });
});
