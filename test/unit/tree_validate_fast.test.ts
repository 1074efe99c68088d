/**
 * validateOp against a frozen copy of the validator as it was before its fast path
 * (test/unit/reference): on generated valid ops of every type and on mutated, hostile ones,
 * under the default limits and small ones, both must give the same result (accepted: the same
 * canonical op, field for field and in the same order, values the very same objects; refused:
 * the same error, code and message) and read the input the same way (the same getters and
 * Proxy traps, in the same order, each as often). checkPath gets the same treatment.
 *
 * Inputs are described as data (`Spec`) and built afresh for each validator, so a getter that
 * counts its calls or answers differently the second time shows a double read.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { Buffer } from 'node:buffer';

import { defaultTreeLimits, type TreeLimits } from '../../src/base/limits.ts';
import { leaseOpTypes, readOpTypes, writeOpTypes } from '../../src/tree/ops.ts';
import { FieldReader, msgpackWords, objectWords, own, type FieldWords } from '../../src/base/fields.ts';
import { checkPath } from '../../src/tree/path.ts';
import { validateOp } from '../../src/tree/validate.ts';
import { FieldReader as ReferenceFieldReader, own as referenceOwn } from './reference/fields_reference.ts';
import { checkPath as referenceCheckPath } from './reference/path_reference.ts';
import { validateOp as referenceValidateOp } from './reference/validate_reference.ts';

// ---- input descriptions -------------------------------------------------------------------

/** How an own property (or array element) is held. */
type How = 'data' | 'getter' | 'hidden' | 'flip' | 'throw';
type Thrown = 'error' | 'proxy' | 'string';
type Proto = 'object' | 'null' | 'class' | 'array' | 'uint8';
type Trap = 'getPrototypeOf' | 'getOwnPropertyDescriptor' | 'get' | 'has' | 'ownKeys';

type Spec =
  /** A value used as is (shared by both builds, so an accepted byte string can be compared by identity). */
  | { readonly kind: 'leaf'; readonly value: unknown }
  | { readonly kind: 'record'; readonly proto: Proto; readonly fields: readonly Field[] }
  | { readonly kind: 'list'; readonly items: readonly (Item | null)[] }
  | { readonly kind: 'proxy'; readonly target: Spec; readonly throwOn: Trap | null; readonly revoked: boolean };

type Field = { readonly key: string; readonly how: How; readonly thrown: Thrown; readonly spec: Spec };
/** An array element; null is a hole. */
type Item = { readonly how: How; readonly thrown: Thrown; readonly spec: Spec };

const leaf = (value: unknown): Spec => ({ kind: 'leaf', value });
const field = (key: string, spec: Spec): Field => ({ key, how: 'data', thrown: 'error', spec });
const record = (...fields: Field[]): Spec => ({ kind: 'record', proto: 'object', fields });

class NotPlain {}

/** What a throwing getter throws; the proxy one throws from every trap, `instanceof` included. */
function thrownValue(kind: Thrown): unknown {
  if (kind === 'string') return 'thrown';
  if (kind === 'error') return new Error('boom');
  const boom = (): never => {
    throw new Error('trap');
  };
  return new Proxy({}, { getPrototypeOf: boom, get: boom, has: boom, getOwnPropertyDescriptor: boom, ownKeys: boom });
}

/** The containers the current build made, in order: both builds make them in the same order. */
let made: object[] = [];

/** Builds the input a spec describes; every getter call and Proxy trap is appended to `log`. */
function build(spec: Spec, log: string[]): unknown {
  switch (spec.kind) {
    case 'leaf':
      return spec.value;
    case 'record': {
      const target = makeRecord(spec.proto);
      made.push(target);
      for (const f of spec.fields) define(target, f.key, f, log);
      return target;
    }
    case 'list': {
      const target: unknown[] = [];
      made.push(target);
      target.length = spec.items.length;
      spec.items.forEach((entry, index) => {
        if (entry !== null) define(target, String(index), entry, log);
      });
      return target;
    }
    case 'proxy': {
      const traps: ProxyHandler<object> = {};
      for (const trap of ['getPrototypeOf', 'getOwnPropertyDescriptor', 'get', 'has', 'ownKeys'] as const) {
        traps[trap] = (...args: unknown[]): never => {
          log.push(`trap ${trap} ${typeof args[1] === 'string' ? args[1] : ''}`);
          if (trap === spec.throwOn) throw new Error('trap');
          return (Reflect[trap] as (...a: unknown[]) => never)(...args);
        };
      }
      const target = build(spec.target, log);
      const holder = typeof target === 'object' && target !== null ? target : {};
      const { proxy, revoke } = Proxy.revocable(holder, traps);
      made.push(proxy);
      if (spec.revoked) revoke();
      return proxy;
    }
  }
}

function makeRecord(proto: Proto): object {
  switch (proto) {
    case 'object':
      return {};
    case 'null':
      return Object.create(null) as object;
    case 'class':
      return new NotPlain();
    case 'array':
      return Object.create(Array.prototype) as object;
    case 'uint8':
      return Object.create(Uint8Array.prototype) as object;
  }
}

/** A descriptor without a prototype: one test pollutes Object.prototype with `value`. */
function bare(descriptor: PropertyDescriptor): PropertyDescriptor {
  return Object.setPrototypeOf(descriptor, null) as PropertyDescriptor;
}

function accessor(get: () => unknown): PropertyDescriptor {
  return bare({ get, enumerable: true, configurable: true });
}

function define(target: object, key: string, entry: Field | Item, log: string[]): void {
  const value = (): unknown => build(entry.spec, log);
  switch (entry.how) {
    case 'data':
      Object.defineProperty(target, key, bare({ value: value(), enumerable: true, configurable: true, writable: true }));
      return;
    case 'hidden':
      Object.defineProperty(target, key, bare({ value: value(), enumerable: false, configurable: true, writable: true }));
      return;
    case 'getter':
      Object.defineProperty(
        target,
        key,
        accessor(() => {
          log.push(`get ${key}`);
          return value();
        }),
      );
      return;
    case 'flip': {
      // Shows one value to the first read and a bad path to every later one.
      let reads = 0;
      Object.defineProperty(
        target,
        key,
        accessor(() => {
          log.push(`get ${key}`);
          return reads++ === 0 ? value() : '/../flipped';
        }),
      );
      return;
    }
    case 'throw':
      Object.defineProperty(
        target,
        key,
        accessor(() => {
          log.push(`get ${key} (throws)`);
          throw thrownValue(entry.thrown);
        }),
      );
      return;
  }
}

// ---- comparing results --------------------------------------------------------------------

/**
 * A result as plain data that keeps what deep equality alone would not: the order of keys,
 * prototypes, -0, and which byte string is which (by identity, numbered in `ids`).
 */
function snapshot(value: unknown, ids: Map<object, number>): unknown {
  if (value instanceof Uint8Array) {
    if (!ids.has(value)) ids.set(value, ids.size);
    return { bytes: ids.get(value) };
  }
  if (Array.isArray(value)) return { array: value.map((element) => snapshot(element, ids)) };
  if (typeof value === 'object' && value !== null) {
    const proto: unknown = Object.getPrototypeOf(value);
    return {
      plain: proto === Object.prototype,
      entries: Object.entries(value).map(([key, inner]) => [key, snapshot(inner, ids)]),
    };
  }
  if (Object.is(value, -0)) return { negativeZero: true };
  return value;
}

/** Where a getter on a polluted Object.prototype records its reads: the running validator's log. */
let activeLog: string[] = [];

type Outcome = { readonly ok: boolean; readonly result: unknown; readonly log: readonly string[] };

function outcome(validate: (input: unknown, limits: TreeLimits) => { readonly ok: boolean }, spec: Spec, limits: TreeLimits, ids: Map<object, number>): Outcome {
  const log: string[] = [];
  made = [];
  const input = build(spec, log);
  log.push('-- built --');
  let result: { readonly ok: boolean };
  activeLog = log;
  try {
    result = validate(input, limits);
  } catch (thrown) {
    return expect.fail(`validateOp threw ${String(thrown)}`);
  } finally {
    activeLog = [];
  }
  return { ok: result.ok, result: snapshot(result, ids), log };
}

let compared = 0;
let acceptedCount = 0;

/** Both validators on the same description; returns whether the op was accepted. */
function same(spec: Spec, limits: TreeLimits): boolean {
  const ids = new Map<object, number>();
  const expected = outcome(referenceValidateOp, spec, limits, ids);
  const actual = outcome(validateOp, spec, limits, ids);
  expect(actual).to.deep.equal(expected);
  compared++;
  if (expected.ok) acceptedCount++;
  return expected.ok;
}

// ---- generators ---------------------------------------------------------------------------

const opTypes: readonly string[] = [...readOpTypes, ...writeOpTypes, ...leaseOpTypes, 'multi_cas'];
const fieldNames = ['type', 'path', 'value', 'nodeType', 'lease', 'sequential', 'recursive', 'guards', 'ops', 'version', 'ttlMs', 'ids', 'id', 'paths', 'sets', 'other', 'members', 'path1', 'path2'];

const edgeNumbers = [0, -0, 1, -1, 0.5, 1.5, 7, 199, 200, 5000, 86_400_000, 86_400_001, 2 ** 31, 2 ** 48, 2 ** 48 + 1, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 1e300, NaN, Infinity, -Infinity, Number.MIN_VALUE];

const component: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.stringMatching(/^[a-z0-9_.-]{1,8}$/) },
  { weight: 3, arbitrary: fc.constantFrom('', '.', '..', '...', '.a', 'a\u0000b', '\u0000', 'é', 'ü1', '😀', '\uD800', '\uDC00', 'a\uD83D', '\uDE00b', '日本', '\u007f', '\u0080') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 5 }) },
  { weight: 1, arbitrary: fc.nat({ max: 300 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.nat({ max: 100 }).map((n) => 'é'.repeat(n)) },
);

/** Mostly canonical paths, and every kind of malformed or oversized one. */
const pathString: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.array(component, { minLength: 1, maxLength: 6 }).map((parts) => `/${parts.join('/')}`) },
  { weight: 1, arbitrary: fc.constantFrom('/', '', 'a', 'a/b', '//', '/a/', '/a//b', ' /a', '/./a', '/a/..', '\\a', '/\u0000') },
  { weight: 1, arbitrary: fc.array(component, { maxLength: 4 }).map((parts) => parts.join('/')) },
  { weight: 1, arbitrary: fc.tuple(fc.array(component, { maxLength: 4 }), fc.constantFrom('/', '//')).map(([parts, end]) => `/${parts.join('/')}${end}`) },
  { weight: 1, arbitrary: fc.nat({ max: 80 }).map((n) => '/a'.repeat(n)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map((text) => `/${text}`) },
  { weight: 1, arbitrary: fc.nat({ max: 1100 }).map((n) => `/${'y'.repeat(n)}`) },
);

/** Byte strings, one per identity; some subclassed, sliced or detached. */
const bytesValue: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 24 }) },
  { weight: 1, arbitrary: fc.nat({ max: 64 }).map((n) => Buffer.alloc(n, 7)) },
  { weight: 1, arbitrary: fc.nat({ max: 16 }).map((n) => new Uint8Array(32).subarray(n)) },
  {
    weight: 1,
    arbitrary: fc.constant(null).map(() => {
      const detached = new Uint8Array(8);
      structuredClone(detached.buffer, { transfer: [detached.buffer] });
      return detached;
    }),
  },
  {
    weight: 1,
    arbitrary: fc.constant(null).map(() => {
      class Lying extends Uint8Array {
        override get byteLength(): number {
          return 0;
        }
      }
      return new Lying(40);
    }),
  },
);

/** Whatever a hostile client might put in a field instead. */
const hostileLeaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, true, false, ...edgeNumbers, 10n, Symbol('s'), '', 'put', 'path', 'literal', 'directory', 'blob', 'queue', 'set', 'x'.repeat(100)),
  fc.constantFrom(...opTypes),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 8 }),
  pathString,
  bytesValue,
  fc.constant(null).map(() => [new Date(0), new Map(), [], {}, Object.create(null) as unknown, () => 1, new Int8Array(2), new Uint8ClampedArray(2), new DataView(new ArrayBuffer(2)), new ArrayBuffer(2), Object.create(Uint8Array.prototype) as unknown, new NotPlain()]).chain((xs) => fc.constantFrom(...xs)),
);

const hows: readonly How[] = ['data', 'getter', 'hidden', 'flip', 'throw'];

/** Whether to spoil the input; unspoiled, only how valid fields are held varies (getters, hidden fields, key order, null prototypes). */
type Mood = { readonly mutate: boolean };

/** A field or element holding `valid`; when mutating, sometimes held strangely or replaced. */
function held(valid: fc.Arbitrary<Spec>, mood: Mood): fc.Arbitrary<{ how: How; thrown: Thrown; spec: Spec } | null> {
  const plain = valid.map((spec) => ({ how: 'data' as How, thrown: 'error' as Thrown, spec }));
  if (!mood.mutate) {
    return fc.oneof(
      { weight: 12, arbitrary: plain },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom<How>('getter', 'hidden', 'flip'), valid).map(([how, spec]) => ({ how, thrown: 'error' as Thrown, spec })) },
    );
  }
  return fc.oneof(
    { weight: 14, arbitrary: plain },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...hows), fc.constantFrom<Thrown>('error', 'proxy', 'string'), valid).map(([how, thrown, spec]) => ({ how, thrown, spec })) },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 3, arbitrary: hostileLeaf.map((value) => ({ how: 'data' as How, thrown: 'error' as Thrown, spec: leaf(value) })) },
  );
}

/** A record of the given fields (null: optional, may be absent), in a random key order, maybe spoiled. */
function recordOf(entries: readonly (readonly [string, fc.Arbitrary<Spec>, 'required' | 'optional'])[], mood: Mood): fc.Arbitrary<Spec> {
  const fieldArbs = entries.map(([key, valid, presence]) => {
    const h = held(valid, mood);
    const maybe = presence === 'optional' ? fc.option(h, { nil: null, freq: 3 }) : h;
    return maybe.map((entry) => (entry === null ? null : { key, ...entry }));
  });
  const extra = mood.mutate
    ? fc.array(fc.tuple(fc.constantFrom(...fieldNames, '__proto__', 'constructor', 'toString', 'extra'), hostileLeaf), { maxLength: 2 })
    : fc.constant([] as [string, unknown][]);
  const base = fc.tuple(fc.tuple(...fieldArbs), extra, fc.array(fc.nat(), { minLength: entries.length + 2, maxLength: entries.length + 2 })).map(([fs, extras, order]): Spec => {
    const fields: Field[] = fs.filter((f): f is Field => f !== null);
    for (const [key, value] of extras) fields.push(field(key, leaf(value)));
    // A stable sort by random keys: any insertion order.
    const ordered = fields.map((f, i) => ({ f, k: order[i % order.length] ?? 0 })).sort((a, b) => a.k - b.k).map(({ f }) => f);
    return { kind: 'record', proto: 'object', fields: ordered };
  });
  const withProto = fc.tuple(base, fc.constantFrom<Proto>('object', 'object', 'null')).map(([spec, proto]): Spec => (spec.kind === 'record' ? { ...spec, proto } : spec));
  return mood.mutate ? spoiled(withProto) : withProto;
}

/** A container spec, sometimes of a non-plain kind, or behind a Proxy (logging, maybe throwing or revoked), or not there at all. */
function spoiled(valid: fc.Arbitrary<Spec>): fc.Arbitrary<Spec> {
  const nonPlain = fc.tuple(valid, fc.constantFrom<Proto>('class', 'array', 'uint8')).map(([spec, proto]): Spec => (spec.kind === 'record' ? { ...spec, proto } : spec));
  const traps = fc.constantFrom<Trap>('getPrototypeOf', 'getOwnPropertyDescriptor', 'get', 'has', 'ownKeys');
  return fc.oneof(
    { weight: 12, arbitrary: valid },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: nonPlain }), fc.option(traps, { freq: 2 }), fc.boolean(), fc.nat(9)).map(
        ([target, throwOn, revoked, roll]): Spec => ({ kind: 'proxy', target, throwOn, revoked: revoked && roll === 0 }),
      ),
    },
    { weight: 1, arbitrary: nonPlain },
    { weight: 1, arbitrary: hostileLeaf.map(leaf) },
  );
}

/** An array of valid elements, sometimes with holes, getters, hostile elements. */
function listOf(element: fc.Arbitrary<Spec>, mood: Mood, maxLength: number): fc.Arbitrary<Spec> {
  const items = fc.array(held(element, mood), { maxLength }).map((entries): Spec => ({ kind: 'list', items: entries.map((e) => (e === null ? null : e)) }));
  return mood.mutate ? spoiled(items) : items;
}

const typeLeaf = (type: string, mood: Mood): fc.Arbitrary<Spec> => (mood.mutate ? fc.oneof({ weight: 10, arbitrary: fc.constant(leaf(type)) }, { weight: 1, arbitrary: fc.constantFrom(...opTypes, 'put').map(leaf) }) : fc.constant(leaf(type)));
const pathLeaf = (mood: Mood): fc.Arbitrary<Spec> => (mood.mutate ? pathString : fc.array(fc.stringMatching(/^[a-z0-9_-]{1,8}$/), { maxLength: 5 }).map((parts) => (parts.length === 0 ? '/' : `/${parts.join('/')}`))).map(leaf);
const bytesLeaf: fc.Arbitrary<Spec> = bytesValue.map(leaf);
const numberLeaf = (valid: fc.Arbitrary<number>, mood: Mood): fc.Arbitrary<Spec> => (mood.mutate ? fc.oneof(valid, fc.constantFrom(...edgeNumbers)) : valid).map(leaf);
const boolOrNil: fc.Arbitrary<Spec> = fc.constantFrom(true, false, null, undefined).map(leaf);
const leaseId = (mood: Mood): fc.Arbitrary<Spec> => numberLeaf(fc.integer({ min: 1, max: 2 ** 48 }), mood);

/** A simple (non-transaction) op of `type`. */
function simpleOp(type: string, mood: Mood): fc.Arbitrary<Spec> {
  const t = ['type', typeLeaf(type, mood), 'required'] as const;
  const path = ['path', pathLeaf(mood), 'required'] as const;
  const value = ['value', bytesLeaf, 'required'] as const;
  switch (type) {
    case 'list':
      return recordOf([t, path, ['recursive', boolOrNil, 'optional']], mood);
    case 'set_contains':
    case 'blob_put':
    case 'queue_push':
    case 'set_insert':
    case 'set_remove':
      return recordOf([t, path, value], mood);
    case 'create':
      return recordOf(
        [
          t,
          path,
          ['nodeType', fc.constantFrom('directory', 'blob', 'queue', 'set', ...(mood.mutate ? ['file', ''] : [])).map(leaf), 'required'],
          ['lease', fc.oneof(leaseId(mood), fc.constantFrom(null, undefined).map(leaf)), 'optional'],
          ['sequential', boolOrNil, 'optional'],
        ],
        mood,
      );
    case 'set_union':
      return recordOf(
        [
          t,
          ['paths', listOf(pathLeaf(mood), mood, 4), 'required'],
          ['sets', listOf(listOf(bytesLeaf, mood, 3), mood, 3), 'required'],
        ],
        mood,
      );
    case 'set_intersection':
    case 'set_difference':
    case 'set_symmetric_difference':
      return recordOf([t, ['path1', pathLeaf(mood), 'required'], ['path2', pathLeaf(mood), 'required']], mood);
    case 'set_is_subset':
    case 'set_is_superset': {
      const byPath = recordOf([['type', fc.constant(leaf('path')), 'required'], path], mood);
      const literal = recordOf([['type', fc.constant(leaf('literal')), 'required'], ['members', listOf(bytesLeaf, mood, 3), 'required']], mood);
      return recordOf([t, path, ['other', fc.oneof(byPath, literal), 'required']], mood);
    }
    default:
      return recordOf([t, path], mood);
  }
}

const simpleTypes = [...readOpTypes, ...writeOpTypes];

function anySimpleOp(mood: Mood): fc.Arbitrary<Spec> {
  return fc.oneof(...simpleTypes.map((type) => simpleOp(type, mood)));
}

function multiCas(mood: Mood): fc.Arbitrary<Spec> {
  // -0 is a valid version, which the canonical op folds to 0.
  const version = fc.oneof({ weight: 5, arbitrary: fc.nat() }, { weight: 1, arbitrary: fc.constant(-0) });
  const guard = recordOf([['path', pathLeaf(mood), 'required'], ['version', numberLeaf(version, mood), 'required']], mood);
  // Inside a transaction a spoiled op may be a lease op or another transaction.
  const inner = mood.mutate ? fc.oneof({ weight: 8, arbitrary: anySimpleOp(mood) }, { weight: 1, arbitrary: fc.constantFrom('multi_cas', ...leaseOpTypes).map((type) => record(field('type', leaf(type)), field('path', leaf('/a')))) }) : anySimpleOp(mood);
  return recordOf(
    [
      ['type', typeLeaf('multi_cas', mood), 'required'],
      ['guards', listOf(guard, mood, 3), 'required'],
      ['ops', listOf(inner, mood, 4), 'required'],
    ],
    mood,
  );
}

function leaseOp(type: string, mood: Mood): fc.Arbitrary<Spec> {
  const t = ['type', typeLeaf(type, mood), 'required'] as const;
  if (type === 'lease_grant') return recordOf([t, ['ttlMs', numberLeaf(fc.integer({ min: 200, max: 86_400_000 }), mood), 'required']], mood);
  if (type === 'lease_keepalive') return recordOf([t, ['ids', listOf(leaseId(mood), mood, 4), 'required']], mood);
  return recordOf([t, ['id', leaseId(mood), 'required']], mood);
}

/** An op of any type; the hot ones (blob_put, blob_get, create, delete, multi_cas) more often. */
function anyOp(mood: Mood): fc.Arbitrary<Spec> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.oneof(...['blob_put', 'blob_get', 'create', 'delete'].map((type) => simpleOp(type, mood))) },
    { weight: 3, arbitrary: anySimpleOp(mood) },
    { weight: 3, arbitrary: multiCas(mood) },
    { weight: 1, arbitrary: fc.oneof(...leaseOpTypes.map((type) => leaseOp(type, mood))) },
  );
}

/** Each limit the default or small, so that every limit is crossed now and then, alone or first among several. */
function limit(small: fc.Arbitrary<number>, standard: number): fc.Arbitrary<number> {
  return fc.oneof(fc.constant(standard), small);
}

const d = defaultTreeLimits;
const limitsArb: fc.Arbitrary<TreeLimits> = fc.oneof(
  fc.constant(defaultTreeLimits),
  fc
    .record({
      valueBytesMax: limit(fc.nat(40), d.valueBytesMax),
      pathBytesMax: limit(fc.nat(40), d.pathBytesMax),
      pathDepthMax: limit(fc.nat(6), d.pathDepthMax),
      componentBytesMax: limit(fc.nat(12), d.componentBytesMax),
      txnOpsMax: limit(fc.nat(4), d.txnOpsMax),
      txnGuardsMax: limit(fc.nat(3), d.txnGuardsMax),
      unionOperandsMax: limit(fc.nat(5), d.unionOperandsMax),
      requestBytesMax: limit(fc.nat(300), d.requestBytesMax),
      leaseTtlMinMs: limit(fc.nat(1000), d.leaseTtlMinMs),
      keepAliveIdsMax: limit(fc.nat(4), d.keepAliveIdsMax),
    })
    .map((mixed): TreeLimits => ({ ...defaultTreeLimits, ...mixed, leaseTtlMaxMs: mixed.leaseTtlMinMs + 5000 })),
);

const validOps = anyOp({ mutate: false });
const mutatedOps = anyOp({ mutate: true });

// ---- tests --------------------------------------------------------------------------------

describe('tree validate: the fast path against the reference validator', () => {
  it('gives the same results on valid ops of every type (getters, hidden fields, key orders, null prototypes)', () => {
    compared = 0;
    acceptedCount = 0;
    fc.assert(
      fc.property(validOps, (spec) => {
        same(spec, defaultTreeLimits);
      }),
      { numRuns: 3000 },
    );
    // The generator does make valid ops: most are accepted (a directory with a lease is not).
    expect(acceptedCount).to.be.greaterThan(compared * 0.8);
  });

  it('gives the same results on valid ops under small limits', () => {
    fc.assert(
      fc.property(validOps, limitsArb, (spec, limits) => {
        same(spec, limits);
      }),
      { numRuns: 2000 },
    );
  });

  it('gives the same results and reads on mutated, hostile input', () => {
    compared = 0;
    acceptedCount = 0;
    fc.assert(
      fc.property(mutatedOps, limitsArb, (spec, limits) => {
        same(spec, limits);
      }),
      { numRuns: 6000 },
    );
    // Both kinds of outcome are exercised.
    expect(acceptedCount).to.be.greaterThan(compared * 0.05);
    expect(acceptedCount).to.be.lessThan(compared * 0.95);
  });

  it('charges each request as the reference does: the same smallest requestBytesMax accepts it', () => {
    const withRequestBytes = (requestBytesMax: number): TreeLimits => ({ ...defaultTreeLimits, requestBytesMax });
    fc.assert(
      fc.property(validOps, (spec) => {
        if (!referenceValidateOp(build(spec, []), defaultTreeLimits).ok) return;
        // The reference's charge for this request: the least limit it accepts it under.
        let low = 0;
        let high = defaultTreeLimits.requestBytesMax;
        while (low < high) {
          const middle = Math.floor((low + high) / 2);
          if (referenceValidateOp(build(spec, []), withRequestBytes(middle)).ok) high = middle;
          else low = middle + 1;
        }
        expect(same(spec, withRequestBytes(low))).to.equal(true);
        if (low > 0) expect(same(spec, withRequestBytes(low - 1))).to.equal(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('gives the same results on anything at all', () => {
    fc.assert(
      fc.property(fc.anything({ withBoxedValues: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true }), limitsArb, (value, limits) => {
        same(leaf(value), limits);
      }),
      { numRuns: 1000 },
    );
  });

  it('gives the same results with Object.prototype polluted', () => {
    const pollution = fc.tuple(fc.constantFrom(...fieldNames), fc.constantFrom('value', 'getter', 'throw'), hostileLeaf);
    fc.assert(
      fc.property(mutatedOps, pollution, limitsArb, (spec, [key, how, value], limits) => {
        const descriptor: PropertyDescriptor =
          how === 'value'
            ? bare({ value, configurable: true, writable: true, enumerable: true })
            : bare({
                get: () => {
                  activeLog.push(`polluted ${key}`);
                  if (how === 'throw') throw new Error('polluted');
                  return value;
                },
                configurable: true,
              });
        const ids = new Map<object, number>();
        let expected: Outcome;
        let actual: Outcome;
        Object.defineProperty(Object.prototype, key, descriptor);
        try {
          expected = outcome(referenceValidateOp, spec, limits, ids);
          actual = outcome(validateOp, spec, limits, ids);
        } finally {
          delete (Object.prototype as Record<string, unknown>)[key];
        }
        expect(actual).to.deep.equal(expected);
      }),
      { numRuns: 1500 },
    );
  });

  it('gives the same results on the hot ops in their usual forms', () => {
    const value = new Uint8Array(100);
    const inputs: unknown[] = [
      { type: 'put', path: '/bench/k12', value },
      { type: 'blob_put', path: '/bench/k12', value },
      { type: 'blob_get', path: '/bench/k12' },
      { type: 'create', path: '/bench/k12', nodeType: 'blob' },
      { type: 'create', path: '/locks/l-', nodeType: 'blob', lease: 3, sequential: true },
      { type: 'delete', path: '/bench/k12' },
      { type: 'multi_cas', guards: [{ path: '/bench/k12', version: 3 }], ops: [{ type: 'blob_put', path: '/bench/k12', value }] },
      { type: 'multi_cas', guards: [{ path: '/a', version: -0 }], ops: [{ type: 'blob_put', path: '/a', value }, { type: 'create', path: '/q', nodeType: 'queue' }, { type: 'delete', path: '/o' }] },
    ];
    for (const input of inputs) same(leaf(input), defaultTreeLimits);
  });
});

describe('checkPath: the one-pass scan against the reference checks', () => {
  it('gives the same answer on generated paths and limits', () => {
    fc.assert(
      fc.property(fc.oneof({ weight: 8, arbitrary: pathString }, { weight: 1, arbitrary: hostileLeaf }), limitsArb, (path, limits) => {
        expect(checkPath(path, limits)).to.deep.equal(referenceCheckPath(path, limits));
      }),
      { numRuns: 20000 },
    );
  });

  it('gives the same answer at the edges of each limit', () => {
    const limits: TreeLimits = { ...defaultTreeLimits, pathBytesMax: 12, pathDepthMax: 3, componentBytesMax: 4 };
    const paths = ['/', '/abcd', '/abcde', '/a/b/c', '/a/b/c/d', '/abcd/abcd/ab', '/abcd/abcd/abc', '/éé', '/ééé', '/é/é/é/é', '/😀', '/😀😀😀', '/a/', '/a/\u0000', '/\uD800/', '/ééééééé/', '/ab\u0000/é', '/./é', '//é'];
    for (const path of paths) expect(checkPath(path, limits), path).to.deep.equal(referenceCheckPath(path, limits));
  });
});

// ---- the reader kit -----------------------------------------------------------------------

/** What the kit's refusals throw; a WeakSet brand, as a thrown Proxy must not be asked anything. */
const refusals = new WeakSet<object>();
function refuse(message: string): never {
  const refusal = { message };
  refusals.add(refusal);
  throw refusal;
}

type Kit = { readonly reader: FieldReader | ReferenceFieldReader; readonly own: typeof own };

const kitMethods = ['record', 'required', 'optional', 'recordField', 'counterValue', 'counter', 'integerValue', 'integer', 'stringValue', 'string', 'booleanValue', 'boolean', 'arrayValue', 'array', 'bytesValue', 'bytes', 'oneOfValue', 'oneOf', 'own'] as const;
type KitMethod = (typeof kitMethods)[number];
type KitCall = {
  readonly key: string;
  readonly label: string;
  readonly min: number | undefined;
  readonly max: number | undefined;
  readonly allowed: readonly string[];
};

/** Calls one reader; `input` is the value for `xValue` readers, the record for the others. */
function invoke(kit: Kit, method: KitMethod, call: KitCall, input: unknown): unknown {
  const { reader } = kit;
  const fields = input as Record<string, unknown>;
  const { key, label, min, max, allowed } = call;
  const lo = min ?? 0;
  const hi = max ?? 2 ** 40;
  switch (method) {
    case 'record':
      return reader.record(input, label);
    case 'required':
      return reader.required(fields, key, label);
    case 'optional':
      return reader.optional(fields, key);
    case 'recordField':
      return reader.recordField(fields, key, label);
    case 'counterValue':
      return reader.counterValue(input, label);
    case 'counter':
      return reader.counter(fields, key, label);
    case 'integerValue':
      return reader.integerValue(input, label, Math.min(lo, hi), Math.max(lo, hi));
    case 'integer':
      return reader.integer(fields, key, label, Math.min(lo, hi), Math.max(lo, hi));
    case 'stringValue':
      return reader.stringValue(input, label, min, max);
    case 'string':
      return reader.string(fields, key, label, min, max);
    case 'booleanValue':
      return reader.booleanValue(input, label);
    case 'boolean':
      return reader.boolean(fields, key, label);
    case 'arrayValue':
      return reader.arrayValue(input, label, max);
    case 'array':
      return reader.array(fields, key, label, max);
    case 'bytesValue':
      return reader.bytesValue(input, label, max);
    case 'bytes':
      return reader.bytes(fields, key, label, max);
    case 'oneOfValue':
      return reader.oneOfValue(input, label, allowed);
    case 'oneOf':
      return reader.oneOf(fields, key, label, allowed);
    case 'own':
      return kit.own(fields, key);
  }
}

/** One reader's outcome: what it returned (a built container by its build order), refused or threw, and its reads. */
function kitOutcome(kit: Kit, method: KitMethod, call: KitCall, spec: Spec, ids: Map<object, number>): Outcome {
  const log: string[] = [];
  made = [];
  const input = build(spec, log);
  log.push('-- built --');
  try {
    const value = invoke(kit, method, call, input);
    const index = typeof value === 'object' && value !== null ? made.indexOf(value) : -1;
    return { ok: true, result: index >= 0 ? { made: index } : snapshot(value, ids), log };
  } catch (thrown: unknown) {
    const refused = typeof thrown === 'object' && thrown !== null && refusals.has(thrown);
    return { ok: false, result: refused ? (thrown as { message: string }).message : 'threw', log };
  }
}

/** Values of every kind, containers as often as not, and Proxies around them (logging every trap) often. */
const kitContainer: fc.Arbitrary<Spec> = fc.oneof(listOf(hostileLeaf.map(leaf), { mutate: true }, 4), recordOf([['a', hostileLeaf.map(leaf), 'optional']], { mutate: true }));
const kitValue: fc.Arbitrary<Spec> = fc.oneof(
  { weight: 4, arbitrary: hostileLeaf.map(leaf) },
  { weight: 3, arbitrary: kitContainer },
  {
    weight: 2,
    arbitrary: fc.tuple(kitContainer, fc.constantFrom<Proto>('object', 'null', 'class')).map(([target, proto]): Spec => ({
      kind: 'proxy',
      target: target.kind === 'record' ? { ...target, proto } : target,
      throwOn: null,
      revoked: false,
    })),
  },
);

const kitCall: fc.Arbitrary<KitCall> = fc.record({
  key: fc.oneof({ weight: 6, arbitrary: fc.constant('a') }, { weight: 1, arbitrary: fc.constantFrom('b', '__proto__', 'toString') }),
  label: fc.constantFrom('', 'x', 'ops[3]'),
  min: fc.option(fc.oneof(fc.nat(12), fc.constantFrom(-1, 2 ** 53 - 1)), { nil: undefined }),
  max: fc.option(fc.oneof(fc.nat(12), fc.constantFrom(2 ** 48)), { nil: undefined }),
  allowed: fc.constantFrom(['a', 'blob'], ['put', 'path', ''], []),
});

describe('the reader kit against the reference kit', () => {
  for (const [name, words] of [
    ['object words', objectWords],
    ['msgpack words', msgpackWords],
  ] as const satisfies readonly (readonly [string, FieldWords])[]) {
    it(`gives the same results, refusals and reads for every reader (${name})`, () => {
      const live: Kit = { reader: new FieldReader(refuse, words), own };
      const reference: Kit = { reader: new ReferenceFieldReader(refuse, words), own: referenceOwn };
      const input = fc.oneof(kitValue, recordOf([['a', kitValue, 'required'], ['b', kitValue, 'optional']], { mutate: true }));
      fc.assert(
        fc.property(kitCall, input, (call, spec) => {
          for (const method of kitMethods) {
            const ids = new Map<object, number>();
            expect(kitOutcome(live, method, call, spec, ids), method).to.deep.equal(kitOutcome(reference, method, call, spec, ids));
          }
        }),
        { numRuns: 2000 },
      );
    });
  }
});
