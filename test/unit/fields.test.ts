/**
 * The reader kit for untrusted input (src/base/fields.ts): the rules every boundary relies on
 * (plain records only, own fields only, bounded numbers, strings and arrays, brand-checked
 * bytes) and the wording of its refusals, which go through the boundary's own `fail`.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import {
  FieldReader,
  at,
  byteLengthOf,
  isCounter,
  isPlainObject,
  isUint8Array,
  msgpackWords,
  objectWords,
  own,
  type Fields,
} from '../../src/base/fields.ts';

/** The boundary's own typed rejection, as each validator has one. */
class Refused {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

const fail = (message: string): never => {
  throw new Refused(message);
};

const read = new FieldReader(fail);
const wire = new FieldReader(fail, msgpackWords);

/** The message `run` was refused with; fails the test if it returned instead. */
function refusal(run: () => unknown): string {
  let result: unknown;
  try {
    result = run();
  } catch (thrown: unknown) {
    if (thrown instanceof Refused) return thrown.message;
    throw thrown;
  }
  return expect.fail(`expected a refusal, got ${String(result)}`);
}

class Point {
  x = 1;
  y = 2;
}

/** Values of every kind that is not a plain record. */
const nonRecords: readonly [string, unknown][] = [
  ['undefined', undefined],
  ['null', null],
  ['a number', 42],
  ['a string', 'type'],
  ['a boolean', true],
  ['a bigint', 10n],
  ['a symbol', Symbol('x')],
  ['a function', () => ({})],
  ['an array', [1, 2]],
  ['an empty array', []],
  ['a class instance', new Point()],
  ['a Map', new Map([['type', 'stat']])],
  ['a Set', new Set(['type'])],
  ['a Date', new Date(0)],
  ['a RegExp', /x/],
  ['a Uint8Array', new Uint8Array(2)],
  ['a Buffer', Buffer.from('ab')],
  ['a boxed string', new String('x')],
  ['a boxed number', new Number(1)],
  ['a Promise', Promise.resolve(1)],
  ['an object inheriting its fields', Object.create({ type: 'stat' }) as object],
  ['an Error', new Error('x')],
];

describe('fields: the reader kit for untrusted input (src/base/fields.ts)', () => {
  describe('records: plain objects only', () => {
    it('accepts object literals, Object.create(null) and a transparent Proxy of a plain object', () => {
      const literal = { a: 1 };
      const bare = Object.create(null) as Record<string, unknown>;
      bare['a'] = 1;
      const proxied = new Proxy({ a: 1 }, {});
      for (const value of [literal, bare, proxied, {}]) {
        expect(isPlainObject(value)).to.equal(true);
        expect(read.record(value, 'op')).to.equal(value);
      }
    });

    for (const [name, value] of nonRecords) {
      it(`refuses ${name}`, () => {
        expect(isPlainObject(value)).to.equal(false);
        expect(refusal(() => read.record(value, 'op'))).to.equal('op must be an object');
        expect(refusal(() => wire.record(value, 'message'))).to.equal('message must be a map');
      });
    }

    it('refuses a value of every generated non-plain kind (property)', () => {
      const nonPlain = fc.oneof(
        fc.oneof(fc.constant(null), fc.constant(undefined), fc.boolean(), fc.double(), fc.bigInt(), fc.string()),
        fc.array(fc.anything(), { maxLength: 3 }),
        fc.uint8Array({ maxLength: 4 }),
        fc.int32Array({ maxLength: 4 }),
        fc.date(),
        fc.dictionary(fc.string(), fc.anything()).map((entries) => new Map(Object.entries(entries))),
        fc.array(fc.anything(), { maxLength: 3 }).map((items) => new Set(items)),
        fc.dictionary(fc.string(), fc.anything()).map((proto) => Object.create(proto) as object),
        // Not `__proto__`: assigning it would replace the instance's prototype, with null too.
        fc.dictionary(fc.string().filter((key) => key !== '__proto__'), fc.anything()).map((fields) => Object.assign(new Point(), fields)),
      );
      fc.assert(
        fc.property(nonPlain, (value) => {
          expect(refusal(() => read.record(value, 'x'))).to.equal('x must be an object');
        }),
        { numRuns: 500 },
      );
    });

    it('accepts every generated plain object, returning it as is (property)', () => {
      fc.assert(
        fc.property(fc.object({ withNullPrototype: true, maxDepth: 1 }), (value) => {
          expect(read.record(value, 'x')).to.equal(value);
        }),
        { numRuns: 300 },
      );
    });

    it('recordField reads a nested record, naming it by its path', () => {
      const inner = { b: 1 };
      expect(read.recordField({ a: inner }, 'a', '')).to.equal(inner);
      expect(refusal(() => read.recordField({ a: [] }, 'a', 'op'))).to.equal('op.a must be an object');
      expect(refusal(() => read.recordField({}, 'a', 'op'))).to.equal('missing field op.a');
    });
  });

  describe('fields: own properties only', () => {
    it('reads own fields, not inherited ones', () => {
      const fields = Object.create({ inherited: 1 }) as Record<string, unknown>;
      fields['mine'] = 2;
      expect(own(fields, 'mine')).to.equal(2);
      expect(own(fields, 'inherited')).to.equal(undefined);
      expect(own({}, 'toString')).to.equal(undefined);
      expect(own({}, '__proto__')).to.equal(undefined);
    });

    it('ignores fields supplied by a polluted Object.prototype', () => {
      Object.defineProperty(Object.prototype, 'polluted', { value: 'yes', configurable: true, writable: true });
      try {
        const fields: Fields = {};
        expect((fields as Record<string, unknown>)['polluted'], 'the pollution is visible to a plain read').to.equal('yes');
        expect(own(fields, 'polluted')).to.equal(undefined);
        expect(read.optional(fields, 'polluted')).to.equal(undefined);
        expect(refusal(() => read.string(fields, 'polluted', ''))).to.equal('missing field polluted');
        expect(refusal(() => read.required(fields, 'polluted', 'op'))).to.equal('missing field op.polluted');
      } finally {
        delete (Object.prototype as Record<string, unknown>)['polluted'];
      }
      expect(Object.hasOwn(Object.prototype, 'polluted')).to.equal(false);
    });

    it('an own field set to undefined is missing; null is a value', () => {
      expect(refusal(() => read.required({ a: undefined }, 'a', ''))).to.equal('missing field a');
      expect(read.required({ a: null }, 'a', '')).to.equal(null);
      expect(read.optional({ a: null }, 'a')).to.equal(null);
      expect(read.optional({}, 'a')).to.equal(undefined);
    });

    it('labels join a container and a field; top-level fields are bare', () => {
      expect(at('', 'type')).to.equal('type');
      expect(at('ops[2]', 'path')).to.equal('ops[2].path');
      expect(at('answer.body', 'outcome')).to.equal('answer.body.outcome');
    });
  });

  describe('counters and integers: bounded before use', () => {
    it('accepts non-negative safe integers and folds -0 to 0', () => {
      for (const value of [0, 1, 42, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
        expect(read.counterValue(value, 'n')).to.equal(value);
        expect(isCounter(value)).to.equal(true);
      }
      const folded = read.counterValue(-0, 'n');
      expect(Object.is(folded, 0), 'a -0 counter becomes +0').to.equal(true);
      expect(Object.is(read.counter({ n: -0 }, 'n', ''), 0)).to.equal(true);
      expect(Object.is(read.integerValue(-0, 'n', -5, 5), 0)).to.equal(true);
    });

    it('refuses NaN, infinities, fractions, negatives, 2^53 and non-numbers', () => {
      for (const value of [Number.NaN, Infinity, -Infinity, 1.5, -1, 2 ** 53, 2 ** 64, '3', 3n, null, true, [1], new Number(1)]) {
        expect(isCounter(value), String(value)).to.equal(false);
        expect(refusal(() => read.counterValue(value, 'op.version'))).to.equal('op.version must be a non-negative integer below 2^53');
      }
      expect(refusal(() => read.counter({}, 'version', 'op'))).to.equal('missing field op.version');
      expect(refusal(() => read.counter({ version: -1 }, 'version', 'op'))).to.equal('op.version must be a non-negative integer below 2^53');
    });

    it('counterValue accepts exactly the non-negative safe integers (property)', () => {
      const numbers = fc.oneof(
        fc.integer(),
        fc.double(),
        fc.maxSafeInteger(),
        fc.constantFrom(2 ** 53, 2 ** 53 + 2, -0, Number.NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER),
      );
      fc.assert(
        fc.property(numbers, (value) => {
          const expected = Number.isInteger(value) && value >= 0 && value <= Number.MAX_SAFE_INTEGER;
          if (expected) expect(read.counterValue(value, 'n')).to.equal(value);
          else expect(refusal(() => read.counterValue(value, 'n'))).to.match(/^n must be/);
        }),
        { numRuns: 1000 },
      );
    });

    it('integers are bounded by an inclusive range', () => {
      expect(read.integer({ p: -3 }, 'p', '', -3, 3)).to.equal(-3);
      expect(read.integer({ p: 3 }, 'p', '', -3, 3)).to.equal(3);
      for (const value of [-4, 4, 0.5, Number.NaN, '1']) {
        expect(refusal(() => read.integer({ p: value }, 'p', 'x', -3, 3))).to.equal('x.p must be an integer in -3..3');
      }
    });
  });

  describe('strings and booleans', () => {
    it('accepts a string within its length bounds, inclusive', () => {
      expect(read.string({ id: 'a' }, 'id', '', 1, 3)).to.equal('a');
      expect(read.string({ id: 'abc' }, 'id', '', 1, 3)).to.equal('abc');
      expect(read.stringValue('', 'name')).to.equal('');
    });

    it('refuses a string outside its bounds, and what is not a string', () => {
      expect(refusal(() => read.string({ id: '' }, 'id', 'req', 1, 3))).to.equal('req.id must be 1..3 characters');
      expect(refusal(() => read.string({ id: 'abcd' }, 'id', 'req', 1, 3))).to.equal('req.id must be 1..3 characters');
      for (const value of [1, null, ['a'], new String('a'), Buffer.from('a')]) {
        expect(refusal(() => read.stringValue(value, 'path'))).to.equal('path must be a string');
      }
      expect(refusal(() => read.string({}, 'id', 'req'))).to.equal('missing field req.id');
    });

    it('booleans are primitives only', () => {
      expect(read.boolean({ b: false }, 'b', '')).to.equal(false);
      for (const value of [0, 1, 'true', new Boolean(true), null]) {
        expect(refusal(() => read.booleanValue(value, 'b'))).to.equal('b must be a boolean');
      }
    });
  });

  describe('arrays: the length is checked before any element is read', () => {
    it('accepts arrays up to lengthMax', () => {
      const items = [1, 2, 3];
      expect(read.array({ items }, 'items', '', 3)).to.equal(items);
      expect(read.arrayValue([], 'items', 0)).to.deep.equal([]);
    });

    it('refuses an array over lengthMax without touching its elements', () => {
      const touched: PropertyKey[] = [];
      const items = new Proxy([1, 2, 3, 4], {
        get(target, key, receiver) {
          if (key !== 'length') touched.push(key);
          return Reflect.get(target, key, receiver) as unknown;
        },
        getOwnPropertyDescriptor(target, key) {
          touched.push(key);
          return Reflect.getOwnPropertyDescriptor(target, key);
        },
      });
      expect(refusal(() => read.arrayValue(items, 'ops', 3))).to.equal('ops must have at most 3 elements');
      expect(touched).to.deep.equal([]);
    });

    it('a huge sparse array costs nothing to refuse', () => {
      const huge: unknown[] = [];
      huge.length = 2 ** 32 - 1;
      expect(refusal(() => read.arrayValue(huge, 'ops', 1024))).to.equal('ops must have at most 1024 elements');
    });

    it('refuses what is not an array, array-likes and typed arrays included', () => {
      for (const value of [{ length: 0 }, 'abc', new Uint8Array(2), new Set(), null, undefined]) {
        expect(refusal(() => read.arrayValue(value, 'ops'))).to.equal('ops must be an array');
      }
      expect(refusal(() => read.array({}, 'ops', 'txn'))).to.equal('missing field txn.ops');
    });
  });

  describe('bytes: brand-checked with the intrinsic %TypedArray% getters', () => {
    it('accepts a Uint8Array and a Node Buffer, kept by reference', () => {
      const plain = new Uint8Array([1, 2, 3]);
      const buffer = Buffer.from([1, 2, 3]);
      expect(read.bytesValue(plain, 'v')).to.equal(plain);
      expect(read.bytesValue(buffer, 'v')).to.equal(buffer);
      expect(read.bytes({ v: buffer }, 'v', '', 3)).to.equal(buffer);
      expect(byteLengthOf(buffer)).to.equal(3);
    });

    it('refuses other typed arrays, views and buffers', () => {
      const others = [new Uint8ClampedArray(2), new Int8Array(2), new Uint16Array(2), new Float64Array(1), new DataView(new ArrayBuffer(2)), new ArrayBuffer(2), [1, 2], 'ab'];
      for (const value of others) {
        expect(isUint8Array(value)).to.equal(false);
        expect(refusal(() => read.bytesValue(value, 'value'))).to.equal('value must be a Uint8Array');
        expect(refusal(() => wire.bytesValue(value, 'value'))).to.equal('value must be bytes (msgpack bin)');
      }
    });

    it('refuses an object that only borrows the Uint8Array prototype', () => {
      const forged = Object.create(Uint8Array.prototype) as object;
      expect(forged instanceof Uint8Array, 'instanceof is fooled').to.equal(true);
      expect(isUint8Array(forged)).to.equal(false);
      expect(refusal(() => read.bytesValue(forged, 'value'))).to.equal('value must be a Uint8Array');
    });

    it('refuses a Proxy around a Uint8Array', () => {
      const proxied = new Proxy(new Uint8Array(4), {});
      expect(proxied instanceof Uint8Array, 'instanceof is fooled').to.equal(true);
      expect(isUint8Array(proxied)).to.equal(false);
      expect(refusal(() => read.bytesValue(proxied, 'value'))).to.equal('value must be a Uint8Array');
    });

    it('refuses an object that fakes the Uint8Array tag', () => {
      const faked = { [Symbol.toStringTag]: 'Uint8Array', byteLength: 0, length: 0 };
      expect(isUint8Array(faked)).to.equal(false);
    });

    it('measures a subclass that lies about its byteLength by its true length', () => {
      class Liar extends Uint8Array {
        override get byteLength(): number {
          return 1;
        }
      }
      const liar = new Liar(100);
      expect(liar.byteLength, 'the lie').to.equal(1);
      expect(isUint8Array(liar)).to.equal(true);
      expect(byteLengthOf(liar)).to.equal(100);
      expect(refusal(() => read.bytesValue(liar, 'value', 10))).to.equal('value must be at most 10 bytes');
      expect(read.bytesValue(liar, 'value', 100)).to.equal(liar);
    });

    it('bounds a byte string by bytesMax, inclusive', () => {
      expect(read.bytesValue(new Uint8Array(4), 'value', 4).byteLength).to.equal(4);
      expect(refusal(() => read.bytes({ value: new Uint8Array(5) }, 'value', 'op', 4))).to.equal('op.value must be at most 4 bytes');
      expect(refusal(() => read.bytes({}, 'value', 'op'))).to.equal('missing field op.value');
    });
  });

  describe('oneOf: a closed set of strings', () => {
    const kinds = ['blob', 'queue', 'set'] as const;

    it('accepts a listed string', () => {
      expect(read.oneOf({ kind: 'queue' }, 'kind', '', kinds)).to.equal('queue');
    });

    it('refuses anything else, showing the value (cut to 64 characters) or its type', () => {
      expect(refusal(() => read.oneOf({ kind: 'Blob' }, 'kind', 'op', kinds))).to.equal('op.kind "Blob" is not one of blob, queue, set');
      expect(refusal(() => read.oneOfValue(7, 'kind', kinds))).to.equal('kind number is not one of blob, queue, set');
      expect(refusal(() => read.oneOfValue(new String('blob'), 'kind', kinds))).to.equal('kind object is not one of blob, queue, set');
      const huge = 'x'.repeat(10_000);
      const message = refusal(() => read.oneOfValue(huge, 'kind', kinds));
      expect(message).to.equal(`kind ${JSON.stringify('x'.repeat(64))} is not one of blob, queue, set`);
      expect(refusal(() => read.oneOf({}, 'kind', 'op', kinds))).to.equal('missing field op.kind');
    });

    it('does not accept an inherited string method name or prototype key', () => {
      for (const value of ['toString', 'constructor', '__proto__', 'length']) {
        expect(refusal(() => read.oneOfValue(value, 'kind', kinds))).to.match(/is not one of/);
      }
    });
  });

  describe('refusals go through the boundary\'s own fail, in its own words', () => {
    it('uses the words it was given', () => {
      expect(read.words).to.equal(objectWords);
      expect(wire.words).to.equal(msgpackWords);
      const custom = new FieldReader(fail, { record: 'a record', bytes: 'a byte string' });
      expect(refusal(() => custom.record([], 'r'))).to.equal('r must be a record');
      expect(refusal(() => custom.bytesValue('x', 'b'))).to.equal('b must be a byte string');
    });

    it('throws whatever the boundary throws, and nothing else', () => {
      class Other {
        readonly text: string;
        constructor(text: string) {
          this.text = text;
        }
      }
      const other = new FieldReader((message) => {
        throw new Other(message);
      });
      expect(() => other.counterValue(-1, 'n')).to.throw(Other);
      try {
        other.record(null, 'm');
        expect.fail('expected a throw');
      } catch (thrown: unknown) {
        expect(thrown).to.be.instanceOf(Other);
        expect((thrown as Other).text).to.equal('m must be an object');
      }
    });
  });
});
