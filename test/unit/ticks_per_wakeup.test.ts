/**
 * The timer's wake-ups (actors/timer.ts `ticksPerWakeup`): it counts several ticks per wake-up
 * and hands them over in one message; a replica turns that message into as many tick inputs in
 * one transition; the node's options pick and bound the count.
 */

import { expect } from 'chai';
import { createActor as createTimer, type TimerInit } from '../../actors/timer.ts';
import { createReplica } from '../../actors/replica.ts';
import { tickCount, type Tick } from '../../actors/messages.ts';
import type { ActorContext } from '../../runtime/actor.ts';
import type { Envelope } from '../../runtime/envelope.ts';
import { makeReplicaConfig } from '../../src/vr/config.ts';
import { stepAll } from '../../src/vr/step.ts';
import type { ReplicaInput } from '../../src/vr/io.ts';
import { resolveOptions } from '../../src/node/options.ts';

const silentLog = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  fatal: () => undefined,
  child: () => silentLog,
} as unknown as ActorContext['log'];

function fakeContext(sent: { to: string; msg: Tick }[]): ActorContext {
  return {
    self: 'timer',
    thread: 'test',
    send: (to, msg) => sent.push({ to, msg: msg as Tick }),
    log: silentLog,
    offload: {} as ActorContext['offload'],
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('timer wake-ups: several ticks per message (ticksPerWakeup)', () => {
  it('the timer wakes every ticksPerWakeup ticks; each subscriber gets the ticks of its periods that ended, in one message', async () => {
    const sent: { to: string; msg: Tick }[] = [];
    const init: TimerInit = {
      tickMs: 2,
      ticksPerWakeup: 5,
      paused: false,
      subscribers: [
        { id: 'replica', everyTicks: 1 },
        { id: 'proxy', everyTicks: 5 },
        { id: 'odd', everyTicks: 3 },
      ],
    };
    const timer = createTimer(fakeContext(sent), init);
    await sleep(250);
    await timer.stop?.();
    const ticks = (timer.status?.() as { ticks: number }).ticks;
    expect(ticks).to.be.greaterThan(0);
    expect(ticks % 5).to.equal(0);
    const of = (id: string): Tick[] => sent.filter((s) => s.to === id).map((s) => s.msg);
    const wakeups = ticks / 5;
    expect(of('replica')).to.have.length(wakeups);
    expect(of('replica').every((msg) => msg.ticks === 5)).to.equal(true);
    // A period of 5 ends once per wake-up: a plain tick, no count.
    expect(of('proxy')).to.have.length(wakeups);
    expect(of('proxy').every((msg) => msg.ticks === undefined && tickCount(msg) === 1)).to.equal(true);
    // Periods of 3 end once or twice per 5 ticks; the counts add up exactly.
    expect(of('odd').reduce((sum, msg) => sum + tickCount(msg), 0)).to.equal(Math.floor(ticks / 3));
    expect(of('odd').every((msg) => tickCount(msg) === 1 || tickCount(msg) === 2)).to.equal(true);
  });

  it('the timer refuses a count it could not deliver', () => {
    for (const ticksPerWakeup of [0, -1, 1.5, 101, Number.NaN]) {
      expect(() => createTimer(fakeContext([]), { tickMs: 10, ticksPerWakeup, paused: true, subscribers: [] } satisfies TimerInit), String(ticksPerWakeup)).to.throw(RangeError, /ticksPerWakeup/);
    }
  });

  it('a replica turns one tick message into that many tick inputs in one transition; queued tick messages still collapse, and a bad count counts once', () => {
    const ids = ['r0', 'r1', 'r2'];
    const config = makeReplicaConfig({ replicaCount: 3 });
    const seen: number[] = [];
    const ports = {
      send: (): void => undefined,
      persist(): void {
        throw new Error('no storage here');
      },
      trace: (): void => undefined,
      nowMs: (): number => 0,
    };
    const step = (before: Parameters<typeof stepAll>[0], inputs: readonly ReplicaInput[]): ReturnType<typeof stepAll> => {
      seen.push(inputs.filter((input) => input.type === 'tick').length);
      return stepAll(before, inputs);
    };
    const replica = createReplica(ports, { ns: 'n', index: 1, config, replicas: ids, defaultProxy: 'proxy', mode: 'fresh', nonce: 0, seed: 7 }, { step });
    const tick = (msg: unknown): Envelope => ({ from: 'timer', to: 'r1', msg });
    const cases: [readonly Envelope[], number][] = [
      [[tick({ type: 'tick', ticks: 5 })], 5],
      [[tick({ type: 'tick' })], 1],
      [[tick({ type: 'tick', ticks: 4 }), tick({ type: 'tick', ticks: 4 })], 4],
      [[tick({ type: 'tick', ticks: 100 })], 100],
      [[tick({ type: 'tick', ticks: 101 })], 1],
      [[tick({ type: 'tick', ticks: 1e9 })], 1],
      [[tick({ type: 'tick', ticks: 0 })], 1],
      [[tick({ type: 'tick', ticks: 2.5 })], 1],
      [[tick({ type: 'tick', ticks: '5' })], 1],
    ];
    for (const [batch, expected] of cases) {
      seen.length = 0;
      replica.receive(batch);
      expect(seen, JSON.stringify(batch.map((e) => e.msg))).to.deep.equal([expected]);
    }
    // The ticks counted: a backup with no primary traffic times out after its view-change
    // timeout, and one message of 100 ticks is past it (timeout 30 plus jitter below 30).
    expect(replica.state.status).to.equal('view_change');
  });

  it('node options: 5 by default (lowered to the smallest commitIntervalTicks served); an explicit count up to it; a larger one or a bad one is a RangeError', () => {
    expect(resolveOptions({}).ticksPerWakeup).to.equal(5);
    expect(resolveOptions({ ticksPerWakeup: 1 }).ticksPerWakeup).to.equal(1);
    expect(resolveOptions({ namespaces: ['a', { name: 'b', config: { commitIntervalTicks: 2, viewChangeTimeoutTicks: 30 } }] }).ticksPerWakeup).to.equal(2);
    expect(resolveOptions({ ticksPerWakeup: 5 }).ticksPerWakeup).to.equal(5);
    expect(resolveOptions({ namespaces: ['a', { name: 'b', config: { commitIntervalTicks: 2, viewChangeTimeoutTicks: 30 } }], ticksPerWakeup: 2 }).ticksPerWakeup).to.equal(2);
    expect(() => resolveOptions({ namespaces: ['a', { name: 'b', config: { commitIntervalTicks: 2, viewChangeTimeoutTicks: 30 } }], ticksPerWakeup: 3 })).to.throw(RangeError, /commitIntervalTicks \(2\)/);
    expect(() => resolveOptions({ ticksPerWakeup: 6 })).to.throw(RangeError, /commitIntervalTicks \(5\)/);
    for (const bad of [0, -3, 2.5, 101]) expect(() => resolveOptions({ ticksPerWakeup: bad }), String(bad)).to.throw(RangeError, /ticksPerWakeup/);
  });
});
