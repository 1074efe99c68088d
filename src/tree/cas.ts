/**
 * multi_cas: an atomic, isolated transaction in one log entry (DATA_MODEL.md).
 *
 * Guards are checked against the tree as it is before the transaction; then the ops apply
 * in order on the evolving tree, reads included. The first failure aborts everything and the
 * input tree is returned as it was (the same object), so a failed transaction leaves the
 * tree byte-identical.
 */

import { treeErrors } from './errors.ts';
import type { TreeLimits } from '../base/limits.ts';
import type { Guard, MultiCasOp, OpResult, SimpleOp } from './ops.ts';
import { lookup, type Tree } from './lookup.ts';
import type { Applied } from './tree.ts';

type ApplySimple = (tree: Tree, op: SimpleOp, limits: TreeLimits) => Applied;

export function multiCas(tree: Tree, op: MultiCasOp, limits: TreeLimits, applySimple: ApplySimple): Applied {
  for (const guard of op.guards) {
    const failed = checkGuard(tree, guard);
    if (failed !== null) return { tree, outcome: { type: 'error', error: failed } };
  }
  let current = tree;
  const results: OpResult[] = [];
  for (let index = 0; index < op.ops.length; index++) {
    const applied = applySimple(current, op.ops[index] as SimpleOp, limits);
    if (applied.outcome.type === 'error') {
      return { tree, outcome: { type: 'error', error: applied.outcome.error, at: index } };
    }
    results.push(applied.outcome);
    current = applied.tree;
  }
  return { tree: current, outcome: { type: 'txn', results } };
}

/** A guard holds when the node exists with exactly that version. */
function checkGuard(tree: Tree, guard: Guard) {
  const found = lookup(tree, guard.path);
  const actual = found.ok ? found.node.version : null;
  return actual === guard.version ? null : treeErrors.casFailed(guard.path, guard.version, actual);
}
