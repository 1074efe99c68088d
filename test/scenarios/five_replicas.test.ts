/**
 * Scenario: five replicas with two down (f = 2).
 *
 * Goal: a 5-replica group tolerates two failures at once, the primary among them: the other
 * three form a new view and keep committing; when the two restart they recover (VRR §4.3) and
 * converge to the same state.
 *
 * Method: 5 replicas, writes in view 0; the primary r0 and a backup r3 crash together. r1, r2 and
 * r4 (a quorum of 3) move to view 1 with r1 as primary, and writes go on. Then r0 and r3 restart
 * in `recovering`, recover from the view-1 primary, and every replica ends with the same tree.
 */

import { expect } from 'chai';
import { bytes, scenario } from './dsl.ts';

describe('scenario: five replicas with two down', () => {
  it('keeps committing with three, and both failed replicas recover after restart', () => {
    const t = scenario({ seed: 7, replicas: 5, clients: 3 });
    t.create('/q', 'queue').done();
    for (let i = 0; i < 3; i++) t.push('/q', [i]).done();
    t.converge();

    t.crash(0);
    t.crash(3);
    const during = [];
    for (let i = 3; i < 9; i++) during.push(t.push('/q', [i]).done(1500));
    expect(during.every((done) => done.view >= 1), 'committed in a new view').to.equal(true);
    expect(t.primary()).to.equal(1);
    expect(t.cluster.failedCount()).to.equal(2);

    t.restart(0);
    t.restart(3);
    expect([t.replica(0).status, t.replica(3).status]).to.deep.equal(['recovering', 'recovering']);
    t.runUntil('both restarted replicas recover', () => t.replica(0).status === 'normal' && t.replica(3).status === 'normal', 300);
    t.push('/q', [9]).done();
    t.converge();
    for (const replica of [0, 2, 3, 4]) t.expectSameState(1, replica);
    expect(t.queue(0, '/q')).to.deep.equal(Array.from({ length: 10 }, (_, i) => bytes([i])));
    t.end();
  });
});
