/**
 * Scenario: the primary crashes with a full pipeline.
 *
 * Goal: no acknowledged write is lost, prepared-but-unacknowledged writes are neither lost nor
 * executed twice, and every call in flight completes after the view change.
 *
 * Method: 3 replicas, pipelineMax 2 and batchMax 1 (one request per log entry), six client
 * sessions, one queue per session. Each session first pushes an acknowledged element `a`.
 * Then backups' prepare_ok to r0 are dropped so nothing more commits, and every session pushes
 * `b` at once: r0 prepares two entries (the pipeline is full) and holds the other four requests.
 * r0 crashes. r1 and r2 hold the two prepared entries; view 1 commits them, and the clients'
 * retries get the cached replies (for those two) or execute (the other four). Each queue must
 * end as exactly [a, b].
 */

import { expect } from 'chai';
import { bytes, scenario } from './dsl.ts';

describe('scenario: the primary crashes with a full pipeline', () => {
  it('loses no acknowledged write, and every call completes after the view change', () => {
    const pipelineMax = 2;
    const t = scenario({ seed: 2, replicas: 3, clients: 6, config: { pipelineMax, batchMax: 1 } });
    const clients = t.cluster.clientIds;
    t.registerClients();
    for (const [i, client] of clients.entries()) t.create(`/q${i}`, 'queue', { client }).done();
    for (const [i, client] of clients.entries()) {
      const acked = t.push(`/q${i}`, 'a', { client }).done();
      expect(acked.view).to.equal(0);
    }

    const noAcks = t.dropAll({ to: 0, types: ['prepare_ok'] });
    const inFlight = clients.map((client, i) => t.push(`/q${i}`, 'b', { client }));
    t.runUntil('r0 fills its pipeline and holds the rest', () => t.replica(0).op - t.replica(0).commit === pipelineMax && t.replica(0).primary.pending.size > 0, 20);
    const prepared = t.replica(0).op;
    expect(t.replica(0).primary.pending.size).to.equal(clients.length - pipelineMax);
    expect(inFlight.every((call) => !call.settled)).to.equal(true);
    // The backups hold the prepared entries (they acknowledged; the acks were dropped).
    t.runUntil('both backups hold every prepared entry', () => t.replica(1).op === prepared && t.replica(2).op === prepared, 10);

    t.crash(0);
    noAcks.remove();
    t.settle(inFlight, 1000);
    for (const call of inFlight) {
      const done = call.done();
      expect(done.view, `${call.describe()} completes in the new view`).to.be.at.least(1);
    }
    expect(t.primary()).to.equal(1);

    t.converge();
    for (const replica of [1, 2]) {
      for (const i of clients.keys()) {
        expect(t.queue(replica, `/q${i}`), `r${replica} /q${i}`).to.deep.equal([bytes('a'), bytes('b')]);
      }
    }
    t.expectSameState(1, 2);
    t.end();
  });
});
