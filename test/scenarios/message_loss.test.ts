/**
 * Scenario: 30% message loss.
 *
 * Goal: with almost a third of all messages lost (replica to replica and client to replica,
 * both ways), the protocol still makes progress: every call of a random workload eventually
 * completes `done`, and the history is linearizable.
 *
 * Method: 3 replicas, 4 client sessions running the simulator's random tree workload for 1500
 * ticks with 30% loss and 1–3 tick delays (so messages also reorder). Clients never give up
 * (a large giveUpTicks): a lost request or reply is retried until answered, and the client
 * table keeps retried writes at most once. Then the workload stops, loss continues, and every
 * open call must complete.
 */

import { expect } from 'chai';
import { defaultWorkload } from '../sim/cluster.ts';
import { scenario } from './dsl.ts';

describe('scenario: 30% message loss', () => {
  it('completes every call of a random workload, linearizably', () => {
    const t = scenario({
      seed: 6,
      replicas: 3,
      clients: 4,
      faults: { lossProbability: 0.3, delayMinTicks: 1, delayMaxTicks: 3 },
      clientConfig: { giveUpTicks: 1_000_000 },
      workload: { ...defaultWorkload, opProbability: 0.3 },
    });
    t.runTicks(1500);
    t.stopWorkload();
    const calls = t.calls();
    t.settle(calls, 3000);
    const results = calls.map((call) => call.result?.type);
    expect(results.length, 'calls made').to.be.greaterThan(20);
    expect(results.filter((type) => type !== 'done'), 'every call completes done').to.deep.equal([]);
    expect(t.cluster.network.stats.droppedLoss / t.cluster.network.stats.sent).to.be.within(0.25, 0.35);
    t.converge(1000);
    t.expectSameState(0, 1);
    t.expectSameState(0, 2);
    t.end();
  });
});
