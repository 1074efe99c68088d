/**
 * The generic runtime on real worker threads (no VR here): mailboxes, the mesh and its
 * batching, codecs, the supervisor's restarts and intensity limit, control-plane deadlines,
 * and a clean stop.
 */

import { expect } from 'chai';
import { MessageChannel } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { ActorSystem, type SystemEvent, type SystemOptions } from '../../runtime/index.ts';
import { makeCodec } from '../../runtime/codec.ts';
import { ControlError } from '../../runtime/control.ts';
import { Mailbox } from '../../runtime/mailbox.ts';
import { Router } from '../../runtime/router.ts';
import { RestartPolicy } from '../../runtime/supervisor.ts';
import { eventually, Probe, runChild } from './helpers.ts';

const echo = new URL('./fixtures/echo_actor.ts', import.meta.url).href;

type Pong = { type: 'pong'; n: number; by: string };
const pongs = (messages: readonly unknown[]): Pong[] => messages.filter((m): m is Pong => (m as Pong).type === 'pong');

async function startEcho(probe: Probe, extra: Partial<SystemOptions> = {}, events: SystemEvent[] = []): Promise<ActorSystem> {
  return ActorSystem.start({
    workers: [
      { name: 'w1', actors: [{ id: 'a', module: echo, init: { label: 'A' } }] },
      { name: 'w2', actors: [{ id: 'b', module: echo, init: { label: 'B' } }] },
    ],
    hostActors: [{ id: 'host/probe', factory: () => ({ receive: (batch) => batch.forEach((e) => probe.push(e.msg)) }), init: null }],
    logLevel: 'silent',
    supervisor: { maxRestarts: 3, windowMs: 60_000, backoffMinMs: 5, backoffMaxMs: 50 },
    onEvent: (event) => events.push(event),
    ...extra,
  });
}

describe('runtime: mailbox', () => {
  it('keeps order, drops and counts ordinary envelopes when full, never drops control envelopes', () => {
    const box = new Mailbox(2);
    expect(box.push({ from: 'x', to: 'y', msg: 1 })).to.equal(true);
    expect(box.push({ from: 'x', to: 'y', msg: 2 })).to.equal(true);
    expect(box.push({ from: 'x', to: 'y', msg: 3 })).to.equal(false);
    expect(box.push({ from: 'x', to: 'y', msg: 4, control: true })).to.equal(true);
    expect(box.stats()).to.include({ depth: 3, dropped: 1, accepted: 3, highWater: 3, capacity: 2 });
    expect(box.take(10).map((e) => e.msg)).to.deep.equal([1, 2, 4]);
    expect(box.depth).to.equal(0);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new Mailbox(0)).to.throw(RangeError);
  });
});

describe('runtime: restart policy', () => {
  it('backs off exponentially with jitter and gives up past the intensity limit', () => {
    const policy = new RestartPolicy({ maxRestarts: 3, windowMs: 1000, backoffMinMs: 10, backoffMaxMs: 25 }, () => 0.5);
    const delays = [0, 1, 2].map((i) => {
      const decision = policy.decide(i);
      if (decision.type !== 'restart') throw new Error('expected a restart');
      return decision.delayMs;
    });
    expect(delays).to.deep.equal([7.5, 15, 18.75]);
    expect(policy.decide(3).type).to.equal('give_up');
    // Outside the window the history is forgotten.
    expect(policy.decide(5000).type).to.equal('restart');
    expect(policy.total).to.equal(4);
  });
});

describe('runtime: router', () => {
  it('counts and drops batches from a peer that are not envelopes, without throwing', async () => {
    const delivered: unknown[] = [];
    const router = new Router('me', new Map([['x', 'me']]), makeCodec('clone'), (batch) => delivered.push(...batch));
    const channel = new MessageChannel();
    router.setPeer('peer', channel.port1);
    channel.port2.postMessage('not a batch');
    channel.port2.postMessage([{ nonsense: true }, { from: 'p', to: 'x', msg: 1 }]);
    await eventually('two batches read', () => router.stats().malformed === 2 && delivered.length === 1);
    expect(delivered).to.deep.equal([{ from: 'p', to: 'x', msg: 1 }]);
    router.close();
    channel.port2.close();
  });

  it('msgpack codec: a batch survives the round trip with bytes intact', () => {
    const codec = makeCodec('msgpack');
    const batch = [{ from: 'a', to: 'b', msg: { type: 'x', value: new Uint8Array([1, 2, 3]) } }];
    const { data } = codec.encode(batch);
    const back = codec.decode(data) as typeof batch;
    expect(back[0]?.msg.value).to.deep.equal(new Uint8Array([1, 2, 3]));
    expect(() => codec.decode('garbage')).to.throw(TypeError);
  });
});

describe('runtime: actor system on worker threads', function () {
  this.timeout(60_000);

  it('delivers between workers and the host, batching a burst into few posts', async () => {
    const probe = new Probe();
    const system = await startEcho(probe);
    try {
      system.send({ from: 'host/probe', to: 'a', msg: { type: 'ping', n: 1 } });
      system.send({ from: 'host/probe', to: 'a', msg: { type: 'forward', to: 'b', n: 2 } });
      await probe.until('two pongs', (m) => pongs(m).length === 2);
      expect(pongs(probe.messages).map((p) => [p.n, p.by])).to.have.deep.members([
        [1, 'A'],
        [2, 'B'],
      ]);
      system.send({ from: 'host/probe', to: 'a', msg: { type: 'burst', count: 1000 } });
      await probe.until('the burst', (m) => pongs(m).length === 1002);
      const a = (await system.status()).find((w) => w.name === 'w1');
      // a sent: pong 1, the forwarded ping, the relayed pong 2, then 1,000 in one turn, which
      // leave in one post.
      expect(a?.detail?.router.envelopesOut).to.equal(1003);
      expect(a?.detail?.router.posts).to.be.at.most(4);
    } finally {
      await system.stop();
    }
  });

  it('works the same with the msgpack codec', async () => {
    const probe = new Probe();
    const system = await startEcho(probe, { codec: 'msgpack' });
    try {
      system.send({ from: 'host/probe', to: 'a', msg: { type: 'forward', to: 'b', n: 7 } });
      await probe.until('a pong', (m) => pongs(m).length === 1);
      expect(pongs(probe.messages)[0]).to.deep.include({ n: 7, by: 'B' });
    } finally {
      await system.stop();
    }
  });

  it('restarts a worker that throws, exits, is terminated or runs out of memory, with the restart init', async () => {
    const probe = new Probe();
    const events: SystemEvent[] = [];
    const system = await startEcho(
      probe,
      {
        workers: [{ name: 'w1', actors: [{ id: 'a', module: echo, init: { label: 'A' } }], resourceLimits: { maxOldGenerationSizeMb: 48 } }],
        restartInit: (spec, restart) => ({ label: `${spec.id}-restart-${restart}` }),
        supervisor: { maxRestarts: 10, windowMs: 60_000, backoffMinMs: 5, backoffMaxMs: 50 },
      },
      events,
    );
    try {
      const crashes: (() => Promise<void>)[] = [
        () => system.injectFault('w1', 'throw'),
        () => system.injectFault('w1', 'exit'),
        () => system.terminate('w1'),
        () => system.injectFault('w1', 'exhaust_memory'),
      ];
      for (const [i, crash] of crashes.entries()) {
        await crash();
        await eventually(`restart ${i + 1}`, () => events.filter((e) => e.type === 'worker_restarted').length === i + 1);
        system.send({ from: 'host/probe', to: 'a', msg: { type: 'ping', n: 100 + i } });
        await probe.until(`pong after restart ${i + 1}`, (m) => pongs(m).some((p) => p.n === 100 + i));
        expect(pongs(probe.messages).find((p) => p.n === 100 + i)?.by).to.equal(`a-restart-${i + 1}`);
      }
      const exits = events.flatMap((e) => (e.type === 'worker_exited' ? [e.exit] : []));
      expect(exits).to.have.length(4);
      expect(exits[0]?.error).to.contain('injected fault');
      expect(exits[1]?.code).to.equal(3);
      expect(exits[3]?.error ?? '').to.match(/memory|ERR_WORKER_OUT_OF_MEMORY/i);
      const report = (await system.status())[0];
      expect(report).to.include({ state: 'running', restarts: 4 });
    } finally {
      await system.stop();
    }
  });

  it('stops restarting after the intensity limit and reports the worker failed', async () => {
    const probe = new Probe();
    const events: SystemEvent[] = [];
    const system = await startEcho(probe, { supervisor: { maxRestarts: 2, windowMs: 60_000, backoffMinMs: 5, backoffMaxMs: 20 } }, events);
    try {
      for (let i = 1; i <= 2; i += 1) {
        await system.injectFault('w1', 'throw');
        await eventually(`restart ${i}`, () => events.filter((e) => e.type === 'worker_restarted').length === i);
      }
      await system.injectFault('w1', 'throw');
      await eventually('failure', () => events.some((e) => e.type === 'worker_failed'));
      const report = (await system.status()).find((w) => w.name === 'w1');
      expect(report?.state).to.equal('failed');
      expect(report?.failure).to.contain('2 restarts');
      expect(report?.detail).to.equal(null);
      // The other worker is untouched.
      system.send({ from: 'host/probe', to: 'b', msg: { type: 'ping', n: 5 } });
      await probe.until('b still answers', (m) => pongs(m).some((p) => p.n === 5));
      // A control call to the failed worker's actor rejects at once.
      const started = performance.now();
      let error: unknown = null;
      await system.inspect('a').catch((e: unknown) => (error = e));
      expect(String(error)).to.contain('down');
      expect(performance.now() - started).to.be.below(500);
    } finally {
      await system.stop();
    }
  });

  it('control calls reject within their timeout when the worker is frozen, and at once when it has exited', async () => {
    const probe = new Probe();
    const system = await startEcho(probe, { controlTimeoutMs: 200 });
    try {
      const handle = system.handle('w1');
      if (handle === null) throw new Error('no handle');
      system.send({ from: 'host/probe', to: 'a', msg: { type: 'block', ms: 1500 } });
      await eventually('worker busy', async () => {
        // The block starts on the worker's next turn; a status call that times out proves it.
        const result = await handle.status().then(
          () => null,
          (error: unknown) => error,
        );
        return result instanceof ControlError && result.code === 'control_timeout';
      });
      await handle.terminate();
      const started = performance.now();
      const error = await handle.status().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(ControlError);
      expect((error as ControlError).code).to.equal('worker_exited');
      expect(performance.now() - started).to.be.below(200);
    } finally {
      await system.stop();
    }
  });

  it('leaves no handle open after stop: the process exits by itself', async () => {
    const script = fileURLToPath(new URL('./fixtures/system_start_stop.ts', import.meta.url));
    const result = await runChild(['--import', 'tsx', script], 45_000);
    expect(result.stderr).to.equal('');
    expect(result.stdout).to.equal('stopped\n');
    expect(result.code).to.equal(0);
  });
});

describe('runtime: router output', () => {
  it('drops and counts an envelope the codec cannot carry, and still delivers the rest of its batch', async () => {
    const delivered: unknown[] = [];
    const channel = new MessageChannel();
    const sender = new Router('a', new Map([['x', 'b']]), makeCodec('clone'), () => undefined);
    const receiver = new Router('b', new Map([['x', 'b']]), makeCodec('clone'), (batch) => delivered.push(...batch.map((e) => e.msg)));
    sender.setPeer('b', channel.port1);
    receiver.setPeer('a', channel.port2);
    sender.send({ from: 'a', to: 'x', msg: 1 });
    sender.send({ from: 'a', to: 'x', msg: { bad: () => 0 } });
    sender.send({ from: 'a', to: 'x', msg: 3 });
    sender.flush();
    await eventually('two delivered', () => delivered.length === 2);
    expect(delivered).to.deep.equal([1, 3]);
    expect(sender.stats().unencodable).to.equal(1);
    sender.close();
    receiver.close();
  });
});
