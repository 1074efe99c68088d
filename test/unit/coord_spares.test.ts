/**
 * The lease pool of locks (src/coord/spare_leases.ts): once a client has locked, its next
 * uncontended lock sends only the ticket's create-and-list transaction and a quick release
 * one delete, the lease going back to the pool; a release that cannot delete revokes instead;
 * the pool is bounded and an idle lease is revoked after its idle time.
 */
import { expect } from 'chai';
import type { NamespaceClient } from '../../src/client/namespace_client.ts';
import { HaretError } from '../../src/client/errors.ts';
import { Coordinator } from '../../src/coord/index.ts';
import { heldWatchDelayMs } from '../../src/coord/held.ts';
import { startNode, type HaretNode } from '../../src/index.ts';
import { coordClientOver } from './coord_test_client.ts';

describe('coordination: the lease pool of locks', function () {
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

  it('an uncontended lock after the first sends only its ticket transaction, and a quick release one delete: the lease goes back to the pool', async () => {
    const calls: string[] = [];
    const coordinator = new Coordinator(coordClientOver(db, {}, calls));
    const first = await coordinator.lock('/spare/a', { ttlMs: 2_000 });
    // The first lock granted its lease on its path and started the background grant of a spare.
    expect(calls.filter((name) => name === 'leaseGrant')).to.have.length(2);
    await first.release();
    // Let the background grant land: then the released lease and the spare wait idle.
    for (let i = 0; i < 100 && coordinator.stats().spareLeases < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(coordinator.stats()).to.include({ spareLeases: 2, leases: 0 });
    const watchesBefore = coordinator.stats().watchesOpened;
    for (let round = 0; round < 5; round++) {
      calls.length = 0;
      const held = await coordinator.lock('/spare/a', { ttlMs: 2_000 });
      expect(calls.filter((name) => name !== 'leaseKeepAlive')).to.deep.equal(['multiCas']);
      expect(coordinator.stats()).to.include({ spareLeases: 1, leases: 1 });
      calls.length = 0;
      await held.release();
      expect(calls.filter((name) => name !== 'leaseKeepAlive')).to.deep.equal(['delete']);
      expect(coordinator.stats()).to.include({ spareLeases: 2, leases: 0 });
    }
    // Released within heldWatchDelayMs: no watch of the held node was ever opened.
    expect(coordinator.stats().watchesOpened).to.equal(watchesBefore);
    expect((await db.list('/spare/a')).entries).to.deep.equal([]);
  });

  it('a holder that holds past heldWatchDelayMs watches its node (one watch), closed at release', async () => {
    const coordinator = new Coordinator(coordClientOver(db));
    const held = await coordinator.lock('/spare/watched', { ttlMs: 2_000 });
    const opened = coordinator.stats().watchesOpened;
    await new Promise((resolve) => setTimeout(resolve, heldWatchDelayMs + 50));
    expect(coordinator.stats().watchesOpened).to.equal(opened + 1);
    expect(coordinator.stats().watchesOpen).to.equal(1);
    await held.release();
    expect(coordinator.stats()).to.include({ watchesOpen: 0, leases: 0 });
  });

  it('a node deleted by someone else before the held watch starts is still reported (the watch replays from the token)', async () => {
    const coordinator = new Coordinator(coordClientOver(db));
    const held = await coordinator.lock('/spare/early', { ttlMs: 2_000 });
    await db.delete(held.path);
    const lost = await held.lost;
    expect(lost.code).to.equal('does_not_exist');
    await held.release();
    // The lease held only that node: it went back to the pool, alive.
    expect(coordinator.stats().leases).to.equal(0);
    const next = await coordinator.lock('/spare/early', { ttlMs: 2_000 });
    await next.release();
    expect((await db.list('/spare/early')).entries).to.deep.equal([]);
  });

  it('a release whose delete fails revokes the lease instead of pooling it, so the ticket still goes', async () => {
    const calls: string[] = [];
    let failDeletes = false;
    const coordinator = new Coordinator(
      coordClientOver(
        db,
        {
          delete: (path: string) => (failDeletes ? Promise.reject(new HaretError('unavailable', 'made to fail', false)) : db.delete(path)),
        },
        calls,
      ),
    );
    const held = await coordinator.lock('/spare/undeletable', { ttlMs: 2_000 });
    failDeletes = true;
    calls.length = 0;
    const sparesBefore = coordinator.stats().spareLeases;
    await held.release();
    expect(calls.filter((name) => name !== 'leaseKeepAlive')).to.deep.equal(['delete', 'leaseRevoke']);
    expect(coordinator.stats().spareLeases).to.equal(sparesBefore);
    expect(coordinator.stats().leases).to.equal(0);
    expect((await db.list('/spare/undeletable')).entries).to.deep.equal([]);
  });

  it('a pooled lease revoked at the service behind the client\'s back is replaced: the next lock still holds', async () => {
    const granted: number[] = [];
    const coordinator = new Coordinator(
      coordClientOver(db, {
        leaseGrant: async (ttlMs: number) => {
          const lease = await db.leaseGrant(ttlMs);
          granted.push(lease.id);
          return lease;
        },
      }),
    );
    const first = await coordinator.lock('/spare/revoked', { ttlMs: 3_000 });
    await first.release();
    for (let i = 0; i < 100 && coordinator.stats().spareLeases < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(coordinator.stats().spareLeases).to.equal(2);
    // Both pooled leases end at the service; the client learns it only at its next keep-alive (1 s away).
    for (const id of granted) await db.leaseRevoke(id);
    const grantsBefore = granted.length;
    const second = await coordinator.lock('/spare/revoked', { ttlMs: 3_000 });
    expect(granted.length).to.equal(grantsBefore + 1);
    expect((await db.list('/spare/revoked')).entries.map((entry) => entry.path)).to.deep.equal([second.path]);
    await second.release();
    expect((await db.list('/spare/revoked')).entries).to.deep.equal([]);
  });

  it('the pool is bounded: 24 locks held at once leave at most 16 idle leases of their TTL, the rest revoked at the service', async () => {
    const coordinator = new Coordinator(coordClientOver(db));
    const before = (await node.status()).actors.find((actor) => actor.actor === 'default/r0')?.leases ?? 0;
    const held = await Promise.all(Array.from({ length: 24 }, (_, k) => coordinator.lock(`/spare/many/${k}`, { ttlMs: 3_000 })));
    await Promise.all(held.map((lock) => lock.release()));
    for (let i = 0; i < 100 && coordinator.stats().leases > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(coordinator.stats().leases).to.equal(0);
    expect(coordinator.stats().spareLeases).to.be.at.most(16);
    let atService = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 100; i++) {
      atService = (await node.status()).actors.find((actor) => actor.actor === 'default/r0')?.leases ?? 0;
      if (atService <= before + 16) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(atService).to.be.at.most(before + 16);
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
    // The released lease and the spare granted beside the first lock.
    expect(coordinator.stats().spareLeases).to.equal(2);
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
