/**
 * Scenario: duplicate and stale client requests (VRR §4.1 client table).
 *
 * Goal: a duplicate of a committed request (same clientId and requestNum) gets the cached reply,
 * identical to the first, and never executes again; a request with an older number is answered
 * `stale_request` (it runs nothing); the client table survives a view change, so the new primary
 * answers duplicates the same way.
 *
 * Method: 3 replicas. c0 pushes one element onto a queue. The very request c0 sent is then put
 * on the network again, three times, straight to the primary (as a network duplicate or a
 * client retry would arrive), and c0's older create request once. We compare every reply the
 * primary sent with the first one, and check that the queue holds one element, its version did
 * not move, and the primary's log did not grow. Then r0 crashes and the duplicate goes to the
 * new primary r1.
 */

import { expect } from 'chai';
import type { Reply, Request } from '../../src/vr/messages.ts';
import { lookupTyped } from '../../src/tree/lookup.ts';
import { deepEqual } from '../sim/tree_model.ts';
import { bytes, scenario, type Scenario } from './dsl.ts';

function requestFor(t: Scenario, clientId: string, opType: string): Request {
  const sent = t.sent.filter((one) => one.from === clientId && one.message.type === 'request' && one.message.op.type === 'tree' && one.message.op.op.type === opType);
  expect(sent, `${clientId} sent a ${opType}`).to.not.deep.equal([]);
  return sent[sent.length - 1]?.message as Request;
}

function repliesTo(t: Scenario, from: number, request: Request, since: number): Reply[] {
  return t
    .answersSent({ from, client: request.clientId, requestNum: request.requestNum, since })
    .map((sent) => sent.message)
    .filter((message): message is Reply => message.type === 'reply');
}

function queueVersion(t: Scenario, replica: number, path: string): number {
  const found = lookupTyped(t.tree(replica), path, 'queue');
  if (!found.ok) throw new Error(`no queue at ${path}`);
  return found.node.version;
}

describe('scenario: duplicate and stale client requests', () => {
  it('return the cached reply and never re-execute, before and after a view change', () => {
    const t = scenario({ seed: 4, replicas: 3, clients: 2 });
    t.create('/q', 'queue', { client: 'c0' }).done();
    const pushed = t.push('/q', 'x', { client: 'c0' }).done();
    const push = requestFor(t, 'c0', 'queue_push');
    const create = requestFor(t, 'c0', 'create');
    expect(push.requestNum).to.equal(pushed.requestNum);
    expect(create.requestNum).to.be.lessThan(push.requestNum);
    const [original] = repliesTo(t, 0, push, 0);
    expect(original?.body).to.deep.equal({ type: 'tree', outcome: pushed.outcome });
    t.converge();
    const version = queueVersion(t, 0, '/q');
    const op = t.replica(0).op;

    // Three duplicates of the committed push and one stale request, straight to the primary.
    const injectedAt = t.now;
    for (let i = 0; i < 3; i++) t.inject('c0', 0, push);
    t.inject('c0', 0, create);
    t.runTicks(10);

    const duplicates = repliesTo(t, 0, push, injectedAt);
    expect(duplicates, 'one reply per duplicate').to.have.length(3);
    for (const reply of duplicates) expect(deepEqual(reply, original), 'identical to the first reply').to.equal(true);
    const staleBody = { type: 'stale_request', lastRequestNum: push.requestNum };
    expect(t.answersSent({ from: 0, client: 'c0', requestNum: create.requestNum, since: injectedAt }).map((sent) => sent.message), 'the stale request is answered stale_request')
      .to.deep.equal([{ type: 'reply', epoch: 0, view: 0, op: 0, clientId: create.clientId, requestNum: create.requestNum, body: staleBody }]);
    expect(t.replica(0).op, 'nothing new was logged').to.equal(op);
    t.converge();
    for (const replica of [0, 1, 2]) {
      expect(t.queue(replica, '/q'), `r${replica}: one element`).to.deep.equal([bytes('x')]);
      expect(queueVersion(t, replica, '/q'), `r${replica}: version unchanged`).to.equal(version);
    }

    // The client table is replicated state: the next view's primary answers the same way.
    t.crash(0);
    t.runUntil('r1 leads view 1', () => t.primary() === 1, 500);
    const afterViewChange = t.now;
    t.inject('c0', 1, push);
    t.inject('c0', 1, create);
    t.runTicks(10);
    const [again, ...more] = repliesTo(t, 1, push, afterViewChange);
    expect(more).to.deep.equal([]);
    expect(again?.body, 'the same reply body from the new primary').to.deep.equal(original?.body);
    expect(again?.op, 'naming the entry that executed it').to.equal(original?.op);
    expect(t.answersSent({ from: 1, client: 'c0', requestNum: create.requestNum, since: afterViewChange }).map((sent) => sent.message))
      .to.deep.equal([{ type: 'reply', epoch: 0, view: 1, op: 0, clientId: create.clientId, requestNum: create.requestNum, body: staleBody }]);
    expect(t.queue(1, '/q')).to.deep.equal([bytes('x')]);

    // The session goes on normally.
    t.push('/q', 'y', { client: 'c0' }).done();
    t.converge();
    expect(t.queue(1, '/q')).to.deep.equal([bytes('x'), bytes('y')]);
    t.end();
  });
});
