/**
 * `workerLayout: 'main_thread'` (src/node/options.ts): every replica of the node's own
 * namespaces on the node's main thread, beside its TCP server, for in-memory nodes. It serves
 * like any layout, embedded and over TCP (the lock recipe included); a replica's throw stays in
 * that replica, which the supervisor re-creates and which recovers from the others, while the
 * other two serve on and nothing acknowledged is lost.
 */

import { expect } from 'chai';
import { Coordinator } from '../../src/coord/index.ts';
import { connect } from '../../src/net/index.ts';
import { startNode, type HaretNode } from '../../src/node/index.ts';
import { eventually } from '../runtime/helpers.ts';
import { writer, writing } from './writer.ts';

const decoder = new TextDecoder();

async function replicaStates(node: HaretNode): Promise<{ actor: string; state: string; status: string | null; restarts: number; worker: string }[]> {
  return (await node.status()).actors.filter((a) => /^default\/r\d$/.test(a.actor)).map((a) => ({ actor: a.actor, state: a.state, status: a.status, restarts: a.restarts, worker: a.worker }));
}

describe('node: the main_thread layout', function () {
  this.timeout(120_000);

  it('runs no replica in a worker; embedded calls and a TCP client (a put, a lock and its release) are served', async () => {
    const node = await startNode({ logLevel: 'silent', workerLayout: 'main_thread', clientApi: { host: '127.0.0.1', port: 0 } });
    try {
      const status = await node.status();
      expect(status.workers.map((w) => w.name)).to.have.members(['proxy', 'timer']);
      const replicas = await replicaStates(node);
      expect(replicas).to.have.length(3);
      expect(new Set(replicas.map((r) => r.worker)).size, 'one thread for the three').to.equal(1);
      expect(replicas.map((r) => r.worker)).to.not.include('replicas');
      await node.client().create('/a', 'blob');
      await node.client().blobPut('/a', 'embedded');
      expect(decoder.decode((await node.client().blobGet('/a')).value)).to.equal('embedded');
      const address = node.clientApiAddress;
      expect(address).to.not.equal(null);
      const remote = await connect([`${address?.host}:${address?.port}`]);
      try {
        const db = remote.client('default');
        await db.blobPut('/a', 'over tcp');
        expect(decoder.decode((await node.client().blobGet('/a')).value)).to.equal('over tcp');
        const coordinator = new Coordinator(db);
        const first = await coordinator.lock('/locks/l');
        await first.release();
        const second = await coordinator.lock('/locks/l');
        expect(second.token).to.be.greaterThan(first.token);
        await second.release();
      } finally {
        await remote.close();
      }
    } finally {
      await node.stop();
    }
  });

  it('a replica\'s throw stays in that replica: a backup and then the primary crash; writes go on, each comes back through recovery, nothing acknowledged is lost', async () => {
    const node = await startNode({ logLevel: 'silent', workerLayout: 'main_thread' });
    const writers: ReturnType<typeof writer>[] = [];
    try {
      const running = await writing(node, writers);
      await node.faults.crashActor(node.replicaId('default', 1));
      await eventually('r1 re-created and back to normal', async () => {
        const r1 = (await replicaStates(node)).find((a) => a.actor === 'default/r1');
        return r1 !== undefined && r1.restarts >= 1 && r1.state === 'running' && r1.status === 'normal' ? true : null;
      }, 30_000, 50);
      const afterBackup = running.acknowledged.length;
      const primary = (await node.status()).actors.find((a) => a.ns === 'default' && a.role === 'primary')?.actor ?? '';
      expect(primary).to.match(/^default\/r\d$/);
      await node.faults.crashActor(primary);
      await eventually('writes acknowledged after the primary crashed', () => running.acknowledged.length >= afterBackup + 30 || null, 30_000, 50);
      await eventually('every replica normal again', async () => ((await replicaStates(node)).every((a) => a.status === 'normal' && a.state === 'running') ? true : null), 30_000, 50);
      await running.stop();
      expect(node.health.unavailable('default'), 'never unavailable').to.equal(null);
      const states = await replicaStates(node);
      expect(states.find((a) => a.actor === 'default/r1')?.restarts).to.be.at.least(1);
      expect(states.find((a) => a.actor === primary)?.restarts).to.be.at.least(1);
      const stored = new Set((await node.client().list('/w')).entries.map((entry) => entry.name));
      expect(running.acknowledged.filter((name) => !stored.has(name)), 'acknowledged but missing').to.deep.equal([]);
    } finally {
      await Promise.all(writers.map((load) => load.stop()));
      await node.stop();
    }
  });
});
