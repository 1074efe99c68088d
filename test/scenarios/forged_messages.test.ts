/**
 * Scenario: forged messages on the wire (issue 12, "protocol numbers are bounded").
 *
 * Goal: a message nobody in the group sent, carrying a protocol number beyond
 * protocolNumberMax (2^48) or naming an impossible sender, is dropped by the gate
 * (src/vr/validate.ts) and changes nothing; the group then survives its ordinary faults.
 * Before the bound, a forged start_view_change at view 2^53-1 was accepted: at the next
 * primary crash the survivors could not move the view forward (2^53 + 1 === 2^53), died on an
 * invariant, and the group's data was gone.
 *
 * Method: 3 replicas. Forged messages come from the simulator's forger node
 * (test/sim/byzantine.ts); the cluster reports a `forged_accepted` violation for any step
 * given a forged malformed message that does not trace `drop_malformed`. A validly shaped
 * message under a member's id that lies (a Byzantine member) is outside VR's fault model and
 * not sent here: keeping non-members off the cluster link is the link's authentication.
 */

import { expect } from 'chai';
import { protocolNumberMax } from '../../src/base/limits.ts';
import { forge, forgeryKinds } from '../sim/byzantine.ts';
import { Prng } from '../sim/prng.ts';
import { bytes, scenario } from './dsl.ts';

describe('scenario: forged messages on the wire', () => {
  it('a forged start_view_change at view 2^53-1 is dropped by the gate; the next primary crash elects a new primary normally', () => {
    const t = scenario({ seed: 12, replicas: 3 });
    t.registerClients();
    t.create('/k0', 'blob').done();
    t.write('/k0', [1]).done();

    const since = t.now;
    for (const view of [2 ** 53 - 1, protocolNumberMax + 1]) {
      // "From" the other backup, as the audit sent it.
      t.forge(1, { type: 'start_view_change', epoch: 0, view, replica: 2 });
      t.forge(2, { type: 'start_view_change', epoch: 0, view, replica: 1 });
    }
    t.runTicks(5);
    const forgedReceived = t.received.filter((r) => r.tick > since && r.message.type === 'start_view_change');
    expect(forgedReceived.map((r) => r.replica).sort()).to.deep.equal([1, 1, 2, 2]);
    for (const replica of [0, 1, 2]) expect(t.replica(replica), `r${replica}`).to.include({ status: 'normal', view: 0 });
    expect(t.cluster.forgedDelivered).to.equal(4);

    t.crash(0);
    t.runUntil('a new primary is elected', (s) => s.primary() !== null && s.primary() !== 0, 1000);
    expect(t.view()).to.be.at.least(1).and.below(protocolNumberMax);
    const written = t.write('/k0', [2]).done();
    expect(written.view).to.be.at.least(1);
    expect(t.read('/k0').outcome()).to.deep.include({ type: 'blob', value: bytes([2]) });
    t.restart(0);
    t.converge(1000);
    t.end();
  });

  it('forgeries of every kind (huge views and numbers, impossible senders, a prepare far ahead) change no replica\'s state and the group survives a primary crash', () => {
    const t = scenario({ seed: 13, replicas: 3 });
    t.registerClients();
    t.create('/q', 'queue').done();
    const prng = new Prng(99);
    const pushes = [];
    for (let round = 0; round < 40; round++) {
      for (const kind of forgeryKinds) {
        const target = prng.int(3);
        const forgery = forge(prng, kind, t.replica(target), target, t.cluster.clientIds);
        t.forge(target, forgery.message, kind, forgery.malformed);
      }
      if (round % 4 === 0) pushes.push(t.push('/q', [round]));
      t.runTicks(2);
    }
    t.settle(pushes);
    expect(t.view(), 'no forgery moved the view').to.equal(0);
    expect(t.cluster.forgedDelivered).to.be.at.least(100);

    t.crash(0);
    t.runUntil('a new primary is elected', (s) => s.primary() !== null && s.primary() !== 0, 1000);
    t.push('/q', [99]).done();
    t.restart(0);
    t.converge(1000);
    expect(t.queue(1, '/q')).to.deep.equal([...pushes.map((_, i) => bytes([i * 4])), bytes([99])]);
    t.end();
  });
});
