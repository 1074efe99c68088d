/**
 * Scenario: a lagging replica catches up through a checkpoint (VRR §5.1, §5.2).
 *
 * Goal: when a replica falls behind further than the primary retains log entries, state
 * transfer hands it a checkpoint (tree snapshot + client table) and the entries after it, and
 * the replica converges to the same tree as the primary.
 *
 * Method: 3 replicas, a checkpoint every 4 committed ops, at most 4 committed entries retained
 * for a laggard, one request per entry. View-change timeouts are set very long so that the
 * cut-off replica does not start view changes of its own (we want state transfer within the
 * view, not a view change). r2 is isolated while 30 pushes commit; the primary truncates its log
 * far past r2's op. After the heal the primary's next prepare or heartbeat reveals the gap; r2
 * sends get_state and must receive a new_state carrying a checkpoint.
 */

import { expect } from 'chai';
import { scenario } from './dsl.ts';

describe('scenario: a lagging replica catches up through a checkpoint', () => {
  it('receives a new_state carrying a checkpoint and converges to the primary\'s tree', () => {
    const t = scenario({
      seed: 5,
      replicas: 3,
      clients: 1,
      config: { checkpointIntervalOps: 4, logRetainOps: 4, batchMax: 1, viewChangeTimeoutTicks: 100_000, viewChangeJitterTicks: 1 },
    });
    t.create('/q', 'queue').done();
    t.converge();
    const lagAt = t.replica(2).op;

    t.isolate(2);
    for (let i = 0; i < 30; i++) t.push('/q', [i]).done();
    const primary = t.replica(0);
    expect(primary.log.start, 'the primary truncated its log past everything r2 holds').to.be.greaterThan(t.replica(2).op);
    expect(t.replica(2).op).to.equal(lagAt);

    const healedAt = t.now;
    t.heal();
    t.runUntil('r2 catches up', () => t.replica(2).commit === t.replica(0).commit, 200);

    const transfers = t.peerMessagesReceived({ replica: 2, type: 'new_state', since: healedAt });
    const withCheckpoint = transfers.filter((received) => received.message.checkpoint !== null);
    expect(withCheckpoint, 'r2 received a new_state carrying a checkpoint').to.have.length.greaterThan(0);
    const first = withCheckpoint[0]?.message;
    expect(first?.checkpoint?.op).to.be.greaterThan(lagAt);
    expect(first?.logStart).to.equal(first?.checkpoint?.op);
    expect(t.peerMessagesSent({ from: 2, type: 'get_state', since: healedAt })[0]?.message.op).to.equal(lagAt);

    t.push('/q', [99]).done();
    t.converge();
    t.expectSameState(0, 2);
    t.expectSameState(1, 2);
    expect(t.queue(2, '/q')).to.have.length(31);
    t.end();
  });
});
