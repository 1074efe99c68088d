/**
 * `workerLayout: 'main_thread'` (src/node/options.ts): every replica of the node's own
 * namespaces on the node's main thread, beside its TCP server. It serves like any layout,
 * embedded and over TCP (the lock recipe included); a replica's throw stays in that replica,
 * which the supervisor re-creates (a durable one from its store, once its old self has closed
 * its files) and which recovers, while the other two serve on and nothing acknowledged is lost.
 */

import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from '../../src/coord/index.ts';
import { connect } from '../../src/net/index.ts';
import { startNode } from '../../src/node/index.ts';
import { crashBackupThenPrimary, crashR2UnderWrites, replicaStates, writer } from './layout_drills.ts';

const decoder = new TextDecoder();

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
      await crashBackupThenPrimary(node, writers);
    } finally {
      await Promise.all(writers.map((load) => load.stop()));
      await node.stop();
    }
  });

  it('durable: a replica\'s throw re-creates it from its store after its old self stopped; writes go on; nothing acknowledged is lost, across a restart of the node too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'haret-main-thread-'));
    const writers: ReturnType<typeof writer>[] = [];
    let acknowledged: string[] = [];
    try {
      const node = await startNode({ logLevel: 'silent', workerLayout: 'main_thread', dataDir: dir });
      try {
        acknowledged = [...(await crashR2UnderWrites(node, writers)).acknowledged];
      } finally {
        await Promise.all(writers.map((load) => load.stop()));
        await node.stop();
      }
      const again = await startNode({ logLevel: 'silent', workerLayout: 'main_thread', dataDir: dir });
      try {
        const stored = new Set((await again.client().list('/w')).entries.map((entry) => entry.name));
        expect(acknowledged.filter((name) => !stored.has(name)), 'acknowledged but missing after the restart').to.deep.equal([]);
      } finally {
        await again.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
