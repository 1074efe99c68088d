/**
 * The semantics of the versioned tree, one rule at a time (src/tree/README.md).
 *
 * Every test builds a small tree with `applyOp`, applies one operation and checks its outcome
 * and the versions of the nodes around it. Failures are also checked to change nothing.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import {
  applyOp,
  decodeSnapshot,
  defaultTreeLimits,
  emptyTree,
  encodeSnapshot,
  nodeCount,
  treeErrors,
  treesEqual,
  type Bytes,
  type NodeType,
  type OpFailure,
  type OpOutcome,
  type OpResult,
  type SimpleOp,
  type Tree,
  type TreeError,
  type TreeLimits,
  type TreeOp,
} from '../../src/tree/index.ts';

// ---- helpers -------------------------------------------------------------------------------

const b = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes);
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

const limitsWith = (overrides: Partial<TreeLimits>): TreeLimits => ({ ...defaultTreeLimits, ...overrides });

function show(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes[${Array.from(v).join(',')}]` : v));
}

function apply(tree: Tree, op: TreeOp, limits?: TreeLimits): { tree: Tree; outcome: OpOutcome } {
  return limits === undefined ? applyOp(tree, op) : applyOp(tree, op, limits);
}

/** Applies an op that must succeed. */
function ok(tree: Tree, op: TreeOp, limits?: TreeLimits): { tree: Tree; result: OpResult } {
  const { tree: next, outcome } = apply(tree, op, limits);
  if (outcome.type === 'error') throw new Error(`expected ${show(op)} to succeed, got ${show(outcome)}`);
  return { tree: next, result: outcome };
}

/** Applies an op that must fail, checks that the tree is unchanged, returns the failure. */
function failure(tree: Tree, op: TreeOp, limits?: TreeLimits): OpFailure {
  const before = encodeSnapshot(tree);
  const { tree: next, outcome } = apply(tree, op, limits);
  if (outcome.type !== 'error') throw new Error(`expected ${show(op)} to fail, got ${show(outcome)}`);
  expect(encodeSnapshot(next), 'a failed op changes nothing').to.deep.equal(before);
  return outcome;
}

function errorOf(tree: Tree, op: TreeOp, limits?: TreeLimits): TreeError {
  const f = failure(tree, op, limits);
  expect(f, 'outside a transaction a failure has no `at`').to.not.have.property('at');
  return f.error;
}

/** Builds a tree from ops that must all succeed. */
function build(ops: readonly TreeOp[], limits?: TreeLimits): Tree {
  let tree = emptyTree();
  for (const op of ops) tree = ok(tree, op, limits).tree;
  return tree;
}

function result(tree: Tree, op: TreeOp, limits?: TreeLimits): OpResult {
  return ok(tree, op, limits).result;
}

function versionOf(tree: Tree, path: string): number {
  const r = result(tree, { type: 'stat', path });
  if (r.type !== 'stat') throw new Error('stat did not return stat');
  return r.version;
}

function versions(tree: Tree, paths: readonly string[]): Record<string, number> {
  return Object.fromEntries(paths.map((p) => [p, versionOf(tree, p)]));
}

function exists(tree: Tree, path: string): boolean {
  const { outcome } = applyOp(tree, { type: 'stat', path });
  return outcome.type !== 'error';
}

function members(tree: Tree, path: string): Bytes[] {
  const r = result(tree, { type: 'set_union', paths: [path], sets: [] });
  if (r.type !== 'set') throw new Error('set_union did not return a set');
  return [...r.members];
}

const create = (path: string, nodeType: NodeType): SimpleOp => ({ type: 'create', path, nodeType });
const del = (path: string): SimpleOp => ({ type: 'delete', path });
const put = (path: string, value: Bytes): SimpleOp => ({ type: 'blob_put', path, value });
const push = (path: string, value: Bytes): SimpleOp => ({ type: 'queue_push', path, value });
const pop = (path: string): SimpleOp => ({ type: 'queue_pop', path });
const insert = (path: string, value: Bytes): SimpleOp => ({ type: 'set_insert', path, value });
const remove = (path: string, value: Bytes): SimpleOp => ({ type: 'set_remove', path, value });
const stat = (path: string): SimpleOp => ({ type: 'stat', path });
const list = (path: string, recursive = false): SimpleOp => ({ type: 'list', path, recursive });
const fill = (path: string, ...values: Bytes[]): SimpleOp[] => values.map((v) => insert(path, v));

/** A fixture with one node of every type plus a nested directory. */
function fixture(): Tree {
  return build([
    create('/d/x', 'blob'),
    create('/b', 'blob'),
    create('/q', 'queue'),
    create('/s', 'set'),
    create('/t', 'set'),
  ]);
}

// ---- the empty tree ------------------------------------------------------------------------

describe('tree: the empty tree', () => {
  it('is a root directory at version 0 with no children', () => {
    const tree = emptyTree();
    expect(result(tree, stat('/'))).to.deep.equal({ type: 'stat', nodeType: 'directory', version: 0, size: 0 });
    expect(result(tree, list('/'))).to.deep.equal({ type: 'list', entries: [], version: 0 });
    expect(result(tree, list('/', true))).to.deep.equal({ type: 'list', entries: [], version: 0 });
  });

  it('nodeCount counts the root', () => {
    expect(nodeCount(emptyTree())).to.equal(1);
  });
});

// ---- create --------------------------------------------------------------------------------

describe('tree: create', () => {
  for (const nodeType of ['directory', 'blob', 'queue', 'set'] as const) {
    it(`creates a ${nodeType} at version 0, empty, and returns ok with version 0`, () => {
      const { tree, result: r } = ok(emptyTree(), create('/n', nodeType));
      expect(r).to.deep.equal({ type: 'ok', version: 0 });
      expect(result(tree, stat('/n'))).to.deep.equal({ type: 'stat', nodeType, version: 0, size: 0 });
      expect(nodeCount(tree)).to.equal(2);
    });
  }

  it('a new blob holds the empty byte string, a new queue and a new set are empty', () => {
    const tree = build([create('/b', 'blob'), create('/q', 'queue'), create('/s', 'set')]);
    expect(result(tree, { type: 'blob_get', path: '/b' })).to.deep.equal({ type: 'blob', value: b(), version: 0 });
    expect(result(tree, { type: 'queue_len', path: '/q' })).to.deep.equal({ type: 'count', count: 0, version: 0 });
    expect(members(tree, '/s')).to.deep.equal([]);
  });

  it('creates missing parent directories at version 0', () => {
    const { tree, result: r } = ok(emptyTree(), create('/a/b/c', 'queue'));
    expect(r).to.deep.equal({ type: 'ok', version: 0 });
    expect(result(tree, stat('/a'))).to.deep.equal({ type: 'stat', nodeType: 'directory', version: 0, size: 1 });
    expect(result(tree, stat('/a/b'))).to.deep.equal({ type: 'stat', nodeType: 'directory', version: 0, size: 1 });
    expect(result(tree, stat('/a/b/c'))).to.deep.equal({ type: 'stat', nodeType: 'queue', version: 0, size: 0 });
    expect(nodeCount(tree)).to.equal(4);
  });

  it('bumps every ancestor that already existed, once, and no sibling', () => {
    let tree = build([create('/a', 'directory'), create('/x', 'blob')]);
    expect(versions(tree, ['/', '/a', '/x'])).to.deep.equal({ '/': 2, '/a': 0, '/x': 0 });
    tree = ok(tree, create('/a/b/c', 'set')).tree;
    expect(versions(tree, ['/', '/a', '/a/b', '/a/b/c', '/x'])).to.deep.equal({
      '/': 3,
      '/a': 1,
      '/a/b': 0,
      '/a/b/c': 0,
      '/x': 0,
    });
  });

  it('already_exists(path) for an existing node of any type, and changes nothing', () => {
    const tree = fixture();
    for (const [path, nodeType] of [
      ['/d', 'directory'],
      ['/d', 'blob'],
      ['/d/x', 'blob'],
      ['/b', 'set'],
      ['/q', 'queue'],
      ['/s', 'directory'],
    ] as const) {
      expect(errorOf(tree, create(path, nodeType))).to.deep.equal(treeErrors.alreadyExists(path));
    }
  });

  it("already_exists('/') for the root", () => {
    expect(errorOf(fixture(), create('/', 'directory'))).to.deep.equal(treeErrors.alreadyExists('/'));
    expect(errorOf(emptyTree(), create('/', 'blob'))).to.deep.equal(treeErrors.alreadyExists('/'));
  });

  it('not_a_directory(the leaf) for a path below a leaf, however deep', () => {
    const tree = fixture();
    expect(errorOf(tree, create('/b/x', 'blob'))).to.deep.equal(treeErrors.notADirectory('/b'));
    expect(errorOf(tree, create('/q/x/y', 'directory'))).to.deep.equal(treeErrors.notADirectory('/q'));
    expect(errorOf(tree, create('/d/x/y/z', 'set'))).to.deep.equal(treeErrors.notADirectory('/d/x'));
  });

  describe('directory_children limit', () => {
    const limits = limitsWith({ directoryChildrenMax: 2 });

    it('a create that would take a directory over directoryChildrenMax is too_large and changes nothing', () => {
      const tree = build([create('/a', 'blob'), create('/b', 'directory')], limits);
      expect(errorOf(tree, create('/c', 'blob'), limits)).to.deep.equal(treeErrors.tooLarge('directory_children', 2));
    });

    it('also when the new child is a missing parent made on the way', () => {
      const tree = build([create('/a', 'blob'), create('/b', 'directory')], limits);
      expect(errorOf(tree, create('/c/d/e', 'blob'), limits)).to.deep.equal(
        treeErrors.tooLarge('directory_children', 2),
      );
    });

    it('counts the children of the directory that gains one, not of its ancestors', () => {
      let tree = build([create('/a', 'blob'), create('/b', 'directory')], limits);
      tree = ok(tree, create('/b/x', 'blob'), limits).tree;
      tree = ok(tree, create('/b/y/z', 'blob'), limits).tree;
      expect(errorOf(tree, create('/b/w', 'blob'), limits)).to.deep.equal(treeErrors.tooLarge('directory_children', 2));
      expect(result(tree, stat('/b'))).to.deep.include({ size: 2 });
    });

    it('a full directory still reports already_exists for an existing child', () => {
      const tree = build([create('/a', 'blob'), create('/b', 'directory')], limits);
      expect(errorOf(tree, create('/a', 'blob'), limits)).to.deep.equal(treeErrors.alreadyExists('/a'));
    });

    it('after a delete there is room again', () => {
      let tree = build([create('/a', 'blob'), create('/b', 'directory')], limits);
      tree = ok(tree, del('/a'), limits).tree;
      expect(ok(tree, create('/c', 'blob'), limits).result).to.deep.equal({ type: 'ok', version: 0 });
    });
  });
});

// ---- delete --------------------------------------------------------------------------------

describe('tree: delete', () => {
  it('deletes a leaf', () => {
    const before = fixture();
    const { tree } = ok(before, del('/b'));
    expect(exists(tree, '/b')).to.equal(false);
    expect(nodeCount(tree)).to.equal(nodeCount(before) - 1);
    expect(errorOf(tree, stat('/b'))).to.deep.equal(treeErrors.doesNotExist('/b'));
  });

  it('deletes a directory with its whole subtree', () => {
    const before = build([create('/a/b/c', 'blob'), create('/a/b/d', 'queue'), create('/a/e', 'set'), create('/z', 'blob')]);
    const { tree } = ok(before, del('/a'));
    for (const p of ['/a', '/a/b', '/a/b/c', '/a/b/d', '/a/e']) expect(exists(tree, p), p).to.equal(false);
    expect(nodeCount(tree)).to.equal(2);
    expect(result(tree, list('/', true))).to.deep.include({
      entries: [{ name: 'z', path: '/z', nodeType: 'blob', version: 0 }],
    });
  });

  it('bumps every remaining ancestor and no sibling', () => {
    const before = build([create('/a/b/c', 'blob'), create('/a/x', 'blob'), create('/y', 'blob')]);
    const v0 = versions(before, ['/', '/a', '/a/b', '/a/x', '/y']);
    const { tree } = ok(before, del('/a/b/c'));
    expect(versions(tree, ['/', '/a', '/a/b', '/a/x', '/y'])).to.deep.equal({
      '/': (v0['/'] ?? 0) + 1,
      '/a': (v0['/a'] ?? 0) + 1,
      '/a/b': (v0['/a/b'] ?? 0) + 1,
      '/a/x': v0['/a/x'],
      '/y': v0['/y'],
    });
  });

  it("returns ok with the deleted node's last version", () => {
    const tree = build([create('/q', 'queue'), push('/q', b(1)), push('/q', b(2)), push('/q', b(3))]);
    expect(versionOf(tree, '/q')).to.equal(3);
    expect(result(tree, del('/q'))).to.deep.equal({ type: 'ok', version: 3 });
    const dir = build([create('/d/a', 'blob'), create('/d/b', 'blob')]);
    expect(result(dir, del('/d'))).to.deep.equal({ type: 'ok', version: 1 });
  });

  it('cannot_delete_root for the root', () => {
    expect(errorOf(fixture(), del('/'))).to.deep.equal(treeErrors.cannotDeleteRoot());
    expect(errorOf(emptyTree(), del('/'))).to.deep.equal(treeErrors.cannotDeleteRoot());
  });

  it('does_not_exist(path) for a missing node or a missing ancestor', () => {
    const tree = fixture();
    expect(errorOf(tree, del('/nope'))).to.deep.equal(treeErrors.doesNotExist('/nope'));
    expect(errorOf(tree, del('/nope/deeper'))).to.deep.equal(treeErrors.doesNotExist('/nope/deeper'));
    expect(errorOf(tree, del('/d/nope'))).to.deep.equal(treeErrors.doesNotExist('/d/nope'));
  });

  it('not_a_directory(the leaf) below a leaf', () => {
    expect(errorOf(fixture(), del('/b/x'))).to.deep.equal(treeErrors.notADirectory('/b'));
  });

  it('a node deleted and created again starts over at version 0', () => {
    let tree = build([create('/b', 'blob'), put('/b', b(1)), put('/b', b(2))]);
    tree = ok(tree, del('/b')).tree;
    tree = ok(tree, create('/b', 'queue')).tree;
    expect(result(tree, stat('/b'))).to.deep.equal({ type: 'stat', nodeType: 'queue', version: 0, size: 0 });
  });
});

// ---- list ----------------------------------------------------------------------------------

describe('tree: list', () => {
  const tree = build([
    create('/m', 'blob'),
    create('/c/z', 'set'),
    create('/c/a/deep', 'queue'),
    create('/a', 'directory'),
    create('/c/m', 'blob'),
  ]);

  it('lists the children of the directory in ascending name order with absolute path, type and version', () => {
    expect(result(tree, list('/'))).to.deep.equal({
      type: 'list',
      version: versionOf(tree, '/'),
      entries: [
        { name: 'a', path: '/a', nodeType: 'directory', version: 0 },
        { name: 'c', path: '/c', nodeType: 'directory', version: versionOf(tree, '/c') },
        { name: 'm', path: '/m', nodeType: 'blob', version: 0 },
      ],
    });
  });

  it('lists the directory it is given, not the root', () => {
    expect(result(tree, list('/c'))).to.deep.equal({
      type: 'list',
      version: versionOf(tree, '/c'),
      entries: [
        { name: 'a', path: '/c/a', nodeType: 'directory', version: 0 },
        { name: 'm', path: '/c/m', nodeType: 'blob', version: 0 },
        { name: 'z', path: '/c/z', nodeType: 'set', version: 0 },
      ],
    });
  });

  it('recursive lists the whole subtree depth-first, pre-order, children ascending', () => {
    const r = result(tree, list('/', true));
    if (r.type !== 'list') throw new Error('not a list');
    expect(r.entries.map((e) => e.path)).to.deep.equal(['/a', '/c', '/c/a', '/c/a/deep', '/c/m', '/c/z', '/m']);
    expect(r.entries.map((e) => e.name)).to.deep.equal(['a', 'c', 'a', 'deep', 'm', 'z', 'm']);
    expect(r.entries.find((e) => e.path === '/c/a/deep')).to.deep.equal({
      name: 'deep',
      path: '/c/a/deep',
      nodeType: 'queue',
      version: 0,
    });
    expect(r.version).to.equal(versionOf(tree, '/'));
  });

  it('recursive on a subdirectory lists only that subtree', () => {
    const r = result(tree, list('/c', true));
    if (r.type !== 'list') throw new Error('not a list');
    expect(r.entries.map((e) => e.path)).to.deep.equal(['/c/a', '/c/a/deep', '/c/m', '/c/z']);
  });

  it('orders names by their characters (uppercase before lowercase, prefixes first)', () => {
    const t = build([create('/ab', 'blob'), create('/b', 'blob'), create('/a', 'blob'), create('/B', 'blob'), create('/a0', 'blob')]);
    const r = result(t, list('/'));
    if (r.type !== 'list') throw new Error('not a list');
    expect(r.entries.map((e) => e.name)).to.deep.equal(['B', 'a', 'a0', 'ab', 'b']);
  });

  it('an empty directory lists no entries', () => {
    expect(result(tree, list('/a'))).to.deep.equal({ type: 'list', entries: [], version: 0 });
    expect(result(tree, list('/a', true))).to.deep.equal({ type: 'list', entries: [], version: 0 });
  });

  it('does_not_exist(path) for a missing directory, not_a_directory(leaf) below a leaf', () => {
    expect(errorOf(tree, list('/nope'))).to.deep.equal(treeErrors.doesNotExist('/nope'));
    expect(errorOf(tree, list('/nope/x', true))).to.deep.equal(treeErrors.doesNotExist('/nope/x'));
    expect(errorOf(tree, list('/m/x'))).to.deep.equal(treeErrors.notADirectory('/m'));
  });

  it('listing a leaf is not_a_directory(path) (README is silent; our chosen reading)', () => {
    expect(errorOf(tree, list('/m'))).to.deep.equal(treeErrors.notADirectory('/m'));
    expect(errorOf(tree, list('/c/z', true))).to.deep.equal(treeErrors.notADirectory('/c/z'));
  });

  it('over listEntriesMax entries is too_large(list_entries); exactly the limit is fine', () => {
    const limits = limitsWith({ listEntriesMax: 3 });
    expect(errorOf(tree, list('/', true), limits)).to.deep.equal(treeErrors.tooLarge('list_entries', 3));
    expect(errorOf(tree, list('/c', true), limits)).to.deep.equal(treeErrors.tooLarge('list_entries', 3));
    const r = result(tree, list('/'), limits);
    if (r.type !== 'list') throw new Error('not a list');
    expect(r.entries).to.have.length(3);
  });

  it('never changes a version', () => {
    const before = encodeSnapshot(tree);
    const { tree: after } = ok(tree, list('/', true));
    expect(encodeSnapshot(after)).to.deep.equal(before);
  });
});

// ---- stat ----------------------------------------------------------------------------------

describe('tree: stat', () => {
  const tree = build([
    create('/d/one', 'blob'),
    create('/d/two/three', 'blob'),
    create('/b', 'blob'),
    put('/b', utf8('hello')),
    create('/q', 'queue'),
    push('/q', b(1)),
    push('/q', b(1)),
    push('/q', b()),
    create('/s', 'set'),
    ...fill('/s', b(1), b(2), b(1), b(3, 4)),
  ]);

  it('a blob: type, version and size in bytes', () => {
    expect(result(tree, stat('/b'))).to.deep.equal({ type: 'stat', nodeType: 'blob', version: 1, size: 5 });
  });

  it('a queue: type, version and number of elements', () => {
    expect(result(tree, stat('/q'))).to.deep.equal({ type: 'stat', nodeType: 'queue', version: 3, size: 3 });
  });

  it('a set: type, version and number of members', () => {
    expect(result(tree, stat('/s'))).to.deep.equal({ type: 'stat', nodeType: 'set', version: 3, size: 3 });
  });

  it('a directory: type, version and number of direct children', () => {
    expect(result(tree, stat('/d'))).to.deep.equal({ type: 'stat', nodeType: 'directory', version: 1, size: 2 });
    expect(result(tree, stat('/'))).to.deep.include({ nodeType: 'directory', size: 4 });
  });

  it('does_not_exist(path) and not_a_directory(leaf)', () => {
    expect(errorOf(tree, stat('/x'))).to.deep.equal(treeErrors.doesNotExist('/x'));
    expect(errorOf(tree, stat('/d/x/y'))).to.deep.equal(treeErrors.doesNotExist('/d/x/y'));
    expect(errorOf(tree, stat('/d/one/y'))).to.deep.equal(treeErrors.notADirectory('/d/one'));
  });
});

// ---- blob ----------------------------------------------------------------------------------

describe('tree: blob', () => {
  const base = build([create('/a/b', 'blob'), create('/z', 'blob')]);

  it('put stores the bytes; get returns them with the version; size returns the byte count', () => {
    const { tree, result: r } = ok(base, put('/a/b', b(1, 2, 3)));
    expect(r).to.deep.equal({ type: 'ok', version: 1 });
    expect(result(tree, { type: 'blob_get', path: '/a/b' })).to.deep.equal({ type: 'blob', value: b(1, 2, 3), version: 1 });
    expect(result(tree, { type: 'blob_size', path: '/a/b' })).to.deep.equal({ type: 'count', count: 3, version: 1 });
  });

  it('put replaces the bytes (not appends) and bumps the blob and every ancestor', () => {
    let tree = ok(base, put('/a/b', b(1, 2, 3))).tree;
    const v = versions(tree, ['/', '/a', '/a/b', '/z']);
    const { tree: t2, result: r } = ok(tree, put('/a/b', b(9)));
    tree = t2;
    expect(r).to.deep.equal({ type: 'ok', version: (v['/a/b'] ?? 0) + 1 });
    expect(versions(tree, ['/', '/a', '/a/b', '/z'])).to.deep.equal({
      '/': (v['/'] ?? 0) + 1,
      '/a': (v['/a'] ?? 0) + 1,
      '/a/b': (v['/a/b'] ?? 0) + 1,
      '/z': v['/z'],
    });
    expect(result(tree, { type: 'blob_get', path: '/a/b' })).to.deep.include({ value: b(9) });
  });

  it('put of different bytes of the same length is a change', () => {
    const tree = ok(base, put('/a/b', b(1, 2))).tree;
    expect(result(tree, put('/a/b', b(1, 3)))).to.deep.equal({ type: 'ok', version: 2 });
  });

  it('put of bytes equal to the current ones is a no-op: no version changes, current version returned', () => {
    const tree = ok(base, put('/a/b', b(1, 2))).tree;
    const before = encodeSnapshot(tree);
    const { tree: after, result: r } = ok(tree, put('/a/b', b(1, 2)));
    expect(r).to.deep.equal({ type: 'ok', version: 1 });
    expect(encodeSnapshot(after)).to.deep.equal(before);
    // The empty bytes of a new blob count too.
    expect(result(base, put('/z', b()))).to.deep.equal({ type: 'ok', version: 0 });
    expect(encodeSnapshot(ok(base, put('/z', b())).tree)).to.deep.equal(encodeSnapshot(base));
  });

  it('get and size never change a version', () => {
    const tree = ok(base, put('/a/b', b(7))).tree;
    const before = encodeSnapshot(tree);
    for (const op of [
      { type: 'blob_get', path: '/a/b' },
      { type: 'blob_size', path: '/a/b' },
    ] as const) {
      expect(encodeSnapshot(ok(tree, op).tree)).to.deep.equal(before);
    }
  });

  it('does_not_exist(path) for a missing blob: put does not create', () => {
    expect(errorOf(base, put('/a/c', b(1)))).to.deep.equal(treeErrors.doesNotExist('/a/c'));
    expect(errorOf(base, { type: 'blob_get', path: '/x/y' })).to.deep.equal(treeErrors.doesNotExist('/x/y'));
  });
});

// ---- queue ---------------------------------------------------------------------------------

describe('tree: queue', () => {
  const base = build([create('/d/q', 'queue'), create('/other', 'blob')]);
  const front = (path: string): TreeOp => ({ type: 'queue_front', path });
  const back = (path: string): TreeOp => ({ type: 'queue_back', path });
  const len = (path: string): TreeOp => ({ type: 'queue_len', path });

  it('push appends at the back and returns ok with the new version, bumping every ancestor', () => {
    const v = versions(base, ['/', '/d', '/d/q', '/other']);
    const { tree, result: r } = ok(base, push('/d/q', b(1)));
    expect(r).to.deep.equal({ type: 'ok', version: 1 });
    expect(versions(tree, ['/', '/d', '/d/q', '/other'])).to.deep.equal({
      '/': (v['/'] ?? 0) + 1,
      '/d': (v['/d'] ?? 0) + 1,
      '/d/q': 1,
      '/other': v['/other'],
    });
  });

  it('front, back and len read the queue with its version', () => {
    const tree = build([create('/q', 'queue'), push('/q', b(1)), push('/q', b(2)), push('/q', b(3))]);
    expect(result(tree, front('/q'))).to.deep.equal({ type: 'element', value: b(1), version: 3 });
    expect(result(tree, back('/q'))).to.deep.equal({ type: 'element', value: b(3), version: 3 });
    expect(result(tree, len('/q'))).to.deep.equal({ type: 'count', count: 3, version: 3 });
  });

  it('pop removes from the front (FIFO), returning the element and the new version', () => {
    let tree = build([create('/q', 'queue'), push('/q', b(1)), push('/q', b(2)), push('/q', b(1))]);
    const popped: OpResult[] = [];
    for (let i = 0; i < 3; i++) {
      const step = ok(tree, pop('/q'));
      tree = step.tree;
      popped.push(step.result);
    }
    expect(popped).to.deep.equal([
      { type: 'element', value: b(1), version: 4 },
      { type: 'element', value: b(2), version: 5 },
      { type: 'element', value: b(1), version: 6 },
    ]);
    expect(versionOf(tree, '/')).to.equal(7);
  });

  it('holds duplicates and empty elements', () => {
    const tree = build([create('/q', 'queue'), push('/q', b()), push('/q', b()), push('/q', b(5))]);
    expect(result(tree, len('/q'))).to.deep.include({ count: 3 });
    expect(result(tree, front('/q'))).to.deep.include({ value: b() });
  });

  it('pop, front and back of an empty queue return value null with the current version', () => {
    const tree = build([create('/q', 'queue'), push('/q', b(1)), pop('/q')]);
    expect(result(tree, pop('/q'))).to.deep.equal({ type: 'element', value: null, version: 2 });
    expect(result(tree, front('/q'))).to.deep.equal({ type: 'element', value: null, version: 2 });
    expect(result(tree, back('/q'))).to.deep.equal({ type: 'element', value: null, version: 2 });
    expect(result(tree, len('/q'))).to.deep.equal({ type: 'count', count: 0, version: 2 });
  });

  it('pop of an empty queue is a no-op: no version changes', () => {
    const before = encodeSnapshot(base);
    const { tree, result: r } = ok(base, pop('/d/q'));
    expect(r).to.deep.equal({ type: 'element', value: null, version: 0 });
    expect(encodeSnapshot(tree)).to.deep.equal(before);
  });

  it('front, back and len never change a version', () => {
    const tree = ok(base, push('/d/q', b(1))).tree;
    const before = encodeSnapshot(tree);
    for (const op of [front('/d/q'), back('/d/q'), len('/d/q')]) expect(encodeSnapshot(ok(tree, op).tree)).to.deep.equal(before);
  });

  it('a push that would take the queue over collectionElementsMax is too_large(collection_elements)', () => {
    const limits = limitsWith({ collectionElementsMax: 2 });
    let tree = build([create('/q', 'queue'), push('/q', b(1)), push('/q', b(2))], limits);
    expect(errorOf(tree, push('/q', b(3)), limits)).to.deep.equal(treeErrors.tooLarge('collection_elements', 2));
    tree = ok(tree, pop('/q'), limits).tree;
    expect(result(tree, push('/q', b(3)), limits)).to.deep.equal({ type: 'ok', version: 4 });
  });
});

// ---- set -----------------------------------------------------------------------------------

describe('tree: set', () => {
  const base = build([create('/d/s', 'set'), create('/other', 'blob')]);
  const contains = (path: string, value: Bytes): TreeOp => ({ type: 'set_contains', path, value });

  it('insert of a new member returns true with the new version and bumps every ancestor', () => {
    const v = versions(base, ['/', '/d', '/d/s', '/other']);
    const { tree, result: r } = ok(base, insert('/d/s', b(1)));
    expect(r).to.deep.equal({ type: 'bool', value: true, version: 1 });
    expect(versions(tree, ['/', '/d', '/d/s', '/other'])).to.deep.equal({
      '/': (v['/'] ?? 0) + 1,
      '/d': (v['/d'] ?? 0) + 1,
      '/d/s': 1,
      '/other': v['/other'],
    });
  });

  it('insert of a member already present is a no-op: false, the unchanged version, no version changes', () => {
    const tree = ok(base, insert('/d/s', b(1))).tree;
    const before = encodeSnapshot(tree);
    const { tree: after, result: r } = ok(tree, insert('/d/s', b(1)));
    expect(r).to.deep.equal({ type: 'bool', value: false, version: 1 });
    expect(encodeSnapshot(after)).to.deep.equal(before);
  });

  it('remove of a present member returns true with the new version and bumps every ancestor', () => {
    const tree = build([create('/d/s', 'set'), insert('/d/s', b(1)), insert('/d/s', b(2))]);
    const { tree: after, result: r } = ok(tree, remove('/d/s', b(1)));
    expect(r).to.deep.equal({ type: 'bool', value: true, version: 3 });
    expect(versions(after, ['/', '/d'])).to.deep.equal({ '/': 4, '/d': 3 });
    expect(members(after, '/d/s')).to.deep.equal([b(2)]);
  });

  it('remove of a missing member is a no-op: false, the unchanged version, no version changes', () => {
    const tree = ok(base, insert('/d/s', b(1))).tree;
    const before = encodeSnapshot(tree);
    const { tree: after, result: r } = ok(tree, remove('/d/s', b(1, 0)));
    expect(r).to.deep.equal({ type: 'bool', value: false, version: 1 });
    expect(encodeSnapshot(after)).to.deep.equal(before);
  });

  it('contains answers with the set version and changes nothing', () => {
    const tree = ok(base, insert('/d/s', b(1))).tree;
    const before = encodeSnapshot(tree);
    expect(result(tree, contains('/d/s', b(1)))).to.deep.equal({ type: 'bool', value: true, version: 1 });
    expect(result(tree, contains('/d/s', b(2)))).to.deep.equal({ type: 'bool', value: false, version: 1 });
    expect(result(tree, contains('/d/s', b()))).to.deep.equal({ type: 'bool', value: false, version: 1 });
    expect(encodeSnapshot(ok(tree, contains('/d/s', b(1))).tree)).to.deep.equal(before);
  });

  it('members are byte strings listed in ascending byte order (a prefix first, 0x80+ after 0x7f)', () => {
    const tree = build([create('/s', 'set'), ...fill('/s', b(0xff), b(2), b(1, 0), b(), b(0x80), b(1), b(0x7f), b(0xff, 0))]);
    expect(members(tree, '/s')).to.deep.equal([b(), b(1), b(1, 0), b(2), b(0x7f), b(0x80), b(0xff), b(0xff, 0)]);
  });

  it('an insert that would take the set over collectionElementsMax is too_large(collection_elements)', () => {
    const limits = limitsWith({ collectionElementsMax: 2 });
    const tree = build([create('/s', 'set'), ...fill('/s', b(1), b(2))], limits);
    expect(errorOf(tree, insert('/s', b(3)), limits)).to.deep.equal(treeErrors.tooLarge('collection_elements', 2));
  });

  it('inserting a present member into a full set is still a no-op, not too_large', () => {
    const limits = limitsWith({ collectionElementsMax: 2 });
    const tree = build([create('/s', 'set'), ...fill('/s', b(1), b(2))], limits);
    expect(result(tree, insert('/s', b(2)), limits)).to.deep.equal({ type: 'bool', value: false, version: 2 });
  });
});

// ---- set algebra ---------------------------------------------------------------------------

describe('tree: set algebra', () => {
  const tree = build([
    create('/p', 'set'),
    ...fill('/p', b(1), b(2), b(3)),
    create('/r', 'set'),
    ...fill('/r', b(3), b(4)),
    create('/e', 'set'),
    create('/sub', 'set'),
    ...fill('/sub', b(2), b(1)),
    create('/b', 'blob'),
  ]);
  const binary = (type: 'set_intersection' | 'set_difference' | 'set_symmetric_difference', path1: string, path2: string): TreeOp => ({
    type,
    path1,
    path2,
  });
  const subset = (path: string, other: string | Bytes[]): TreeOp => ({
    type: 'set_is_subset',
    path,
    other: typeof other === 'string' ? { type: 'path', path: other } : { type: 'literal', members: other },
  });
  const superset = (path: string, other: string | Bytes[]): TreeOp => ({
    type: 'set_is_superset',
    path,
    other: typeof other === 'string' ? { type: 'path', path: other } : { type: 'literal', members: other },
  });
  const set = (...ms: Bytes[]): OpResult => ({ type: 'set', members: ms });
  const answer = (value: boolean): OpResult => ({ type: 'answer', value });

  it('union of paths and literal sets, without duplicates, ascending', () => {
    expect(result(tree, { type: 'set_union', paths: ['/r', '/p'], sets: [[b(9), b(0)], [b(3), b(9)]] })).to.deep.equal(
      set(b(0), b(1), b(2), b(3), b(4), b(9)),
    );
    expect(result(tree, { type: 'set_union', paths: ['/p', '/p', '/e'], sets: [] })).to.deep.equal(set(b(1), b(2), b(3)));
  });

  it('union of literal sets only', () => {
    expect(result(tree, { type: 'set_union', paths: [], sets: [[b(2), b(2)], [], [b(1)]] })).to.deep.equal(set(b(1), b(2)));
  });

  it('union with no operand at all is the empty set', () => {
    expect(result(tree, { type: 'set_union', paths: [], sets: [] })).to.deep.equal(set());
    expect(result(emptyTree(), { type: 'set_union', paths: [], sets: [] })).to.deep.equal(set());
  });

  it('intersection', () => {
    expect(result(tree, binary('set_intersection', '/p', '/r'))).to.deep.equal(set(b(3)));
    expect(result(tree, binary('set_intersection', '/r', '/p'))).to.deep.equal(set(b(3)));
    expect(result(tree, binary('set_intersection', '/p', '/e'))).to.deep.equal(set());
  });

  it('difference(p1, p2) is p1 − p2: the argument order is kept', () => {
    expect(result(tree, binary('set_difference', '/p', '/r'))).to.deep.equal(set(b(1), b(2)));
    expect(result(tree, binary('set_difference', '/r', '/p'))).to.deep.equal(set(b(4)));
    expect(result(tree, binary('set_difference', '/p', '/p'))).to.deep.equal(set());
  });

  it('symmetric difference', () => {
    expect(result(tree, binary('set_symmetric_difference', '/p', '/r'))).to.deep.equal(set(b(1), b(2), b(4)));
    expect(result(tree, binary('set_symmetric_difference', '/r', '/p'))).to.deep.equal(set(b(1), b(2), b(4)));
    expect(result(tree, binary('set_symmetric_difference', '/p', '/e'))).to.deep.equal(set(b(1), b(2), b(3)));
  });

  it('is_subset(p, other) is p ⊆ other, with other a path or a literal set', () => {
    expect(result(tree, subset('/sub', '/p'))).to.deep.equal(answer(true));
    expect(result(tree, subset('/p', '/sub'))).to.deep.equal(answer(false));
    expect(result(tree, subset('/p', '/p'))).to.deep.equal(answer(true));
    expect(result(tree, subset('/e', '/r'))).to.deep.equal(answer(true));
    expect(result(tree, subset('/sub', [b(3), b(2), b(1), b(1)]))).to.deep.equal(answer(true));
    expect(result(tree, subset('/sub', [b(1)]))).to.deep.equal(answer(false));
    expect(result(tree, subset('/e', []))).to.deep.equal(answer(true));
  });

  it('is_superset(p, other) is p ⊇ other, with other a path or a literal set', () => {
    expect(result(tree, superset('/p', '/sub'))).to.deep.equal(answer(true));
    expect(result(tree, superset('/sub', '/p'))).to.deep.equal(answer(false));
    expect(result(tree, superset('/r', '/e'))).to.deep.equal(answer(true));
    expect(result(tree, superset('/p', [b(3), b(1), b(3)]))).to.deep.equal(answer(true));
    expect(result(tree, superset('/p', [b(4)]))).to.deep.equal(answer(false));
    expect(result(tree, superset('/e', []))).to.deep.equal(answer(true));
    expect(result(tree, superset('/e', [b()]))).to.deep.equal(answer(false));
  });

  it('every path operand must name an existing set: does_not_exist(that path) or wrong_type(that path, actual)', () => {
    expect(errorOf(tree, { type: 'set_union', paths: ['/p', '/nope'], sets: [] })).to.deep.equal(treeErrors.doesNotExist('/nope'));
    expect(errorOf(tree, { type: 'set_union', paths: ['/p', '/b'], sets: [[b(1)]] })).to.deep.equal(
      treeErrors.wrongType('/b', 'blob'),
    );
    expect(errorOf(tree, { type: 'set_union', paths: ['/'], sets: [] })).to.deep.equal(treeErrors.wrongType('/', 'directory'));
    for (const type of ['set_intersection', 'set_difference', 'set_symmetric_difference'] as const) {
      expect(errorOf(tree, binary(type, '/nope', '/p'))).to.deep.equal(treeErrors.doesNotExist('/nope'));
      expect(errorOf(tree, binary(type, '/p', '/nope'))).to.deep.equal(treeErrors.doesNotExist('/nope'));
      expect(errorOf(tree, binary(type, '/b', '/p'))).to.deep.equal(treeErrors.wrongType('/b', 'blob'));
      expect(errorOf(tree, binary(type, '/p', '/b'))).to.deep.equal(treeErrors.wrongType('/b', 'blob'));
    }
    for (const op of [subset, superset]) {
      expect(errorOf(tree, op('/nope', '/p'))).to.deep.equal(treeErrors.doesNotExist('/nope'));
      expect(errorOf(tree, op('/p', '/nope'))).to.deep.equal(treeErrors.doesNotExist('/nope'));
      expect(errorOf(tree, op('/b', [b(1)]))).to.deep.equal(treeErrors.wrongType('/b', 'blob'));
      expect(errorOf(tree, op('/p', '/b'))).to.deep.equal(treeErrors.wrongType('/b', 'blob'));
    }
  });

  it('the operands are checked in order: the first bad one is reported', () => {
    expect(errorOf(tree, { type: 'set_union', paths: ['/x1', '/b'], sets: [] })).to.deep.equal(treeErrors.doesNotExist('/x1'));
    expect(errorOf(tree, binary('set_difference', '/b', '/x1'))).to.deep.equal(treeErrors.wrongType('/b', 'blob'));
    expect(errorOf(tree, subset('/x1', '/b'))).to.deep.equal(treeErrors.doesNotExist('/x1'));
  });

  it('set algebra never changes a version', () => {
    const before = encodeSnapshot(tree);
    for (const op of [
      { type: 'set_union', paths: ['/p', '/r'], sets: [[b(7)]] } as const,
      binary('set_intersection', '/p', '/r'),
      binary('set_difference', '/p', '/r'),
      binary('set_symmetric_difference', '/p', '/r'),
      subset('/p', '/r'),
      superset('/p', [b(1)]),
    ]) {
      expect(encodeSnapshot(ok(tree, op).tree)).to.deep.equal(before);
    }
  });
});

// ---- errors on every op ------------------------------------------------------------------

/** Every op that takes a path, as a function of that path (set ops use /t as the other operand). */
const opsOnPath: Record<string, (path: string) => SimpleOp> = {
  delete: (path) => ({ type: 'delete', path }),
  list: (path) => ({ type: 'list', path, recursive: false }),
  'list recursive': (path) => ({ type: 'list', path, recursive: true }),
  stat: (path) => ({ type: 'stat', path }),
  blob_put: (path) => ({ type: 'blob_put', path, value: b(1) }),
  blob_get: (path) => ({ type: 'blob_get', path }),
  blob_size: (path) => ({ type: 'blob_size', path }),
  queue_push: (path) => ({ type: 'queue_push', path, value: b(1) }),
  queue_pop: (path) => ({ type: 'queue_pop', path }),
  queue_front: (path) => ({ type: 'queue_front', path }),
  queue_back: (path) => ({ type: 'queue_back', path }),
  queue_len: (path) => ({ type: 'queue_len', path }),
  set_insert: (path) => ({ type: 'set_insert', path, value: b(1) }),
  set_remove: (path) => ({ type: 'set_remove', path, value: b(1) }),
  set_contains: (path) => ({ type: 'set_contains', path, value: b(1) }),
  set_union: (path) => ({ type: 'set_union', paths: ['/t', path], sets: [[b(1)]] }),
  'set_intersection (path1)': (path) => ({ type: 'set_intersection', path1: path, path2: '/t' }),
  'set_intersection (path2)': (path) => ({ type: 'set_intersection', path1: '/t', path2: path }),
  'set_difference (path1)': (path) => ({ type: 'set_difference', path1: path, path2: '/t' }),
  'set_difference (path2)': (path) => ({ type: 'set_difference', path1: '/t', path2: path }),
  'set_symmetric_difference (path1)': (path) => ({ type: 'set_symmetric_difference', path1: path, path2: '/t' }),
  'set_symmetric_difference (path2)': (path) => ({ type: 'set_symmetric_difference', path1: '/t', path2: path }),
  'set_is_subset (path)': (path) => ({ type: 'set_is_subset', path, other: { type: 'literal', members: [b(1)] } }),
  'set_is_subset (other)': (path) => ({ type: 'set_is_subset', path: '/t', other: { type: 'path', path } }),
  'set_is_superset (path)': (path) => ({ type: 'set_is_superset', path, other: { type: 'literal', members: [] } }),
  'set_is_superset (other)': (path) => ({ type: 'set_is_superset', path: '/t', other: { type: 'path', path } }),
};

/** The node type each typed op needs. */
const requiredType: Record<string, NodeType> = {
  blob_put: 'blob',
  blob_get: 'blob',
  blob_size: 'blob',
  queue_push: 'queue',
  queue_pop: 'queue',
  queue_front: 'queue',
  queue_back: 'queue',
  queue_len: 'queue',
  set_insert: 'set',
  set_remove: 'set',
  set_contains: 'set',
  set_union: 'set',
  'set_intersection (path1)': 'set',
  'set_intersection (path2)': 'set',
  'set_difference (path1)': 'set',
  'set_difference (path2)': 'set',
  'set_symmetric_difference (path1)': 'set',
  'set_symmetric_difference (path2)': 'set',
  'set_is_subset (path)': 'set',
  'set_is_subset (other)': 'set',
  'set_is_superset (path)': 'set',
  'set_is_superset (other)': 'set',
};

/** A node of each type in the fixture. */
const pathOfType: Record<NodeType, string> = { directory: '/d', blob: '/b', queue: '/q', set: '/s' };

describe('tree: wrong_type(path, actual) for every typed op on every other kind of node', () => {
  const tree = fixture();
  for (const [name, needs] of Object.entries(requiredType)) {
    const make = opsOnPath[name] as (path: string) => SimpleOp;
    it(`${name} needs a ${needs}`, () => {
      for (const actual of ['directory', 'blob', 'queue', 'set'] as const) {
        if (actual === needs) continue;
        const path = pathOfType[actual];
        expect(errorOf(tree, make(path)), `${name} on a ${actual}`).to.deep.equal(treeErrors.wrongType(path, actual));
      }
      // The right type succeeds.
      ok(tree, make(pathOfType[needs]));
    });
  }
  it('wrong_type also applies to the root directory', () => {
    expect(errorOf(tree, { type: 'blob_get', path: '/' })).to.deep.equal(treeErrors.wrongType('/', 'directory'));
    expect(errorOf(tree, { type: 'queue_push', path: '/', value: b() })).to.deep.equal(treeErrors.wrongType('/', 'directory'));
  });
});

describe('tree: does_not_exist names the path asked for, not_a_directory names the leaf traversed', () => {
  const tree = fixture();
  for (const [name, make] of Object.entries(opsOnPath)) {
    it(`${name}`, () => {
      for (const path of ['/nope', '/nope/deeper', '/d/nope', '/d/nope/deeper/still']) {
        expect(errorOf(tree, make(path)), `${name} ${path}`).to.deep.equal(treeErrors.doesNotExist(path));
      }
      for (const [path, leaf] of [
        ['/b/x', '/b'],
        ['/q/x/y', '/q'],
        ['/s/x', '/s'],
        ['/d/x/y', '/d/x'],
      ] as const) {
        expect(errorOf(tree, make(path)), `${name} ${path}`).to.deep.equal(treeErrors.notADirectory(leaf));
      }
    });
  }
  it('create below a leaf is not_a_directory(the leaf) too', () => {
    expect(errorOf(tree, create('/s/x/y', 'blob'))).to.deep.equal(treeErrors.notADirectory('/s'));
  });
});

// ---- versions -------------------------------------------------------------------------------

describe('tree: versions', () => {
  const deep = (): Tree =>
    build([
      create('/a/b/c/blob', 'blob'),
      create('/a/b/c/queue', 'queue'),
      create('/a/b/c/set', 'set'),
      create('/a/b/c/dir', 'directory'),
      create('/a/b/sibling', 'blob'),
      create('/a/cousin/x', 'blob'),
      create('/other', 'blob'),
      insert('/a/b/c/set', b(1)),
      push('/a/b/c/queue', b(1)),
      put('/a/b/c/blob', b(1)),
    ]);
  const all = ['/', '/a', '/a/b', '/a/b/c', '/a/b/c/blob', '/a/b/c/queue', '/a/b/c/set', '/a/b/c/dir', '/a/b/sibling', '/a/cousin', '/a/cousin/x', '/other'];

  const writes: [string, TreeOp, string][] = [
    ['create', create('/a/b/c/dir/new', 'blob'), '/a/b/c/dir'],
    ['delete', del('/a/b/c/dir'), '/a/b/c'],
    ['blob_put', put('/a/b/c/blob', b(2)), '/a/b/c/blob'],
    ['queue_push', push('/a/b/c/queue', b(2)), '/a/b/c/queue'],
    ['queue_pop', pop('/a/b/c/queue'), '/a/b/c/queue'],
    ['set_insert', insert('/a/b/c/set', b(2)), '/a/b/c/set'],
    ['set_remove', remove('/a/b/c/set', b(1)), '/a/b/c/set'],
  ];
  for (const [name, op, node] of writes) {
    it(`${name} bumps the node it changes and every ancestor up to the root by exactly one, nothing else`, () => {
      const before = deep();
      const v0 = versions(before, all);
      const after = ok(before, op).tree;
      const chain = ['/'];
      const parts = node.slice(1).split('/');
      for (let i = 1; i <= parts.length; i++) chain.push(`/${parts.slice(0, i).join('/')}`);
      for (const path of all) {
        if (!exists(after, path)) continue;
        const expected = (v0[path] ?? 0) + (chain.includes(path) ? 1 : 0);
        expect(versionOf(after, path), path).to.equal(expected);
      }
    });
  }

  it('reads never change any version (or anything else)', () => {
    const tree = deep();
    const before = encodeSnapshot(tree);
    const reads: TreeOp[] = [
      list('/', true),
      list('/a/b'),
      stat('/a/b/c/set'),
      { type: 'blob_get', path: '/a/b/c/blob' },
      { type: 'blob_size', path: '/a/b/c/blob' },
      { type: 'queue_front', path: '/a/b/c/queue' },
      { type: 'queue_back', path: '/a/b/c/queue' },
      { type: 'queue_len', path: '/a/b/c/queue' },
      { type: 'set_contains', path: '/a/b/c/set', value: b(1) },
      { type: 'set_union', paths: ['/a/b/c/set'], sets: [[b(3)]] },
      { type: 'set_intersection', path1: '/a/b/c/set', path2: '/a/b/c/set' },
      { type: 'set_difference', path1: '/a/b/c/set', path2: '/a/b/c/set' },
      { type: 'set_symmetric_difference', path1: '/a/b/c/set', path2: '/a/b/c/set' },
      { type: 'set_is_subset', path: '/a/b/c/set', other: { type: 'literal', members: [] } },
      { type: 'set_is_superset', path: '/a/b/c/set', other: { type: 'path', path: '/a/b/c/set' } },
    ];
    let t = tree;
    for (const op of reads) t = ok(t, op).tree;
    expect(encodeSnapshot(t)).to.deep.equal(before);
    expect(treesEqual(t, tree)).to.equal(true);
  });

  const noOps: [string, TreeOp, OpResult][] = [
    ['set_insert of a present member', insert('/a/b/c/set', b(1)), { type: 'bool', value: false, version: 1 }],
    ['set_remove of a missing member', remove('/a/b/c/set', b(9)), { type: 'bool', value: false, version: 1 }],
    ['blob_put of the current bytes', put('/a/b/c/blob', b(1)), { type: 'ok', version: 1 }],
  ];
  for (const [name, op, expected] of noOps) {
    it(`a no-op write (${name}) changes no version and returns the unchanged version`, () => {
      const tree = deep();
      const before = encodeSnapshot(tree);
      const v0 = versions(tree, all);
      const { tree: after, result: r } = ok(tree, op);
      expect(r).to.deep.equal(expected);
      expect(versions(after, all)).to.deep.equal(v0);
      expect(encodeSnapshot(after)).to.deep.equal(before);
    });
  }
  it('a no-op write (queue_pop of an empty queue) changes no version and returns the unchanged version', () => {
    const tree = ok(deep(), pop('/a/b/c/queue')).tree;
    const v0 = versions(tree, all);
    const { tree: after, result: r } = ok(tree, pop('/a/b/c/queue'));
    expect(r).to.deep.equal({ type: 'element', value: null, version: 2 });
    expect(versions(after, all)).to.deep.equal(v0);
  });

  it('a failed write changes nothing', () => {
    const tree = deep();
    const limits = limitsWith({ collectionElementsMax: 1, directoryChildrenMax: 1 });
    for (const op of [
      create('/a', 'blob'),
      create('/a/b/c/blob/x', 'blob'),
      create('/a/b/new', 'blob'),
      del('/'),
      del('/nope'),
      put('/a/b/c/queue', b(1)),
      push('/a/b/c/queue', b(2)),
      insert('/a/b/c/set', b(2)),
    ]) {
      failure(tree, op, limits);
    }
  });
});

// ---- multi_cas ---------------------------------------------------------------------------

describe('tree: multi_cas', () => {
  const base = (): Tree =>
    build([create('/a/q', 'queue'), create('/a/s', 'set'), create('/b', 'blob'), push('/a/q', b(1)), put('/b', b(5))]);
  const txn = (guards: { path: string; version: number }[], ops: SimpleOp[]): TreeOp => ({ type: 'multi_cas', guards, ops });

  /** Applies a transaction that must fail and checks that the tree returned is the input itself. */
  function txnFailure(tree: Tree, op: TreeOp, limits?: TreeLimits): OpFailure {
    const bytes = encodeSnapshot(tree);
    const { tree: after, outcome } = apply(tree, op, limits);
    if (outcome.type !== 'error') throw new Error(`expected failure, got ${show(outcome)}`);
    expect(after, 'a failed transaction returns the same tree object').to.equal(tree);
    expect(encodeSnapshot(after)).to.deep.equal(bytes);
    return outcome;
  }

  it('on success returns txn with one result per op, in order, and applies every write', () => {
    const tree = base();
    const { tree: after, result: r } = ok(
      tree,
      txn(
        [
          { path: '/a/q', version: 1 },
          { path: '/b', version: 1 },
        ],
        [push('/a/q', b(2)), insert('/a/s', b(7)), put('/b', b(6)), del('/b'), create('/c', 'blob')],
      ),
    );
    expect(r).to.deep.equal({
      type: 'txn',
      results: [
        { type: 'ok', version: 2 },
        { type: 'bool', value: true, version: 1 },
        { type: 'ok', version: 2 },
        { type: 'ok', version: 2 },
        { type: 'ok', version: 0 },
      ],
    });
    expect(result(after, { type: 'queue_len', path: '/a/q' })).to.deep.equal({ type: 'count', count: 2, version: 2 });
    expect(exists(after, '/b')).to.equal(false);
    expect(exists(after, '/c')).to.equal(true);
  });

  it('each write in a transaction bumps versions as it would alone', () => {
    const tree = base();
    const alone = build([
      create('/a/q', 'queue'),
      create('/a/s', 'set'),
      create('/b', 'blob'),
      push('/a/q', b(1)),
      put('/b', b(5)),
      push('/a/q', b(2)),
      push('/a/q', b(3)),
      insert('/a/s', b(1)),
      insert('/a/s', b(1)),
    ]);
    const { tree: after } = ok(tree, txn([], [push('/a/q', b(2)), push('/a/q', b(3)), insert('/a/s', b(1)), insert('/a/s', b(1))]));
    expect(encodeSnapshot(after)).to.deep.equal(encodeSnapshot(alone));
    expect(versions(after, ['/', '/a', '/a/q', '/a/s'])).to.deep.equal(versions(alone, ['/', '/a', '/a/q', '/a/s']));
  });

  it('no guards and no ops is an empty txn result', () => {
    const tree = base();
    const { tree: after, result: r } = ok(tree, txn([], []));
    expect(r).to.deep.equal({ type: 'txn', results: [] });
    expect(encodeSnapshot(after)).to.deep.equal(encodeSnapshot(tree));
  });

  it('a guard mismatch fails with cas_failed(path, expected, actual), no `at`, and the same tree', () => {
    const tree = base();
    const f = txnFailure(tree, txn([{ path: '/a/q', version: 0 }], [push('/a/q', b(2))]));
    expect(f).to.deep.equal({ type: 'error', error: treeErrors.casFailed('/a/q', 0, 1) });
  });

  it('a guard on a missing node fails with actual null (also below a leaf)', () => {
    const tree = base();
    expect(txnFailure(tree, txn([{ path: '/nope', version: 0 }], [])).error).to.deep.equal(treeErrors.casFailed('/nope', 0, null));
    expect(txnFailure(tree, txn([{ path: '/nope/x', version: 3 }], [])).error).to.deep.equal(
      treeErrors.casFailed('/nope/x', 3, null),
    );
    expect(txnFailure(tree, txn([{ path: '/b/x', version: 0 }], [])).error).to.deep.equal(treeErrors.casFailed('/b/x', 0, null));
  });

  it('guards are checked in the order given: the first mismatch is reported', () => {
    const tree = base();
    const f = txnFailure(
      tree,
      txn(
        [
          { path: '/a/q', version: 1 },
          { path: '/b', version: 7 },
          { path: '/nope', version: 0 },
        ],
        [],
      ),
    );
    expect(f.error).to.deep.equal(treeErrors.casFailed('/b', 7, 1));
    const g = txnFailure(
      tree,
      txn(
        [
          { path: '/nope', version: 0 },
          { path: '/b', version: 7 },
        ],
        [],
      ),
    );
    expect(g.error).to.deep.equal(treeErrors.casFailed('/nope', 0, null));
  });

  it('guards are checked against the tree before the transaction, not after its ops', () => {
    const tree = base();
    // /c does not exist before: a guard on it fails even though an op would create it.
    expect(txnFailure(tree, txn([{ path: '/c', version: 0 }], [create('/c', 'blob')])).error).to.deep.equal(
      treeErrors.casFailed('/c', 0, null),
    );
    // The guard holds before the ops change that very node.
    const { result: r } = ok(tree, txn([{ path: '/b', version: 1 }], [put('/b', b(9)), put('/b', b(8))]));
    expect(r).to.deep.equal({ type: 'txn', results: [{ type: 'ok', version: 2 }, { type: 'ok', version: 3 }] });
  });

  it("a guard on '/' guards the whole tree; a guard on a directory guards its subtree", () => {
    const tree = base();
    const root = versionOf(tree, '/');
    const a = versionOf(tree, '/a');
    const changed = ok(tree, insert('/a/s', b(1))).tree;
    expect(txnFailure(changed, txn([{ path: '/', version: root }], [])).error).to.deep.equal(
      treeErrors.casFailed('/', root, root + 1),
    );
    expect(txnFailure(changed, txn([{ path: '/a', version: a }], [])).error).to.deep.equal(treeErrors.casFailed('/a', a, a + 1));
    // A change outside /a leaves a guard on /a intact.
    const elsewhere = ok(tree, put('/b', b(1))).tree;
    expect(ok(elsewhere, txn([{ path: '/a', version: a }], [])).result).to.deep.equal({ type: 'txn', results: [] });
    expect(ok(tree, txn([{ path: '/', version: root }], [])).result).to.deep.equal({ type: 'txn', results: [] });
  });

  it('ops apply in order and reads inside see the earlier writes of the same transaction', () => {
    const tree = base();
    const { result: r } = ok(
      tree,
      txn(
        [],
        [
          create('/n/blob', 'blob'),
          put('/n/blob', b(4, 2)),
          { type: 'blob_get', path: '/n/blob' },
          push('/a/q', b(2)),
          pop('/a/q'),
          { type: 'queue_front', path: '/a/q' },
          insert('/a/s', b(3)),
          { type: 'set_contains', path: '/a/s', value: b(3) },
          list('/n'),
          del('/n'),
          stat('/a'),
        ],
      ),
    );
    expect(r).to.deep.equal({
      type: 'txn',
      results: [
        { type: 'ok', version: 0 },
        { type: 'ok', version: 1 },
        { type: 'blob', value: b(4, 2), version: 1 },
        { type: 'ok', version: 2 },
        { type: 'element', value: b(1), version: 3 },
        { type: 'element', value: b(2), version: 3 },
        { type: 'bool', value: true, version: 1 },
        { type: 'bool', value: true, version: 1 },
        { type: 'list', entries: [{ name: 'blob', path: '/n/blob', nodeType: 'blob', version: 1 }], version: 1 },
        { type: 'ok', version: 1 },
        { type: 'stat', nodeType: 'directory', version: versionOf(tree, '/a') + 3, size: 2 },
      ],
    });
  });

  it('a failing op aborts the whole transaction with its own error and `at` = its index; the tree is the same object', () => {
    const tree = base();
    const f = txnFailure(
      tree,
      txn([{ path: '/b', version: 1 }], [put('/b', b(1)), push('/a/q', b(9)), { type: 'blob_get', path: '/a/q' }, put('/b', b(2))]),
    );
    expect(f).to.deep.equal({ type: 'error', error: treeErrors.wrongType('/a/q', 'queue'), at: 2 });
  });

  it('an op failing because of an earlier op in the same transaction reports that index', () => {
    const tree = base();
    const f = txnFailure(tree, txn([], [del('/a'), push('/a/q', b(1))]));
    expect(f).to.deep.equal({ type: 'error', error: treeErrors.doesNotExist('/a/q'), at: 1 });
    const g = txnFailure(tree, txn([], [create('/x', 'blob'), create('/x', 'blob')]));
    expect(g).to.deep.equal({ type: 'error', error: treeErrors.alreadyExists('/x'), at: 1 });
    const h = txnFailure(tree, txn([], [stat('/b'), del('/'), create('/y', 'set')]));
    expect(h).to.deep.equal({ type: 'error', error: treeErrors.cannotDeleteRoot(), at: 1 });
  });

  it('limits apply inside a transaction, counting the earlier ops', () => {
    const limits = limitsWith({ collectionElementsMax: 2 });
    const tree = base();
    const f = txnFailure(tree, txn([], [push('/a/q', b(2)), pop('/a/q'), push('/a/q', b(3)), push('/a/q', b(4))]), limits);
    expect(f).to.deep.equal({ type: 'error', error: treeErrors.tooLarge('collection_elements', 2), at: 3 });
  });

  it('a failing first op reports at = 0', () => {
    const f = txnFailure(base(), txn([], [del('/nope')]));
    expect(f).to.deep.equal({ type: 'error', error: treeErrors.doesNotExist('/nope'), at: 0 });
  });

  it('a transaction of reads only changes nothing', () => {
    const tree = base();
    const { tree: after, result: r } = ok(tree, txn([{ path: '/', version: versionOf(tree, '/') }], [stat('/b'), list('/a')]));
    expect(r.type).to.equal('txn');
    expect(encodeSnapshot(after)).to.deep.equal(encodeSnapshot(tree));
  });

  it('no-op writes inside a transaction change no version', () => {
    const tree = base();
    const { tree: after, result: r } = ok(tree, txn([], [put('/b', b(5)), remove('/a/s', b(1)), pop('/a/q'), pop('/a/q')]));
    expect(r).to.deep.equal({
      type: 'txn',
      results: [
        { type: 'ok', version: 1 },
        { type: 'bool', value: false, version: 0 },
        { type: 'element', value: b(1), version: 2 },
        { type: 'element', value: null, version: 2 },
      ],
    });
    expect(versionOf(after, '/')).to.equal(versionOf(tree, '/') + 1);
  });
});

// ---- persistence ---------------------------------------------------------------------------

describe('tree: persistence (a snapshot is the old value)', () => {
  it('an old tree stays valid and unchanged after later writes to its successors', () => {
    const t1 = build([create('/a/b', 'blob'), put('/a/b', b(1)), create('/q', 'queue'), push('/q', b(1)), create('/s', 'set')]);
    const bytes1 = encodeSnapshot(t1);
    const count1 = nodeCount(t1);
    let t = t1;
    for (const op of [put('/a/b', b(2)), pop('/q'), push('/q', b(3)), insert('/s', b(4)), del('/a'), create('/z/y', 'set')]) {
      t = ok(t, op).tree;
    }
    expect(encodeSnapshot(t1)).to.deep.equal(bytes1);
    expect(nodeCount(t1)).to.equal(count1);
    expect(result(t1, { type: 'blob_get', path: '/a/b' })).to.deep.equal({ type: 'blob', value: b(1), version: 1 });
    expect(result(t1, { type: 'queue_front', path: '/q' })).to.deep.equal({ type: 'element', value: b(1), version: 1 });
    expect(members(t1, '/s')).to.deep.equal([]);
    expect(exists(t1, '/z')).to.equal(false);
  });

  it('two writes on the same tree give two independent trees', () => {
    const base = build([create('/s', 'set')]);
    const left = ok(base, insert('/s', b(1))).tree;
    const right = ok(base, insert('/s', b(2))).tree;
    expect(members(base, '/s')).to.deep.equal([]);
    expect(members(left, '/s')).to.deep.equal([b(1)]);
    expect(members(right, '/s')).to.deep.equal([b(2)]);
    expect(treesEqual(left, right)).to.equal(false);
  });
});

// ---- determinism and snapshots ---------------------------------------------------------------

describe('tree: determinism and snapshots', () => {
  const script: TreeOp[] = [
    create('/a/b/c', 'blob'),
    put('/a/b/c', utf8('payload')),
    create('/a/q', 'queue'),
    push('/a/q', b(1)),
    push('/a/q', b(2, 3)),
    pop('/a/q'),
    create('/s', 'set'),
    ...fill('/s', b(9), b(1), b(), b(0xff)),
    create('/e', 'directory'),
    { type: 'multi_cas', guards: [{ path: '/', version: 12 }], ops: [remove('/s', b(1)), create('/e/x', 'queue')] },
  ];

  it('the same ops applied twice from emptyTree give byte-identical snapshots and equal trees', () => {
    const t1 = build(script);
    const t2 = build(script);
    expect(encodeSnapshot(t1)).to.deep.equal(encodeSnapshot(t2));
    expect(treesEqual(t1, t2)).to.equal(true);
  });

  it('the encoding is canonical: insertion order of children and members does not matter', () => {
    const x = build([create('/a', 'blob'), create('/b', 'queue'), create('/c', 'set'), ...fill('/c', b(1), b(2), b(3))]);
    const y = build([create('/c', 'set'), create('/b', 'queue'), create('/a', 'blob'), ...fill('/c', b(3), b(1), b(2))]);
    expect(encodeSnapshot(x)).to.deep.equal(encodeSnapshot(y));
    expect(treesEqual(x, y)).to.equal(true);
  });

  it('different content or a different version is a different tree', () => {
    const base = build([create('/b', 'blob')]);
    const one = ok(base, put('/b', b(1))).tree;
    const two = ok(base, put('/b', b(2))).tree;
    expect(treesEqual(one, two)).to.equal(false);
    expect(encodeSnapshot(one)).to.not.deep.equal(encodeSnapshot(two));
    const bumped = build([create('/b', 'blob'), put('/b', b(1)), put('/b', b(2)), put('/b', b(1))]);
    expect(treesEqual(one, bumped)).to.equal(false);
    expect(treesEqual(base, emptyTree())).to.equal(false);
  });

  it('encode then decode gives an equal tree that encodes to the same bytes and keeps working', () => {
    for (const tree of [emptyTree(), build(script)]) {
      const bytes = encodeSnapshot(tree);
      const decoded = decodeSnapshot(bytes);
      if (!decoded.ok) throw new Error(`decode failed: ${decoded.reason}`);
      expect(treesEqual(decoded.tree, tree)).to.equal(true);
      expect(encodeSnapshot(decoded.tree)).to.deep.equal(bytes);
      expect(nodeCount(decoded.tree)).to.equal(nodeCount(tree));
    }
    const tree = build(script);
    const decoded = decodeSnapshot(encodeSnapshot(tree));
    if (!decoded.ok) throw new Error('decode failed');
    for (const op of [list('/', true), pop('/a/q'), insert('/s', b(1)), { type: 'blob_get', path: '/a/b/c' } as const]) {
      const x = applyOp(tree, op);
      const y = applyOp(decoded.tree, op);
      expect(y.outcome).to.deep.equal(x.outcome);
      expect(treesEqual(y.tree, x.tree)).to.equal(true);
    }
  });

  it('a snapshot with any single byte flipped is refused with a reason, never a throw', () => {
    const bytes = encodeSnapshot(build(script));
    for (let i = 0; i < bytes.length; i++) {
      const corrupt = Uint8Array.from(bytes);
      corrupt[i] = (corrupt[i] ?? 0) ^ 0xff;
      const decoded = decodeSnapshot(corrupt);
      expect(decoded.ok, `byte ${i} flipped`).to.equal(false);
      if (!decoded.ok) expect(decoded.reason).to.be.a('string').and.not.equal('');
    }
  });

  it('a single flipped bit anywhere is refused', () => {
    const bytes = encodeSnapshot(build(script));
    for (let i = 0; i < bytes.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const corrupt = Uint8Array.from(bytes);
        corrupt[i] = (corrupt[i] ?? 0) ^ bit;
        expect(decodeSnapshot(corrupt).ok, `byte ${i} bit ${bit}`).to.equal(false);
      }
    }
  });

  it('a truncated snapshot (every length, including empty) is refused with a reason, never a throw', () => {
    const bytes = encodeSnapshot(build(script));
    for (let n = 0; n < bytes.length; n++) {
      const decoded = decodeSnapshot(bytes.slice(0, n));
      expect(decoded.ok, `truncated to ${n} bytes`).to.equal(false);
      if (!decoded.ok) expect(decoded.reason).to.be.a('string').and.not.equal('');
    }
  });

  it('random garbage never throws (and is refused)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (garbage) => {
        const decoded = decodeSnapshot(garbage);
        expect(decoded.ok).to.equal(false);
        if (!decoded.ok) expect(decoded.reason).to.be.a('string');
      }),
      { numRuns: 500 },
    );
  });

  it('garbage placed after a valid header never throws', () => {
    const valid = encodeSnapshot(build(script));
    fc.assert(
      fc.property(fc.nat({ max: valid.length }), fc.uint8Array({ maxLength: 64 }), (keep, tail) => {
        const bytes = new Uint8Array(keep + tail.length);
        bytes.set(valid.slice(0, keep));
        bytes.set(tail, keep);
        const decoded = decodeSnapshot(bytes);
        expect(decoded.ok === true || decoded.ok === false).to.equal(true);
        if (decoded.ok) expect(encodeSnapshot(decoded.tree)).to.deep.equal(bytes);
      }),
      { numRuns: 300 },
    );
  });
});
