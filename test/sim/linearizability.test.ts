import { assertNever } from '../../src/base/assert.ts';
import { expect } from 'chai';
import fc from 'fast-check';

import { checkHistory, PENDING, type CheckResult, type Model, type Operation } from './linearizability.ts';

// ---- models --------------------------------------------------------------------------------

/** What a sequential object does: the next state and the answer it gives. */
type Apply<S, I, O> = (state: S, input: I) => { state: S; output: O };

/**
 * Builds a model from an executable sequential object: `step` checks the recorded output
 * against the object's answer, `stepPending` applies the effect regardless of the answer.
 * Outputs in these tests are primitives, so `===` is the right equality.
 */
function fromApply<S, I, O>(
  base: Pick<Model<S, I, O>, 'init' | 'key'> & Partial<Pick<Model<S, I, O>, 'partition' | 'describe'>>,
  apply: Apply<S, I, O>,
): Model<S, I, O> {
  return {
    ...base,
    step(state, input, output) {
      const next = apply(state, input);
      return { ok: next.output === output, state: next.state };
    },
    stepPending: (state, input) => apply(state, input).state,
  };
}

type RegisterInput = { kind: 'read' } | { kind: 'write'; value: number } | { kind: 'cas'; from: number; to: number };
type RegisterOutput = number | boolean | 'ok';

const applyRegister: Apply<number, RegisterInput, RegisterOutput> = (state, input) => {
  switch (input.kind) {
    case 'read':
      return { state, output: state };
    case 'write':
      return { state: input.value, output: 'ok' };
    case 'cas':
      return state === input.from ? { state: input.to, output: true } : { state, output: false };
    default:
      return assertNever(input, 'register input');
  }
};

/** A register holding a number, initially 0, with read, write and compare-and-set. */
const register = fromApply<number, RegisterInput, RegisterOutput>(
  {
    init: () => 0,
    key: (state) => String(state),
    describe: (input, output) =>
      input.kind === 'read'
        ? `read -> ${String(output)}`
        : input.kind === 'write'
          ? `write(${input.value})`
          : `cas(${input.from}, ${input.to}) -> ${String(output)}`,
  },
  applyRegister,
);

type KvInput =
  | { kind: 'get'; key: string }
  | { kind: 'put'; key: string; value: number }
  | { kind: 'putMany'; entries: readonly (readonly [string, number])[] };
type KvOutput = number | 'ok';
type KvState = ReadonlyMap<string, number>;

const applyKv: Apply<KvState, KvInput, KvOutput> = (state, input) => {
  switch (input.kind) {
    case 'get':
      return { state, output: state.get(input.key) ?? 0 };
    case 'put':
      return { state: new Map(state).set(input.key, input.value), output: 'ok' };
    case 'putMany': {
      const next = new Map(state);
      for (const [key, value] of input.entries) next.set(key, value);
      return { state: next, output: 'ok' };
    }
    default:
      return assertNever(input, 'kv input');
  }
};

/** A map from keys to numbers (missing keys read as 0), partitioned by key. */
const kv = fromApply<KvState, KvInput, KvOutput>(
  {
    init: () => new Map(),
    key: (state) => JSON.stringify([...state].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    partition: (input) => (input.kind === 'putMany' ? input.entries.map(([key]) => key) : [input.key]),
  },
  applyKv,
);

type QueueInput = { kind: 'push'; value: number } | { kind: 'pop' };
type QueueOutput = number | 'ok' | 'empty';

/** A FIFO queue: unlike register writes, the order of two pushes is observable. */
const queue = fromApply<readonly number[], QueueInput, QueueOutput>(
  { init: () => [], key: (state) => state.join(',') },
  (state, input) => {
    if (input.kind === 'push') return { state: [...state, input.value], output: 'ok' };
    const [first, ...rest] = state;
    return first === undefined ? { state, output: 'empty' } : { state: rest, output: first };
  },
);

// ---- history shorthands --------------------------------------------------------------------

type Client = string | number;

function op<I, O>(clientId: Client, call: number, ret: number, input: I, output: O): Operation<I, O> {
  return { clientId, call, ret, input, output };
}

function pending<I, O>(clientId: Client, call: number, input: I): Operation<I, O> {
  return { clientId, call, ret: Infinity, input, output: PENDING };
}

type RegisterOp = Operation<RegisterInput, RegisterOutput>;
const write = (c: Client, call: number, ret: number, value: number): RegisterOp =>
  op(c, call, ret, { kind: 'write', value }, 'ok');
const read = (c: Client, call: number, ret: number, value: number): RegisterOp => op(c, call, ret, { kind: 'read' }, value);
const cas = (c: Client, call: number, ret: number, from: number, to: number, ok: boolean): RegisterOp =>
  op(c, call, ret, { kind: 'cas', from, to }, ok);
const pendingWrite = (c: Client, call: number, value: number): RegisterOp =>
  pending<RegisterInput, RegisterOutput>(c, call, { kind: 'write', value });

type KvOp = Operation<KvInput, KvOutput>;
const put = (c: Client, call: number, ret: number, key: string, value: number): KvOp =>
  op(c, call, ret, { kind: 'put', key, value }, 'ok');
const get = (c: Client, call: number, ret: number, key: string, value: number): KvOp =>
  op(c, call, ret, { kind: 'get', key }, value);

type QueueOp = Operation<QueueInput, QueueOutput>;
const push = (c: Client, call: number, ret: number, value: number): QueueOp =>
  op(c, call, ret, { kind: 'push', value }, 'ok');
const pop = (c: Client, call: number, ret: number, output: number | 'empty'): QueueOp => op(c, call, ret, { kind: 'pop' }, output);

function expectLinearizable(result: CheckResult): void {
  expect(result, JSON.stringify(result)).to.include({ linearizable: true });
}

function expectViolation(result: CheckResult): Extract<CheckResult, { linearizable: false }> {
  if (result.linearizable !== false) expect.fail(`expected a violation, got ${JSON.stringify(result)}`);
  return result;
}

// ---- generated histories -------------------------------------------------------------------

/**
 * One operation of a sequential execution, and how the recorded history blurs it: the call is
 * moved up to `before` slots earlier and the return up to `after` slots later; `fate` says
 * whether the client saw the response, or lost it after (or before) the operation took effect.
 */
type PlannedOp<I> = { input: I; before: number; after: number; fate: 'completed' | 'applied' | 'lost' };

/**
 * Turns a sequential execution into a history that is linearizable by construction: the i-th
 * operation takes effect at time 2i+1 and its call and return are even times around it, so any
 * two operations ordered in real time (`ret <= call`, ties included) are in sequential order.
 */
function historyFromSequential<S, I, O>(init: S, apply: Apply<S, I, O>, plan: readonly PlannedOp<I>[]): Operation<I, O>[] {
  let state = init;
  return plan.map(({ input, before, after, fate }, i) => {
    const point = 2 * i + 1;
    const call = Math.max(0, point - 1 - 2 * before);
    if (fate === 'lost') return pending<I, O>(i, call, input);
    const next = apply(state, input);
    state = next.state;
    if (fate === 'applied') return pending<I, O>(i, call, input);
    return op(i, call, point + 1 + 2 * after, input, next.output);
  });
}

function plannedOps<I>(input: fc.Arbitrary<I>): fc.Arbitrary<PlannedOp<I>[]> {
  const fate = fc.constantFrom<PlannedOp<I>['fate']>('completed', 'completed', 'completed', 'completed', 'applied', 'lost');
  const slack = fc.nat({ max: 5 });
  return fc.array(fc.record({ input, before: slack, after: slack, fate }), { maxLength: 40 });
}

const registerInput: fc.Arbitrary<RegisterInput> = fc.oneof(
  fc.constant({ kind: 'read' as const }),
  fc.record({ kind: fc.constant('write' as const), value: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('cas' as const), from: fc.integer({ min: 0, max: 3 }), to: fc.integer({ min: 1, max: 3 }) }),
);

const kvKey = fc.constantFrom('a', 'b', 'c');
const kvInput: fc.Arbitrary<KvInput> = fc.oneof(
  fc.record({ kind: fc.constant('get' as const), key: kvKey }),
  fc.record({ kind: fc.constant('put' as const), key: kvKey, value: fc.integer({ min: 1, max: 3 }) }),
);

/** A value no generated operation writes (they write 1..3; registers start at 0). */
const NEVER_WRITTEN = 99;

/** Replaces the output of the `choice`-th completed read-like operation with {@link NEVER_WRITTEN}. */
function corruptOneRead<I, O>(
  history: readonly Operation<I, O>[],
  isRead: (input: I) => boolean,
  choice: number,
  never: O,
): Operation<I, O>[] {
  const reads = history.flatMap((o, i) => (isRead(o.input) && o.output !== PENDING ? [i] : []));
  const victim = reads[choice % reads.length];
  return history.map((o, i) => (i === victim ? { ...o, output: never } : o));
}

/** A small deterministic PRNG (mulberry32), so the simulated histories are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Simulates `clients` concurrent clients issuing `count` get/put operations on `keys` keys.
 * Each operation takes effect at an integer instant strictly inside its interval; outputs are
 * computed by replaying the operations in the order of those instants, so the history is
 * linearizable by construction. A client may call again at the tick its last call returned.
 */
function simulateKvClients(options: { clients: number; keys: number; count: number; seed: number }): KvOp[] {
  const random = prng(options.seed);
  const below = (n: number): number => Math.floor(random() * n);
  const clocks = Array.from({ length: options.clients }, () => below(5));
  const planned: { input: KvInput; client: number; call: number; ret: number; point: number }[] = [];
  for (let n = 0; n < options.count; n++) {
    const client = clocks.indexOf(Math.min(...clocks));
    const call = clocks[client] ?? 0;
    const ret = call + 2 + below(20);
    const key = `k${below(options.keys)}`;
    const input: KvInput = random() < 0.5 ? { kind: 'get', key } : { kind: 'put', key, value: below(4) };
    planned.push({ input, client, call, ret, point: call + 1 + below(ret - call - 1) });
    clocks[client] = ret + below(3);
  }
  const outputs = new Map<object, KvOutput>();
  let state = kv.init();
  for (const p of [...planned].sort((a, b) => a.point - b.point)) {
    const next = applyKv(state, p.input);
    state = next.state;
    outputs.set(p, next.output);
  }
  return planned.map((p) => op(`c${p.client}`, p.call, p.ret, p.input, outputs.get(p) ?? 'ok'));
}

// ---- tests ---------------------------------------------------------------------------------

describe('linearizability checker', () => {
  describe('register', () => {
    it('accepts a sequential history', () => {
      const history = [write('a', 0, 1, 1), read('b', 2, 3, 1), write('b', 4, 5, 2), read('a', 6, 7, 2)];
      const result = checkHistory(register, history);
      expectLinearizable(result);
      expect(result.explored).to.equal(4);
    });

    it('accepts an empty history', () => {
      expectLinearizable(checkHistory(register, []));
      expectLinearizable(checkHistory(kv, []));
    });

    it('accepts reads overlapping two writes that see either value, or the initial one', () => {
      const writes = [write('w1', 0, 10, 1), write('w2', 1, 11, 2)];
      for (const [x, y] of [[1, 2], [2, 1], [0, 1], [0, 2], [1, 1], [2, 2]] as const) {
        const history = [...writes, read('r', 2, 4, x), read('r', 5, 8, y)];
        expectLinearizable(checkHistory(register, history));
      }
      // after both writes, whichever went last is the value
      expectLinearizable(checkHistory(register, [...writes, read('r', 12, 13, 1), read('r', 14, 15, 1)]));
      expectLinearizable(checkHistory(register, [...writes, read('r', 12, 13, 2)]));
    });

    it('rejects a stale read: a read after a completed write returns the old value', () => {
      const history = [write('a', 0, 1, 1), read('b', 2, 3, 0)];
      const result = expectViolation(checkHistory(register, history));
      expect(result.partition).to.equal('');
      expect(result.ops).to.deep.equal(['#0 client a [0, 1] write(1)', '#1 client b [2, 3] read -> 0']);
      expect(result.reason).to.contain('#1 client b [2, 3] read -> 0');
      expect(result.reason).to.contain('1 operation(s) (ending #0)');
    });

    it('rejects a lost update: two compare-and-set increments from the same value both succeed', () => {
      const lostUpdate = [read('a', 0, 1, 0), read('b', 0, 1, 0), cas('a', 2, 4, 0, 1, true), cas('b', 3, 5, 0, 1, true)];
      expectViolation(checkHistory(register, lostUpdate));
      // the correct outcome: the second compare-and-set fails
      const detected = [read('a', 0, 1, 0), read('b', 0, 1, 0), cas('a', 2, 4, 0, 1, true), cas('b', 3, 5, 0, 1, false)];
      expectLinearizable(checkHistory(register, detected));
    });

    it('rejects a read of a value that was never written', () => {
      const history = [write('a', 0, 5, 1), read('b', 1, 6, 42)];
      expectViolation(checkHistory(register, history));
    });

    it('rejects reads flipping between two concurrent writes after both completed', () => {
      const writes = [write('w1', 0, 10, 1), write('w2', 0, 10, 2)];
      const history = [...writes, read('r', 11, 12, 1), read('r', 13, 14, 2), read('r', 15, 16, 1)];
      expectViolation(checkHistory(register, history));
      // one flip is fine while the writes are still running: 1 then 2
      expectLinearizable(checkHistory(register, [...writes, read('r', 1, 2, 1), read('r', 3, 4, 2)]));
    });
  });

  describe('time convention', () => {
    it('orders an operation that returns at tick t before one called at tick t', () => {
      const history = [write('a', 0, 5, 1), read('b', 5, 6, 0)];
      expectViolation(checkHistory(register, history));
    });

    it('treats an operation called one tick before another returns as concurrent', () => {
      const history = [write('a', 0, 5, 1), read('b', 4, 6, 0)];
      expectLinearizable(checkHistory(register, history));
    });

    it('rejects malformed operations', () => {
      expect(() => checkHistory(register, [write('a', 3, 3, 1)])).to.throw(RangeError, /call \(3\) must be before ret \(3\)/);
      expect(() => checkHistory(register, [write('a', 3, 2, 1)])).to.throw(RangeError);
      expect(() => checkHistory(register, [write('a', Number.NaN, 2, 1)])).to.throw(RangeError, /call time/);
      expect(() => checkHistory(register, [write('a', 0, Infinity, 1)])).to.throw(RangeError, /PENDING/);
      expect(() => checkHistory(register, [{ ...pendingWrite('a', 0, 1), ret: 7 }])).to.throw(RangeError, /Infinity/);
    });
  });

  describe('pending operations', () => {
    it('accepts a pending write whether or not it took effect', () => {
      expectLinearizable(checkHistory(register, [pendingWrite('a', 0, 1), read('b', 5, 6, 0)]));
      expectLinearizable(checkHistory(register, [pendingWrite('a', 0, 1), read('b', 5, 6, 1)]));
      expectLinearizable(checkHistory(register, [pendingWrite('a', 0, 1), write('b', 1, 2, 2), read('c', 3, 4, 2)]));
    });

    it('accepts a pending write observed by a later read, after the other writes', () => {
      const history = [write('a', 0, 1, 2), pendingWrite('b', 2, 1), read('c', 3, 4, 2), read('c', 5, 6, 1), read('d', 7, 8, 1)];
      expectLinearizable(checkHistory(register, history));
    });

    it('cannot take effect before it was called', () => {
      const history = [read('a', 0, 1, 1), pendingWrite('b', 2, 1)];
      expectViolation(checkHistory(register, history));
    });

    it('rejects observations impossible even with the pending operation', () => {
      // once a read saw the pending write, it took effect: a later read cannot undo it
      const undone = [pendingWrite('a', 0, 1), read('b', 1, 2, 1), read('b', 3, 4, 0)];
      expectViolation(checkHistory(register, undone));
      // a pending write of 1 does not explain a read of 2
      expectViolation(checkHistory(register, [pendingWrite('a', 0, 1), read('b', 1, 2, 2)]));
    });

    it('requires stepPending when the history has pending operations', () => {
      const strict: Model<number, RegisterInput, RegisterOutput> = { init: register.init, step: register.step, key: register.key };
      expect(() => checkHistory(strict, [pendingWrite('a', 0, 1)])).to.throw(Error, /stepPending/);
      expectLinearizable(checkHistory(strict, [write('a', 0, 1, 1)]));
    });
  });

  describe('queue', () => {
    it('accepts concurrent pops returning the two elements in either order', () => {
      const pushes = [push('a', 0, 1, 1), push('a', 2, 3, 2)];
      expectLinearizable(checkHistory(queue, [...pushes, pop('b', 4, 6, 1), pop('c', 5, 7, 2)]));
      expectLinearizable(checkHistory(queue, [...pushes, pop('b', 4, 6, 2), pop('c', 5, 7, 1)]));
    });

    it('rejects concurrent pops returning the same element', () => {
      const history = [push('a', 0, 1, 1), push('a', 2, 3, 2), pop('b', 4, 6, 1), pop('c', 5, 7, 1)];
      expectViolation(checkHistory(queue, history));
    });

    it('distinguishes the order of pushes: concurrent pushes may go either way, sequential ones may not', () => {
      const pops = [pop('c', 10, 11, 2), pop('c', 12, 13, 1), pop('c', 14, 15, 'empty')];
      expectLinearizable(checkHistory(queue, [push('a', 0, 2, 1), push('b', 1, 3, 2), ...pops]));
      expectViolation(checkHistory(queue, [push('a', 0, 1, 1), push('b', 2, 3, 2), ...pops]));
    });
  });

  describe('partitioning', () => {
    it('reports a violation with the key of its partition', () => {
      const history = [
        put('a', 0, 1, 'x', 1),
        put('b', 0, 1, 'y', 1),
        get('c', 2, 3, 'x', 1),
        get('c', 4, 5, 'y', 0), // stale
        get('d', 2, 6, 'z', 0),
      ];
      const result = expectViolation(checkHistory(kv, history));
      expect(result.partition).to.equal('y');
      expect(result.ops).to.have.length(2);
      expect(result.reason).to.contain('partition "y"');
    });

    it('puts an operation on several keys into each of their partitions', () => {
      const putMany: KvOp = op('a', 0, 1, { kind: 'putMany', entries: [['x', 1], ['y', 2]] }, 'ok');
      expectLinearizable(checkHistory(kv, [putMany, get('b', 2, 3, 'x', 1), get('b', 4, 5, 'y', 2)]));
      const result = expectViolation(checkHistory(kv, [putMany, get('b', 2, 3, 'x', 1), get('b', 4, 5, 'y', 0)]));
      expect(result.partition).to.equal('y');
    });

    it('checks independent keys with 20 concurrent clients quickly', () => {
      const history = simulateKvClients({ clients: 20, keys: 20, count: 1_000, seed: 7 });
      const result = checkHistory(kv, history);
      expectLinearizable(result);
      expect(result.explored).to.be.below(20_000);
    });
  });

  describe('search', () => {
    it('gives up with unknown when the budget is exhausted', () => {
      const history = [write('a', 0, 10, 1), write('b', 0, 10, 2), write('c', 0, 10, 3), read('d', 11, 12, 1)];
      const result = checkHistory(register, history, { maxExplored: 2 });
      expect(result).to.include({ linearizable: 'unknown', explored: 2 });
      expectLinearizable(checkHistory(register, history));
      expect(() => checkHistory(register, history, { maxExplored: -1 })).to.throw(RangeError, /maxExplored/);
    });

    it('handles long histories without recursion', () => {
      const history = Array.from({ length: 10_000 }, (_, i) =>
        i % 2 === 0 ? write('a', 2 * i, 2 * i + 1, i) : read('b', 2 * i, 2 * i + 1, i - 1),
      );
      const result = checkHistory(register, history);
      expectLinearizable(result);
      expect(result.explored).to.equal(10_000);
    });

    it('checks 2,000 operations over 20 keys from 10 concurrent clients', () => {
      const history = simulateKvClients({ clients: 10, keys: 20, count: 2_000, seed: 42 });
      expectLinearizable(checkHistory(kv, history));
      const corrupted = corruptOneRead(history, (input) => input.kind === 'get', 1_000, NEVER_WRITTEN);
      const victim = corrupted.find((o, i) => o !== history[i]);
      const result = expectViolation(checkHistory(kv, corrupted));
      expect(victim?.input).to.have.property('key', result.partition);
    });
  });

  describe('properties', () => {
    const readRegister = (input: RegisterInput): boolean => input.kind === 'read';
    const getKv = (input: KvInput): boolean => input.kind === 'get';
    const appendRead = <I>(plan: PlannedOp<I>[], input: I): PlannedOp<I>[] => [
      ...plan,
      { input, before: 3, after: 0, fate: 'completed' },
    ];

    it('accepts blurred sequential register executions', () => {
      fc.assert(
        fc.property(plannedOps(registerInput), (plan) => {
          expectLinearizable(checkHistory(register, historyFromSequential(0, applyRegister, plan)));
        }),
        { numRuns: 200 },
      );
    });

    it('accepts blurred sequential key-value executions', () => {
      fc.assert(
        fc.property(plannedOps(kvInput), (plan) => {
          expectLinearizable(checkHistory(kv, historyFromSequential(kv.init(), applyKv, plan)));
        }),
        { numRuns: 200 },
      );
    });

    it('rejects a register execution where one read returns a value never written', () => {
      fc.assert(
        fc.property(plannedOps(registerInput), fc.nat(), (plan, choice) => {
          const history = historyFromSequential(0, applyRegister, appendRead(plan, { kind: 'read' }));
          expectViolation(checkHistory(register, corruptOneRead(history, readRegister, choice, NEVER_WRITTEN)));
        }),
        { numRuns: 200 },
      );
    });

    it('rejects a key-value execution where one get returns a value never written', () => {
      fc.assert(
        fc.property(plannedOps(kvInput), kvKey, fc.nat(), (plan, key, choice) => {
          const history = historyFromSequential(kv.init(), applyKv, appendRead(plan, { kind: 'get', key }));
          const result = expectViolation(checkHistory(kv, corruptOneRead(history, getKv, choice, NEVER_WRITTEN)));
          expect(['a', 'b', 'c']).to.include(result.partition);
        }),
        { numRuns: 200 },
      );
    });
  });
});
