/**
 * `workerLayout: 'single'` (src/node/options.ts): every replica of the node in one worker. It
 * serves like any layout; what it gives up is that one worker's failure takes every replica of
 * the node down at once. A durable node comes back from its disk by itself, nothing acknowledged
 * lost; an in-memory namespace cannot, and says so at once (typed `unavailable`), never a hang.
 */

import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HaretError } from '../../src/client/errors.ts';
import { startNode } from '../../src/node/index.ts';
import { eventually } from '../runtime/helpers.ts';

const decoder = new TextDecoder();

describe('node: the single worker layout', function () {
  this.timeout(120_000);

  it('runs every replica of every namespace in one worker; both namespaces serve, apart', async () => {
    const node = await startNode({ logLevel: 'silent', namespaces: ['alpha', 'beta'], workerLayout: 'single' });
    try {
      const { workers, actors } = await node.status();
      expect(workers.map((w) => w.name)).to.have.members(['replicas', 'proxy', 'timer']);
      expect(actors.filter((a) => a.ns !== null && a.ns !== undefined).map((a) => a.worker)).to.deep.equal(Array.from({ length: 6 }, () => 'replicas'));
      await node.client('alpha').create('/a', 'blob');
      await node.client('alpha').blobPut('/a', 'alpha');
      await node.client('beta').create('/a', 'blob');
      await node.client('beta').blobPut('/a', 'beta');
      expect(decoder.decode((await node.client('alpha').blobGet('/a')).value)).to.equal('alpha');
      expect(decoder.decode((await node.client('beta').blobGet('/a')).value)).to.equal('beta');
    } finally {
      await node.stop();
    }
  });

  it('in memory: the worker killed takes all three replicas; the namespace says so and calls get `unavailable` at once', async () => {
    const node = await startNode({ logLevel: 'silent', workerLayout: 'single' });
    try {
      const client = node.client();
      await client.create('/kept', 'blob');
      await node.faults.terminate(node.replicaId('default', 0));
      const reason = await eventually('the namespace marked', () => node.health.unavailable('default'), 15_000, 20);
      expect(reason).to.contain('cannot serve');
      const started = performance.now();
      const error = await client.stat('/kept').then(
        () => null,
        (e: unknown) => e,
      );
      expect(performance.now() - started).to.be.below(500);
      expect(error).to.be.instanceOf(HaretError);
      expect(error).to.include({ code: 'unavailable', executed: false });
    } finally {
      await node.stop();
    }
  });

  it('durable: the worker killed under writes comes back from disk by itself; every acknowledged write is there, and it serves again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'haret-single-layout-'));
    const node = await startNode({ logLevel: 'silent', workerLayout: 'single', dataDir: dir });
    try {
      const client = node.client();
      await client.create('/w', 'directory');
      const acknowledged: string[] = [];
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          try {
            await client.create(`/w/v${i}`, 'blob');
            acknowledged.push(`v${i}`);
          } catch (error) {
            // Not acknowledged (the kill came first): it may or may not be there; the next write
            // makes a fresh name, so the check below stays exact for the acknowledged ones.
            expect(error).to.be.instanceOf(HaretError);
          }
        }
      })();
      await eventually('some writes acknowledged', () => acknowledged.length >= 50 || null, 15_000);
      await node.faults.terminate(node.replicaId('default', 0));
      const countAtKill = acknowledged.length;
      // Writes resume once the three replicas have resumed from their stores.
      await eventually('writes acknowledged again', () => acknowledged.length >= countAtKill + 20 || null, 60_000, 50);
      writing = false;
      await writer;
      const stored = new Set((await client.list('/w')).entries.map((entry) => entry.name));
      expect(acknowledged.filter((name) => !stored.has(name)), 'acknowledged but missing').to.deep.equal([]);
      const { actors } = await node.status();
      expect(actors.filter((a) => a.ns === 'default').map((a) => a.status)).to.deep.equal(['normal', 'normal', 'normal']);
    } finally {
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
