/**
 * The session pool (src/client/pool.ts), hand-driven: batches of calls, answers and ticks go
 * in, sends and results come out. A property at the end checks the pool against a reference
 * model built from independent `clientStep` sessions.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { defaultClientConfig, type ClientConfig } from '../../src/client/config.ts';
import type { ClientEffect, ClientInput } from '../../src/client/io.ts';
import {
  checkPoolInvariants,
  initialPoolState,
  poolStats,
  poolStepAll,
  validatePoolConfig,
  type PoolConfig,
  type PoolEffect,
  type PoolInput,
  type PoolState,
} from '../../src/client/pool.ts';
import { clientStep, initialClientState, isIdle, type ClientState } from '../../src/client/session.ts';
import type { TreeOp } from '../../src/tree/ops.ts';
import type { ClientAnswer, ReplyBody, Request } from '../../src/vr/messages.ts';
import { makePrng, nextInt, type Prng } from '../../src/base/prng.ts';

// ---- helpers -------------------------------------------------------------------------------

const prefix = 'proxy-a';
const id = (n: number): string => `${prefix}.${n}`;
const opFor = (callId: number): TreeOp => ({ type: 'create', path: `/n${callId}`, nodeType: 'blob' });

const config = (overrides: Partial<PoolConfig> = {}, client: Partial<ClientConfig> = {}): PoolConfig => ({
  client: { ...defaultClientConfig, ...client },
  sessionsMax: 4,
  waitingMax: 4,
  clientIdPrefix: prefix,
  ...overrides,
});

const call = (callId: number, op: TreeOp = opFor(callId)): PoolInput => ({ type: 'call', callId, op });
const tick: PoolInput = { type: 'tick' };
const receive = (message: ClientAnswer): PoolInput => ({ type: 'receive', message });

function reply(clientId: string, requestNum: number, body: ReplyBody, view = 0, op = 1): ClientAnswer {
  return { type: 'reply', epoch: 0, view, op, clientId, requestNum, body };
}
const registered = (clientId: string, lastRequestNum = 0, view = 0): ClientAnswer => reply(clientId, 0, { type: 'registered', isNew: true, lastRequestNum }, view);
const treeOk = (clientId: string, requestNum: number, view = 0): ClientAnswer => reply(clientId, requestNum, { type: 'tree', outcome: { type: 'ok', version: 1 } }, view, 2);
const notPrimary = (clientId: string, requestNum: number, view: number, primary: number): ClientAnswer => ({ type: 'not_primary', epoch: 0, view, primary, clientId, requestNum });
const busyAnswer = (clientId: string, requestNum: number, retryAfterTicks: number): ClientAnswer => ({ type: 'busy', epoch: 0, view: 0, retryAfterTicks, clientId, requestNum });

const sends = (effects: readonly PoolEffect[]): { to: number; clientId: string; requestNum: number; op: string }[] =>
  effects.flatMap((e) => (e.type === 'send' ? [{ to: e.to, clientId: e.request.clientId, requestNum: e.request.requestNum, op: e.request.op.type }] : []));
const results = (effects: readonly PoolEffect[]) => effects.flatMap((e) => (e.type === 'result' ? [{ callId: e.callId, result: e.result.type }] : []));
const traces = (effects: readonly PoolEffect[]) => effects.flatMap((e) => (e.type === 'trace' ? [e.event] : []));

/** A tiny driver: feeds batches, keeps the state, checks the invariants after every batch. */
class Pool {
  state: PoolState;
  constructor(poolConfig: PoolConfig = config(), seed = 1) {
    this.state = initialPoolState(poolConfig, seed);
  }
  run(...inputs: PoolInput[]): PoolEffect[] {
    const result = poolStepAll(this.state, inputs);
    this.state = result.state;
    expect(checkPoolInvariants(this.state)).to.equal(null);
    return [...result.effects];
  }
  ticks(count: number): PoolEffect[] {
    return this.run(...Array.from({ length: count }, () => tick));
  }
  session(n: number): ClientState {
    const session = this.state.sessions.get(n - 1);
    if (session === undefined) throw new Error(`no session ${n}`);
    return session;
  }
  /** Ticks until session n's next retry is due, minus one. */
  waitTicks(n: number): number {
    const waiting = this.session(n).outstanding?.waitTicks;
    if (waiting === undefined) throw new Error('nothing outstanding');
    return waiting;
  }
}

/** A pool whose session 1 is registered, with call 1 sent as request 1 to replica 0. */
function withCall(poolConfig: PoolConfig = config()): Pool {
  const pool = new Pool(poolConfig);
  pool.run(call(1), receive(registered(id(1))));
  expect(pool.session(1).outstanding?.request.requestNum).to.equal(1);
  return pool;
}

// ---- tests ---------------------------------------------------------------------------------

describe('client session pool (src/client/pool.ts)', () => {
  describe('configuration', () => {
    it('validates every field with a typed reason', () => {
      expect(validatePoolConfig(config())).to.equal(null);
      expect(validatePoolConfig(config({}, { retryTicks: 0 }))?.field).to.equal('client');
      expect(validatePoolConfig(config({ sessionsMax: 0 }))?.field).to.equal('sessionsMax');
      expect(validatePoolConfig(config({ sessionsMax: 1.5 }))?.field).to.equal('sessionsMax');
      expect(validatePoolConfig(config({ sessionsMax: 10_000_000 }))?.field).to.equal('sessionsMax');
      expect(validatePoolConfig(config({ waitingMax: -1 }))?.field).to.equal('waitingMax');
      expect(validatePoolConfig(config({ waitingMax: 0 }))).to.equal(null);
      expect(validatePoolConfig(config({ clientIdPrefix: '' }))?.field).to.equal('clientIdPrefix');
      expect(validatePoolConfig(config({ clientIdPrefix: 'x'.repeat(241) }))?.field).to.equal('clientIdPrefix');
      expect(() => initialPoolState(config({ sessionsMax: 0 }), 1)).to.throw(RangeError);
    });

    it('starts empty and frozen', () => {
      const state = initialPoolState(config(), 1);
      expect(poolStats(state)).to.deep.equal({ sessions: 0, busy: 0, waiting: 0 });
      expect(Object.isFrozen(state)).to.equal(true);
      expect(Object.isFrozen(state.config)).to.equal(true);
      expect(Object.isFrozen(state.config.client)).to.equal(true);
      expect(checkPoolInvariants(state)).to.equal(null);
    });
  });

  describe('calls and sessions', () => {
    it('call -> register -> request -> reply -> result', () => {
      const pool = new Pool();
      expect(sends(pool.run(call(7)))).to.deep.equal([{ to: 0, clientId: id(1), requestNum: 0, op: 'register' }]);
      expect(poolStats(pool.state)).to.deep.equal({ sessions: 1, busy: 1, waiting: 0 });
      expect(sends(pool.run(receive(registered(id(1)))))).to.deep.equal([{ to: 0, clientId: id(1), requestNum: 1, op: 'tree' }]);
      const effects = pool.run(receive(treeOk(id(1), 1)));
      expect(effects).to.deep.equal([
        { type: 'result', callId: 7, result: { type: 'done', outcome: { type: 'ok', version: 1 }, epoch: 0, view: 0, op: 2, requestNum: 1 } },
      ]);
      expect(poolStats(pool.state)).to.deep.equal({ sessions: 1, busy: 0, waiting: 0 });
    });

    it('continues from the last request number the cluster executed', () => {
      const pool = new Pool();
      pool.run(call(1));
      expect(sends(pool.run(receive(registered(id(1), 41))))[0]?.requestNum).to.equal(42);
    });

    it('reuses an idle session: no new session, no second register, next request number', () => {
      const pool = withCall();
      pool.run(receive(treeOk(id(1), 1)));
      expect(sends(pool.run(call(2)))).to.deep.equal([{ to: 0, clientId: id(1), requestNum: 2, op: 'tree' }]);
      expect(poolStats(pool.state)).to.deep.equal({ sessions: 1, busy: 1, waiting: 0 });
    });

    it('reuses the most recently freed session first', () => {
      const pool = new Pool();
      pool.run(call(1), call(2), receive(registered(id(1))), receive(registered(id(2))));
      pool.run(receive(treeOk(id(2), 1)), receive(treeOk(id(1), 1)));
      expect(sends(pool.run(call(3)))[0]?.clientId).to.equal(id(1));
      expect(sends(pool.run(call(4)))[0]?.clientId).to.equal(id(2));
    });

    it('opens sessions up to sessionsMax, numbered from 1, each with its own seeded PRNG', () => {
      const pool = new Pool(config({ sessionsMax: 3 }));
      const effects = pool.run(call(1), call(2), call(3), call(4));
      expect(sends(effects).map((s) => s.clientId)).to.deep.equal([id(1), id(2), id(3)]);
      expect(poolStats(pool.state)).to.deep.equal({ sessions: 3, busy: 3, waiting: 1 });
      const seeds = [1, 2, 3].map((n) => pool.session(n).prng.seed);
      expect(new Set(seeds).size).to.equal(3);
    });

    it('queues calls FIFO past sessionsMax and answers overloaded past waitingMax', () => {
      const pool = new Pool(config({ sessionsMax: 1, waitingMax: 2 }));
      const effects = pool.run(call(1), call(2), call(3), call(4));
      expect(results(effects)).to.deep.equal([{ callId: 4, result: 'overloaded' }]);
      expect(poolStats(pool.state)).to.deep.equal({ sessions: 1, busy: 1, waiting: 2 });
      pool.run(receive(registered(id(1))));
      // Call 1 done: the session takes call 2 (the oldest waiting), then call 3.
      let next = pool.run(receive(treeOk(id(1), 1)));
      expect(results(next)).to.deep.equal([{ callId: 1, result: 'done' }]);
      expect(pool.session(1).outstanding?.callId).to.equal(2);
      expect(sends(next)).to.deep.equal([{ to: 0, clientId: id(1), requestNum: 2, op: 'tree' }]);
      next = pool.run(receive(treeOk(id(1), 2)));
      expect(pool.session(1).outstanding?.callId).to.equal(3);
      expect(poolStats(pool.state)).to.deep.equal({ sessions: 1, busy: 1, waiting: 0 });
      pool.run(receive(treeOk(id(1), 3)));
      expect(poolStats(pool.state)).to.deep.equal({ sessions: 1, busy: 0, waiting: 0 });
    });

    it('with waitingMax 0, answers overloaded as soon as every session is busy', () => {
      const pool = new Pool(config({ sessionsMax: 1, waitingMax: 0 }));
      expect(results(pool.run(call(1), call(2)))).to.deep.equal([{ callId: 2, result: 'overloaded' }]);
    });
  });

  describe('answers', () => {
    it('follows not_primary at once, and shares the primary pool-wide', () => {
      const pool = withCall();
      expect(sends(pool.run(receive(notPrimary(id(1), 1, 1, 1))))).to.deep.equal([{ to: 1, clientId: id(1), requestNum: 1, op: 'tree' }]);
      expect(pool.state.view).to.equal(1);
      // A new session starts at the primary the pool knows of.
      expect(sends(pool.run(call(2)))).to.deep.equal([{ to: 1, clientId: id(2), requestNum: 0, op: 'register' }]);
    });

    it('on busy, waits at least the time asked, then retries the same replica', () => {
      const pool = withCall();
      pool.run(receive(busyAnswer(id(1), 1, 50)));
      expect(pool.waitTicks(1)).to.be.at.least(50);
      expect(sends(pool.ticks(pool.waitTicks(1) - 1))).to.deep.equal([]);
      expect(sends(pool.run(tick))).to.deep.equal([{ to: 0, clientId: id(1), requestNum: 1, op: 'tree' }]);
    });

    it('on session_expired, answers the call and re-registers on the next one', () => {
      const pool = withCall();
      expect(results(pool.run(receive(reply(id(1), 1, { type: 'session_expired' }))))).to.deep.equal([{ callId: 1, result: 'session_expired' }]);
      expect(sends(pool.run(call(2)))).to.deep.equal([{ to: 0, clientId: id(1), requestNum: 0, op: 'register' }]);
    });

    it('traces and drops answers that are not for one of its sessions', () => {
      const pool = withCall();
      const before = pool.state;
      const strays = ['proxy-b.1', `${prefix}.0`, `${prefix}.01`, `${prefix}.2`, `${prefix}.`, `${prefix}.1x`, `${prefix}.1e0`, prefix, 'x'];
      const effects = pool.run(...strays.map((clientId) => receive(treeOk(clientId, 1, 9))));
      expect(traces(effects)).to.deep.equal(strays.map(() => 'pool_stray_answer'));
      expect(pool.state).to.equal(before); // not even the view it carried
      const notString = pool.run(receive({ ...treeOk(id(1), 1), clientId: 42 as unknown as string }));
      expect(traces(notString)).to.deep.equal(['pool_stray_answer']);
    });

    it('traces a late answer to an idle session, which stays idle', () => {
      const pool = withCall();
      pool.run(receive(treeOk(id(1), 1)));
      expect(traces(pool.run(receive(treeOk(id(1), 1))))).to.deep.equal(['client_ignore_stale_answer']);
      expect(poolStats(pool.state)).to.deep.equal({ sessions: 1, busy: 0, waiting: 0 });
      expect(pool.state.idle.toArray()).to.deep.equal([0]);
    });
  });

  describe('ticks', () => {
    it('retries on silence, rotating replicas, with backoff', () => {
      const pool = withCall();
      const first = pool.waitTicks(1);
      expect(sends(pool.ticks(first - 1))).to.deep.equal([]);
      expect(sends(pool.run(tick))).to.deep.equal([{ to: 1, clientId: id(1), requestNum: 1, op: 'tree' }]);
      expect(pool.waitTicks(1)).to.be.at.least(defaultClientConfig.retryTicks * 2);
      expect(sends(pool.ticks(pool.waitTicks(1)))).to.deep.equal([{ to: 2, clientId: id(1), requestNum: 1, op: 'tree' }]);
    });

    it('gives up after giveUpTicks with timeout, and the session takes the next waiting call', () => {
      const pool = new Pool(config({ sessionsMax: 1 }, { giveUpTicks: 30 }));
      pool.run(call(1), call(2), receive(registered(id(1))));
      const effects = pool.ticks(30);
      expect(results(effects)).to.deep.equal([{ callId: 1, result: 'timeout' }]);
      expect(pool.session(1).outstanding?.callId).to.equal(2);
      expect(sends(effects).at(-1)).to.deep.equal({ to: 0, clientId: id(1), requestNum: 2, op: 'tree' });
    });

    it('a register that never answers fails the call waiting for it', () => {
      const pool = new Pool(config({}, { giveUpTicks: 20 }));
      pool.run(call(1));
      expect(results(pool.ticks(20))).to.deep.equal([{ callId: 1, result: 'timeout' }]);
      expect(poolStats(pool.state)).to.deep.equal({ sessions: 1, busy: 0, waiting: 0 });
    });

    it('advances only busy sessions: a tick over idle sessions changes nothing', () => {
      const pool = new Pool(config({ sessionsMax: 8 }));
      pool.run(...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => call(n)));
      pool.run(...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => receive(registered(id(n)))));
      pool.run(...[1, 2, 3, 4, 5, 6, 7].map((n) => receive(treeOk(id(n), 1))));
      expect(pool.state.busy.toArray()).to.deep.equal([7]);
      const idleSession = pool.session(1);
      pool.ticks(500);
      expect(pool.session(1)).to.equal(idleSession);
      pool.run(receive(treeOk(id(8), 1)));
      const before = pool.state;
      expect(pool.ticks(100)).to.deep.equal([]);
      expect(pool.state).to.equal(before);
    });
  });

  describe('batches', () => {
    it('one step per batch: the state is frozen, the old one untouched, effects in input order', () => {
      const pool = new Pool(config({ sessionsMax: 2, waitingMax: 1 }));
      const before = pool.state;
      const effects = pool.run(call(1), call(2), call(3), call(4), receive(treeOk('stray', 1)), receive(registered(id(2))));
      expect(effects.map((e) => (e.type === 'send' ? `send ${e.request.clientId}/${e.request.requestNum}` : e.type === 'result' ? `result ${e.callId}` : e.event))).to.deep.equal([
        `send ${id(1)}/0`,
        `send ${id(2)}/0`,
        'result 4',
        'pool_stray_answer',
        `send ${id(2)}/1`,
      ]);
      expect(Object.isFrozen(pool.state)).to.equal(true);
      const session = pool.session(2);
      expect(Object.isFrozen(session)).to.equal(true);
      expect(Object.isFrozen(session.outstanding)).to.equal(true);
      expect(Object.isFrozen(session.outstanding?.request)).to.equal(true);
      expect(poolStats(before)).to.deep.equal({ sessions: 0, busy: 0, waiting: 0 });
      expect(before.sessions.size).to.equal(0);
    });

    it('a batch gives the same state and effects as its inputs one by one', () => {
      const inputs: PoolInput[] = [call(1), call(2), call(3), receive(registered(id(1))), tick, receive(treeOk(id(1), 1)), call(4), tick, receive(notPrimary(id(2), 0, 2, 2)), call(5)];
      const batched = poolStepAll(initialPoolState(config({ sessionsMax: 2 }), 5), inputs);
      let state = initialPoolState(config({ sessionsMax: 2 }), 5);
      const effects: PoolEffect[] = [];
      for (const input of inputs) {
        const result = poolStepAll(state, [input]);
        state = result.state;
        effects.push(...result.effects);
      }
      expect(batched.effects).to.deep.equal(effects);
      expect(snapshot(batched.state)).to.deep.equal(snapshot(state));
    });

    it('is deterministic: same seed and inputs, same states and effects; another seed, other jitter', () => {
      const inputs: PoolInput[] = [call(1), call(2), ...Array.from({ length: 200 }, () => tick)];
      const a = poolStepAll(initialPoolState(config(), 9), inputs);
      const b = poolStepAll(initialPoolState(config(), 9), inputs);
      const c = poolStepAll(initialPoolState(config(), 10), inputs);
      expect(a.effects).to.deep.equal(b.effects);
      expect(snapshot(a.state)).to.deep.equal(snapshot(b.state));
      expect(snapshot(a.state)).not.to.deep.equal(snapshot(c.state));
    });

    it('an empty batch returns the same state', () => {
      const state = initialPoolState(config(), 1);
      const result = poolStepAll(state, []);
      expect(result.state).to.equal(state);
      expect(result.effects).to.deep.equal([]);
    });
  });

  describe('against independent clientStep sessions (property)', () => {
    it('gives each call the same sends and result as a reference model built on clientStep', () => {
      fc.assert(
        fc.property(
          fc.record({
            seed: fc.integer({ min: 0, max: 2 ** 31 }),
            sessionsMax: fc.integer({ min: 1, max: 5 }),
            waitingMax: fc.integer({ min: 0, max: 4 }),
            giveUpTicks: fc.integer({ min: 5, max: 60 }),
            batches: fc.array(fc.array(commandArbitrary, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 25 }),
          }),
          ({ seed, sessionsMax, waitingMax, giveUpTicks, batches }) => {
            const poolConfig = config({ sessionsMax, waitingMax }, { giveUpTicks, retryTicks: 3, retryTicksMax: 12 });
            let state = initialPoolState(poolConfig, seed);
            const model = new Model(poolConfig, seed);
            const sent: Request[] = [];
            let callId = 0;
            for (const batch of batches) {
              const inputs = batch.map((command) => concrete(command, sent, () => ++callId));
              const result = poolStepAll(state, inputs);
              const expected = inputs.flatMap((input) => model.step(input));
              expect(result.effects).to.deep.equal(expected);
              state = result.state;
              expect(checkPoolInvariants(state)).to.equal(null);
              expect(state.sessions.toArray()).to.deep.equal(model.sessions);
              expect(state.view).to.equal(model.view);
              expect(poolStats(state)).to.deep.equal({ sessions: model.sessions.length, busy: model.sessions.filter((s) => !isIdle(s)).length, waiting: model.waiting.length });
              for (const effect of result.effects) if (effect.type === 'send') sent.push(effect.request);
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  });
});

// ---- the reference model ------------------------------------------------------------------

/** What a state holds, as plain data (Immutable.js values compare by identity under chai). */
function snapshot(state: PoolState): unknown {
  return { ...state, sessions: state.sessions.toArray(), busy: state.busy.toArray().sort((a, b) => a - b), idle: state.idle.toArray(), waiting: state.waiting.toArray() };
}

/**
 * The pool as specified, the slow way: N independent `clientStep` sessions in plain arrays, an
 * idle stack, a FIFO of waiting calls, sessions seeded from the pool's PRNG, the pool-wide
 * view adopted by a session before each step, and ticks in ascending session order.
 */
class Model {
  sessions: ClientState[] = [];
  idle: number[] = [];
  waiting: { callId: number; op: TreeOp }[] = [];
  view = 0;
  epoch = 0;
  prng: Prng;
  private readonly config: PoolConfig;

  constructor(poolConfig: PoolConfig, seed: number) {
    this.config = poolConfig;
    this.prng = makePrng(seed);
  }

  step(input: PoolInput): ClientEffect[] {
    const effects: ClientEffect[] = [];
    switch (input.type) {
      case 'call': {
        let index = this.idle.pop();
        if (index === undefined && this.sessions.length < this.config.sessionsMax) {
          const seed = nextInt(this.prng, 0x1_0000_0000);
          this.prng = seed.prng;
          index = this.sessions.length;
          this.sessions.push(initialClientState(`${this.config.clientIdPrefix}.${index + 1}`, this.config.client, seed.value));
        }
        if (index !== undefined) this.stepSession(index, input, effects);
        else if (this.waiting.length >= this.config.waitingMax) effects.push({ type: 'result', callId: input.callId, result: { type: 'overloaded' } });
        else this.waiting.push({ callId: input.callId, op: input.op });
        break;
      }
      case 'receive': {
        const index = this.sessions.findIndex((s) => s.clientId === input.message.clientId);
        if (index < 0) {
          effects.push({ type: 'trace', event: 'pool_stray_answer', detail: { clientId: input.message.clientId } });
          break;
        }
        const wasBusy = !isIdle(this.sessions[index] as ClientState);
        this.stepSession(index, input, effects);
        if (wasBusy) this.settle(index, effects);
        break;
      }
      case 'tick': {
        const busy = this.sessions.flatMap((s, index) => (isIdle(s) ? [] : [index]));
        for (const index of busy) {
          this.stepSession(index, input, effects);
          this.settle(index, effects);
        }
        break;
      }
      default:
        throw new Error('unreachable');
    }
    return effects;
  }

  /** A session that has just gone idle takes the oldest waiting call, else goes on the idle stack. */
  private settle(index: number, effects: ClientEffect[]): void {
    if (!isIdle(this.sessions[index] as ClientState)) return;
    const next = this.waiting.shift();
    if (next === undefined) this.idle.push(index);
    else this.stepSession(index, { type: 'call', callId: next.callId, op: next.op }, effects);
  }

  private stepSession(index: number, input: ClientInput, effects: ClientEffect[]): void {
    const before = this.sessions[index] as ClientState;
    const adopted = { ...before, view: Math.max(before.view, this.view), epoch: Math.max(before.epoch, this.epoch) };
    const result = clientStep(adopted, input);
    this.sessions[index] = result.state;
    this.view = Math.max(this.view, result.state.view);
    this.epoch = Math.max(this.epoch, result.state.epoch);
    effects.push(...result.effects);
  }
}

// ---- generated commands -------------------------------------------------------------------

type Command =
  | { readonly type: 'call' }
  | { readonly type: 'tick' }
  | { readonly type: 'answer'; readonly pick: number; readonly kind: 'ok' | 'registered' | 'not_primary' | 'busy' | 'expired' | 'rejected' | 'stray'; readonly view: number; readonly epoch: number };

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Command>({ type: 'call' }) },
  { weight: 2, arbitrary: fc.constant<Command>({ type: 'tick' }) },
  {
    weight: 5,
    arbitrary: fc.record({
      type: fc.constant('answer' as const),
      pick: fc.nat(),
      kind: fc.constantFrom('ok', 'ok', 'registered', 'registered', 'not_primary', 'busy', 'expired', 'rejected', 'stray'),
      view: fc.integer({ min: 0, max: 4 }),
      epoch: fc.integer({ min: 0, max: 1 }),
    }),
  },
);

/** A command made concrete against the requests sent so far (recent ones more likely). */
function concrete(command: Command, sent: readonly Request[], nextCallId: () => number): PoolInput {
  switch (command.type) {
    case 'call': {
      const callId = nextCallId();
      return { type: 'call', callId, op: opFor(callId) };
    }
    case 'tick':
      return { type: 'tick' };
    case 'answer': {
      const window = Math.min(sent.length, 6);
      const request = window === 0 ? undefined : sent[sent.length - 1 - (command.pick % window)];
      const clientId = request === undefined || command.kind === 'stray' ? 'elsewhere.1' : request.clientId;
      const requestNum = request?.requestNum ?? 0;
      const base = { epoch: command.epoch, view: command.view, clientId, requestNum };
      const body = (b: ReplyBody): ClientAnswer => ({ type: 'reply', op: 3, ...base, body: b });
      switch (command.kind) {
        case 'ok':
        case 'stray':
          return receive(body({ type: 'tree', outcome: { type: 'ok', version: 2 } }));
        case 'registered':
          return receive(body({ type: 'registered', isNew: command.pick % 2 === 0, lastRequestNum: command.pick % 5 }));
        case 'not_primary':
          return receive({ type: 'not_primary', ...base, primary: command.view % defaultClientConfig.replicaCount });
        case 'busy':
          return receive({ type: 'busy', ...base, retryAfterTicks: 1 + (command.pick % 8) });
        case 'expired':
          return receive(body({ type: 'session_expired' }));
        case 'rejected':
          return receive(body({ type: 'rejected', outcome: { type: 'error', error: { code: 'bad_path', reason: 'too long' } } }));
        default:
          throw new Error('unreachable');
      }
    }
    default:
      throw new Error('unreachable');
  }
}
