/**
 * Set algebra over set nodes and literal sets. Argument order is kept everywhere:
 * difference(p1, p2) is p1 − p2, isSubset(p, other) is p ⊆ other (haret sorted its operands
 * and so lost the order).
 */

import { assertNever } from '../base/assert.ts';
import type { TreeError } from './errors.ts';
import { bytesToKey, sortedMembers } from './node.ts';
import type { Bytes, OpOutcome, SetBinaryOp, SetCompareOp, SetOperand, SetUnionOp } from './ops.ts';
import { fail, lookupTyped, type Tree } from './lookup.ts';

/**
 * An operand's members as keys (bytesToKey): a set node's NameMap or a literal's native Set.
 * Results are sorted before they leave (sortedMembers), so no iteration order shows.
 */
type Members = { readonly size: number; has(key: string): boolean; keys(): IterableIterator<string> };
type Resolved = { readonly ok: true; readonly members: Members } | { readonly ok: false; readonly error: TreeError };

function membersAt(tree: Tree, path: string): Resolved {
  const found = lookupTyped(tree, path, 'set');
  return found.ok ? { ok: true, members: found.node.members } : found;
}

function literal(members: readonly Bytes[]): Members {
  return new Set(members.map(bytesToKey));
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

/** Every member of `a` is in `b`. */
function isSubset(a: Members, b: Members): boolean {
  if (a.size > b.size) return false;
  for (const key of a.keys()) if (!b.has(key)) return false;
  return true;
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
  const result = new Set<string>();
  for (const path of op.paths) {
    const resolved = membersAt(tree, path);
    if (!resolved.ok) return fail(resolved.error);
    for (const key of resolved.members.keys()) result.add(key);
  }
  for (const members of op.sets) for (const member of members) result.add(bytesToKey(member));
  return { type: 'set', members: sortedMembers(result) };
}

function binary(tree: Tree, op: SetBinaryOp): OpOutcome {
  const left = membersAt(tree, op.path1);
  if (!left.ok) return fail(left.error);
  const right = membersAt(tree, op.path2);
  if (!right.ok) return fail(right.error);
  return { type: 'set', members: sortedMembers(combine(op.type, left.members, right.members)) };
}

/** The keys of the result, unsorted. */
function combine(type: SetBinaryOp['type'], left: Members, right: Members): string[] {
  const out: string[] = [];
  switch (type) {
    case 'set_intersection':
      for (const key of left.keys()) if (right.has(key)) out.push(key);
      return out;
    case 'set_difference':
      for (const key of left.keys()) if (!right.has(key)) out.push(key);
      return out;
    case 'set_symmetric_difference':
      for (const key of left.keys()) if (!right.has(key)) out.push(key);
      for (const key of right.keys()) if (!left.has(key)) out.push(key);
      return out;
    default:
      return assertNever(type, 'binary set op');
  }
}

function compare(tree: Tree, op: SetCompareOp): OpOutcome {
  const left = membersAt(tree, op.path);
  if (!left.ok) return fail(left.error);
  const right = resolveOperand(tree, op.other);
  if (!right.ok) return fail(right.error);
  const value = op.type === 'set_is_subset' ? isSubset(left.members, right.members) : isSubset(right.members, left.members);
  return { type: 'answer', value };
}
