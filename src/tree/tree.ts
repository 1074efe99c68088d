/**
 * The versioned tree: `applyOp(tree, op) -> { tree, outcome }`, pure and deterministic.
 *
 * A write copies the path from the root to the node it changes, bumping the version of that
 * node and of every ancestor (DATA_MODEL.md "Versions"); everything off the path is shared
 * with the previous tree. Semantics where the data model leaves room: ./README.md.
 */

import { assertNever } from '../base/assert.ts';
import { multiCas } from './cas.ts';
import { treeErrors, type TreeError } from './errors.ts';
import { defaultTreeLimits, type TreeLimits } from '../base/limits.ts';
import {
  bytesEqual,
  bytesToKey,
  childOf,
  hasMember,
  newBlob,
  newDirectory,
  newQueue,
  newSet,
  nodeSize,
  subtreeSize,
  type DirectoryNode,
  type LeafNode,
  type TreeNode,
} from './node.ts';
import { NameMap } from './name_map.ts';
import type { NodeType } from './node_type.ts';
import type {
  Bytes,
  CreateOp,
  DeleteOp,
  ListEntry,
  OpOutcome,
  OpResult,
  ReadOp,
  SimpleOp,
  TreeOp,
  WriteOp,
} from './ops.ts';
import { joinPath, prefixPath, rootPath, splitPath, utf8Length } from './path.ts';
import { fail, lookup, lookupTyped, treeFromRoot, type Tree } from './lookup.ts';
import { queueFirst, queueLast, queuePush, queueShift } from './queue.ts';
import { applySetAlgebra } from './set_algebra.ts';

export type { Tree } from './lookup.ts';

export type Applied = { readonly tree: Tree; readonly outcome: OpOutcome };

const theEmptyTree: Tree = Object.freeze({ root: newDirectory() });

export function emptyTree(): Tree {
  return theEmptyTree;
}

/** Every node of the tree, the root included. */
export function nodeCount(tree: Tree): number {
  return subtreeSize(tree.root);
}

/**
 * Applies one operation. The op must have passed `validateOp` (paths canonical, sizes within
 * limits); state-dependent limits are checked here. A failed op returns the input tree
 * itself, so `result.tree === tree` means "nothing changed".
 */
export function applyOp(tree: Tree, op: TreeOp, limits: TreeLimits = defaultTreeLimits): Applied {
  if (op.type === 'multi_cas') return multiCas(tree, op, limits, applySimpleOp);
  // Lease ops and ephemeral creates need the lease table: src/tree/store.ts applies them.
  if (op.type === 'lease_grant' || op.type === 'lease_keepalive' || op.type === 'lease_revoke') {
    return failure(tree, treeErrors.invalidRequest('lease operations apply to the store, not the bare tree'));
  }
  return applySimpleOp(tree, op, limits);
}

export function applySimpleOp(tree: Tree, op: SimpleOp, limits: TreeLimits): Applied {
  switch (op.type) {
    case 'list':
    case 'stat':
    case 'blob_get':
    case 'blob_size':
    case 'queue_front':
    case 'queue_back':
    case 'queue_len':
    case 'set_contains':
    case 'set_union':
    case 'set_intersection':
    case 'set_difference':
    case 'set_symmetric_difference':
    case 'set_is_subset':
    case 'set_is_superset':
      return { tree, outcome: applyRead(tree, op, limits) };
    case 'create':
      return create(tree, op, limits);
    case 'delete':
      return remove(tree, op);
    case 'blob_put':
    case 'queue_push':
    case 'queue_pop':
    case 'set_insert':
    case 'set_remove':
      return writeLeaf(tree, op, limits);
    default:
      return assertNever(op, 'tree op');
  }
}

/**
 * Rebuilds the path from the changed node up to the root (used by `create`, which has the
 * chain of directories in hand): each directory on the chain gets the new child, version + 1,
 * and its descendant count adjusted by `sizeDelta`.
 */
function rebuild(dirs: readonly DirectoryNode[], components: readonly string[], replacement: TreeNode, sizeDelta: number): Tree {
  let child: TreeNode = replacement;
  for (let depth = dirs.length - 1; depth >= 0; depth--) {
    const dir = dirs[depth] as DirectoryNode;
    child = newDirectory(dir.version + 1, NameMap.setIn(dir, components[depth] as string, child), dir.descendants + sizeDelta);
  }
  return treeFromRoot(child as DirectoryNode);
}

/** `dir` with its child `name` replaced by `next` (which replaced `child`): version + 1, descendants adjusted. */
function withChild(dir: DirectoryNode, name: string, child: TreeNode, next: TreeNode): DirectoryNode {
  return newDirectory(dir.version + 1, NameMap.setIn(dir, name, next), dir.descendants + subtreeSize(next) - subtreeSize(child));
}

/** The op's result while it is worked out; returned as the `Applied` itself, so a write allocates no other record. */
type Working = { tree: Tree; outcome: OpOutcome };

/** A placeholder outcome, always overwritten before a `Working` is returned. */
const unset: OpOutcome = Object.freeze({ type: 'answer', value: false });

// ---- writes --------------------------------------------------------------------------------

function failure(tree: Tree, error: TreeError): Applied {
  return { tree, outcome: fail(error) };
}

function create(tree: Tree, op: CreateOp, limits: TreeLimits): Applied {
  if (op.sequential === true) return createSequential(tree, op, limits);
  if (op.path === rootPath) return failure(tree, treeErrors.alreadyExists(rootPath));
  const components = splitPath(op.path);
  // Walk down the existing part of the path.
  const dirs: DirectoryNode[] = [tree.root];
  let depth = 0;
  for (; depth < components.length; depth++) {
    const dir = dirs[depth] as DirectoryNode;
    const child = childOf(dir, components[depth] as string);
    if (child === undefined) break;
    if (depth === components.length - 1) return failure(tree, treeErrors.alreadyExists(op.path));
    if (child.type !== 'directory') return failure(tree, treeErrors.notADirectory(prefixPath(components, depth + 1)));
    dirs.push(child);
  }
  const attachTo = dirs[depth] as DirectoryNode;
  if (attachTo.size >= limits.directoryChildrenMax) {
    return failure(tree, treeErrors.tooLarge('directory_children', limits.directoryChildrenMax));
  }
  // Build the missing part bottom-up: the new node and any missing parents, all at version 0.
  let built: TreeNode = emptyNode(op.nodeType);
  for (let missing = components.length - 1; missing > depth; missing--) {
    built = newDirectory(0, newDirectory().children.set(components[missing] as string, built), subtreeSize(built));
  }
  const added = components.length - depth;
  const children = NameMap.setIn(attachTo, components[depth] as string, built);
  const attached = newDirectory(attachTo.version + 1, children, attachTo.descendants + added);
  const tail = rebuild(dirs.slice(0, depth), components, attached, added);
  return { tree: tail, outcome: { type: 'ok', version: 0 } };
}

/**
 * A sequential create (src/tree/README.md): the name is the last component of `op.path`
 * followed by the parent directory's version, zero-padded to 10 digits. Each create bumps the
 * parent's version, so the counter is unique and increasing while the parent exists. A missing
 * parent is made first (its own create bumps it to version 1 under the new child, so the next
 * sequential create there gets 1, not 0 again).
 */
function createSequential(tree: Tree, op: CreateOp, limits: TreeLimits): Applied {
  const components = splitPath(op.path);
  const prefix = components[components.length - 1] as string;
  const parentPath = prefixPath(components, components.length - 1);
  let current = tree;
  let parent = lookup(current, parentPath);
  if (!parent.ok && parent.error.code === 'does_not_exist') {
    const made = create(current, { type: 'create', path: parentPath, nodeType: 'directory' }, limits);
    if (made.outcome.type === 'error') return { tree, outcome: made.outcome };
    current = made.tree;
    parent = lookup(current, parentPath);
  }
  if (!parent.ok) return failure(tree, parent.error);
  if (parent.node.type !== 'directory') return failure(tree, treeErrors.notADirectory(parentPath));
  const counter = parent.node.version;
  if (counter > limits.sequenceMax) return failure(tree, treeErrors.tooLarge('sequence', limits.sequenceMax));
  const name = `${prefix}${String(counter).padStart(10, '0')}`;
  if (utf8Length(name) > limits.componentBytesMax) return failure(tree, treeErrors.tooLarge('component_bytes', limits.componentBytesMax));
  const path = joinPath(parentPath, name);
  if (utf8Length(path) > limits.pathBytesMax) return failure(tree, treeErrors.tooLarge('path_bytes', limits.pathBytesMax));
  const made = create(current, { type: 'create', path, nodeType: op.nodeType }, limits);
  if (made.outcome.type === 'error') return { tree, outcome: made.outcome };
  return { tree: made.tree, outcome: { type: 'ok', version: 0, path } };
}

function emptyNode(type: NodeType): TreeNode {
  switch (type) {
    case 'directory':
      return newDirectory();
    case 'blob':
      return newBlob();
    case 'queue':
      return newQueue();
    case 'set':
      return newSet();
    default:
      return assertNever(type, 'node type');
  }
}

function remove(tree: Tree, op: DeleteOp): Applied {
  if (op.path === rootPath) return failure(tree, treeErrors.cannotDeleteRoot());
  return changeAt(tree, op, defaultTreeLimits /* a delete reads no limit */);
}

type LeafWrite = Exclude<WriteOp, { type: 'create' } | { type: 'delete' }>;

/**
 * What a leaf write does to its node: the replacement (null = no change) and what its result
 * carries besides the version (plain data, no closure: this runs once per write).
 */
type LeafChange =
  | { readonly node: LeafNode | null; readonly result: 'ok' }
  | { readonly node: LeafNode | null; readonly result: 'element'; readonly value: Bytes | null }
  | { readonly node: LeafNode | null; readonly result: 'bool'; readonly value: boolean }
  | TreeError;

function resultOf(change: Exclude<LeafChange, TreeError>, version: number): OpResult {
  switch (change.result) {
    case 'ok':
      return { type: 'ok', version };
    case 'element':
      return { type: 'element', value: change.value, version };
    case 'bool':
      return { type: 'bool', value: change.value, version };
    default:
      return assertNever(change, 'leaf change');
  }
}

function writeLeaf(tree: Tree, op: LeafWrite, limits: TreeLimits): Applied {
  if (op.path === rootPath) return failure(tree, treeErrors.wrongType(rootPath, 'directory'));
  return changeAt(tree, op, limits);
}

/**
 * A delete or leaf write of a path below the root. The path was validated (canonical), so it is
 * walked in place, one component at a time, without splitting it into an array; the copied
 * directories are made on the way back up (`changeBelow`).
 */
function changeAt(tree: Tree, op: LeafWrite | DeleteOp, limits: TreeLimits): Applied {
  const working: Working = { tree, outcome: unset };
  const root = changeBelow(tree.root, 1, op, limits, working);
  if (root !== null) working.tree = treeFromRoot(root);
  return working;
}

/**
 * `dir` rebuilt around the change the op makes to the node at its path, whose components from
 * offset `start` lie below `dir`; null when nothing changes (a failure, or a no-op write). The
 * outcome goes to `working`. Errors as the data model says: a missing node or ancestor is
 * `does_not_exist(path)`, an ancestor that is not a directory `not_a_directory(that ancestor)`.
 */
function changeBelow(dir: DirectoryNode, start: number, op: LeafWrite | DeleteOp, limits: TreeLimits, working: Working): DirectoryNode | null {
  const path = op.path;
  const slash = path.indexOf('/', start);
  const name = slash < 0 ? path.slice(start) : path.slice(start, slash);
  const child = childOf(dir, name);
  if (child === undefined) {
    working.outcome = fail(treeErrors.doesNotExist(path));
    return null;
  }
  if (slash >= 0) {
    if (child.type !== 'directory') {
      working.outcome = fail(treeErrors.notADirectory(path.slice(0, slash)));
      return null;
    }
    const next = changeBelow(child, slash + 1, op, limits, working);
    return next === null ? null : withChild(dir, name, child, next);
  }
  if (op.type === 'delete') {
    working.outcome = { type: 'ok', version: child.version };
    return newDirectory(dir.version + 1, NameMap.deleteIn(dir, name), dir.descendants - subtreeSize(child));
  }
  const change = changeLeaf(child, op, limits);
  if ('code' in change) {
    working.outcome = fail(change);
    return null;
  }
  if (change.node === null) {
    working.outcome = resultOf(change, child.version);
    return null;
  }
  working.outcome = resultOf(change, change.node.version);
  return withChild(dir, name, child, change.node);
}

function changeLeaf(target: TreeNode, op: LeafWrite, limits: TreeLimits): LeafChange {
  switch (op.type) {
    case 'blob_put': {
      if (target.type !== 'blob') return treeErrors.wrongType(op.path, target.type);
      // No-op rule (README): equal bytes leave the version as it is.
      const node = bytesEqual(target.value, op.value) ? null : newBlob(target.version + 1, op.value);
      return { node, result: 'ok' };
    }
    case 'queue_push': {
      if (target.type !== 'queue') return treeErrors.wrongType(op.path, target.type);
      if (target.size >= limits.collectionElementsMax) {
        return treeErrors.tooLarge('collection_elements', limits.collectionElementsMax);
      }
      return { node: newQueue(target.version + 1, queuePush(target, op.value)), result: 'ok' };
    }
    case 'queue_pop': {
      if (target.type !== 'queue') return treeErrors.wrongType(op.path, target.type);
      const rest = queueShift(target);
      if (rest === null) return { node: null, result: 'element', value: null };
      return { node: newQueue(target.version + 1, rest), result: 'element', value: queueFirst(target) as Bytes };
    }
    case 'set_insert': {
      if (target.type !== 'set') return treeErrors.wrongType(op.path, target.type);
      const key = bytesToKey(op.value);
      if (hasMember(target, key)) return { node: null, result: 'bool', value: false };
      if (target.size >= limits.collectionElementsMax) {
        return treeErrors.tooLarge('collection_elements', limits.collectionElementsMax);
      }
      return { node: newSet(target.version + 1, target.members.set(key, true)), result: 'bool', value: true };
    }
    case 'set_remove': {
      if (target.type !== 'set') return treeErrors.wrongType(op.path, target.type);
      const key = bytesToKey(op.value);
      if (!hasMember(target, key)) return { node: null, result: 'bool', value: false };
      return { node: newSet(target.version + 1, target.members.delete(key)), result: 'bool', value: true };
    }
    default:
      return assertNever(op, 'leaf write');
  }
}

// ---- reads -------------------------------------------------------------------------------

function applyRead(tree: Tree, op: ReadOp, limits: TreeLimits): OpOutcome {
  switch (op.type) {
    case 'list':
      return list(tree, op.path, op.recursive, limits);
    case 'stat': {
      const found = lookup(tree, op.path);
      if (!found.ok) return fail(found.error);
      return { type: 'stat', nodeType: found.node.type, version: found.node.version, size: nodeSize(found.node) };
    }
    case 'blob_get': {
      const found = lookupTyped(tree, op.path, 'blob');
      if (!found.ok) return fail(found.error);
      return { type: 'blob', value: found.node.value, version: found.node.version };
    }
    case 'blob_size': {
      const found = lookupTyped(tree, op.path, 'blob');
      if (!found.ok) return fail(found.error);
      return { type: 'count', count: found.node.value.length, version: found.node.version };
    }
    case 'queue_front':
    case 'queue_back': {
      const found = lookupTyped(tree, op.path, 'queue');
      if (!found.ok) return fail(found.error);
      const queue = found.node;
      const value = (op.type === 'queue_front' ? queueFirst(queue) : queueLast(queue)) ?? null;
      return { type: 'element', value, version: queue.version };
    }
    case 'queue_len': {
      const found = lookupTyped(tree, op.path, 'queue');
      if (!found.ok) return fail(found.error);
      return { type: 'count', count: found.node.size, version: found.node.version };
    }
    case 'set_contains': {
      const found = lookupTyped(tree, op.path, 'set');
      if (!found.ok) return fail(found.error);
      return { type: 'bool', value: hasMember(found.node, bytesToKey(op.value)), version: found.node.version };
    }
    case 'set_union':
    case 'set_intersection':
    case 'set_difference':
    case 'set_symmetric_difference':
    case 'set_is_subset':
    case 'set_is_superset':
      return applySetAlgebra(tree, op);
    default:
      return assertNever(op, 'read op');
  }
}

/** Directory entries in name order; recursive is depth-first pre-order, iteratively. */
function list(tree: Tree, path: string, recursive: boolean, limits: TreeLimits): OpOutcome {
  const found = lookupTyped(tree, path, 'directory');
  if (!found.ok) return fail(found.error);
  const entries: ListEntry[] = [];
  const stack: ListFrame[] = [listFrame(path, found.node)];
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as ListFrame;
    const name = top.names[top.next];
    if (name === undefined) {
      stack.pop();
      continue;
    }
    top.next++;
    if (entries.length >= limits.listEntriesMax) return fail(treeErrors.tooLarge('list_entries', limits.listEntriesMax));
    const child = top.dir.children.get(name) as TreeNode;
    const childPath = joinPath(top.path, name);
    entries.push({ name, path: childPath, nodeType: child.type, version: child.version });
    if (recursive && child.type === 'directory') stack.push(listFrame(childPath, child));
  }
  return { type: 'list', entries, version: found.node.version };
}

type ListFrame = { readonly path: string; readonly dir: DirectoryNode; readonly names: readonly string[]; next: number };

function listFrame(path: string, dir: DirectoryNode): ListFrame {
  return { path, dir, names: Array.from(dir.children.keys()).sort(), next: 0 };
}
