/**
 * Property tests of the versioned tree against the reference model (tree_model.ts).
 *
 * Random op sequences over a tiny universe of paths and values, so that collisions, no-ops,
 * wrong types, missing nodes and limit errors are frequent, are applied to the implementation
 * and to the model; every outcome and, after every step, the whole content of the tree
 * (read back through the public read API only) must agree.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import {
  applyOp,
  decodeSnapshot,
  defaultTreeLimits,
  emptyTree,
  encodeSnapshot,
  nodeTypes,
  treesEqual,
  type Bytes,
  type NodeType,
  type SimpleOp,
  type Tree,
  type TreeLimits,
  type TreeOp,
} from '../../src/tree/index.ts';
import { ReferenceTree, toHex, type CanonicalEntry } from './tree_model.ts';

// ---- the universe --------------------------------------------------------------------------

/** Few paths, nested, so that parents, leaves in the way and siblings collide often. */
const PATHS = ['/', '/a', '/a/b', '/a/b/c', '/a/d', '/c', '/c/a', '/c/b', '/e'] as const;
const NON_ROOT = PATHS.slice(1);
/** Few values, including the empty byte string and a byte above 0x7f. */
const VALUES: readonly Bytes[] = [
  Uint8Array.of(),
  Uint8Array.of(1),
  Uint8Array.of(2),
  Uint8Array.of(1, 2),
  Uint8Array.of(0xff),
];

const smallLimits: TreeLimits = {
  ...defaultTreeLimits,
  collectionElementsMax: 2,
  directoryChildrenMax: 2,
  listEntriesMax: 4,
};
const limitsArb = fc.constantFrom(defaultTreeLimits, smallLimits);

/**
 * Each run draws a layout: the type each path is meant to have. Creates and typed ops mostly
 * follow it, so that most ops find a node of the right type (and collections fill up), while
 * the rest draw any path or type, so that wrong types, missing nodes and leaves in the way of
 * a path stay frequent.
 */
type Layout = Readonly<Record<string, NodeType>>;
const layoutArb: fc.Arbitrary<Layout> = fc.record(
  Object.fromEntries(
    NON_ROOT.map((path) => {
      const hasChildren = NON_ROOT.some((other) => other.startsWith(`${path}/`));
      return [
        path,
        hasChildren
          ? fc.oneof({ weight: 4, arbitrary: fc.constant<NodeType>('directory') }, { weight: 1, arbitrary: fc.constantFrom(...nodeTypes) })
          : fc.oneof(
              { weight: 3, arbitrary: fc.constant<NodeType>('set') },
              { weight: 2, arbitrary: fc.constant<NodeType>('queue') },
              { weight: 2, arbitrary: fc.constant<NodeType>('blob') },
              { weight: 1, arbitrary: fc.constant<NodeType>('directory') },
            ),
      ];
    }),
  ) as Record<string, fc.Arbitrary<NodeType>>,
);

const valueArb = fc.constantFrom(...VALUES);
const nodeTypeArb = fc.constantFrom(...nodeTypes);
const literalArb = fc.array(valueArb, { maxLength: 3 });
const anyPathArb = fc.constantFrom(...PATHS);

/** The arbitraries of one run, given its layout. */
function opArbs(layout: Layout): { simple: fc.Arbitrary<SimpleOp>; spec: fc.Arbitrary<OpSpec>; guard: fc.Arbitrary<GuardSpec> } {
  /** A path meant to hold `type` (most of the time), or any path. */
  const pathFor = (type: NodeType): fc.Arbitrary<string> => {
    const meant = NON_ROOT.filter((p) => layout[p] === type);
    const any = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...NON_ROOT) }, { weight: 1, arbitrary: anyPathArb });
    return meant.length === 0 ? any : fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...meant) }, { weight: 1, arbitrary: any });
  };
  const setPath = pathFor('set');
  const queuePath = pathFor('queue');
  const blobPath = pathFor('blob');
  const dirPath = fc.oneof({ weight: 2, arbitrary: fc.constant('/') }, { weight: 3, arbitrary: pathFor('directory') });
  const createArb = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...NON_ROOT).map((path) => ({ type: 'create' as const, path, nodeType: layout[path] ?? 'directory' })) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('create' as const), path: anyPathArb, nodeType: nodeTypeArb }) },
  );

  const simple: fc.Arbitrary<SimpleOp> = fc.oneof(
    // writes, weighted so that trees get populated and collections fill up
    { weight: 6, arbitrary: createArb },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('delete' as const), path: anyPathArb }) },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('blob_put' as const), path: blobPath, value: valueArb }) },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('queue_push' as const), path: queuePath, value: valueArb }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('queue_pop' as const), path: queuePath }) },
    { weight: 5, arbitrary: fc.record({ type: fc.constant('set_insert' as const), path: setPath, value: valueArb }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('set_remove' as const), path: setPath, value: valueArb }) },
    // reads
    { weight: 2, arbitrary: fc.record({ type: fc.constant('list' as const), path: dirPath, recursive: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('stat' as const), path: anyPathArb }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constantFrom('blob_get' as const, 'blob_size' as const), path: blobPath }) },
    {
      weight: 2,
      arbitrary: fc.record({
        type: fc.constantFrom('queue_front' as const, 'queue_back' as const, 'queue_len' as const),
        path: queuePath,
      }),
    },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('set_contains' as const), path: setPath, value: valueArb }) },
    {
      weight: 2,
      arbitrary: fc.record({
        type: fc.constant('set_union' as const),
        paths: fc.array(setPath, { maxLength: 3 }),
        sets: fc.array(literalArb, { maxLength: 2 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        type: fc.constantFrom('set_intersection' as const, 'set_difference' as const, 'set_symmetric_difference' as const),
        path1: setPath,
        path2: setPath,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        type: fc.constantFrom('set_is_subset' as const, 'set_is_superset' as const),
        path: setPath,
        other: fc.oneof(
          fc.record({ type: fc.constant('path' as const), path: setPath }),
          fc.record({ type: fc.constant('literal' as const), members: literalArb }),
        ),
      }),
    },
  );

  const guard: fc.Arbitrary<GuardSpec> = fc.record({
    path: anyPathArb,
    version: fc.oneof(
      { weight: 8, arbitrary: fc.constant('current' as const) },
      { weight: 1, arbitrary: fc.constant('next' as const) },
      { weight: 1, arbitrary: fc.nat({ max: 3 }) },
    ),
  });

  const spec: fc.Arbitrary<OpSpec> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('simple' as const), op: simple }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('txn' as const),
        guards: fc.array(guard, { maxLength: 3 }),
        ops: fc.array(simple, { maxLength: 5, size: 'max' }),
      }),
    },
  );
  return { simple, spec, guard };
}

/**
 * A guard is drawn as a recipe resolved against the model just before it is applied, so that
 * guards often hold (the current version) and sometimes fail by one or name a missing node.
 */
type GuardSpec = { readonly path: string; readonly version: 'current' | 'next' | number };
type OpSpec =
  | { readonly kind: 'simple'; readonly op: SimpleOp }
  | { readonly kind: 'txn'; readonly guards: readonly GuardSpec[]; readonly ops: readonly SimpleOp[] };

/** A run: limits plus up to `maxLength` op recipes drawn for a random layout. */
function runArb(maxLength: number, make: (arbs: ReturnType<typeof opArbs>) => fc.Arbitrary<OpSpec> = (a) => a.spec) {
  return fc.tuple(limitsArb, layoutArb).chain(([limits, layout]) => {
    // A few creates that follow the layout first, so that most runs work on a populated tree.
    const setup = fc
      .shuffledSubarray([...NON_ROOT], { minLength: 3, maxLength: 7 })
      .map((paths) => paths.map((path): OpSpec => ({ kind: 'simple', op: { type: 'create', path, nodeType: layout[path] ?? 'directory' } })));
    const rest = fc.array(make(opArbs(layout)), { maxLength: maxLength - 7, size: 'max' });
    return fc.tuple(fc.constant(limits), fc.tuple(setup, rest).map(([a, b]) => [...a, ...b]));
  });
}

function resolve(spec: OpSpec, model: ReferenceTree): TreeOp {
  if (spec.kind === 'simple') return spec.op;
  const guards = spec.guards.map((g) => {
    const current = model.versionOf(g.path);
    // "current" of a missing node cannot hold; guard the root instead so that most guards pass.
    if (g.version === 'current') return current === null ? { path: '/', version: model.versionOf('/') ?? 0 } : { path: g.path, version: current };
    return { path: g.path, version: g.version === 'next' ? (current ?? 0) + 1 : g.version };
  });
  return { type: 'multi_cas', guards, ops: spec.ops };
}

// ---- reading the implementation back through its public read API ---------------------------

function must<T extends { type: string }>(tree: Tree, op: TreeOp, type: T['type']): T {
  const { outcome } = applyOp(tree, op);
  if (outcome.type !== type) throw new Error(`dump: ${JSON.stringify(op)} gave ${outcome.type}`);
  return outcome as unknown as T;
}

/** Every node, pre-order, children by name, with type, version and content: the model's canonical form. */
function dump(tree: Tree): CanonicalEntry[] {
  const root = must<{ type: 'stat'; version: number }>(tree, { type: 'stat', path: '/' }, 'stat');
  const all = must<{ type: 'list'; entries: readonly { path: string; nodeType: NodeType; version: number }[] }>(
    tree,
    { type: 'list', path: '/', recursive: true },
    'list',
  );
  const out: CanonicalEntry[] = [{ path: '/', type: 'directory', version: root.version, content: null }];
  for (const entry of all.entries) {
    let content: CanonicalEntry['content'] = null;
    if (entry.nodeType === 'blob') {
      content = toHex(must<{ type: 'blob'; value: Bytes }>(tree, { type: 'blob_get', path: entry.path }, 'blob').value);
    } else if (entry.nodeType === 'set') {
      content = must<{ type: 'set'; members: readonly Bytes[] }>(tree, { type: 'set_union', paths: [entry.path], sets: [] }, 'set').members.map(toHex);
    } else if (entry.nodeType === 'queue') {
      // Trees are persistent: popping a copy to read the queue leaves `tree` as it was.
      content = [];
      let t = tree;
      for (;;) {
        const { tree: next, outcome } = applyOp(t, { type: 'queue_pop', path: entry.path });
        if (outcome.type !== 'element') throw new Error('dump: queue_pop did not return an element');
        if (outcome.value === null) break;
        content.push(toHex(outcome.value));
        t = next;
      }
    }
    out.push({ path: entry.path, type: entry.nodeType, version: entry.version, content });
  }
  return out;
}

function show(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes[${Array.from(v).join(',')}]` : v));
}

// ---- properties ----------------------------------------------------------------------------

describe('tree (property): the implementation behaves like the reference model', () => {
  it('every outcome and, after every step, the whole tree agree with the model; failed multi_cas returns the input tree', () => {
    fc.assert(
      fc.property(runArb(40), ([limits, specs]) => {
        const model = new ReferenceTree();
        let tree = emptyTree();
        const history: { tree: Tree; dump: string }[] = [];
        for (const [step, spec] of specs.entries()) {
          const op = resolve(spec, model);
          const bytesBefore = op.type === 'multi_cas' ? encodeSnapshot(tree) : null;
          const { tree: next, outcome } = applyOp(tree, op, limits);
          const expected = model.apply(op, limits);
          expect(outcome, `step ${step}: ${show(op)}`).to.deep.equal(expected);
          if (op.type === 'multi_cas' && outcome.type === 'error') {
            expect(next, `step ${step}: a failed multi_cas returns the same tree`).to.equal(tree);
            expect(encodeSnapshot(next), `step ${step}: a failed multi_cas changes no byte`).to.deep.equal(bytesBefore);
          }
          const state = dump(next);
          expect(state, `step ${step}: tree after ${show(op)}`).to.deep.equal(model.canonicalEntries());
          tree = next;
          history.push({ tree, dump: JSON.stringify(state) });
        }
        // Persistence: every earlier tree still reads as it did when it was current.
        for (const [step, past] of history.entries()) {
          if (step % 4 === 0) expect(JSON.stringify(dump(past.tree)), `tree of step ${step}`).to.equal(past.dump);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('transaction-heavy runs: guards mostly from current versions, random inner ops, all or nothing; any failed op changes no byte', () => {
    const txnHeavy = (arbs: ReturnType<typeof opArbs>): fc.Arbitrary<OpSpec> =>
      fc.oneof(
        {
          weight: 2,
          arbitrary: fc.record({
            kind: fc.constant('txn' as const),
            guards: fc.array(arbs.guard, { maxLength: 4 }),
            ops: fc.array(arbs.simple, { minLength: 1, maxLength: 8 }),
          }),
        },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('simple' as const), op: arbs.simple }) },
      );
    fc.assert(
      fc.property(runArb(20, txnHeavy), ([limits, specs]) => {
        const model = new ReferenceTree();
        let tree = emptyTree();
        for (const spec of specs) {
          const op = resolve(spec, model);
          const before = encodeSnapshot(tree);
          const { tree: next, outcome } = applyOp(tree, op, limits);
          expect(outcome, show(op)).to.deep.equal(model.apply(op, limits));
          if (outcome.type === 'error') {
            if (op.type === 'multi_cas') expect(next).to.equal(tree);
            expect(encodeSnapshot(next)).to.deep.equal(before);
          }
          expect(dump(next)).to.deep.equal(model.canonicalEntries());
          tree = next;
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('tree (property): determinism and snapshots', () => {
  /** Builds a tree and its model from random ops (errors included: they leave the tree unchanged). */
  function buildBoth(specs: readonly OpSpec[], limits: TreeLimits): { tree: Tree; model: ReferenceTree } {
    const model = new ReferenceTree();
    let tree = emptyTree();
    for (const spec of specs) {
      const op = resolve(spec, model);
      tree = applyOp(tree, op, limits).tree;
      model.apply(op, limits);
    }
    return { tree, model };
  }

  it('decode(encode(t)) is treesEqual to t, re-encodes to the same bytes and reads the same', () => {
    fc.assert(
      fc.property(runArb(40), ([limits, specs]) => {
        const { tree, model } = buildBoth(specs, limits);
        const bytes = encodeSnapshot(tree);
        const decoded = decodeSnapshot(bytes);
        if (!decoded.ok) throw new Error(`decode failed: ${decoded.reason}`);
        expect(treesEqual(decoded.tree, tree)).to.equal(true);
        expect(treesEqual(tree, decoded.tree)).to.equal(true);
        expect(encodeSnapshot(decoded.tree)).to.deep.equal(bytes);
        expect(dump(decoded.tree)).to.deep.equal(model.canonicalEntries());
      }),
      { numRuns: 300 },
    );
  });

  it('the same op sequence applied twice gives byte-identical snapshots and equal trees', () => {
    fc.assert(
      fc.property(runArb(40), ([limits, specs]) => {
        const x = buildBoth(specs, limits).tree;
        const y = buildBoth(specs, limits).tree;
        expect(encodeSnapshot(x)).to.deep.equal(encodeSnapshot(y));
        expect(treesEqual(x, y)).to.equal(true);
      }),
      { numRuns: 200 },
    );
  });

  it('treesEqual and byte equality of snapshots hold exactly when the contents and versions agree', () => {
    // A tiny op set so that two independent sequences often reach the same tree by different routes.
    const tinyOp: fc.Arbitrary<OpSpec> = fc.record({
      kind: fc.constant('simple' as const),
      op: fc.oneof(
        fc.record({ type: fc.constant('create' as const), path: fc.constantFrom('/a', '/c'), nodeType: fc.constantFrom('set' as const, 'queue' as const) }),
        fc.record({ type: fc.constant('set_insert' as const), path: fc.constantFrom('/a', '/c'), value: fc.constantFrom(...VALUES.slice(0, 3)) }),
        fc.record({ type: fc.constant('queue_push' as const), path: fc.constantFrom('/a', '/c'), value: fc.constantFrom(...VALUES.slice(0, 2)) }),
      ),
    });
    let equalPairs = 0;
    fc.assert(
      fc.property(fc.array(tinyOp, { maxLength: 5 }), fc.array(tinyOp, { maxLength: 5 }), (left, right) => {
        const x = buildBoth(left, defaultTreeLimits);
        const y = buildBoth(right, defaultTreeLimits);
        const same = x.model.encodeCanonical() === y.model.encodeCanonical();
        if (same) equalPairs++;
        expect(treesEqual(x.tree, y.tree), 'treesEqual').to.equal(same);
        expect(Buffer.from(encodeSnapshot(x.tree)).equals(Buffer.from(encodeSnapshot(y.tree))), 'snapshot bytes').to.equal(same);
      }),
      { numRuns: 500 },
    );
    expect(equalPairs, 'the generator often reaches equal trees').to.be.greaterThan(10);
  });

  it('a corrupted snapshot of a random tree is refused, never thrown', () => {
    fc.assert(
      fc.property(runArb(20), fc.nat(), fc.integer({ min: 1, max: 255 }), ([limits, specs], where, xor) => {
        const bytes = encodeSnapshot(buildBoth(specs, limits).tree);
        const corrupt = Uint8Array.from(bytes);
        const i = where % corrupt.length;
        corrupt[i] = (corrupt[i] ?? 0) ^ xor;
        const flipped = decodeSnapshot(corrupt);
        expect(flipped.ok).to.equal(false);
        const truncated = decodeSnapshot(bytes.subarray(0, i));
        expect(truncated.ok).to.equal(false);
      }),
      { numRuns: 300 },
    );
  });
});
