/**
 * Scenario: the lastNormalView regression (PROTOCOL.md "View change"; fixed in bb043f0).
 *
 * Goal: catching up with a missed view does not let a short log win a later view change. A
 * replica that joins a view by catching up (it heard the view's primary but has not yet
 * received the view's log) must not claim that view as its lastNormalView: its log may lack
 * entries committed in an earlier view it missed. If it did claim it, a later view change in
 * which it takes part would choose its short log and lose committed operations.
 *
 * Method (a port of a teammate's reproduction, /tmp/sim/lnv.ts): 3 replicas, one client.
 *   view 0: ops 1–4 commit (register + 3 creates);
 *   r0 isolated; view 1 (primary r1) commits ops 5–9 with r2; r0 stays at op 4;
 *   heal, isolate r1, and drop start_view and new_state from r2 to r0: r0 and r2 form view 2
 *     (primary r2); r0 joins it only by catching up and never receives the view's log, so it
 *     is normal in view 2 with op 4 and lastNormalView 0;
 *   heal, isolate r2: r0 and r1 form view 3, whose primary is r0. r0's own log (op 4) against
 *     r1's (op 9, lastNormalView 1): r1's must win, and the new primary must hold ops 5–9.
 */

import { expect } from 'chai';
import { scenario } from './dsl.ts';

describe('scenario: the lastNormalView rule', () => {
  it('catching up with a missed view does not let a short log win a later view change', () => {
    const t = scenario({ seed: 1, replicas: 3, clients: 1 });
    const create = (i: number): void => void t.create(`/k${i}`, 'blob').done(3000);
    for (let i = 0; i < 3; i++) create(i);
    t.converge();
    expect(t.replica(0)).to.include({ view: 0, op: 4, commit: 4 });

    t.isolate(0);
    t.runUntil('r1 leads view 1', () => t.primary() === 1, 1000);
    for (let i = 3; i < 8; i++) create(i);
    const committedInView1 = t.replica(1).commit;
    expect(committedInView1).to.equal(9);
    expect(t.replica(0).op).to.equal(4);

    // r0 rejoins view 2 only by catching up, and never gets the view's log.
    t.heal();
    t.isolate(1);
    const starve = t.dropAll({ from: 2, to: 0, types: ['start_view', 'new_state'] });
    t.runUntil(
      'r0 and r2 are normal in view 2',
      () => [0, 2].every((i) => t.replica(i).status === 'normal' && t.replica(i).view === 2),
      2000,
    );
    const r0 = t.replica(0);
    expect(r0.op, 'r0 still lacks the ops committed in view 1').to.equal(4);
    expect(r0.lastNormalView, 'catching up does not claim view 2').to.equal(0);

    // View 3: primary r0 (3 mod 3), with r1 the only other participant.
    t.heal();
    t.isolate(2);
    t.runUntil('r0 leads view 3', () => t.replica(0).view >= 3 && t.replica(0).status === 'normal', 2000);
    expect(t.primary()).to.equal(0);
    const fromR1 = t.peerMessagesSent({ from: 1, to: 0, type: 'do_view_change' }).filter((sent) => sent.message.view === 3);
    expect(fromR1[0]?.message).to.include({ lastNormalView: 1, op: 9 });
    expect(t.replica(0).op, 'the new primary holds every op committed in view 1').to.be.at.least(committedInView1);
    for (let i = 0; i < 8; i++) expect(t.stat(`/k${i}`).outcome(), `/k${i}`).to.include({ type: 'stat', nodeType: 'blob' });

    starve.remove();
    t.heal();
    t.converge();
    t.expectSameState(0, 1);
    t.expectSameState(0, 2);
    t.end();
  });
});
