/**
 * Scenario: a backup crashes and recovers (VRR §4.3).
 *
 * Goal: a restarted replica starts in `recovering`, takes part in nothing while it recovers (no
 * prepare_ok, no start_view_change or do_view_change: checker (g) and an explicit check of its
 * traffic), recovers, and ends with the same tree and client table as the primary.
 *
 * Method: 3 replicas. r2 crashes while writes go on (r0 and r1 commit them). r2 restarts; its
 * recovery_response messages are dropped for a while so it stays recovering while prepares
 * reach it, and while a view change happens around it (r0's heartbeats to r1 are dropped, so
 * r1 starts view 1 and sends r2 start_view_change and start_view). Then the responses flow,
 * r2 recovers into view 1, and converges with the primary.
 */

import { expect } from 'chai';
import { scenario } from './dsl.ts';

describe('scenario: a backup crashes and recovers', () => {
  it('restarts in recovering, casts no vote while recovering, and ends with the primary\'s tree', () => {
    const t = scenario({ seed: 3, replicas: 3, clients: 2 });
    t.registerClients();
    t.create('/q', 'queue').done();
    for (let i = 0; i < 3; i++) t.push('/q', [i]).done();

    t.crash(2);
    for (let i = 3; i < 6; i++) t.push('/q', [i]).done();
    expect(t.replica(0).commit).to.be.greaterThan(0);

    t.restart(2);
    const restartedAt = t.now;
    expect(t.replica(2).status).to.equal('recovering');
    const holdRecovery = t.dropAll({ to: 2, types: ['recovery_response'] });

    // Prepares reach r2 while it recovers.
    const whileRecovering = [t.push('/q', [6]), t.push('/q', [7])];
    t.settle(whileRecovering, 200);
    // A view change around it: r1 stops hearing r0 and starts view 1.
    const silence = t.dropAll({ from: 0, to: 1, types: ['prepare', 'commit'] });
    t.runUntil('r1 leads view 1 while r2 is still recovering', () => t.primary() === 1, 500);
    silence.remove();
    const inNewView = t.push('/q', [8]);
    t.settle([inNewView], 300);
    expect(t.replica(2).status).to.equal('recovering');

    const seen = new Set(t.peerMessagesReceived({ replica: 2, type: 'prepare', since: restartedAt }).map(() => 'prepare'));
    for (const type of ['start_view_change', 'start_view'] as const) if (t.peerMessagesReceived({ replica: 2, type, since: restartedAt }).length > 0) seen.add(type);
    expect([...seen].sort(), 'r2 received prepares and view-change traffic while recovering').to.deep.equal(['prepare', 'start_view', 'start_view_change']);
    for (const type of ['prepare_ok', 'start_view_change', 'do_view_change'] as const) {
      expect(t.peerMessagesSent({ from: 2, type, since: restartedAt }), `r2 sent no ${type} while recovering`).to.deep.equal([]);
    }

    holdRecovery.remove();
    t.runUntil('r2 recovers', () => t.replica(2).status === 'normal', 200);
    expect(t.replica(2).view).to.equal(1);
    t.converge();
    t.expectSameState(1, 2);
    expect(t.queue(2, '/q')).to.have.length(9);
    t.end();
  });
});
