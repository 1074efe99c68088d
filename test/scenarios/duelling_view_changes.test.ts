/**
 * Scenario: concurrent view-change attempts (duelling candidates).
 *
 * Goal: when several replicas time out at the very same tick and start view changes together,
 * the group still settles on one view within a bound, and no two replicas ever act as primary
 * of the same view (checker (a), and an explicit check of who sent prepare, commit or
 * start_view in each view).
 *
 * Method: viewChangeJitterTicks = 1 makes every view-change timeout exactly
 * viewChangeTimeoutTicks, so replicas that last heard the primary at the same tick time out
 * together. (1) 3 replicas: the primary's prepares and heartbeats are dropped; both backups
 * time out at one tick and both start view 1. (2) 5 replicas: the primaries of view 0 and view 1
 * are both crashed, then messages get random 1–3 tick delays; the other three time out together into
 * view 1, which cannot complete (its primary is down), time out together again, and must
 * settle in view 2.
 */

import { expect } from 'chai';
import { primaryOf } from '../../src/vr/config.ts';
import { scenario, type Scenario } from './dsl.ts';

const timeout = 30;

/** view -> replicas that sent prepare, commit or start_view in it (what only a primary sends). */
function leadersByView(t: Scenario): Map<number, Set<number>> {
  const leaders = new Map<number, Set<number>>();
  for (const sent of t.sent) {
    const message = sent.message;
    if (typeof sent.from !== 'number' || (message.type !== 'prepare' && message.type !== 'commit' && message.type !== 'start_view')) continue;
    const set = leaders.get(message.view) ?? new Set<number>();
    set.add(sent.from);
    leaders.set(message.view, set);
  }
  return leaders;
}

function expectOneLeaderPerView(t: Scenario): void {
  for (const [view, leaders] of leadersByView(t)) {
    expect([...leaders], `leaders of view ${view}`).to.deep.equal([primaryOf(view, t.cluster.config)]);
  }
}

/** Ticks at which each replica first sent start_view_change for `view`. */
function startedAt(t: Scenario, view: number, since: number): Map<number, number> {
  const first = new Map<number, number>();
  for (const sent of t.peerMessagesSent({ type: 'start_view_change', since })) {
    if (sent.message.view === view && typeof sent.from === 'number' && !first.has(sent.from)) first.set(sent.from, sent.tick);
  }
  return first;
}

function settled(t: Scenario): boolean {
  const primary = t.primary();
  if (primary === null) return false;
  const view = t.replica(primary).view;
  return t.replicas.every((s, i) => t.cluster.isDown(i) || (s.status === 'normal' && s.view === view));
}

describe('scenario: duelling view changes', () => {
  it('two backups timing out at the same tick settle on one view, with one primary', () => {
    const t = scenario({ seed: 8, replicas: 3, clients: 2, config: { viewChangeTimeoutTicks: timeout, viewChangeJitterTicks: 1 } });
    t.create('/k0', 'blob').done();
    t.write('/k0', 'v0').done();
    const silencedAt = t.now;
    const silence = t.dropAll({ from: 0, types: ['prepare', 'commit'] });
    const write = t.write('/k0', 'v1');

    const took = t.runUntil('the group settles in view 1', () => t.view() >= 1 && settled(t), 2 * timeout + 10);
    silence.remove();
    const starts = startedAt(t, 1, silencedAt);
    expect(starts.get(1), 'both backups start view 1 at the same tick').to.be.a('number').and.to.equal(starts.get(2));
    expect(took).to.be.at.most(timeout + 10);
    expect(t.primary()).to.equal(1);
    write.done();
    t.write('/k0', 'v2').done();
    t.converge();
    expectOneLeaderPerView(t);
    t.end();
  });

  it('three replicas timing out together twice (the next primary is down) settle in view 2', () => {
    const t = scenario({
      seed: 9,
      replicas: 5,
      clients: 2,
      config: { viewChangeTimeoutTicks: timeout, viewChangeJitterTicks: 1 },
    });
    t.create('/k0', 'blob').done();
    t.write('/k0', 'v0').done();
    t.converge();
    const crashedAt = t.now;
    t.crash(0);
    t.crash(1);
    // Timers are aligned (the last heartbeat reached everyone in one tick); from now on
    // messages take 1–3 ticks, so the view-change messages cross.
    t.setFaults({ delayMinTicks: 1, delayMaxTicks: 3 });
    const write = t.write('/k0', 'v1');

    const took = t.runUntil('the group settles in one view', () => settled(t), 3 * timeout + 20);
    const view1 = startedAt(t, 1, crashedAt);
    const view2 = startedAt(t, 2, crashedAt);
    expect(new Set(view1.values()).size, `r2, r3, r4 start view 1 at one tick: ${[...view1]}`).to.equal(1);
    expect([...view1.keys()].sort()).to.deep.equal([2, 3, 4]);
    expect(view2.size).to.be.at.least(2);
    expect(t.primary()).to.equal(2);
    expect(t.view()).to.equal(2);
    expect(took).to.be.at.most(2 * timeout + 20);
    write.done();
    t.converge();
    expectOneLeaderPerView(t);
    t.end();
  });
});
