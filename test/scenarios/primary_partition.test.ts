/**
 * Scenario: a partition isolates the primary.
 *
 * Goal: the majority side forms a new view and keeps serving; writes acknowledged before and
 * after the partition survive; the old primary, which went on accepting requests it could never
 * commit, rejoins after the heal, discards that uncommitted suffix, and never acknowledged it.
 *
 * Method: 3 replicas. After a few acknowledged writes in view 0, partition {r0, c2} from
 * {r1, r2, c0, c1}: r0 still believes it is primary and prepares c2's write (its prepares are
 * cut off). The majority times out and forms view 1 (primary r1), where c0 writes. c2 gives up
 * (timeout) before the heal. After the heal r0 hears view 1's primary, truncates its log to its
 * commit number and fetches view 1's log. We check r0's log and the answers r0 sent to c2.
 */

import { expect } from 'chai';
import type { Request } from '../../src/vr/messages.ts';
import { bytes, scenario } from './dsl.ts';

describe('scenario: a partition isolates the primary', () => {
  it('the majority forms a new view; the old primary rejoins and truncates its uncommitted suffix', () => {
    const t = scenario({ seed: 1, replicas: 3, clients: 3, clientConfig: { giveUpTicks: 200 } });
    t.registerClients();
    t.create('/k0', 'blob', { client: 'c0' }).done();
    const before = t.write('/k0', 'before', { client: 'c1' }).done();
    expect(before.view).to.equal(0);
    expect(t.primary()).to.equal(0);
    const committedAtCut = t.replica(0).commit;
    const cutAt = t.now;

    // r0 keeps c2 on its side: it accepts c2's write but can never reach a quorum.
    t.partition([0, 'c2'], [1, 2, 'c0', 'c1']);
    const doomed = t.write('/k0', 'doomed', { client: 'c2' });
    t.runUntil('r0 prepares the doomed write', () => t.replica(0).op > committedAtCut, 20);
    const doomedOp = t.replica(0).op;
    const doomedRequest = t.sent.find((sent) => sent.tick >= cutAt && sent.from === 'c2' && sent.message.type === 'request')?.message as Request;
    expect(doomedRequest.op).to.deep.equal({ type: 'tree', op: doomed.op });
    // c2 is a client process; its one session has client id c2.1.
    expect(t.entry(0, doomedOp)?.requests.map((request) => request.clientId)).to.deep.equal(['c2.1']);

    t.runUntil('the majority forms view 1 with r1 as primary', () => t.primary() === 1, 500);
    const after = t.write('/k0', 'after', { client: 'c0' }).done();
    expect(after.view).to.be.at.least(1);
    // The old primary still believes it leads view 0 and holds the entry it cannot commit.
    expect(t.replica(0)).to.include({ status: 'normal', view: 0, commit: committedAtCut, op: doomedOp });

    doomed.await(400);
    expect(doomed.result?.type, 'the isolated primary never acknowledges the doomed write').to.equal('timeout');

    t.heal();
    t.runUntil(
      'r0 rejoins the new view and holds its log',
      () => {
        const r0 = t.replica(0);
        return r0.status === 'normal' && r0.view === t.view() && r0.lastNormalView === r0.view && r0.commit === t.replica(1).commit;
      },
      500,
    );

    // The uncommitted view-0 suffix is gone: every entry after the cut was prepared in view 1+.
    const r0 = t.replica(0);
    for (let op = committedAtCut + 1; op <= r0.op; op++) expect(t.entry(0, op)?.view, `r0 op ${op}`).to.be.at.least(1);
    const holdsDoomed = (op: number): boolean =>
      t.entry(0, op)?.requests.some((request) => request.clientId === 'c2.1' && request.requestNum === doomedRequest.requestNum) ?? false;
    expect(Array.from({ length: r0.op }, (_, i) => i + 1).filter(holdsDoomed), 'c2\'s doomed request is in no log entry').to.deep.equal([]);
    // r0 never answered c2's doomed request with a reply (done), at any time.
    expect(t.answersSent({ from: 0, client: 'c2', requestNum: doomedRequest.requestNum }).filter((sent) => sent.message.type === 'reply')).to.deep.equal([]);

    // The acknowledged writes stand; the doomed one never took effect.
    const read = t.read('/k0', { client: 'c1' }).outcome();
    expect(read).to.deep.include({ type: 'blob', value: bytes('after') });
    t.converge();
    t.expectSameState(0, 1);
    t.expectSameState(0, 2);
    t.end();
  });
});
