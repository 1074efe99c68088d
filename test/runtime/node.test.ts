/**
 * The embedding API on real workers: a 3-replica namespace under concurrent load survives its
 * primary's worker being terminated and a backup throwing inside a handler, with every
 * acknowledged write present exactly once; the supervisor's limit; independent namespaces;
 * bad input; and a clean stop from both the sources and the compiled output.
 */

import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HaretError, startNode, type HaretNode } from '../../src/node/index.ts';
import { compiledFresh } from '../../runtime/bootstrap.ts';
import { eventually, runChild } from './helpers.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const { useCompiled } = compiledFresh();
const decoder = new TextDecoder();

/** Every replica of `ns` in normal status in one view, with none restarting. */
async function settled(node: HaretNode, ns: string): Promise<boolean> {
  const { actors } = await node.status();
  // By actor id: a replica whose worker is down reports no namespace of its own.
  const replicas = actors.filter((actor) => actor.actor.startsWith(`${ns}/r`));
  if (replicas.length === 0 || replicas.some((r) => r.state !== 'running' || r.status !== 'normal')) return false;
  return new Set(replicas.map((r) => r.view)).size === 1;
}

describe('node: embedding API on worker threads', function () {
  this.timeout(180_000);

  it('commits 10,000 ops from 50 concurrent callers through a primary kill and a backup crash, each acknowledged write exactly once', async () => {
    const node = await startNode({ logLevel: 'silent', supervisor: { maxRestarts: 5, windowMs: 60_000, backoffMinMs: 10, backoffMaxMs: 100 } });
    try {
      const client = node.client();
      const callers = 50;
      const perCaller = 200;
      await Promise.all(Array.from({ length: callers }, (_, k) => client.create(`/q${k}`, 'queue')));
      const acked: Set<string>[] = Array.from({ length: callers }, () => new Set());
      const maybe: Set<string>[] = Array.from({ length: callers }, () => new Set());
      let ackedTotal = 0;
      const unexpected: unknown[] = [];
      const work = Promise.all(
        Array.from({ length: callers }, async (_, k) => {
          for (let i = 0; i < perCaller; i += 1) {
            const value = `${k}-${i}`;
            try {
              await client.queuePush(`/q${k}`, value);
              acked[k]?.add(value);
              ackedTotal += 1;
            } catch (error) {
              if (error instanceof HaretError && error.executed === 'maybe') maybe[k]?.add(value);
              else unexpected.push(error);
            }
          }
        }),
      );

      // Under load: terminate the primary's worker.
      await eventually('2,500 acknowledged', () => ackedTotal >= 2500, 60_000, 5);
      const firstPrimary = await node.primaryOf('default');
      expect(firstPrimary).to.not.equal(null);
      await node.faults.terminate(node.replicaId('default', firstPrimary as number));
      await eventually('a new primary and the old one recovered', () => settled(node, 'default'), 60_000, 50);
      const secondPrimary = await node.primaryOf('default');
      expect(secondPrimary).to.not.equal(firstPrimary);

      // Then a backup throws inside a handler.
      await eventually('6,000 acknowledged', () => ackedTotal >= 6000, 60_000, 5);
      const primaryNow = (await node.primaryOf('default')) as number;
      const backup = (primaryNow + 1) % 3;
      await node.faults.inject(node.replicaId('default', backup), 'throw');
      await work;
      await eventually('the group settles again', () => settled(node, 'default'), 60_000, 50);

      expect(unexpected).to.deep.equal([]);
      const total = acked.reduce((sum, set) => sum + set.size, 0) + maybe.reduce((sum, set) => sum + set.size, 0);
      expect(total).to.equal(callers * perCaller);
      expect(ackedTotal).to.be.greaterThan(callers * perCaller * 0.9);

      // Read every queue back: every acknowledged value once, in order; nothing twice; nothing foreign.
      await Promise.all(
        Array.from({ length: callers }, async (_, k) => {
          const seen: string[] = [];
          for (;;) {
            const popped = await client.queuePop(`/q${k}`);
            if (popped.value === null) break;
            seen.push(decoder.decode(popped.value));
          }
          const indexes = seen.map((value) => Number(value.split('-')[1]));
          expect(new Set(seen).size, `queue ${k} has a value twice`).to.equal(seen.length);
          expect(indexes, `queue ${k} out of order`).to.deep.equal([...indexes].sort((a, b) => a - b));
          for (const value of acked[k] ?? []) expect(seen, `queue ${k} lost ${value}`).to.include(value);
          for (const value of seen) expect(acked[k]?.has(value) === true || maybe[k]?.has(value) === true, `queue ${k}: foreign ${value}`).to.equal(true);
        }),
      );

      const { actors } = await node.status();
      const restarts = Object.fromEntries(actors.map((a) => [a.actor, a.restarts]));
      expect(restarts[node.replicaId('default', firstPrimary as number)]).to.equal(1);
      expect(restarts[node.replicaId('default', backup)]).to.be.at.least(1);
    } finally {
      await node.stop();
    }
  });

  it('two of three replicas killed at once: the node says the namespace cannot recover (serving false, the problem named), not a healthy-looking status', async () => {
    const node = await startNode({ logLevel: 'silent' });
    try {
      const client = node.client();
      await client.create('/kept', 'blob');
      expect((await node.status()).serving).to.equal(true);
      await Promise.all([node.faults.terminate(node.replicaId('default', 1)), node.faults.terminate(node.replicaId('default', 2))]);
      const problem = await eventually('the stuck namespace in status', async () => {
        const status = await node.status();
        return status.serving ? null : (status.problems.find((line) => line.startsWith('namespace default:')) ?? null);
      });
      expect(problem).to.contain('2 of 3 replicas are recovering or down, more than f = 1');
      expect(problem).to.contain('in memory only');
    } finally {
      await node.stop();
    }
  });

  it('shared worker layout: replica i of every namespace in worker i, same actors', async () => {
    const node = await startNode({ logLevel: 'silent', namespaces: ['alpha', 'beta'], workerLayout: 'shared' });
    try {
      const { workers } = await node.status();
      expect(workers.map((w) => w.name)).to.have.members(['replicas.0', 'replicas.1', 'replicas.2', 'proxy', 'timer']);
      await node.client('alpha').create('/a', 'blob');
      await node.client('beta').create('/a', 'blob');
      expect((await node.client('beta').stat('/a')).nodeType).to.equal('blob');
    } finally {
      await node.stop();
    }
  });

  it('shared worker layout: a replica\'s throw is contained; its neighbour of the other namespace in the same worker never stops', async () => {
    const node = await startNode({ logLevel: 'silent', namespaces: ['alpha', 'beta'], workerLayout: 'shared' });
    try {
      await node.client('alpha').create('/a', 'blob');
      await node.client('beta').create('/b', 'blob');
      await node.faults.crashActor('alpha/r1');
      await eventually('alpha/r1 re-created, normal again', async () => {
        const r1 = (await node.status()).actors.find((a) => a.actor === 'alpha/r1');
        return r1 !== undefined && r1.restarts >= 1 && r1.state === 'running' && r1.status === 'normal' ? true : null;
      }, 30_000);
      const { actors, workers } = await node.status();
      const neighbour = actors.find((a) => a.actor === 'beta/r1');
      expect(neighbour?.worker).to.equal(actors.find((a) => a.actor === 'alpha/r1')?.worker);
      expect([neighbour?.restarts, neighbour?.status]).to.deep.equal([0, 'normal']);
      expect(workers.find((w) => w.name === 'replicas.1')?.restarts).to.equal(0);
      await node.client('alpha').blobPut('/a', 'after');
      await node.client('beta').blobPut('/b', 'after');
    } finally {
      await node.stop();
    }
  });

  it('runs two namespaces independently: data apart, and a primary kill in one leaves the other in view 0', async () => {
    const node = await startNode({ logLevel: 'silent', namespaces: ['alpha', 'beta'] });
    try {
      const alpha = node.client('alpha');
      const beta = node.client('beta');
      await alpha.create('/k', 'blob');
      await beta.create('/k', 'blob');
      await alpha.blobPut('/k', 'from alpha');
      await beta.blobPut('/k', 'from beta');
      expect(decoder.decode((await alpha.blobGet('/k')).value)).to.equal('from alpha');
      expect(decoder.decode((await beta.blobGet('/k')).value)).to.equal('from beta');
      await alpha.create('/only-alpha', 'set');
      const error = await beta.stat('/only-alpha').catch((e: unknown) => e);
      expect(error).to.be.instanceOf(HaretError).with.property('code', 'does_not_exist');
      await node.faults.terminate(node.replicaId('alpha', 0));
      const moved = await eventually('alpha has a new primary', async () => ((await alpha.blobPut('/k', 'after kill')).view > 0 ? true : null), 30_000);
      expect(moved).to.equal(true);
      const betaPut = await beta.blobPut('/k', 'beta untouched');
      expect(betaPut.view).to.equal(0);
      const { actors } = await node.status();
      expect(actors.filter((a) => a.ns === 'beta').map((a) => a.view)).to.deep.equal([0, 0, 0]);
    } finally {
      await node.stop();
    }
  });

  it('marks a replica failed after its restart limit, keeps serving with the rest, and rejects control calls to it at once', async () => {
    const node = await startNode({ logLevel: 'silent', supervisor: { maxRestarts: 1, windowMs: 60_000, backoffMinMs: 5, backoffMaxMs: 20 }, controlTimeoutMs: 500 });
    try {
      const client = node.client();
      await client.create('/x', 'blob');
      const victim = node.replicaId('default', 2);
      await node.faults.inject(victim, 'throw');
      await eventually('one restart', async () => (await node.status()).actors.find((a) => a.actor === victim)?.restarts === 1);
      await eventually('the victim recovered', () => settled(node, 'default'), 30_000, 50);
      await node.faults.inject(victim, 'throw');
      const report = await eventually('failed', async () => {
        const actor = (await node.status()).actors.find((a) => a.actor === victim);
        return actor?.state === 'failed' ? actor : null;
      });
      expect(report.failure).to.contain('restarts within');
      expect(report.detail).to.equal(null);
      const started = performance.now();
      const inspectError = await node.inspect(victim).catch((e: unknown) => e);
      expect(String(inspectError)).to.contain('down');
      expect(performance.now() - started).to.be.below(500);
      // Two of three replicas are a quorum: writes still commit.
      const put = await client.blobPut('/x', 'still serving');
      expect(put.version).to.equal(1);
    } finally {
      await node.stop();
    }
  });

  it('with the proxy on the main thread: serves, and a proxy crash fails in-flight calls as proxy_restarted, then it is re-created', async () => {
    const node = await startNode({ logLevel: 'silent', proxyThread: 'host', supervisor: { maxRestarts: 3, windowMs: 60_000, backoffMinMs: 5, backoffMaxMs: 20 } });
    try {
      const { workers, actors } = await node.status();
      expect(workers.map((w) => w.name)).to.not.include('proxy');
      expect(actors.find((a) => a.actor === 'proxy')).to.include({ worker: 'host', state: 'running', role: 'proxy' });
      const client = node.client();
      await client.create('/c', 'queue');
      const inFlight = Array.from({ length: 20 }, (_, i) => client.queuePush('/c', `v${i}`).then(
        () => 'ok',
        (error: unknown) => (error instanceof HaretError ? error.code : String(error)),
      ));
      node.faults.crashHostActor('proxy');
      const outcomes = await Promise.all(inFlight);
      expect(outcomes.every((o) => o === 'ok' || o === 'proxy_restarted'), outcomes.join(',')).to.equal(true);
      await eventually('proxy re-created', async () => (await node.status()).actors.find((a) => a.actor === 'proxy')?.state === 'running');
      const after = await client.queuePush('/c', 'after');
      expect(after.type).to.equal('ok');
      const proxy = (await node.status()).actors.find((a) => a.actor === 'proxy');
      expect(proxy?.restarts).to.equal(1);
    } finally {
      await node.stop();
    }
  });

  it('writes checkpoint images in slices at the backups, and a restarted replica recovers past a checkpoint', async () => {
    const node = await startNode({ logLevel: 'silent', namespaces: [{ name: 'default', config: { checkpointIntervalOps: 8, logRetainOps: 8, batchMax: 1 } }] });
    try {
      const client = node.client();
      for (let i = 0; i < 30; i += 1) await client.create(`/n${i}`, 'blob');
      // The backups write images ahead of need; an in-memory primary does not (actors/replica.ts:
      // it is the busiest thread of the group, and a primary that needs one encodes it then).
      const encoded = await eventually('an image written at every backup', async () => {
        const { actors } = await node.status();
        const replicas = actors.filter((a) => a.ns === 'default');
        const backups = replicas.filter((a) => (a.detail as { role: string }).role === 'backup');
        const primary = replicas.filter((a) => (a.detail as { role: string }).role === 'primary');
        const images = backups.map((a) => (a.detail as { imagesEncoded: number }).imagesEncoded);
        if (primary.length !== 1 || backups.length !== 2) return null;
        expect((primary[0]?.detail as { imagesEncoded: number }).imagesEncoded).to.equal(0);
        return images.every((n) => n >= 1) ? images : null;
      });
      expect(encoded).to.have.length(2);
      await node.faults.terminate(node.replicaId('default', 2));
      for (let i = 0; i < 30; i += 1) await client.blobPut(`/n${i}`, `v${i}`);
      await eventually('the restarted replica caught up', async () => {
        const { actors } = await node.status();
        const r2 = actors.find((a) => a.actor === node.replicaId('default', 2));
        const r0 = actors.find((a) => a.actor === node.replicaId('default', 0));
        return r2?.restarts === 1 && r2.status === 'normal' && r2.commit !== null && r0?.commit !== null && r2.commit >= 60 ? true : null;
      }, 30_000, 50);
      const got = await client.blobGet('/n29');
      expect(decoder.decode(got.value)).to.equal('v29');
    } finally {
      await node.stop();
    }
  });

  it('a durable primary still encodes checkpoint images: its store cuts its log only behind a written one', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'haret-primary-images-'));
    const node = await startNode({ logLevel: 'silent', dataDir, namespaces: [{ name: 'default', config: { checkpointIntervalOps: 8, batchMax: 1 } }] });
    try {
      const client = node.client();
      for (let i = 0; i < 30; i += 1) await client.create(`/n${i}`, 'blob');
      const encoded = await eventually('an image encoded at the durable primary', async () => {
        const { actors } = await node.status();
        const primary = actors.find((a) => a.ns === 'default' && (a.detail as { role: string }).role === 'primary');
        const images = (primary?.detail as { imagesEncoded: number } | undefined)?.imagesEncoded ?? 0;
        return images >= 1 ? images : null;
      });
      expect(encoded).to.be.at.least(1);
    } finally {
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('answers bad input with typed errors and survives garbage sent to its replicas', async () => {
    const node = await startNode({ logLevel: 'silent' });
    try {
      const client = node.client();
      expect(() => node.client('nope')).to.throw(HaretError).with.property('code', 'unknown_namespace');
      const bogus = await client.execute({ type: 'bogus' } as never).catch((e: unknown) => e);
      expect(bogus).to.be.instanceOf(HaretError).with.property('code', 'invalid_request');
      expect((bogus as HaretError).executed).to.equal(false);
      const badPath = await client.create('no-slash', 'blob').catch((e: unknown) => e);
      expect(badPath).to.be.instanceOf(HaretError).with.property('code', 'bad_path');
      await client.create('/big', 'blob');
      const tooLarge = await client.blobPut('/big', new Uint8Array(2 * 1024 * 1024)).catch((e: unknown) => e);
      expect(tooLarge).to.be.instanceOf(HaretError).with.property('code', 'too_large');
      for (const garbage of [null, 42, 'text', { type: 'prepare' }, { type: 'request', clientId: 7 }, { type: 'do_view_change', view: -1 }, []]) {
        for (let index = 0; index < 3; index += 1) node.faults.sendRaw(node.replicaId('default', index), garbage);
      }
      node.faults.sendRaw('proxy', { type: 'call', callId: 1, ns: 'default', op: null });
      node.faults.sendRaw('proxy', 'garbage');
      await client.create('/after', 'blob');
      const put = await client.blobPut('/after', 'fine');
      expect(put.version).to.equal(1);
      const { actors } = await node.status();
      expect(actors.every((a) => a.restarts === 0)).to.equal(true);
      // The timer service restarts like any actor and ticks again at once.
      await node.faults.terminate('timer');
      const timer = await eventually('the timer restarted and ticking', async () => {
        const report = (await node.status()).actors.find((a) => a.actor === 'timer');
        const detail = report?.detail as { running?: boolean; ticks?: number } | null;
        return report?.restarts === 1 && detail?.running === true && (detail.ticks ?? 0) > 0 ? report : null;
      });
      expect(timer.state).to.equal('running');
      expect((await client.blobPut('/after', 'timer back')).version).to.equal(2);
    } finally {
      await node.stop();
    }
  });

  it('stops with no handle left open, from the sources and from the compiled output', async () => {
    const script = fileURLToPath(new URL('./fixtures/node_start_stop.mjs', import.meta.url));
    // Workers from the sources too (the suite's HARET_COMPILED=1 would run dist/'s: runtime/bootstrap.ts).
    const fromSources = await runChild(['--import', 'tsx', script, pathToFileURL(`${repoRoot}src/node/index.ts`).href], 60_000, undefined, { HARET_COMPILED: '0' });
    expect(fromSources.stderr).to.equal('');
    expect(fromSources.stdout).to.equal('hello v1 actors=6\n');
    expect(fromSources.code).to.equal(0);

    // The checkout's own build when it is of these sources (`npm test` builds first), else a
    // build made here.
    const built = useCompiled();
    const outDir = built ? `${repoRoot}dist` : `${repoRoot}.test-dist`;
    if (!built) {
      rmSync(outDir, { recursive: true, force: true });
      execFileSync(process.execPath, [`${repoRoot}node_modules/typescript/bin/tsc`, '-p', `${repoRoot}tsconfig.build.json`, '--outDir', outDir], { stdio: 'pipe' });
    }
    try {
      const compiled = await runChild([script, pathToFileURL(`${outDir}/src/node/index.js`).href], 60_000);
      expect(compiled.stderr).to.equal('');
      expect(compiled.stdout).to.equal('hello v1 actors=6\n');
      expect(compiled.code).to.equal(0);
    } finally {
      if (!built) rmSync(outDir, { recursive: true, force: true });
    }
  });
});
