/**
 * Set algebra over set nodes and literal sets. Argument order is kept everywhere:
 * difference(p1, p2) is p1 − p2, isSubset(p, other) is p ⊆ other (haret sorted its operands
 * and so lost the order).
 */

import { Set as ImmutableSet } from 'immutable';
import { assertNever } from './assert.ts';
import type { TreeError } from './errors.ts';
import { bytesToKey, sortedMembers } from './node.ts';
import type { Bytes, OpOutcome, SetBinaryOp, SetCompareOp, SetOperand, SetUnionOp } from './ops.ts';
import { fail, lookupTyped, type Tree } from './lookup.ts';

type Members = ImmutableSet<string>;
type Resolved = { readonly ok: true; readonly members: Members } | { readonly ok: false; readonly error: TreeError };

function membersAt(tree: Tree, path: string): Resolved {
  const found = lookupTyped(tree, path, 'set');
  return found.ok ? { ok: true, members: found.node.members } : found;
}

function literal(members: readonly Bytes[]): Members {
  return ImmutableSet(members.map(bytesToKey));
}

function resolveOperand(tree: Tree, operand: SetOperand): Resolved {
  switch (operand.type) {
    case 'path':
      return membersAt(tree, operand.path);
    case 'literal':
      return { ok: true, members: literal(operand.members) };
    default:
      return assertNever(operand, 'set operand');
  }
}

export function applySetAlgebra(tree: Tree, op: SetUnionOp | SetBinaryOp | SetCompareOp): OpOutcome {
  switch (op.type) {
    case 'set_union':
      return union(tree, op);
    case 'set_intersection':
    case 'set_difference':
    case 'set_symmetric_difference':
      return binary(tree, op);
    case 'set_is_subset':
    case 'set_is_superset':
      return compare(tree, op);
    default:
      return assertNever(op, 'set algebra op');
  }
}

function union(tree: Tree, op: SetUnionOp): OpOutcome {
  let result: Members = ImmutableSet();
  for (const path of op.paths) {
    const resolved = membersAt(tree, path);
    if (!resolved.ok) return fail(resolved.error);
    result = result.union(resolved.members);
  }
  for (const members of op.sets) result = result.union(literal(members));
  return { type: 'set', members: sortedMembers(result) };
}

function binary(tree: Tree, op: SetBinaryOp): OpOutcome {
  const left = membersAt(tree, op.path1);
  if (!left.ok) return fail(left.error);
  const right = membersAt(tree, op.path2);
  if (!right.ok) return fail(right.error);
  return { type: 'set', members: sortedMembers(combine(op.type, left.members, right.members)) };
}

function combine(type: SetBinaryOp['type'], left: Members, right: Members): Members {
  switch (type) {
    case 'set_intersection':
      return left.intersect(right);
    case 'set_difference':
      return left.subtract(right);
    case 'set_symmetric_difference':
      return left.subtract(right).union(right.subtract(left));
    default:
      return assertNever(type, 'binary set op');
  }
}

function compare(tree: Tree, op: SetCompareOp): OpOutcome {
  const left = membersAt(tree, op.path);
  if (!left.ok) return fail(left.error);
  const right = resolveOperand(tree, op.other);
  if (!right.ok) return fail(right.error);
  const value = op.type === 'set_is_subset' ? left.members.isSubset(right.members) : left.members.isSuperset(right.members);
  return { type: 'answer', value };
}
