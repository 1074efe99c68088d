/**
 * The changes a committed op made to the tree: the foundation of watches (issue 14).
 *
 * `treeChanges(before, op, after)` is a pure function of the tree before an op, the op and the
 * tree `applyOp(before, op)` returned. Every replica applies the same committed ops to
 * byte-identical trees, so every replica derives the same changes, in the same order.
 *
 * What a change is. A node's observable state is (exists, type, version, value), where value
 * is a blob's bytes, a queue's elements, a set's members, and nothing for a directory (its
 * children are nodes with states of their own). An op produces exactly one change per path
 * whose state differs between `before` and `after`, and nothing else:
 * - `created`: absent before, present after; type and version after.
 * - `deleted`: present before, absent after; type and version before (its last committed
 *   version: a transaction's intermediate states are never visible, so they are not reported).
 * - `changed`: present on both sides with a different state; type and version after.
 * Because the tree bumps the version of every ancestor of a node it writes (DATA_MODEL.md
 * "Versions"), a write reports a `changed` for each existing ancestor up to the root, the
 * way a guard on a directory guards its whole subtree. A delete reports every node of the
 * deleted subtree (the tree keeps no tombstones, so no other record of them remains).
 * Reads, failed ops and no-op writes (which change no version, README "No-op writes") change
 * no state and report nothing.
 *
 * multi_cas: one list for the whole transaction, one change per path with its net effect
 * (state before the transaction against state after), in the order of first touch: the ops
 * in order, each from the root down to its node (then, for a delete, the deleted subtree in
 * pre-order, names ascending). A node written twice is one change with its final version, so
 * a watcher sees one consistent batch per committed op and never a state no reader could
 * have seen. Consequences: created-then-deleted in one transaction reports nothing; a node
 * deleted and re-created reports `changed` (its type may differ from the one before and its
 * version may be lower) or nothing when the re-created state equals the old one, which a
 * guard could not tell apart either.
 *
 * Why before + op + after (and not the outcome). The outcome carries only the written node's
 * version, not its ancestors' versions, the deleted subtree or a transaction's net effect;
 * recomputing those from `before` and `op` alone would re-implement `applyOp`. The trees are
 * persistent and share every node an op did not touch, so the op names the only paths that
 * can differ (each written path and its ancestors, plus each deleted subtree) and identity
 * tells where nothing differs: a walk costs O(depth × log₃₂ n) per write op, plus the size
 * of each deleted subtree, and stops as soon as both trees hold the same node object.
 * Contract: `after` is the tree `applyOp(before, op)` returned. A failed op returns `before`
 * itself, so the outcome is not needed to know that nothing changed.
 */

import { assertNever } from '../base/assert.ts';
import { bytesEqual, childOf, hasMember, type DirectoryNode, type TreeNode } from './node.ts';
import type { NodeType } from './node_type.ts';
import { isLeaseOp, isReadOp, type SimpleOp, type TreeOp } from './ops.ts';
import { joinPath, rootPath } from './path.ts';
import type { Tree } from './lookup.ts';
import { queueToArray } from './queue.ts';

export type TreeChangeKind = 'created' | 'changed' | 'deleted';

export type TreeChange = {
  readonly kind: TreeChangeKind;
  readonly path: string;
  readonly nodeType: NodeType;
  /** The node's version after the change; for `deleted`, the version it had before the op. */
  readonly version: number;
};

/** The changes `op` made when it took `before` to `after` (see the file comment). */
export function treeChanges(before: Tree, op: TreeOp, after: Tree): readonly TreeChange[] {
  // A failed op, a read and a no-op write all return the input tree itself.
  if (before === after) return [];
  const diff = new Diff(before.root, after.root);
  if (op.type === 'multi_cas') {
    for (const inner of op.ops) diff.visitOp(inner);
  } else if (!isLeaseOp(op)) {
    // A lease op's tree changes reach here as the deletes it made (src/tree/store.ts).
    diff.visitOp(op);
  }
  return diff.changes;
}

/**
 * The net changes of a whole log entry: `ops` are its tree ops in the order they were applied,
 * `before` the tree before the first and `after` the tree after the last. One change per path
 * whose state differs between the two trees, in the order of first touch (the same rules as a
 * multi_cas, which is one entry's worth of ops too). Ops that failed or read are walked
 * harmlessly: their paths hold the same node objects on both sides unless a later op changed
 * them, in which case that op's walk reports them anyway. A watcher therefore sees the state
 * at the end of each entry, which is what a read committed in that entry observes
 * (src/vr/state_machine.ts applies an entry's reads after its writes). `afterNodes`, when
 * given, receives each change's node in `after` (undefined for a deletion), index for index, so
 * a caller wanting a blob's bytes need not look the path up again.
 */
export function entryChanges(before: Tree, ops: readonly TreeOp[], after: Tree, afterNodes?: (TreeNode | undefined)[]): readonly TreeChange[] {
  if (before === after) return [];
  const diff = new Diff(before.root, after.root, afterNodes);
  for (const op of ops) {
    if (op.type === 'multi_cas') {
      for (const inner of op.ops) diff.visitOp(inner);
    } else if (!isLeaseOp(op)) {
      diff.visitOp(op);
    }
  }
  return diff.changes;
}

/**
 * Whether a watch on `watchPath` sees `change`: the path itself, or, when recursive, any path
 * below it on a component boundary (`/a` covers `/a/b`, not `/ab`). Paths are canonical.
 */
export function changeMatches(change: TreeChange, watchPath: string, recursive: boolean): boolean {
  if (change.path === watchPath) return true;
  if (!recursive) return false;
  if (watchPath === rootPath) return true;
  return change.path.length > watchPath.length + 1 && change.path.startsWith(watchPath) && change.path[watchPath.length] === '/';
}

/** Accumulates the changes along the paths an op names, each path once. */
class Diff {
  readonly changes: TreeChange[] = [];
  private readonly seen = new Set<string>();
  private readonly beforeRoot: DirectoryNode;
  private readonly afterRoot: DirectoryNode;
  private readonly afterNodes: (TreeNode | undefined)[] | undefined;

  constructor(beforeRoot: DirectoryNode, afterRoot: DirectoryNode, afterNodes?: (TreeNode | undefined)[]) {
    this.beforeRoot = beforeRoot;
    this.afterRoot = afterRoot;
    this.afterNodes = afterNodes;
  }

  visitOp(op: SimpleOp): void {
    // Reads change nothing, inside a transaction too.
    if (isReadOp(op)) return;
    switch (op.type) {
      case 'create':
      case 'blob_put':
      case 'queue_push':
      case 'queue_pop':
      case 'set_insert':
      case 'set_remove':
        this.visitPath(op.path, false);
        return;
      case 'delete':
        this.visitPath(op.path, true);
        return;
      default:
        assertNever(op, 'tree op');
    }
  }

  /**
   * Walks from the root down to `path` in both trees, recording each prefix that differs;
   * with `subtree`, also every node below `path` in the tree before (what a delete removed).
   * The path is canonical, so it is walked in place, without an array of its components.
   */
  private visitPath(path: string, subtree: boolean): void {
    let b: TreeNode | undefined = this.beforeRoot;
    let a: TreeNode | undefined = this.afterRoot;
    let at = rootPath;
    // Where the next component of `path` starts; -1 once `at` is the path itself.
    let next = path === rootPath ? -1 : 1;
    for (;;) {
      // The same node object on both sides: nothing in its subtree differs either.
      if (b === a) return;
      if (next < 0) {
        if (subtree) this.visitSubtree(at, b, a);
        else this.record(at, b, a);
        return;
      }
      this.record(at, b, a);
      const slash = path.indexOf('/', next);
      const name = slash < 0 ? path.slice(next) : path.slice(next, slash);
      b = b !== undefined && b.type === 'directory' ? childOf(b, name) : undefined;
      a = a !== undefined && a.type === 'directory' ? childOf(a, name) : undefined;
      at = slash < 0 ? path : path.slice(0, slash);
      next = slash < 0 ? -1 : slash + 1;
    }
  }

  /**
   * Pre-order over the tree-before's subtree at `path` (names ascending, so the order does not
   * depend on the trie's hash order), paired with the same paths in the tree after. Nodes that
   * exist only after were created by a later op of the transaction, whose own walk finds them.
   * Iterative: a subtree can be as deep as the path limit allows and as wide as the tree.
   */
  private visitSubtree(path: string, before: TreeNode | undefined, after: TreeNode | undefined): void {
    const stack: { path: string; b: TreeNode | undefined; a: TreeNode | undefined }[] = [{ path, b: before, a: after }];
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      const { b, a } = top;
      if (b === a) continue;
      this.record(top.path, b, a);
      if (b === undefined || b.type !== 'directory') continue;
      const names = Array.from(b.children.keys()).sort();
      // Pushed in reverse so that the smallest name is visited first.
      for (let i = names.length - 1; i >= 0; i--) {
        const name = names[i] as string;
        const afterChild = a !== undefined && a.type === 'directory' ? childOf(a, name) : undefined;
        stack.push({ path: joinPath(top.path, name), b: childOf(b, name), a: afterChild });
      }
    }
  }

  private record(path: string, b: TreeNode | undefined, a: TreeNode | undefined): void {
    if (this.seen.has(path)) return;
    this.seen.add(path);
    const change = changeOf(path, b, a);
    if (change === null) return;
    this.changes.push(change);
    this.afterNodes?.push(a);
  }
}

function changeOf(path: string, b: TreeNode | undefined, a: TreeNode | undefined): TreeChange | null {
  if (b === a) return null;
  if (b === undefined) return a === undefined ? null : { kind: 'created', path, nodeType: a.type, version: a.version };
  if (a === undefined) return { kind: 'deleted', path, nodeType: b.type, version: b.version };
  if (sameState(b, a)) return null;
  return { kind: 'changed', path, nodeType: a.type, version: a.version };
}

/**
 * Two distinct node objects with the same state: only a node deleted and re-created in one
 * transaction, so the content comparison (linear in the node's size) runs only when the type
 * and version also match, and then only in that rare case.
 */
function sameState(b: TreeNode, a: TreeNode): boolean {
  if (b.version !== a.version) return false;
  switch (b.type) {
    case 'directory':
      return a.type === 'directory';
    case 'blob':
      return a.type === 'blob' && bytesEqual(b.value, a.value);
    case 'queue': {
      if (a.type !== 'queue' || a.size !== b.size) return false;
      const left = queueToArray(b);
      const right = queueToArray(a);
      return left.every((element, i) => bytesEqual(element, right[i] as Uint8Array));
    }
    case 'set': {
      if (a.type !== 'set' || a.size !== b.size) return false;
      for (const key of b.members.keys()) if (!hasMember(a, key)) return false;
      return true;
    }
    default:
      return assertNever(b, 'tree node');
  }
}
