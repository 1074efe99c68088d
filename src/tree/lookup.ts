/**
 * The tree value and lookups by path, shared by the tree's operations, transactions and set
 * algebra.
 */

import { treeErrors, type TreeError } from './errors.ts';
import { childOf, type DirectoryNode, type TreeNode } from './node.ts';
import type { NodeType } from './node_type.ts';
import type { OpFailure } from './ops.ts';
import { rootPath } from './path.ts';

/** An immutable tree value. Keeping a reference is a snapshot. */
export type Tree = { readonly root: DirectoryNode };

/** Builds a tree around a root; used by snapshot decoding. */
export function treeFromRoot(root: DirectoryNode): Tree {
  return Object.freeze({ root });
}

export type Lookup = { readonly ok: true; readonly node: TreeNode } | { readonly ok: false; readonly error: TreeError };

/**
 * Finds the node at a canonical path, walking it in place one component at a time (no array of
 * components: this runs for every read, guard and delete). A missing node or ancestor is
 * `does_not_exist(path)`; an ancestor that is not a directory is `not_a_directory(ancestor)`.
 */
export function lookup(tree: Tree, path: string): Lookup {
  let dir: DirectoryNode = tree.root;
  if (path === rootPath) return { ok: true, node: dir };
  for (let start = 1; ; ) {
    const slash = path.indexOf('/', start);
    const child = childOf(dir, slash < 0 ? path.slice(start) : path.slice(start, slash));
    if (child === undefined) return { ok: false, error: treeErrors.doesNotExist(path) };
    if (slash < 0) return { ok: true, node: child };
    if (child.type !== 'directory') return { ok: false, error: treeErrors.notADirectory(path.slice(0, slash)) };
    dir = child;
    start = slash + 1;
  }
}

/** Finds a node that must be of one type; `wrong_type` otherwise. */
export function lookupTyped<T extends NodeType>(
  tree: Tree,
  path: string,
  type: T,
): { readonly ok: true; readonly node: Extract<TreeNode, { type: T }> } | { readonly ok: false; readonly error: TreeError } {
  const found = lookup(tree, path);
  if (!found.ok) return found;
  if (found.node.type !== type) {
    if (type === 'directory') return { ok: false, error: treeErrors.notADirectory(path) };
    return { ok: false, error: treeErrors.wrongType(path, found.node.type) };
  }
  return { ok: true, node: found.node as Extract<TreeNode, { type: T }> };
}

export function fail(error: TreeError): OpFailure {
  return { type: 'error', error };
}
