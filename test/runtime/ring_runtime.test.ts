/**
 * The runtime's promises held on the ring transport (`transport: 'ring'`), a representative set
 * of runtime.test.ts and node.test.ts: workers restarted after every kind of death are linked
 * afresh and serve; a namespace under concurrent load survives its primary's worker being
 * terminated and a backup crashing, every acknowledged write present exactly once; the proxy on
 * the main thread; a clean exit after stop; the option validated like `codec`.
 */

import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import type { SystemEvent } from '../../runtime/index.ts';
import type { RingTransportStats } from '../../runtime/ring_transport.ts';
import { HaretError, startNode, type HaretNode } from '../../src/node/index.ts';
import { eventually, Probe, runChild } from './helpers.ts';
import { startRingEcho } from './ring_echo.ts';

const decoder = new TextDecoder();

type Pong = { type: 'pong'; n: number; by: string };
const pongs = (messages: readonly unknown[]): Pong[] => messages.filter((m): m is Pong => (m as Pong).type === 'pong');

/** Every replica of `ns` in normal status in one view, with none restarting. */
async function settled(node: HaretNode, ns: string): Promise<boolean> {
  const { actors } = await node.status();
  const replicas = actors.filter((actor) => actor.actor.startsWith(`${ns}/r`));
  if (replicas.length === 0 || replicas.some((r) => r.state !== 'running' || r.status !== 'normal')) return false;
  return new Set(replicas.map((r) => r.view)).size === 1;
}

describe('runtime on the ring transport', function () {
  this.timeout(60_000);

  it('restarts a worker that throws, exits or is terminated; the new one is linked by fresh rings to the host and its peer', async () => {
    const probe = new Probe();
    const events: SystemEvent[] = [];
    const system = await startRingEcho(probe, {
      restartInit: (spec, restart) => ({ label: `${spec.id}-restart-${restart}` }),
      supervisor: { maxRestarts: 10, windowMs: 60_000, backoffMinMs: 5, backoffMaxMs: 50 },
      onEvent: (event) => events.push(event),
    });
    try {
      const crashes: (() => Promise<void>)[] = [() => system.injectFault('w1', 'throw'), () => system.injectFault('w1', 'exit'), () => system.terminate('w1')];
      for (const [i, crash] of crashes.entries()) {
        await crash();
        await eventually(`restart ${i + 1}`, () => events.filter((e) => e.type === 'worker_restarted').length === i + 1);
        // host -> new w1 -> host, and host -> w2 -> new w1 -> w2 -> new w1 -> host.
        system.send({ from: 'host/probe', to: 'a', msg: { type: 'ping', n: 100 + i } });
        system.send({ from: 'host/probe', to: 'b', msg: { type: 'forward', to: 'a', n: 200 + i } });
        await probe.until(`pongs after restart ${i + 1}`, (m) => pongs(m).some((p) => p.n === 100 + i) && pongs(m).some((p) => p.n === 200 + i));
        expect(pongs(probe.messages).find((p) => p.n === 100 + i)?.by).to.equal(`a-restart-${i + 1}`);
        expect(pongs(probe.messages).find((p) => p.n === 200 + i)?.by).to.equal(`a-restart-${i + 1}`);
      }
      const reports = await system.status();
      expect(reports.find((w) => w.name === 'w1')).to.include({ state: 'running', restarts: 3 });
      const w2 = reports.find((w) => w.name === 'w2')?.detail?.router as RingTransportStats | undefined;
      expect(w2).to.include({ malformed: 0, unencodable: 0 });
    } finally {
      await system.stop();
    }
  });

  it('a reader killed while its writer waits on a full ring: the writer is not held up, nothing torn is read, and the new reader gets fresh rings', async () => {
    const probe = new Probe();
    const events: SystemEvent[] = [];
    const system = await startRingEcho(probe, { supervisor: { maxRestarts: 10, windowMs: 60_000, backoffMinMs: 5, backoffMaxMs: 50 }, onEvent: (event) => events.push(event) });
    try {
      // w1 (actor a) stops reading: its thread spins. w2 (actor b) then writes more pongs to a
      // than their ring holds, so w2's transport waits for space with the rest queued.
      system.send({ from: 'host/probe', to: 'a', msg: { type: 'block', ms: 30_000 } });
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Bursts in separate turns, each a record well under the limit (~17 KB), ~3.4 MB in all against a 1 MiB ring.
      for (let i = 0; i < 200; i += 1) {
        system.send({ from: 'a', to: 'b', msg: { type: 'burst', count: 1_000 } });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      const killedAt = performance.now();
      await system.terminate('w1');
      await eventually('w1 restarted', () => events.some((e) => e.type === 'worker_restarted' && e.worker === 'w1'));
      // The survivor's link to the dead reader was abandoned: the new a answers, directly and through b.
      system.send({ from: 'host/probe', to: 'a', msg: { type: 'ping', n: -1 } });
      system.send({ from: 'host/probe', to: 'b', msg: { type: 'forward', to: 'a', n: -2 } });
      await probe.until('pongs from the new a', (m) => pongs(m).some((p) => p.n === -1) && pongs(m).some((p) => p.n === -2));
      expect(performance.now() - killedAt, 'answered within seconds of the kill').to.be.below(10_000);
      const reports = await system.status();
      const w2 = reports.find((w) => w.name === 'w2')?.detail?.router as RingTransportStats | undefined;
      const w1 = reports.find((w) => w.name === 'w1')?.detail?.router as RingTransportStats | undefined;
      expect(w2?.ringFull, 'w2 found its ring to w1 full before the kill').to.be.above(0);
      expect(w2?.unroutable, 'what w2 held back for the dead reader was dropped and counted, not handed to its successor').to.be.above(0);
      expect(w2).to.include({ malformed: 0, unencodable: 0 });
      expect(w1).to.include({ malformed: 0 });
      // Every pong that reached the host through a (old or new) is whole: a number and a label.
      for (const pong of pongs(probe.messages)) expect(Number.isInteger(pong.n) && typeof pong.by === 'string').to.equal(true);
    } finally {
      await system.stop();
    }
  });

  it('commits 1,800 ops from 30 concurrent callers through a primary kill and a backup crash: every call answered, each acknowledged write exactly once', async () => {
    const node = await startNode({ logLevel: 'silent', transport: 'ring', supervisor: { maxRestarts: 5, windowMs: 60_000, backoffMinMs: 10, backoffMaxMs: 100 } });
    try {
      const client = node.client();
      const callers = 30;
      const perCaller = 60;
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

      await eventually('400 acknowledged', () => ackedTotal >= 400, 30_000, 5);
      const firstPrimary = await node.primaryOf('default');
      expect(firstPrimary).to.not.equal(null);
      await node.faults.terminate(node.replicaId('default', firstPrimary as number));
      await eventually('a new primary and the old one recovered', () => settled(node, 'default'), 30_000, 50);
      expect(await node.primaryOf('default')).to.not.equal(firstPrimary);

      await eventually('1,000 acknowledged', () => ackedTotal >= 1000, 30_000, 5);
      const backup = (((await node.primaryOf('default')) as number) + 1) % 3;
      await node.faults.inject(node.replicaId('default', backup), 'throw');
      await work;
      await eventually('the group settles again', () => settled(node, 'default'), 30_000, 50);

      expect(unexpected).to.deep.equal([]);
      const answered = acked.reduce((sum, set) => sum + set.size, 0) + maybe.reduce((sum, set) => sum + set.size, 0);
      expect(answered).to.equal(callers * perCaller);
      expect(ackedTotal).to.be.greaterThan(callers * perCaller * 0.9);
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
      const { actors, workers } = await node.status();
      const restarts = Object.fromEntries(actors.map((a) => [a.actor, a.restarts]));
      expect(restarts[node.replicaId('default', firstPrimary as number)]).to.equal(1);
      expect(restarts[node.replicaId('default', backup)]).to.be.at.least(1);
      // The data went through rings: every live worker's transport says so.
      for (const worker of workers) expect((worker.detail?.router as RingTransportStats | undefined)?.sleeps, worker.name).to.be.a('number');
    } finally {
      await node.stop();
    }
  });

  it('with the proxy on the main thread: a replica worker killed and restarted, and the namespace still answers every call', async () => {
    const node = await startNode({ logLevel: 'silent', transport: 'ring', proxyThread: 'host' });
    try {
      const client = node.client();
      await client.create('/k', 'blob');
      const victim = node.replicaId('default', 2);
      const puts: Promise<number>[] = [];
      for (let i = 0; i < 200; i += 1) {
        puts.push(client.blobPut('/k', `v${i}`).then((r) => r.version));
        if (i === 50) await node.faults.terminate(victim);
        if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const versions = await Promise.all(puts);
      expect(new Set(versions).size).to.equal(200);
      await eventually('the victim restarted and recovered', async () => (await settled(node, 'default')) && (await node.status()).actors.find((a) => a.actor === victim)?.restarts === 1, 30_000, 50);
      expect(decoder.decode((await client.blobGet('/k')).value)).to.match(/^v\d+$/);
      expect((await client.blobPut('/k', 'after')).version).to.equal(Math.max(...versions) + 1);
    } finally {
      await node.stop();
    }
  });

  it('validates the option like codec: anything but port or ring is a RangeError', async () => {
    const error = await startNode({ logLevel: 'silent', transport: 'pigeon' as never }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(RangeError);
    expect(String(error)).to.contain('transport must be port or ring');
  });

  it('leaves no handle open after stop: the process exits by itself', async () => {
    const script = fileURLToPath(new URL('./fixtures/ring_start_stop.ts', import.meta.url));
    const result = await runChild(['--import', 'tsx', script], 45_000);
    expect(result.stderr).to.equal('');
    expect(result.stdout).to.equal('stopped\n');
    expect(result.code).to.equal(0);
  });
});
