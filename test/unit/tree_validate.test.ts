/**
 * validateOp: untrusted input to a canonical TreeOp or a typed TreeError, never a throw.
 *
 * Imports the tree modules directly (not index.ts) so these tests depend only on the
 * validator and the data definitions it uses.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { Buffer } from 'node:buffer';

import type { TreeError } from '../../src/tree/errors.ts';
import { defaultTreeLimits, type TreeLimits } from '../../src/base/limits.ts';
import { nodeTypes } from '../../src/tree/node_type.ts';
import { leaseOpTypes, readOpTypes, writeOpTypes, type TreeOp, type TreeOpType } from '../../src/tree/ops.ts';
import { checkPath } from '../../src/tree/path.ts';
import { validateOp, type ValidationResult } from '../../src/tree/validate.ts';

// ---- helpers ------------------------------------------------------------------------------

const allOpTypes: readonly TreeOpType[] = [...readOpTypes, ...writeOpTypes, ...leaseOpTypes, 'multi_cas'];

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function zeros(length: number): Uint8Array {
  return new Uint8Array(length);
}

function accepted(result: ValidationResult): TreeOp {
  if (!result.ok) return expect.fail(`expected acceptance, got ${JSON.stringify(result.error)}`);
  return result.op;
}

function rejected(result: ValidationResult): TreeError {
  if (result.ok) return expect.fail('expected a rejection, got acceptance');
  return result.error;
}

function expectInvalid(input: unknown, pattern?: RegExp, limits?: TreeLimits): void {
  let result: ValidationResult | undefined;
  expect(() => {
    result = validateOp(input, limits);
  }).not.to.throw();
  const error = rejected(result as ValidationResult);
  expect(error.code).to.equal('invalid_request');
  if (pattern !== undefined && error.code === 'invalid_request') expect(error.reason).to.match(pattern);
}

function expectTooLarge(input: unknown, what: string, limits: TreeLimits, limit: number): void {
  expect(rejected(validateOp(input, limits))).to.deep.equal({ code: 'too_large', what, limit });
}

function withLimits(overrides: Partial<TreeLimits>): TreeLimits {
  return { ...defaultTreeLimits, ...overrides };
}

/** A throwing function, so tests can build hostile getters and traps in one expression. */
function boom(): never {
  throw new Error('boom');
}

/** One valid, canonical op per type; each is also exactly what validateOp must return. */
function canonicalExamples(): Record<TreeOpType, TreeOp> {
  return {
    list: { type: 'list', path: '/a', recursive: true },
    stat: { type: 'stat', path: '/a' },
    blob_get: { type: 'blob_get', path: '/a/blob' },
    blob_size: { type: 'blob_size', path: '/a/blob' },
    queue_front: { type: 'queue_front', path: '/q' },
    queue_back: { type: 'queue_back', path: '/q' },
    queue_len: { type: 'queue_len', path: '/q' },
    set_contains: { type: 'set_contains', path: '/s', value: bytes(1, 2) },
    set_union: { type: 'set_union', paths: ['/s1', '/s2'], sets: [[bytes(1), bytes(2, 3)], []] },
    set_intersection: { type: 'set_intersection', path1: '/s1', path2: '/s2' },
    set_difference: { type: 'set_difference', path1: '/s1', path2: '/s2' },
    set_symmetric_difference: { type: 'set_symmetric_difference', path1: '/s1', path2: '/s2' },
    set_is_subset: { type: 'set_is_subset', path: '/s1', other: { type: 'path', path: '/s2' } },
    set_is_superset: { type: 'set_is_superset', path: '/s1', other: { type: 'literal', members: [bytes(1), bytes()] } },
    create: { type: 'create', path: '/a/b', nodeType: 'queue' },
    delete: { type: 'delete', path: '/a' },
    blob_put: { type: 'blob_put', path: '/a/blob', value: bytes(1, 2, 3) },
    queue_push: { type: 'queue_push', path: '/q', value: bytes(4) },
    queue_pop: { type: 'queue_pop', path: '/q' },
    set_insert: { type: 'set_insert', path: '/s', value: bytes(5) },
    set_remove: { type: 'set_remove', path: '/s', value: bytes(6) },
    multi_cas: {
      type: 'multi_cas',
      guards: [
        { path: '/', version: 0 },
        { path: '/a', version: 7 },
      ],
      ops: [
        { type: 'create', path: '/a/b', nodeType: 'blob' },
        { type: 'blob_put', path: '/a/b', value: bytes(9) },
        { type: 'list', path: '/a', recursive: false },
        { type: 'set_union', paths: ['/s'], sets: [[bytes(1)]] },
      ],
    },
    lease_grant: { type: 'lease_grant', ttlMs: 5000 },
    lease_keepalive: { type: 'lease_keepalive', ids: [1, 2, 3] },
    lease_revoke: { type: 'lease_revoke', id: 7 },
  };
}

function exampleOf(type: TreeOpType): Record<string, unknown> {
  return { ...canonicalExamples()[type] };
}

// ---- tests --------------------------------------------------------------------------------

describe('tree validate', () => {
  describe('accepts every operation type', () => {
    it('has a canonical example for every op type in ops.ts', () => {
      const examples = canonicalExamples();
      expect(Object.keys(examples).sort()).to.deep.equal([...allOpTypes].sort());
      for (const type of allOpTypes) expect(examples[type].type).to.equal(type);
    });

    for (const type of allOpTypes) {
      it(`accepts ${type} and returns its canonical form as a new object`, () => {
        const input = canonicalExamples()[type];
        const op = accepted(validateOp(input));
        expect(op).to.deep.equal(input);
        expect(op).not.to.equal(input);
        expect(Object.keys(op)).to.deep.equal(Object.keys(input));
      });

      it(`drops unknown fields of ${type}`, () => {
        const expected = canonicalExamples()[type];
        const input = { extra: 1, nested: { deep: true }, ...expected, zzz: bytes(1) };
        expect(accepted(validateOp(input))).to.deep.equal(expected);
      });
    }

    it('drops unknown fields of guards, inner ops and set operands', () => {
      const input = {
        type: 'multi_cas',
        guards: [{ path: '/a', version: 1, note: 'x' }],
        ops: [
          { type: 'stat', path: '/a', value: bytes(1) },
          { type: 'set_is_subset', path: '/s', other: { type: 'path', path: '/t', members: [] }, x: 1 },
          { type: 'set_is_superset', path: '/s', other: { type: 'literal', members: [bytes(1)], path: '/t' } },
        ],
        extra: [],
      };
      expect(accepted(validateOp(input))).to.deep.equal({
        type: 'multi_cas',
        guards: [{ path: '/a', version: 1 }],
        ops: [
          { type: 'stat', path: '/a' },
          { type: 'set_is_subset', path: '/s', other: { type: 'path', path: '/t' } },
          { type: 'set_is_superset', path: '/s', other: { type: 'literal', members: [bytes(1)] } },
        ],
      });
    });

    it('builds new arrays and objects but keeps byte values by reference', () => {
      const value = bytes(1, 2, 3);
      const member = bytes(4);
      const literal = bytes(5);
      const guards = [{ path: '/a', version: 2 }];
      const other = { type: 'literal', members: [literal] };
      const sets = [[member]];
      const paths = ['/s'];
      const inner = [
        { type: 'blob_put', path: '/a', value },
        { type: 'set_union', paths, sets },
        { type: 'set_is_subset', path: '/s', other },
      ];
      const op = accepted(validateOp({ type: 'multi_cas', guards, ops: inner }));
      if (op.type !== 'multi_cas') return expect.fail('not a transaction');
      expect(op.guards).not.to.equal(guards);
      expect(op.guards[0]).not.to.equal(guards[0]);
      expect(op.ops).not.to.equal(inner);
      const [put, union, subset] = op.ops;
      if (put?.type !== 'blob_put' || union?.type !== 'set_union' || subset?.type !== 'set_is_subset') {
        return expect.fail('unexpected inner ops');
      }
      expect(put.value).to.equal(value);
      expect(union.paths).not.to.equal(paths);
      expect(union.sets).not.to.equal(sets);
      expect(union.sets[0]).not.to.equal(sets[0]);
      expect(union.sets[0]?.[0]).to.equal(member);
      expect(subset.other).not.to.equal(other);
      if (subset.other.type !== 'literal') return expect.fail('not a literal');
      expect(subset.other.members[0]).to.equal(literal);
    });

    it('sets list.recursive to false when it is absent, undefined or nil (the protocol\'s "absent")', () => {
      expect(accepted(validateOp({ type: 'list', path: '/' }))).to.deep.equal({ type: 'list', path: '/', recursive: false });
      expect(accepted(validateOp({ type: 'list', path: '/', recursive: null }))).to.deep.equal({ type: 'list', path: '/', recursive: false });
      expect(accepted(validateOp({ type: 'list', path: '/', recursive: undefined }))).to.deep.equal({
        type: 'list',
        path: '/',
        recursive: false,
      });
      const op = accepted(validateOp({ type: 'list', path: '/x', recursive: false }));
      expect(op).to.deep.equal({ type: 'list', path: '/x', recursive: false });
      expect(Object.hasOwn(op, 'recursive')).to.equal(true);
    });

    it('accepts a Node Buffer as bytes and keeps it by reference', () => {
      const value = Buffer.from('hello');
      const member = Buffer.from([1, 2]);
      const put = accepted(validateOp({ type: 'blob_put', path: '/b', value }));
      expect(put.type === 'blob_put' && put.value).to.equal(value);
      const union = accepted(validateOp({ type: 'set_union', paths: [], sets: [[member]] }));
      expect(union.type === 'set_union' && union.sets[0]?.[0]).to.equal(member);
    });

    it('accepts a Uint8Array subclass and a view on part of a buffer', () => {
      class Tagged extends Uint8Array {}
      const tagged = new Tagged(3);
      const view = new Uint8Array(new ArrayBuffer(16), 4, 8);
      expect(accepted(validateOp({ type: 'queue_push', path: '/q', value: tagged }))).to.deep.equal({
        type: 'queue_push',
        path: '/q',
        value: tagged,
      });
      const op = accepted(validateOp({ type: 'set_insert', path: '/s', value: view }));
      expect(op.type === 'set_insert' && op.value).to.equal(view);
    });

    it('accepts null-prototype objects (op, guard, inner op, operand)', () => {
      const plain = <T extends object>(fields: T): T => Object.assign(Object.create(null) as T, fields);
      const input = plain({
        type: 'multi_cas',
        guards: [plain({ path: '/a', version: 3 })],
        ops: [plain({ type: 'set_is_subset', path: '/s', other: plain({ type: 'path', path: '/t' }) })],
      });
      expect(accepted(validateOp(input))).to.deep.equal({
        type: 'multi_cas',
        guards: [{ path: '/a', version: 3 }],
        ops: [{ type: 'set_is_subset', path: '/s', other: { type: 'path', path: '/t' } }],
      });
    });

    it('accepts empty transactions, empty unions, empty literal sets and empty values', () => {
      expect(accepted(validateOp({ type: 'multi_cas', guards: [], ops: [] }))).to.deep.equal({
        type: 'multi_cas',
        guards: [],
        ops: [],
      });
      expect(accepted(validateOp({ type: 'set_union', paths: [], sets: [] }))).to.deep.equal({
        type: 'set_union',
        paths: [],
        sets: [],
      });
      expect(accepted(validateOp({ type: 'set_is_subset', path: '/s', other: { type: 'literal', members: [] } }))).to.deep.equal(
        { type: 'set_is_subset', path: '/s', other: { type: 'literal', members: [] } },
      );
      expect(accepted(validateOp({ type: 'blob_put', path: '/b', value: zeros(0) }))).to.deep.equal({
        type: 'blob_put',
        path: '/b',
        value: zeros(0),
      });
    });

    it('accepts every node type in create', () => {
      for (const nodeType of nodeTypes) {
        expect(accepted(validateOp({ type: 'create', path: '/n', nodeType }))).to.deep.equal({
          type: 'create',
          path: '/n',
          nodeType,
        });
      }
    });

    it('accepts guard versions 0 and MAX_SAFE_INTEGER and folds -0 to 0', () => {
      const op = accepted(
        validateOp({
          type: 'multi_cas',
          guards: [
            { path: '/', version: 0 },
            { path: '/a', version: Number.MAX_SAFE_INTEGER },
            { path: '/b', version: -0 },
          ],
          ops: [],
        }),
      );
      if (op.type !== 'multi_cas') return expect.fail('not a transaction');
      expect(op.guards.map((guard) => guard.version)).to.deep.equal([0, Number.MAX_SAFE_INTEGER, 0]);
      expect(Object.is(op.guards[2]?.version, 0)).to.equal(true);
    });

    it('accepts the root and non-ASCII paths', () => {
      for (const path of ['/', '/é', '/日本/語', '/😀/a b/-_.~', '/.hidden', '/..x', '/a\nb']) {
        expect(accepted(validateOp({ type: 'stat', path }))).to.deep.equal({ type: 'stat', path });
      }
    });

    it('leaves the input untouched and works on frozen input', () => {
      const input = Object.freeze({
        type: 'multi_cas',
        guards: Object.freeze([Object.freeze({ path: '/a', version: 1 })]),
        ops: Object.freeze([Object.freeze({ type: 'list', path: '/a' })]),
        extra: 1,
      });
      const op = accepted(validateOp(input));
      expect(op).to.deep.equal({
        type: 'multi_cas',
        guards: [{ path: '/a', version: 1 }],
        ops: [{ type: 'list', path: '/a', recursive: false }],
      });
      expect(input.ops[0]).to.deep.equal({ type: 'list', path: '/a' });
      expect(input.extra).to.equal(1);
    });

    it('does not read fields the op type does not have', () => {
      const input = { type: 'stat', path: '/a' };
      Object.defineProperty(input, 'value', { enumerable: true, get: boom });
      expect(accepted(validateOp(input))).to.deep.equal({ type: 'stat', path: '/a' });
    });

    it('uses the default limits when none are given', () => {
      const max = defaultTreeLimits.valueBytesMax;
      expect(validateOp({ type: 'blob_put', path: '/b', value: zeros(max) }).ok).to.equal(true);
      expect(rejected(validateOp({ type: 'blob_put', path: '/b', value: zeros(max + 1) }))).to.deep.equal({
        code: 'too_large',
        what: 'value_bytes',
        limit: max,
      });
    });
  });

  describe('rejects what is not an operation object', () => {
    class Op {
      readonly type = 'stat';
      readonly path = '/';
    }
    const cases: readonly [string, unknown, RegExp][] = [
      ['undefined', undefined, /^operation must be an object, got undefined$/],
      ['null', null, /^operation must be an object, got null$/],
      ['a number', 42, /^operation must be an object, got number$/],
      ['NaN', Number.NaN, /got number/],
      ['a string', 'stat', /got string/],
      ['a boolean', true, /got boolean/],
      ['a bigint', 10n, /got bigint/],
      ['a symbol', Symbol('op'), /got symbol/],
      ['a function', () => ({ type: 'stat', path: '/' }), /got function/],
      ['an empty array', [], /got an array/],
      ['an array holding an op', [{ type: 'stat', path: '/' }], /got an array/],
      ['a Map', new Map([['type', 'stat'], ['path', '/']]), /must be a plain object/],
      ['a Date', new Date(0), /must be a plain object/],
      ['a class instance', new Op(), /must be a plain object/],
      ['a Uint8Array', bytes(1), /must be a plain object/],
      ['an object inheriting its fields', Object.create({ type: 'stat', path: '/' }) as object, /must be a plain object/],
      ['a boxed string', new String('stat'), /must be a plain object/],
    ];
    for (const [name, input, pattern] of cases) {
      it(`rejects ${name}`, () => expectInvalid(input, pattern));
    }
  });

  describe('rejects a missing, mistyped or unknown type', () => {
    it('rejects a missing type', () => expectInvalid({ path: '/' }, /^missing field type$/));
    it('rejects an undefined type', () => expectInvalid({ type: undefined, path: '/' }, /^missing field type$/));
    for (const type of [42, null, true, ['stat'], { type: 'stat' }, new String('stat')]) {
      it(`rejects the non-string type ${String(type)}`, () => expectInvalid({ type, path: '/' }, /^type must be a string$/));
    }
    for (const type of ['foo', '', 'LIST', 'list ', 'toString', '__proto__', 'constructor', 'hasOwnProperty', 'multiCas']) {
      it(`rejects the unknown type ${JSON.stringify(type)}`, () =>
        expectInvalid({ type, path: '/' }, new RegExp(`^unknown operation type ${escapeRegExp(JSON.stringify(type))}$`)));
    }
    it('truncates a huge unknown type in the reason', () => {
      const error = rejected(validateOp({ type: 'x'.repeat(100_000) }));
      expect(error.code === 'invalid_request' && error.reason.length).to.be.below(100);
    });
  });

  describe('rejects a missing required field', () => {
    for (const type of allOpTypes) {
      const required = Object.keys(exampleOf(type)).filter((key) => key !== 'type' && !(type === 'list' && key === 'recursive'));
      for (const key of required) {
        it(`rejects ${type} without ${key}`, () => {
          const input = exampleOf(type);
          delete input[key];
          expectInvalid(input, new RegExp(`^missing field ${key}$`));
        });
        it(`rejects ${type} with ${key}: undefined`, () => {
          expectInvalid({ ...exampleOf(type), [key]: undefined }, new RegExp(`^missing field ${key}$`));
        });
      }
    }
    const nested: readonly [string, unknown, RegExp][] = [
      ['a guard without a path', { type: 'multi_cas', guards: [{ version: 1 }], ops: [] }, /^missing field guards\[0\]\.path$/],
      [
        'a guard without a version',
        { type: 'multi_cas', guards: [{ path: '/' }, { path: '/a' }], ops: [] },
        /^missing field guards\[0\]\.version$/,
      ],
      [
        'an inner op without a value',
        { type: 'multi_cas', guards: [], ops: [{ type: 'stat', path: '/' }, { type: 'blob_put', path: '/b' }] },
        /^missing field ops\[1\]\.value$/,
      ],
      ['an inner op without a type', { type: 'multi_cas', guards: [], ops: [{ path: '/' }] }, /^missing field ops\[0\]\.type$/],
      ['an operand without a type', { type: 'set_is_subset', path: '/s', other: { path: '/t' } }, /^missing field other\.type$/],
      [
        'a path operand without a path',
        { type: 'set_is_subset', path: '/s', other: { type: 'path' } },
        /^missing field other\.path$/,
      ],
      [
        'a literal operand without members',
        { type: 'set_is_superset', path: '/s', other: { type: 'literal' } },
        /^missing field other\.members$/,
      ],
      [
        'an inner operand without a path',
        { type: 'multi_cas', guards: [], ops: [{ type: 'set_is_subset', path: '/s', other: { type: 'path' } }] },
        /^missing field ops\[0\]\.other\.path$/,
      ],
    ];
    for (const [name, input, pattern] of nested) {
      it(`rejects ${name}`, () => expectInvalid(input, pattern));
    }
  });

  describe('rejects fields of the wrong type', () => {
    const notBytes: readonly [string, unknown][] = [
      ['an array of numbers', [1, 2, 3]],
      ['a string', 'abc'],
      ['a number', 42],
      ['null', null],
      ['an array-like object', { 0: 1, length: 1 }],
      ['an ArrayBuffer', new ArrayBuffer(3)],
      ['a DataView', new DataView(new ArrayBuffer(3))],
      ['a Uint16Array', new Uint16Array(2)],
      ['an Int8Array', new Int8Array(2)],
      ['a Uint8ClampedArray', new Uint8ClampedArray(2)],
      ['an object with the Uint8Array prototype', Object.create(Uint8Array.prototype) as unknown],
      ['a Proxy around a Uint8Array', new Proxy(bytes(1, 2), {})],
      ['a serialised Buffer', Buffer.from('ab').toJSON()],
    ];
    for (const type of ['set_contains', 'blob_put', 'queue_push', 'set_insert', 'set_remove'] as const) {
      for (const [name, value] of notBytes) {
        it(`rejects ${type} with a value that is ${name}`, () =>
          expectInvalid({ type, path: '/v', value }, /^value must be a Uint8Array$/));
      }
    }
    for (const [name, value] of notBytes) {
      it(`rejects a literal member that is ${name}`, () => {
        expectInvalid({ type: 'set_union', paths: [], sets: [[bytes(1), value]] }, /^sets\[0\]\[1\] must be a Uint8Array$/);
        expectInvalid(
          { type: 'set_is_superset', path: '/s', other: { type: 'literal', members: [value] } },
          /^other\.members\[0\] must be a Uint8Array$/,
        );
      });
    }

    const cases: readonly [string, unknown, RegExp][] = [
      ['a numeric path', { type: 'stat', path: 42 }, /^path must be a string$/],
      ['a null path', { type: 'delete', path: null }, /^path must be a string$/],
      ['an array path', { type: 'stat', path: ['/a'] }, /^path must be a string$/],
      ['a boxed string path', { type: 'stat', path: new String('/a') }, /^path must be a string$/],
      ['a Buffer path', { type: 'stat', path: Buffer.from('/a') }, /^path must be a string$/],
      ['a numeric path1', { type: 'set_intersection', path1: 1, path2: '/b' }, /^path1 must be a string$/],
      ['a numeric path2', { type: 'set_difference', path1: '/a', path2: 2 }, /^path2 must be a string$/],
      ['a string recursive', { type: 'list', path: '/', recursive: 'true' }, /^recursive must be a boolean$/],
      ['a numeric recursive', { type: 'list', path: '/', recursive: 1 }, /^recursive must be a boolean$/],
      ['a string recursive', { type: 'list', path: '/', recursive: 'yes' }, /^recursive must be a boolean$/],
      ['a boxed boolean recursive', { type: 'list', path: '/', recursive: new Boolean(true) }, /^recursive must be a boolean$/],
      [
        'an unknown nodeType',
        { type: 'create', path: '/a', nodeType: 'file' },
        /^nodeType must be one of directory, blob, queue, set$/,
      ],
      ['a capitalised nodeType', { type: 'create', path: '/a', nodeType: 'Directory' }, /^nodeType must be one of/],
      ['an empty nodeType', { type: 'create', path: '/a', nodeType: '' }, /^nodeType must be one of/],
      ['a numeric nodeType', { type: 'create', path: '/a', nodeType: 0 }, /^nodeType must be one of/],
      ['a string guards', { type: 'multi_cas', guards: 'x', ops: [] }, /^guards must be an array$/],
      ['an object guards', { type: 'multi_cas', guards: { length: 0 }, ops: [] }, /^guards must be an array$/],
      ['a Set guards', { type: 'multi_cas', guards: new Set(), ops: [] }, /^guards must be an array$/],
      ['a null ops', { type: 'multi_cas', guards: [], ops: null }, /^ops must be an array$/],
      ['a typed array ops', { type: 'multi_cas', guards: [], ops: bytes() }, /^ops must be an array$/],
      ['a null guard', { type: 'multi_cas', guards: [null], ops: [] }, /^guards\[0\] must be an object, got null$/],
      ['an array guard', { type: 'multi_cas', guards: [['/', 0]], ops: [] }, /^guards\[0\] must be an object, got an array$/],
      ['a numeric inner op', { type: 'multi_cas', guards: [], ops: [5] }, /^ops\[0\] must be an object, got number$/],
      [
        'an inner op with an unknown type',
        { type: 'multi_cas', guards: [], ops: [{ type: 'stat', path: '/' }, { type: 'foo' }] },
        /^ops\[1\]: unknown operation type "foo"$/,
      ],
      [
        'an inner op with a wrong value',
        { type: 'multi_cas', guards: [], ops: [{ type: 'blob_put', path: '/a', value: [1] }] },
        /^ops\[0\]\.value must be a Uint8Array$/,
      ],
      [
        'an inner op with a wrong recursive',
        { type: 'multi_cas', guards: [], ops: [{ type: 'list', path: '/a', recursive: 'no' }] },
        /^ops\[0\]\.recursive must be a boolean$/,
      ],
      ['a string paths', { type: 'set_union', paths: '/a', sets: [] }, /^paths must be an array$/],
      ['a non-string in paths', { type: 'set_union', paths: ['/a', 7], sets: [] }, /^paths\[1\] must be a string$/],
      ['a hole in paths', { type: 'set_union', paths: ['/a', , '/b'], sets: [] }, /^paths\[1\] must be a string$/],
      ['an object sets', { type: 'set_union', paths: [], sets: {} }, /^sets must be an array$/],
      ['a non-array set', { type: 'set_union', paths: [], sets: [bytes(1)] }, /^sets\[0\] must be an array$/],
      ['a null other', { type: 'set_is_subset', path: '/s', other: null }, /^other must be an object, got null$/],
      ['a string other', { type: 'set_is_subset', path: '/s', other: '/t' }, /^other must be an object, got string$/],
      [
        'an unknown operand type',
        { type: 'set_is_subset', path: '/s', other: { type: 'set' } },
        /^other\.type must be "path" or "literal"$/,
      ],
      [
        'a numeric operand path',
        { type: 'set_is_subset', path: '/s', other: { type: 'path', path: 1 } },
        /^other\.path must be a string$/,
      ],
      [
        'a string literal members',
        { type: 'set_is_superset', path: '/s', other: { type: 'literal', members: 'ab' } },
        /^other\.members must be an array$/,
      ],
    ];
    for (const [name, input, pattern] of cases) {
      it(`rejects ${name}`, () => expectInvalid(input, pattern));
    }

    for (const version of [-1, 1.5, Number.NaN, Infinity, -Infinity, '3', 2 ** 53, 10n, null, new Number(1), true]) {
      it(`rejects the guard version ${String(version)}`, () =>
        expectInvalid(
          { type: 'multi_cas', guards: [{ path: '/', version }], ops: [] },
          /^guards\[0\]\.version must be a non-negative safe integer$/,
        ));
    }
  });

  describe('rejects bad paths with the error of checkPath', () => {
    const limits = withLimits({ pathBytesMax: 16, pathDepthMax: 3, componentBytesMax: 5 });
    const malformed: readonly [string, string][] = [
      ['a relative path', 'a/b'],
      ['a bare name', 'a'],
      ['the empty string', ''],
      ['a trailing slash', '/a/'],
      ['an empty component', '/a//b'],
      ['a double slash', '//'],
      ['a "." component', '/a/./b'],
      ['a trailing "."', '/.'],
      ['a ".." component', '/..'],
      ['a trailing ".."', '/a/..'],
      ['a NUL', '/a\u0000b'],
      ['a lone high surrogate', '/a\uD800'],
      ['a lone low surrogate', '/\uDC00b'],
      ['swapped surrogates', '/\uDC00\uD800'],
    ];
    for (const [name, path] of malformed) {
      it(`rejects ${name} as bad_path`, () => {
        const error = rejected(validateOp({ type: 'stat', path }, limits));
        expect(error.code).to.equal('bad_path');
        expect(error).to.deep.equal(checkPath(path, limits));
      });
    }

    const oversized: readonly [string, string, string, string][] = [
      ['too long', '/aaaaa/bbbbb/ccc', '/aaaaa/bbbbb/cccc', 'path_bytes'],
      ['too long in UTF-8 bytes', '/aaaaa/bbbbb/cé', '/aaaaa/bbbbb/ccé', 'path_bytes'],
      ['too deep', '/a/b/c', '/a/b/c/d', 'path_depth'],
      ['a component too long', '/abcde', '/abcdef', 'component_bytes'],
      ['a component too long in UTF-8 bytes', '/aéé', '/ééé', 'component_bytes'],
    ];
    for (const [name, atLimit, overLimit, what] of oversized) {
      it(`accepts a path at the limit and rejects one ${name}`, () => {
        expect(accepted(validateOp({ type: 'stat', path: atLimit }, limits))).to.deep.equal({ type: 'stat', path: atLimit });
        const error = rejected(validateOp({ type: 'stat', path: overLimit }, limits));
        expect(error).to.deep.include({ code: 'too_large', what });
        expect(error).to.deep.equal(checkPath(overLimit, limits));
      });
    }

    const positions: readonly [string, (path: string) => unknown][] = [
      ['list.path', (path) => ({ type: 'list', path, recursive: true })],
      ['create.path', (path) => ({ type: 'create', path, nodeType: 'set' })],
      ['blob_put.path', (path) => ({ type: 'blob_put', path, value: bytes(1) })],
      ['path1', (path) => ({ type: 'set_intersection', path1: path, path2: '/b' })],
      ['path2', (path) => ({ type: 'set_symmetric_difference', path1: '/a', path2: path })],
      ['paths[i]', (path) => ({ type: 'set_union', paths: ['/a', path], sets: [] })],
      ['set_is_subset.path', (path) => ({ type: 'set_is_subset', path, other: { type: 'path', path: '/b' } })],
      ['other.path', (path) => ({ type: 'set_is_superset', path: '/a', other: { type: 'path', path } })],
      ['guards[i].path', (path) => ({ type: 'multi_cas', guards: [{ path: '/', version: 0 }, { path, version: 0 }], ops: [] })],
      ['ops[i].path', (path) => ({ type: 'multi_cas', guards: [], ops: [{ type: 'queue_pop', path }] })],
      [
        'ops[i].path2',
        (path) => ({ type: 'multi_cas', guards: [], ops: [{ type: 'set_difference', path1: '/a', path2: path }] }),
      ],
    ];
    for (const [name, build] of positions) {
      it(`checks the path in ${name}`, () => {
        for (const path of ['a', '/a//b', '/a/..', '/aaaaa/bbbbb/cccc', '/a/b/c/d', '/abcdef']) {
          expect(rejected(validateOp(build(path), limits))).to.deep.equal(checkPath(path, limits));
        }
        expect(validateOp(build('/ok'), limits).ok).to.equal(true);
      });
    }
  });

  describe('enforces the static limits', () => {
    const valueLimits = withLimits({ valueBytesMax: 8 });
    const valuePositions: readonly [string, (value: Uint8Array) => unknown][] = [
      ['blob_put.value', (value) => ({ type: 'blob_put', path: '/b', value })],
      ['queue_push.value', (value) => ({ type: 'queue_push', path: '/q', value })],
      ['set_insert.value', (value) => ({ type: 'set_insert', path: '/s', value })],
      ['set_remove.value', (value) => ({ type: 'set_remove', path: '/s', value })],
      ['set_contains.value', (value) => ({ type: 'set_contains', path: '/s', value })],
      ['a set_union literal member', (value) => ({ type: 'set_union', paths: [], sets: [[bytes(1)], [bytes(2), value]] })],
      [
        'a literal operand member',
        (value) => ({ type: 'set_is_subset', path: '/s', other: { type: 'literal', members: [value] } }),
      ],
      ['an inner op value', (value) => ({ type: 'multi_cas', guards: [], ops: [{ type: 'queue_push', path: '/q', value }] })],
    ];
    for (const [name, build] of valuePositions) {
      it(`value_bytes: accepts ${name} at the limit and rejects it one byte over`, () => {
        expect(validateOp(build(zeros(8)), valueLimits).ok).to.equal(true);
        expectTooLarge(build(zeros(9)), 'value_bytes', valueLimits, 8);
        expectTooLarge(build(Buffer.alloc(9)), 'value_bytes', valueLimits, 8);
      });
    }

    it('value_bytes: measures the real byte length, not an overridden getter', () => {
      class Liar extends Uint8Array {
        override get byteLength(): number {
          return 0;
        }
      }
      expectTooLarge({ type: 'blob_put', path: '/b', value: new Liar(9) }, 'value_bytes', valueLimits, 8);
    });

    it('txn_ops: accepts as many ops as the limit and rejects one more', () => {
      const limits = withLimits({ txnOpsMax: 3 });
      const ops = (count: number): unknown[] => Array.from({ length: count }, () => ({ type: 'stat', path: '/' }));
      expect(validateOp({ type: 'multi_cas', guards: [], ops: ops(3) }, limits).ok).to.equal(true);
      expectTooLarge({ type: 'multi_cas', guards: [], ops: ops(4) }, 'txn_ops', limits, 3);
    });

    it('txn_guards: accepts as many guards as the limit and rejects one more', () => {
      const limits = withLimits({ txnGuardsMax: 2 });
      const guards = (count: number): unknown[] => Array.from({ length: count }, () => ({ path: '/', version: 0 }));
      expect(validateOp({ type: 'multi_cas', guards: guards(2), ops: [] }, limits).ok).to.equal(true);
      expectTooLarge({ type: 'multi_cas', guards: guards(3), ops: [] }, 'txn_guards', limits, 2);
    });

    it('txn_ops and txn_guards: refuse huge sparse arrays without walking them', () => {
      const huge: unknown[] = [];
      huge.length = 2 ** 32 - 1;
      const { txnOpsMax, txnGuardsMax } = defaultTreeLimits;
      expectTooLarge({ type: 'multi_cas', guards: [], ops: huge }, 'txn_ops', defaultTreeLimits, txnOpsMax);
      expectTooLarge({ type: 'multi_cas', guards: huge, ops: [] }, 'txn_guards', defaultTreeLimits, txnGuardsMax);
    });

    it('union_operands: counts paths plus literal sets', () => {
      const limits = withLimits({ unionOperandsMax: 4 });
      const union = (paths: number, sets: number): unknown => ({
        type: 'set_union',
        paths: Array.from({ length: paths }, (_, i) => `/s${i}`),
        sets: Array.from({ length: sets }, () => [bytes(1)]),
      });
      for (const [paths, sets] of [
        [4, 0],
        [2, 2],
        [0, 4],
      ] as const) {
        expect(validateOp(union(paths, sets), limits).ok, `${paths} paths + ${sets} sets`).to.equal(true);
      }
      for (const [paths, sets] of [
        [5, 0],
        [3, 2],
        [0, 5],
      ] as const) {
        expectTooLarge(union(paths, sets), 'union_operands', limits, 4);
      }
      expectTooLarge(
        { type: 'multi_cas', guards: [], ops: [union(2, 3)] },
        'union_operands',
        limits,
        4,
      );
    });

    describe('request_bytes: 16 bytes per op, guard and literal member, plus UTF-8 path bytes and value bytes', () => {
      const estimates: readonly [string, unknown, number][] = [
        ['stat /a', { type: 'stat', path: '/a' }, 16 + 2],
        ['stat of a 2-byte character', { type: 'stat', path: '/é' }, 16 + 3],
        ['stat of an astral character', { type: 'stat', path: '/😀' }, 16 + 5],
        ['blob_put of 10 bytes', { type: 'blob_put', path: '/a', value: zeros(10) }, 16 + 2 + 10],
        ['set_difference', { type: 'set_difference', path1: '/ab', path2: '/c' }, 16 + 3 + 2],
        [
          'set_union with paths and literal sets',
          { type: 'set_union', paths: ['/ab'], sets: [[zeros(3), zeros(0)], []] },
          16 + 3 + (16 + 3) + (16 + 0),
        ],
        [
          'set_is_subset with a literal',
          { type: 'set_is_subset', path: '/s', other: { type: 'literal', members: [zeros(2)] } },
          16 + 2 + (16 + 2),
        ],
        [
          'set_is_superset with a path',
          { type: 'set_is_superset', path: '/s', other: { type: 'path', path: '/tt' } },
          16 + 2 + 3,
        ],
        [
          'multi_cas with guards and ops',
          {
            type: 'multi_cas',
            guards: [{ path: '/', version: 0 }],
            ops: [
              { type: 'stat', path: '/a' },
              { type: 'blob_put', path: '/b', value: zeros(4) },
            ],
          },
          16 + (16 + 1) + (16 + 2) + (16 + 2 + 4),
        ],
      ];
      for (const [name, input, estimate] of estimates) {
        it(`${name}: accepted at ${estimate} bytes, rejected at ${estimate - 1}`, () => {
          expect(validateOp(input, withLimits({ requestBytesMax: estimate })).ok).to.equal(true);
          expectTooLarge(input, 'request_bytes', withLimits({ requestBytesMax: estimate - 1 }), estimate - 1);
        });
      }

      it('refuses many small literal members even when each is within value_bytes', () => {
        const limits = withLimits({ requestBytesMax: 1000, unionOperandsMax: 2 });
        const members = Array.from({ length: 100 }, () => zeros(1));
        expectTooLarge({ type: 'set_union', paths: [], sets: [members] }, 'request_bytes', limits, 1000);
        expectTooLarge(
          { type: 'set_is_superset', path: '/s', other: { type: 'literal', members } },
          'request_bytes',
          limits,
          1000,
        );
      });

      it('refuses a transaction whose values add up over the limit', () => {
        const limits = withLimits({ requestBytesMax: 100, valueBytesMax: 60 });
        const put = { type: 'blob_put', path: '/b', value: zeros(40) };
        expect(validateOp({ type: 'multi_cas', guards: [], ops: [put] }, limits).ok).to.equal(true);
        expectTooLarge({ type: 'multi_cas', guards: [], ops: [put, put] }, 'request_bytes', limits, 100);
      });
    });
  });

  describe('transactions do not nest', () => {
    it('rejects a multi_cas inside a multi_cas', () => {
      expectInvalid(
        { type: 'multi_cas', guards: [], ops: [{ type: 'multi_cas', guards: [], ops: [] }] },
        /^ops\[0\]: transactions do not nest$/,
      );
    });

    it('rejects it at any position, after valid ops', () => {
      expectInvalid(
        {
          type: 'multi_cas',
          guards: [{ path: '/', version: 1 }],
          ops: [
            { type: 'create', path: '/a', nodeType: 'blob' },
            { type: 'multi_cas', guards: [], ops: [{ type: 'delete', path: '/a' }] },
          ],
        },
        /^ops\[1\]: transactions do not nest$/,
      );
    });
  });

  describe('never throws on hostile input', () => {
    const readFailure = /^operation could not be read/;

    it('turns a Proxy whose get trap throws into invalid_request', () => {
      expectInvalid(new Proxy({ type: 'stat', path: '/' }, { get: boom }), readFailure);
    });

    it('turns a Proxy whose getPrototypeOf trap throws into invalid_request', () => {
      expectInvalid(new Proxy({ type: 'stat', path: '/' }, { getPrototypeOf: boom }), readFailure);
    });

    it('turns a Proxy whose getOwnPropertyDescriptor trap throws into invalid_request', () => {
      expectInvalid(new Proxy({ type: 'stat', path: '/' }, { getOwnPropertyDescriptor: boom }), readFailure);
    });

    it('turns a revoked Proxy into invalid_request', () => {
      const { proxy, revoke } = Proxy.revocable({ type: 'stat', path: '/' }, {});
      revoke();
      expectInvalid(proxy, readFailure);
    });

    it('turns a throwing getter on a field into invalid_request', () => {
      const input = { type: 'blob_put', path: '/b' };
      Object.defineProperty(input, 'value', { enumerable: true, get: boom });
      expectInvalid(input, readFailure);
    });

    it('turns a throwing getter on type into invalid_request', () => {
      const input = {};
      Object.defineProperty(input, 'type', { enumerable: true, get: boom });
      expectInvalid(input, readFailure);
    });

    it('turns a throwing array element or length into invalid_request', () => {
      const ops: unknown[] = [];
      Object.defineProperty(ops, 0, { enumerable: true, get: boom });
      expectInvalid({ type: 'multi_cas', guards: [], ops }, readFailure);
      const paths = new Proxy(['/a'], { get: (target, key) => (key === 'length' ? boom() : Reflect.get(target, key)) });
      expectInvalid({ type: 'set_union', paths, sets: [] }, readFailure);
      const members = new Proxy([bytes(1)], { get: (target, key) => (key === '0' ? boom() : Reflect.get(target, key)) });
      expectInvalid({ type: 'set_union', paths: [], sets: [members] }, readFailure);
    });

    it('does not inspect what a hostile getter throws', () => {
      const hostileThrown = new Proxy(
        {},
        { get: boom, getPrototypeOf: boom, has: boom, ownKeys: boom, getOwnPropertyDescriptor: boom },
      );
      const withMessage = {
        get message(): string {
          return boom();
        },
        toString: boom,
      };
      for (const thrown of [hostileThrown, withMessage, undefined, null, Symbol('x')]) {
        const input = { type: 'stat' };
        Object.defineProperty(input, 'path', {
          enumerable: true,
          get() {
            throw thrown;
          },
        });
        expectInvalid(input, readFailure);
      }
    });

    it('reads each field once, so a getter cannot show the check one value and the log another', () => {
      let reads = 0;
      const input = { type: 'stat' };
      Object.defineProperty(input, 'path', {
        enumerable: true,
        get() {
          reads += 1;
          return reads === 1 ? '/ok' : '../escape';
        },
      });
      expect(accepted(validateOp(input))).to.deep.equal({ type: 'stat', path: '/ok' });
      expect(reads).to.equal(1);
    });

    it('copies a transparent Proxy into a plain object', () => {
      const proxy = new Proxy({ type: 'stat', path: '/p' }, {});
      const op = accepted(validateOp(proxy));
      expect(op).to.deep.equal({ type: 'stat', path: '/p' });
      expect(Object.getPrototypeOf(op)).to.equal(Object.prototype);
    });

    it('ignores fields inherited from a polluted Object.prototype', () => {
      const polluted = ['path', 'recursive', 'type'] as const;
      const values = { path: '/polluted', recursive: 'yes', type: 'stat' };
      for (const key of polluted) {
        Object.defineProperty(Object.prototype, key, { value: values[key], configurable: true, writable: true });
      }
      try {
        expectInvalid({ type: 'stat' }, /^missing field path$/);
        expectInvalid({ path: '/' }, /^missing field type$/);
        expect(accepted(validateOp({ type: 'list', path: '/' }))).to.deep.equal({ type: 'list', path: '/', recursive: false });
      } finally {
        for (const key of polluted) delete (Object.prototype as Record<string, unknown>)[key];
      }
      expect(Object.hasOwn(Object.prototype, 'path')).to.equal(false);
    });
  });

  describe('properties', () => {
    /** Every field name of every canonical op. */
    const knownKeys = new Set([
      'type',
      'path',
      'recursive',
      'value',
      'paths',
      'sets',
      'path1',
      'path2',
      'other',
      'nodeType',
      'guards',
      'ops',
    ]);
    const componentArb = fc.stringMatching(/^[a-zé_.-]{1,6}$/).filter((c) => c !== '.' && c !== '..');
    const validPathArb = fc.oneof(
      fc.constant('/'),
      fc.array(componentArb, { minLength: 1, maxLength: 4 }).map((components) => `/${components.join('/')}`),
    );
    const anyPathArb = fc.oneof(
      validPathArb,
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.constantFrom('', '/a/', '//', '/..'),
    );
    const bytesArb = fc.uint8Array({ maxLength: 8 });
    const buffersArb = fc.oneof(bytesArb, bytesArb.map((b) => Buffer.from(b)));

    /** Values that are often right for some field, so random objects get deep into validation. */
    const fieldArb = (opArb: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
      fc.oneof(
        fc.anything({ maxDepth: 2 }),
        anyPathArb,
        buffersArb,
        fc.boolean(),
        fc.constantFrom(...nodeTypes, 'file'),
        fc.array(anyPathArb, { maxLength: 3 }),
        fc.array(fc.array(buffersArb, { maxLength: 3 }), { maxLength: 3 }),
        fc.record(
          { type: fc.constantFrom('path', 'literal', 'x'), path: anyPathArb, members: fc.array(buffersArb, { maxLength: 3 }) },
          { requiredKeys: [] },
        ),
        fc.array(
          fc.record({ path: anyPathArb, version: fc.oneof(fc.nat(), fc.integer(), fc.double()) }, { requiredKeys: [] }),
          { maxLength: 3 },
        ),
        fc.array(opArb, { maxLength: 3 }),
      );
    const keyArb = fc.constantFrom(...knownKeys, 'members', 'version', 'extra', '__proto__', 'constructor');

    const { randomOp } = fc.letrec<{ randomOp: unknown }>((tie) => ({
      randomOp: fc
        .tuple(
          fc.constantFrom(...allOpTypes),
          fc.dictionary(keyArb, fieldArb(tie('randomOp')), { maxKeys: 6, depthIdentifier: 'op' }),
        )
        .map(([type, fields]) => ({ ...fields, type })),
    }));

    const simpleOpArb = fc.oneof(
      fc.record({ type: fc.constant('list'), path: validPathArb, recursive: fc.boolean() }),
      fc.record({
        type: fc.constantFrom('stat', 'blob_get', 'blob_size', 'queue_front', 'queue_back', 'queue_len', 'delete', 'queue_pop'),
        path: validPathArb,
      }),
      fc.record({
        type: fc.constantFrom('set_contains', 'blob_put', 'queue_push', 'set_insert', 'set_remove'),
        path: validPathArb,
        value: buffersArb,
      }),
      fc.record({ type: fc.constant('create'), path: validPathArb, nodeType: fc.constantFrom(...nodeTypes) }),
      fc.record({
        type: fc.constant('set_union'),
        paths: fc.array(validPathArb, { maxLength: 4 }),
        sets: fc.array(fc.array(bytesArb, { maxLength: 4 }), { maxLength: 4 }),
      }),
      fc.record({
        type: fc.constantFrom('set_intersection', 'set_difference', 'set_symmetric_difference'),
        path1: validPathArb,
        path2: validPathArb,
      }),
      fc.record({
        type: fc.constantFrom('set_is_subset', 'set_is_superset'),
        path: validPathArb,
        other: fc.oneof(
          fc.record({ type: fc.constant('path'), path: validPathArb }),
          fc.record({ type: fc.constant('literal'), members: fc.array(bytesArb, { maxLength: 4 }) }),
        ),
      }),
    );
    const validOpArb = fc.oneof(
      simpleOpArb,
      fc.record({
        type: fc.constant('multi_cas'),
        guards: fc.array(fc.record({ path: validPathArb, version: fc.maxSafeNat() }), { maxLength: 4 }),
        ops: fc.array(simpleOpArb, { maxLength: 6 }),
      }),
    );

    /** A well-formed op with at most two fields replaced by random values and maybe one removed. */
    const mutatedOp = fc
      .tuple(
        validOpArb,
        fc.dictionary(keyArb, fieldArb(randomOp), { maxKeys: 2 }),
        fc.option(fc.constantFrom(...knownKeys), { nil: undefined }),
      )
      .map(([op, overrides, removed]) => {
        const input: Record<string, unknown> = { ...op, ...overrides, type: op.type };
        if (removed !== undefined && removed !== 'type') delete input[removed];
        return input;
      });

    /** Checks the invariants of any result: a boolean `ok`, and an accepted op is canonical. */
    function checkResult(input: unknown): void {
      let result: ValidationResult | undefined;
      expect(() => {
        result = validateOp(input);
      }).not.to.throw();
      if (result === undefined) return expect.fail('no result');
      if (!result.ok) {
        expect(result.error.code).to.be.oneOf(['invalid_request', 'bad_path', 'too_large']);
        return;
      }
      for (const key of Object.keys(result.op)) expect(knownKeys.has(key), key).to.equal(true);
      // Validation is idempotent: a canonical op validates to an equal op.
      expect(accepted(validateOp(result.op))).to.deep.equal(result.op);
    }

    it('never throws on fc.anything()', () => {
      fc.assert(fc.property(fc.anything(), (input) => checkResult(input)), { numRuns: 500 });
    });

    it('never throws on fc.anything() with exotic values', () => {
      const exotic = fc.anything({
        withBigInt: true,
        withBoxedValues: true,
        withDate: true,
        withMap: true,
        withSet: true,
        withNullPrototype: true,
        withObjectString: true,
        withSparseArray: true,
        withTypedArray: true,
      });
      fc.assert(fc.property(exotic, (input) => checkResult(input)), { numRuns: 500 });
    });

    it('never throws on random objects with a valid type and random fields', () => {
      fc.assert(fc.property(randomOp, (input) => checkResult(input)), { numRuns: 500 });
    });

    it('never throws on well-formed ops with random fields replaced or removed', () => {
      let acceptedCount = 0;
      let rejectedCount = 0;
      fc.assert(
        fc.property(mutatedOp, (input) => {
          checkResult(input);
          if (validateOp(input).ok) acceptedCount += 1;
          else rejectedCount += 1;
        }),
        { numRuns: 500 },
      );
      // The generator must reach both outcomes, or it tests only one side of the validator.
      expect(acceptedCount).to.be.above(0);
      expect(rejectedCount).to.be.above(0);
    });

    it('accepts every well-formed op and returns it unchanged', () => {
      fc.assert(
        fc.property(validOpArb, (input) => {
          expect(accepted(validateOp(input))).to.deep.equal(input);
        }),
        { numRuns: 500 },
      );
    });
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
