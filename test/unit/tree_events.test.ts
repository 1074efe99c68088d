/**
 * The changes a committed op makes (src/tree/events.ts), the foundation of watches.
 *
 * Unit cases pin each op's changes, kinds, versions and order; the property derives the
 * expected changes independently, by reading the whole tree before and after each random op
 * through the public read API and diffing (exists, type, version, value) path by path.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { changeMatches, treeChanges, type TreeChange } from '../../src/tree/events.ts';
import {
  applyOp,
  decodeSnapshot,
  defaultTreeLimits,
  emptyTree,
  encodeSnapshot,
  nodeTypes,
  type Bytes,
  type NodeType,
  type SimpleOp,
  type Tree,
  type TreeLimits,
  type TreeOp,
} from '../../src/tree/index.ts';
import { assertNever } from '../../src/base/assert.ts';
import { toHex } from './tree_model.ts';

// ---- helpers -------------------------------------------------------------------------------

const b = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes);

function show(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes[${Array.from(v).join(',')}]` : v));
}

/** Applies an op and returns the next tree and the changes it made. */
function step(tree: Tree, op: TreeOp, limits: TreeLimits = defaultTreeLimits): { tree: Tree; changes: readonly TreeChange[]; failed: boolean } {
  const { tree: next, outcome } = applyOp(tree, op, limits);
  return { tree: next, changes: treeChanges(tree, op, next), failed: outcome.type === 'error' };
}

/** Applies ops that must all succeed. */
function build(...ops: TreeOp[]): Tree {
  let tree = emptyTree();
  for (const op of ops) {
    const { tree: next, outcome } = applyOp(tree, op);
    if (outcome.type === 'error') throw new Error(`setup ${show(op)} failed: ${show(outcome)}`);
    tree = next;
  }
  return tree;
}

function rootVersion(tree: Tree): number {
  const { outcome } = applyOp(tree, { type: 'stat', path: '/' });
  if (outcome.type !== 'stat') throw new Error('stat / failed');
  return outcome.version;
}

const changed = (path: string, nodeType: NodeType, version: number): TreeChange => ({ kind: 'changed', path, nodeType, version });
const created = (path: string, nodeType: NodeType, version = 0): TreeChange => ({ kind: 'created', path, nodeType, version });
const deleted = (path: string, nodeType: NodeType, version: number): TreeChange => ({ kind: 'deleted', path, nodeType, version });

// ---- one case per op -----------------------------------------------------------------------

describe('tree events: the changes of each op', () => {
  for (const nodeType of nodeTypes) {
    it(`create of a ${nodeType} reports the new node and every ancestor it bumped`, () => {
      const tree = build({ type: 'create', path: '/a', nodeType: 'directory' });
      const { changes } = step(tree, { type: 'create', path: '/a/n', nodeType });
      expect(changes).to.deep.equal([changed('/', 'directory', 2), changed('/a', 'directory', 1), created('/a/n', nodeType)]);
    });
  }

  it('create with missing parents reports each parent it made as created, root first', () => {
    const { changes } = step(emptyTree(), { type: 'create', path: '/x/y/z', nodeType: 'set' });
    expect(changes).to.deep.equal([
      changed('/', 'directory', 1),
      created('/x', 'directory'),
      created('/x/y', 'directory'),
      created('/x/y/z', 'set'),
    ]);
  });

  it('delete reports the bumped ancestors, then the whole deleted subtree in pre-order with its last versions', () => {
    const tree = build(
      { type: 'create', path: '/d/y/z', nodeType: 'queue' },
      { type: 'create', path: '/d/x', nodeType: 'blob' },
      { type: 'blob_put', path: '/d/x', value: b(1) },
      { type: 'create', path: '/d/b', nodeType: 'set' },
      { type: 'create', path: '/keep', nodeType: 'blob' },
    );
    const { changes } = step(tree, { type: 'delete', path: '/d' });
    expect(changes).to.deep.equal([
      changed('/', 'directory', rootVersion(tree) + 1),
      deleted('/d', 'directory', 3),
      deleted('/d/b', 'set', 0),
      deleted('/d/x', 'blob', 1),
      deleted('/d/y', 'directory', 0),
      deleted('/d/y/z', 'queue', 0),
    ]);
  });

  it('blob_put reports the blob and its ancestors; equal bytes change nothing and report nothing', () => {
    const tree = build({ type: 'create', path: '/a/k', nodeType: 'blob' });
    const put = step(tree, { type: 'blob_put', path: '/a/k', value: b(7) });
    expect(put.changes).to.deep.equal([changed('/', 'directory', 2), changed('/a', 'directory', 1), changed('/a/k', 'blob', 1)]);
    expect(step(put.tree, { type: 'blob_put', path: '/a/k', value: b(7) }).changes).to.deep.equal([]);
  });

  it('queue_push and queue_pop report the queue; a pop of an empty queue reports nothing', () => {
    const tree = build({ type: 'create', path: '/q', nodeType: 'queue' });
    const push = step(tree, { type: 'queue_push', path: '/q', value: b(1) });
    expect(push.changes).to.deep.equal([changed('/', 'directory', 2), changed('/q', 'queue', 1)]);
    const pop = step(push.tree, { type: 'queue_pop', path: '/q' });
    expect(pop.changes).to.deep.equal([changed('/', 'directory', 3), changed('/q', 'queue', 2)]);
    expect(step(pop.tree, { type: 'queue_pop', path: '/q' }).changes).to.deep.equal([]);
  });

  it('set_insert and set_remove report the set only when membership changes', () => {
    const tree = build({ type: 'create', path: '/s', nodeType: 'set' });
    const insert = step(tree, { type: 'set_insert', path: '/s', value: b(5) });
    expect(insert.changes).to.deep.equal([changed('/', 'directory', 2), changed('/s', 'set', 1)]);
    expect(step(insert.tree, { type: 'set_insert', path: '/s', value: b(5) }).changes).to.deep.equal([]);
    const remove = step(insert.tree, { type: 'set_remove', path: '/s', value: b(5) });
    expect(remove.changes).to.deep.equal([changed('/', 'directory', 3), changed('/s', 'set', 2)]);
    expect(step(remove.tree, { type: 'set_remove', path: '/s', value: b(5) }).changes).to.deep.equal([]);
  });

  it('reads report nothing, alone or in a transaction', () => {
    const tree = build(
      { type: 'create', path: '/s', nodeType: 'set' },
      { type: 'create', path: '/q', nodeType: 'queue' },
      { type: 'create', path: '/k', nodeType: 'blob' },
    );
    const reads: SimpleOp[] = [
      { type: 'list', path: '/', recursive: true },
      { type: 'stat', path: '/s' },
      { type: 'blob_get', path: '/k' },
      { type: 'blob_size', path: '/k' },
      { type: 'queue_front', path: '/q' },
      { type: 'queue_back', path: '/q' },
      { type: 'queue_len', path: '/q' },
      { type: 'set_contains', path: '/s', value: b(1) },
      { type: 'set_union', paths: ['/s'], sets: [[b(2)]] },
      { type: 'set_intersection', path1: '/s', path2: '/s' },
      { type: 'set_difference', path1: '/s', path2: '/s' },
      { type: 'set_symmetric_difference', path1: '/s', path2: '/s' },
      { type: 'set_is_subset', path: '/s', other: { type: 'path', path: '/s' } },
      { type: 'set_is_superset', path: '/s', other: { type: 'literal', members: [] } },
    ];
    for (const op of reads) {
      const result = step(tree, op);
      expect(result.failed, show(op)).to.equal(false);
      expect(result.changes, show(op)).to.deep.equal([]);
    }
    const txn = step(tree, { type: 'multi_cas', guards: [{ path: '/', version: rootVersion(tree) }], ops: reads });
    expect(txn.failed).to.equal(false);
    expect(txn.changes).to.deep.equal([]);
  });

  it('failed ops report nothing: single ops, a failed guard, a transaction failing after a write', () => {
    const tree = build({ type: 'create', path: '/k', nodeType: 'blob' }, { type: 'create', path: '/s', nodeType: 'set' });
    const failing: TreeOp[] = [
      { type: 'create', path: '/k', nodeType: 'blob' },
      { type: 'create', path: '/k/x', nodeType: 'blob' },
      { type: 'delete', path: '/missing' },
      { type: 'delete', path: '/' },
      { type: 'blob_put', path: '/s', value: b(1) },
      { type: 'queue_push', path: '/k', value: b(1) },
      { type: 'set_insert', path: '/nope', value: b(1) },
      { type: 'multi_cas', guards: [{ path: '/k', version: 9 }], ops: [{ type: 'blob_put', path: '/k', value: b(1) }] },
      {
        type: 'multi_cas',
        guards: [],
        ops: [
          { type: 'blob_put', path: '/k', value: b(1) },
          { type: 'create', path: '/new', nodeType: 'set' },
          { type: 'queue_pop', path: '/s' },
        ],
      },
    ];
    for (const op of failing) {
      const result = step(tree, op);
      expect(result.failed, show(op)).to.equal(true);
      expect(result.changes, show(op)).to.deep.equal([]);
    }
    const full = { ...defaultTreeLimits, collectionElementsMax: 0 };
    const tooLarge = step(tree, { type: 'set_insert', path: '/s', value: b(1) }, full);
    expect(tooLarge.failed).to.equal(true);
    expect(tooLarge.changes).to.deep.equal([]);
  });
});

describe('tree events: multi_cas reports one batch, one change per node, net of the transaction', () => {
  it('several ops: one list in order of first touch, each node once with its final version, reads skipped', () => {
    const tree = build(
      { type: 'create', path: '/a/x', nodeType: 'blob' },
      { type: 'create', path: '/b/q', nodeType: 'queue' },
    );
    const root = rootVersion(tree);
    const { changes, failed } = step(tree, {
      type: 'multi_cas',
      guards: [{ path: '/a/x', version: 0 }],
      ops: [
        { type: 'blob_put', path: '/a/x', value: b(1) },
        { type: 'queue_push', path: '/b/q', value: b(2) },
        { type: 'blob_get', path: '/a/x' },
        { type: 'blob_put', path: '/a/x', value: b(3) },
        { type: 'create', path: '/c/s', nodeType: 'set' },
        { type: 'set_insert', path: '/c/s', value: b(4) },
      ],
    });
    expect(failed).to.equal(false);
    expect(changes).to.deep.equal([
      changed('/', 'directory', root + 5),
      changed('/a', 'directory', 2),
      changed('/a/x', 'blob', 2),
      changed('/b', 'directory', 1),
      changed('/b/q', 'queue', 1),
      created('/c', 'directory', 1),
      created('/c/s', 'set', 1),
    ]);
  });

  it('created then deleted in one transaction reports nothing for that node', () => {
    const tree = build({ type: 'create', path: '/a', nodeType: 'directory' });
    const { changes } = step(tree, {
      type: 'multi_cas',
      guards: [],
      ops: [
        { type: 'create', path: '/a/t/u', nodeType: 'blob' },
        { type: 'delete', path: '/a/t' },
      ],
    });
    expect(changes).to.deep.equal([changed('/', 'directory', 3), changed('/a', 'directory', 2)]);
  });

  it('written then deleted reports deleted with the version before the transaction', () => {
    const tree = build({ type: 'create', path: '/k', nodeType: 'blob' });
    const { changes } = step(tree, {
      type: 'multi_cas',
      guards: [],
      ops: [
        { type: 'blob_put', path: '/k', value: b(1) },
        { type: 'delete', path: '/k' },
      ],
    });
    expect(changes).to.deep.equal([changed('/', 'directory', 3), deleted('/k', 'blob', 0)]);
  });

  it('deleted and re-created: changed with the new type and version, changed on other content, nothing on the same state', () => {
    const tree = build(
      { type: 'create', path: '/k', nodeType: 'blob' },
      { type: 'blob_put', path: '/k', value: b(9) },
      { type: 'create', path: '/e', nodeType: 'blob' },
      { type: 'create', path: '/v', nodeType: 'blob' },
    );
    const root = rootVersion(tree);
    const retyped = step(tree, {
      type: 'multi_cas',
      guards: [],
      ops: [
        { type: 'delete', path: '/k' },
        { type: 'create', path: '/k', nodeType: 'set' },
      ],
    });
    expect(retyped.changes).to.deep.equal([changed('/', 'directory', root + 2), changed('/k', 'set', 0)]);
    const refilled = step(tree, {
      type: 'multi_cas',
      guards: [],
      ops: [
        // /k: a blob at version 1 before and after, other bytes: the value differs, so it changed.
        { type: 'delete', path: '/k' },
        { type: 'create', path: '/k', nodeType: 'blob' },
        { type: 'blob_put', path: '/k', value: b(1) },
        // /e: an empty blob at version 0 before and after: no reader or guard can tell, no change.
        { type: 'delete', path: '/e' },
        { type: 'create', path: '/e', nodeType: 'blob' },
        // /v: version 0 before, 1 after.
        { type: 'delete', path: '/v' },
        { type: 'create', path: '/v', nodeType: 'blob' },
        { type: 'blob_put', path: '/v', value: b(1) },
      ],
    });
    expect(refilled.changes).to.deep.equal([changed('/', 'directory', root + 8), changed('/k', 'blob', 1), changed('/v', 'blob', 1)]);
  });

  it('a deleted directory re-created with part of its children reports the rest as deleted', () => {
    const tree = build({ type: 'create', path: '/d/x', nodeType: 'set' }, { type: 'create', path: '/d/y', nodeType: 'blob' });
    const { changes } = step(tree, {
      type: 'multi_cas',
      guards: [],
      ops: [
        { type: 'delete', path: '/d' },
        { type: 'create', path: '/d/y', nodeType: 'blob' },
      ],
    });
    // /d: version 2 before, 0 after; /d/y: an empty blob at 0 on both sides.
    expect(changes).to.deep.equal([changed('/', 'directory', rootVersion(tree) + 2), changed('/d', 'directory', 0), deleted('/d/x', 'set', 0)]);
  });

  it('the same ops on trees rebuilt from snapshots (other node objects) give the same changes', () => {
    const tree = build({ type: 'create', path: '/d/x', nodeType: 'set' }, { type: 'create', path: '/k', nodeType: 'blob' });
    const decoded = decodeSnapshot(encodeSnapshot(tree));
    if (!decoded.ok) throw new Error(decoded.reason);
    const op: TreeOp = {
      type: 'multi_cas',
      guards: [],
      ops: [
        { type: 'delete', path: '/d' },
        { type: 'blob_put', path: '/k', value: b(1) },
      ],
    };
    const here = step(tree, op).changes;
    expect(here.length).to.equal(4);
    expect(step(decoded.tree, op).changes).to.deep.equal(here);
  });
});

describe('tree events: changeMatches', () => {
  const at = (path: string): TreeChange => changed(path, 'blob', 1);

  it('an exact watch matches its own path only', () => {
    expect(changeMatches(at('/a'), '/a', false)).to.equal(true);
    expect(changeMatches(at('/a/b'), '/a', false)).to.equal(false);
    expect(changeMatches(at('/'), '/', false)).to.equal(true);
    expect(changeMatches(at('/a'), '/', false)).to.equal(false);
  });

  it('a recursive watch matches its path and paths below it, on component boundaries only', () => {
    expect(changeMatches(at('/a'), '/a', true)).to.equal(true);
    expect(changeMatches(at('/a/b'), '/a', true)).to.equal(true);
    expect(changeMatches(at('/a/b/c'), '/a', true)).to.equal(true);
    expect(changeMatches(at('/ab'), '/a', true)).to.equal(false);
    expect(changeMatches(at('/ab/c'), '/a', true)).to.equal(false);
    expect(changeMatches(at('/'), '/a', true)).to.equal(false);
    expect(changeMatches(at('/b'), '/a', true)).to.equal(false);
    expect(changeMatches(at('/a/b'), '/a/b/c', true)).to.equal(false);
  });

  it('a recursive watch on the root matches every path', () => {
    for (const path of ['/', '/a', '/ab/c', '/z/y/x']) expect(changeMatches(at(path), '/', true), path).to.equal(true);
  });

  it('agrees with a component-wise definition on random paths', () => {
    const pathArb = fc.array(fc.constantFrom('a', 'ab', 'b', 'a.b'), { maxLength: 4 }).map((parts) => `/${parts.join('/')}`.replace(/^\/$/, '/'));
    fc.assert(
      fc.property(pathArb, pathArb, fc.boolean(), (path, watch, recursive) => {
        const parts = (p: string): string[] => (p === '/' ? [] : p.slice(1).split('/'));
        const below = parts(watch).every((part, i) => parts(path)[i] === part) && parts(path).length >= parts(watch).length;
        const expected = path === watch || (recursive && below);
        expect(changeMatches(at(path), watch, recursive)).to.equal(expected);
      }),
      { numRuns: 500 },
    );
  });
});

// ---- the property --------------------------------------------------------------------------

/** Node states read back through the public read API only: path -> (type, version, value). */
type NodeState = { readonly type: NodeType; readonly version: number; readonly value: string };

function must<T extends { type: string }>(tree: Tree, op: TreeOp, type: T['type']): T {
  const { outcome } = applyOp(tree, op);
  if (outcome.type !== type) throw new Error(`read ${show(op)} gave ${show(outcome)}`);
  return outcome as unknown as T;
}

function states(tree: Tree): Map<string, NodeState> {
  const out = new Map<string, NodeState>([['/', { type: 'directory', version: rootVersion(tree), value: '' }]]);
  const all = must<{ type: 'list'; entries: readonly { path: string; nodeType: NodeType; version: number }[] }>(
    tree,
    { type: 'list', path: '/', recursive: true },
    'list',
  );
  for (const entry of all.entries) {
    let value = '';
    if (entry.nodeType === 'blob') {
      value = toHex(must<{ type: 'blob'; value: Bytes }>(tree, { type: 'blob_get', path: entry.path }, 'blob').value);
    } else if (entry.nodeType === 'set') {
      const members = must<{ type: 'set'; members: readonly Bytes[] }>(tree, { type: 'set_union', paths: [entry.path], sets: [] }, 'set').members;
      value = members.map(toHex).join(',');
    } else if (entry.nodeType === 'queue') {
      // Popping a copy: trees are persistent, so `tree` itself is left as it was.
      const elements: string[] = [];
      for (let t = tree; ; ) {
        const { tree: next, outcome } = applyOp(t, { type: 'queue_pop', path: entry.path });
        if (outcome.type !== 'element') throw new Error('queue_pop did not return an element');
        if (outcome.value === null) break;
        elements.push(toHex(outcome.value));
        t = next;
      }
      value = elements.join(',');
    }
    out.set(entry.path, { type: entry.nodeType, version: entry.version, value });
  }
  return out;
}

/** The expected changes, keyed by path: every path whose state differs. */
function expectedChanges(before: Map<string, NodeState>, after: Map<string, NodeState>): Map<string, TreeChange> {
  const out = new Map<string, TreeChange>();
  for (const path of new Set([...before.keys(), ...after.keys()])) {
    const was = before.get(path);
    const now = after.get(path);
    if (was !== undefined && now !== undefined) {
      if (was.type !== now.type || was.version !== now.version || was.value !== now.value) out.set(path, changed(path, now.type, now.version));
    } else if (now !== undefined) {
      out.set(path, created(path, now.type, now.version));
    } else if (was !== undefined) {
      out.set(path, deleted(path, was.type, was.version));
    }
  }
  return out;
}

/** Few nested paths, `/ab` beside `/a`, so that parents, leaves in the way and re-creations collide often. */
const PATHS = ['/', '/a', '/a/b', '/a/b/c', '/a/d', '/ab', '/c', '/c/a'] as const;
const NON_ROOT = PATHS.slice(1);
const VALUES: readonly Bytes[] = [b(), b(1), b(2), b(1, 2)];
const smallLimits: TreeLimits = { ...defaultTreeLimits, collectionElementsMax: 2, directoryChildrenMax: 2 };

/** Types each path is meant to have in a run, so most typed ops find their node; the rest collide. */
const layoutArb = fc.record(
  Object.fromEntries(
    NON_ROOT.map((path) => {
      const parent = NON_ROOT.some((other) => other.startsWith(`${path}/`));
      return [path, parent ? fc.constantFrom<NodeType>('directory', 'directory', 'directory', 'set') : fc.constantFrom(...nodeTypes)];
    }),
  ) as Record<string, fc.Arbitrary<NodeType>>,
);

function simpleArb(layout: Readonly<Record<string, NodeType>>): fc.Arbitrary<SimpleOp> {
  const typed = (type: NodeType): fc.Arbitrary<string> => {
    const meant = NON_ROOT.filter((p) => layout[p] === type);
    const any = fc.constantFrom(...PATHS);
    return meant.length === 0 ? any : fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...meant) }, { weight: 1, arbitrary: any });
  };
  const value = fc.constantFrom(...VALUES);
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...NON_ROOT).map((path): SimpleOp => ({ type: 'create', path, nodeType: layout[path] ?? 'directory' })) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('create' as const), path: fc.constantFrom(...PATHS), nodeType: fc.constantFrom(...nodeTypes) }) },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('delete' as const), path: fc.constantFrom(...PATHS) }) },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('blob_put' as const), path: typed('blob'), value }) },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('queue_push' as const), path: typed('queue'), value }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('queue_pop' as const), path: typed('queue') }) },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('set_insert' as const), path: typed('set'), value }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('set_remove' as const), path: typed('set'), value }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('list' as const), path: fc.constantFrom(...PATHS), recursive: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('stat' as const), path: fc.constantFrom(...PATHS) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('queue_len' as const), path: typed('queue') }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('set_union' as const), paths: fc.array(typed('set'), { maxLength: 2 }), sets: fc.constant([]) }) },
  );
}

/** A guard recipe resolved against the tree just before the op: mostly the current version, so it holds. */
type GuardSpec = { readonly path: string; readonly current: boolean };
type OpSpec =
  | { readonly kind: 'simple'; readonly op: SimpleOp }
  | { readonly kind: 'txn'; readonly guards: readonly GuardSpec[]; readonly ops: readonly SimpleOp[] }
  | {
      readonly kind: 'replace';
      readonly path: string;
      readonly nodeType: NodeType | 'same';
      readonly values: readonly Bytes[];
    };

const runArb = fc.tuple(fc.constantFrom(defaultTreeLimits, smallLimits), layoutArb).chain(([limits, layout]) => {
  const simple = simpleArb(layout);
  const guard = fc.record({ path: fc.constantFrom(...PATHS), current: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }) });
  const spec: fc.Arbitrary<OpSpec> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('simple' as const), op: simple }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('txn' as const),
        guards: fc.array(guard, { maxLength: 2 }),
        ops: fc.array(simple, { minLength: 1, maxLength: 6 }),
      }),
    },
    {
      // Delete, re-create and refill in one transaction: the net-effect cases (resolve()).
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('replace' as const),
        path: fc.constantFrom(...NON_ROOT),
        nodeType: fc.oneof({ weight: 3, arbitrary: fc.constant('same' as const) }, { weight: 1, arbitrary: fc.constantFrom(...nodeTypes) }),
        values: fc.array(fc.constantFrom(...VALUES), { maxLength: 6 }),
      }),
    },
  );
  const setup = fc
    .shuffledSubarray([...NON_ROOT], { minLength: 3, maxLength: 7 })
    .map((paths) => paths.map((path): OpSpec => ({ kind: 'simple', op: { type: 'create', path, nodeType: layout[path] ?? 'directory' } })));
  return fc.tuple(fc.constant(limits), fc.tuple(setup, fc.array(spec, { maxLength: 30, size: 'max' })).map(([a, rest]) => [...a, ...rest]));
});

/** A write that adds `value` to a node of that type (a read for a directory, which holds no value). */
function refill(path: string, nodeType: NodeType, value: Bytes): SimpleOp {
  switch (nodeType) {
    case 'blob':
      return { type: 'blob_put', path, value };
    case 'queue':
      return { type: 'queue_push', path, value };
    case 'set':
      return { type: 'set_insert', path, value };
    case 'directory':
      return { type: 'stat', path };
    default:
      return assertNever(nodeType, 'node type');
  }
}

function resolve(spec: OpSpec, tree: Tree): TreeOp {
  if (spec.kind === 'simple') return spec.op;
  if (spec.kind === 'replace') {
    // Re-create the node (same type by default) and refill it with as many writes as its
    // version, so it often ends at its old type and version with other content: only the
    // value then tells that it changed.
    const { outcome } = applyOp(tree, { type: 'stat', path: spec.path });
    const nodeType = spec.nodeType !== 'same' ? spec.nodeType : outcome.type === 'stat' ? outcome.nodeType : 'blob';
    const count = outcome.type === 'stat' ? Math.min(outcome.version, spec.values.length) : spec.values.length;
    const refills = spec.values.slice(0, count).map((value) => refill(spec.path, nodeType, value));
    return { type: 'multi_cas', guards: [], ops: [{ type: 'delete', path: spec.path }, { type: 'create', path: spec.path, nodeType }, ...refills] };
  }
  const guards = spec.guards.map((g) => {
    const { outcome } = applyOp(tree, { type: 'stat', path: g.path });
    const version = outcome.type === 'stat' ? outcome.version : 0;
    return { path: g.path, version: g.current ? version : version + 1 };
  });
  return { type: 'multi_cas', guards, ops: spec.ops };
}

function isAncestor(parent: string, path: string): boolean {
  return parent !== path && (parent === '/' || path.startsWith(`${parent}/`));
}

describe('tree events (property): the changes of each op are exactly the diff of the trees', () => {
  it('one change per differing path, with the right kind, type and version; parents before children; the same on a rebuilt tree', () => {
    const seen = { created: 0, changed: 0, deleted: 0, replaced: 0, sameVersionLeaf: 0, replaceOk: 0, replaceFailed: 0 };
    fc.assert(
      fc.property(runArb, ([limits, specs]) => {
        let tree = emptyTree();
        let before = states(tree);
        for (const [index, spec] of specs.entries()) {
          const op = resolve(spec, tree);
          const { tree: next, changes, failed } = step(tree, op, limits);
          const after = states(next);
          const expected = expectedChanges(before, after);
          const label = `step ${index}: ${show(op)} gave ${show(changes)}`;

          const byPath = new Map(changes.map((c) => [c.path, c]));
          expect(byPath.size, `${label}: one change per path`).to.equal(changes.length);
          expect(Object.fromEntries(byPath), label).to.deep.equal(Object.fromEntries(expected));
          if (failed) expect(changes, label).to.deep.equal([]);
          // Every write that makes a new tree bumps the root, so "no change" is exactly "same tree".
          expect(changes.length === 0, label).to.equal(next === tree);
          changes.forEach((change, i) => {
            for (const later of changes.slice(i + 1)) expect(isAncestor(later.path, change.path), `${label}: parent first`).to.equal(false);
          });

          // Determinism without shared objects: the same op on a decoded copy gives the same list.
          if (index % 5 === 0) {
            const decoded = decodeSnapshot(encodeSnapshot(tree));
            if (!decoded.ok) throw new Error(decoded.reason);
            expect(step(decoded.tree, op, limits).changes, label).to.deep.equal(changes);
          }

          for (const change of changes) {
            seen[change.kind]++;
            const was = before.get(change.path);
            if (change.kind === 'changed' && was !== undefined && was.type !== change.nodeType) seen.replaced++;
            if (change.kind === 'changed' && was?.type === change.nodeType && was.version === change.version && was.type !== 'directory') seen.sameVersionLeaf++;
          }
          if (spec.kind === 'replace') seen[failed ? 'replaceFailed' : 'replaceOk']++;
          tree = next;
          before = after;
        }
      }),
      { numRuns: 1000 },
    );
    // The generator reaches every kind, including re-creation with another type inside a transaction.
    expect(seen.created, show(seen)).to.be.greaterThan(100);
    expect(seen.changed, show(seen)).to.be.greaterThan(100);
    expect(seen.deleted, show(seen)).to.be.greaterThan(100);
    expect(seen.replaceOk, show(seen)).to.be.greaterThan(100);
    expect(seen.replaced, show(seen)).to.be.greaterThan(10);
    // A leaf re-created and refilled to its old version with other content: only the value tells.
    expect(seen.sameVersionLeaf, show(seen)).to.be.greaterThan(5);
  });
});
