/**
 * Spare leases (src/coord/spare_leases.ts): once a client has locked, its next uncontended
 * lock costs one commit on the acquire's path (the ticket's create-and-list transaction), the
 * lease having been granted ahead of time; a spare left unused is revoked after its idle time.
 */
import { expect } from 'chai';
import type { NamespaceClient } from '../../src/client/namespace_client.ts';
import { Coordinator } from '../../src/coord/index.ts';
import { startNode, type HaretNode } from '../../src/index.ts';
import { coordClientOver } from './coord_test_client.ts';

describe('coordination: spare leases for locks', function () {
  this.timeout(30_000);
  let node: HaretNode;
  let db: NamespaceClient;

  before(async () => {
    node = await startNode({ namespaces: ['default'], logLevel: 'silent' });
    db = node.client('default');
  });
  after(async () => {
    await node.stop();
  });

  it('an uncontended lock after the first needs only its ticket transaction before it holds; release is one revoke', async () => {
    const calls: string[] = [];
    const coordinator = new Coordinator(coordClientOver(db, {}, calls));
    const first = await coordinator.lock('/spare/a', { ttlMs: 2_000 });
    await first.release();
    // Let the background grant of the next spare land.
    for (let i = 0; i < 100 && coordinator.stats().spareLeases === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(coordinator.stats().spareLeases).to.equal(1);
    calls.length = 0;
    const second = await coordinator.lock('/spare/a', { ttlMs: 2_000 });
    // The ticket's transaction, and the grant of the next spare started beside it (not awaited first).
    expect(calls.filter((name) => name !== 'leaseKeepAlive' && name !== 'watch')).to.have.members(['multiCas', 'leaseGrant']);
    expect(calls.indexOf('leaseGrant')).to.be.below(calls.indexOf('multiCas') + 1);
    calls.length = 0;
    await second.release();
    expect(calls.filter((name) => name !== 'leaseKeepAlive')).to.deep.equal(['leaseRevoke']);
    expect((await db.list('/spare/a')).entries).to.deep.equal([]);
    expect(coordinator.stats().leases).to.equal(0);
  });

  it('16 contenders looping on one lock all get through: a predecessor deleted later in the entry of a ticket\'s transaction is not missed', async () => {
    const coordinator = new Coordinator(coordClientOver(db));
    const rounds = 6;
    let holding = 0;
    let holds = 0;
    const contender = async (): Promise<void> => {
      for (let round = 0; round < rounds; round++) {
        const held = await coordinator.lock('/spare/busy', { ttlMs: 2_000, timeoutMs: 15_000 });
        holding += 1;
        expect(holding).to.equal(1);
        holds += 1;
        holding -= 1;
        await held.release();
      }
    };
    await Promise.all(Array.from({ length: 16 }, () => contender()));
    expect(holds).to.equal(16 * rounds);
  });

  it('a spare left unused is revoked after its idle time, at the service too', async () => {
    const coordinator = new Coordinator(coordClientOver(db));
    const before = (await node.status()).actors.find((actor) => actor.actor === 'default/r0')?.leases ?? 0;
    const held = await coordinator.lock('/spare/b', { ttlMs: 500 });
    await held.release();
    // Idle time is max(ttl, 5 s): the spare is there, then gone.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(coordinator.stats().spareLeases).to.equal(1);
    const deadline = performance.now() + 10_000;
    while (coordinator.stats().spareLeases > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(coordinator.stats().spareLeases).to.equal(0);
    let atService = Number.POSITIVE_INFINITY;
    while (performance.now() < deadline) {
      atService = (await node.status()).actors.find((actor) => actor.actor === 'default/r0')?.leases ?? 0;
      if (atService <= before) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(atService).to.be.at.most(before);
  });
});
