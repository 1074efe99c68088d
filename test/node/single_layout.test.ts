/**
 * `workerLayout: 'single'` (src/node/options.ts): every replica of the node in one worker. It
 * serves like any layout. An actor's throw stays inside its actor (WorkerBoot.containCrashes):
 * that replica alone is re-created and recovers, the others serve on. What it gives up is that
 * a failure of the worker itself takes every replica of the node down at once: a durable node
 * comes back from its disk by itself, nothing acknowledged lost; an in-memory namespace cannot,
 * and says so at once (typed `unavailable`), never a hang.
 */

import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HaretError } from '../../src/client/errors.ts';
import { startNode } from '../../src/node/index.ts';
import { eventually } from '../runtime/helpers.ts';
import { crashBackupThenPrimary, crashR2UnderWrites, replicaStates, writer, writing } from './layout_drills.ts';

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
    const writers: ReturnType<typeof writer>[] = [];
    try {
      const client = node.client();
      const running = await writing(node, writers);
      await eventually('some writes acknowledged', () => running.acknowledged.length >= 50 || null, 15_000);
      await node.faults.terminate(node.replicaId('default', 0));
      const countAtKill = running.acknowledged.length;
      // Writes resume once the three replicas have resumed from their stores.
      await eventually('writes acknowledged again', () => running.acknowledged.length >= countAtKill + 20 || null, 60_000, 50);
      await running.stop();
      // A write the kill came first to is not acknowledged, and is refused typed; the next write
      // makes a fresh name, so the check below stays exact for the acknowledged ones.
      for (const error of running.errors) expect(error).to.be.instanceOf(HaretError);
      const stored = new Set((await client.list('/w')).entries.map((entry) => entry.name));
      expect(running.acknowledged.filter((name) => !stored.has(name)), 'acknowledged but missing').to.deep.equal([]);
      const { actors } = await node.status();
      expect(actors.filter((a) => a.ns === 'default').map((a) => a.status)).to.deep.equal(['normal', 'normal', 'normal']);
    } finally {
      await Promise.all(writers.map((load) => load.stop()));
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an actor\'s throw stays in that replica: in memory, a backup and then the primary crash; the others serve on, each comes back through recovery, the worker never restarts', async () => {
    const node = await startNode({ logLevel: 'silent', workerLayout: 'single' });
    const writers: ReturnType<typeof writer>[] = [];
    try {
      await crashBackupThenPrimary(node, writers);
      const { workers } = await node.status();
      expect(workers.find((w) => w.name === 'replicas')?.restarts, 'the worker itself never restarted').to.equal(0);
    } finally {
      await Promise.all(writers.map((load) => load.stop()));
      await node.stop();
    }
  });

  it('durable: a replica\'s throw re-creates it from its store (after its old self stopped); nothing acknowledged is lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'haret-single-crash-'));
    const node = await startNode({ logLevel: 'silent', workerLayout: 'single', dataDir: dir });
    const writers: ReturnType<typeof writer>[] = [];
    try {
      const running = await crashR2UnderWrites(node, writers);
      const stored = new Set((await node.client().list('/w')).entries.map((entry) => entry.name));
      expect(running.acknowledged.filter((name) => !stored.has(name)), 'acknowledged but missing').to.deep.equal([]);
      expect((await node.status()).workers.find((w) => w.name === 'replicas')?.restarts).to.equal(0);
    } finally {
      await Promise.all(writers.map((load) => load.stop()));
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a replica that keeps crashing is `failed` past the restart intensity, said in status; the other two serve on', async () => {
    const node = await startNode({ logLevel: 'silent', workerLayout: 'single', supervisor: { maxRestarts: 1, windowMs: 60_000, backoffMinMs: 5, backoffMaxMs: 20, failedCoolDownMs: 60_000 } });
    try {
      const client = node.client();
      await client.create('/k', 'blob');
      const r1 = node.replicaId('default', 1);
      await node.faults.crashActor(r1);
      await eventually('r1 re-created once', async () => ((await replicaStates(node)).find((a) => a.actor === r1)?.restarts === 1 ? true : null), 30_000, 20);
      await eventually('r1 running again', async () => ((await replicaStates(node)).find((a) => a.actor === r1)?.state === 'running' ? true : null), 30_000, 20);
      await node.faults.crashActor(r1);
      await eventually('r1 failed', async () => ((await replicaStates(node)).find((a) => a.actor === r1)?.state === 'failed' ? true : null), 30_000, 20);
      const status = await node.status();
      expect(status.serving).to.equal(false);
      expect(status.problems.join('\n')).to.contain(r1);
      // r0 and r2 are a quorum: writes still commit.
      await client.blobPut('/k', 'still served');
      expect(decoder.decode((await client.blobGet('/k')).value)).to.equal('still served');
      expect(status.workers.find((w) => w.name === 'replicas')?.state).to.equal('running');
    } finally {
      await node.stop();
    }
  });

  it('a watch served by a replica whose throw was contained resubscribes and sees every later change once, in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'haret-single-watch-'));
    const node = await startNode({ logLevel: 'silent', dataDir: dir });
    try {
      expect(node.options.workerLayout, 'a durable node defaults to one worker for its replicas').to.equal('single');
      const client = node.client();
      await client.create('/k', 'blob');
      const stream = client.watch('/k', { values: true });
      const seen: string[] = [];
      const reading = (async () => {
        for await (const batch of stream) for (const event of batch.events) if (event.value !== undefined && event.value !== null) seen.push(decoder.decode(event.value));
      })();
      const serving = await eventually('a replica serves the watch', async () => (await node.status()).actors.find((a) => a.ns === 'default' && (a.watches ?? 0) > 0)?.actor ?? null, 10_000);
      await client.blobPut('/k', 'before');
      await eventually('the first change seen', () => (seen.includes('before') ? true : null), 10_000);
      await node.faults.crashActor(serving);
      for (let i = 0; i < 20; i++) await client.blobPut('/k', `after-${i}`);
      await eventually('every later change seen', () => (seen.includes('after-19') ? true : null), 30_000, 20);
      stream.cancel();
      await reading;
      expect(seen).to.deep.equal(['before', ...Array.from({ length: 20 }, (_, i) => `after-${i}`)]);
      const crashed = (await node.status()).actors.find((a) => a.actor === serving);
      expect(crashed?.restarts).to.be.at.least(1);
    } finally {
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
