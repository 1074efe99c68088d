/**
 * The tree value and lookups by path, shared by the tree's operations, transactions and set
 * algebra.
 */

import { treeErrors, type TreeError } from './errors.ts';
import { childOf, type DirectoryNode, type TreeNode } from './node.ts';
import type { NodeType } from './node_type.ts';
import type { OpFailure } from './ops.ts';
import { prefixPath, splitPath } from './path.ts';

/** An immutable tree value. Keeping a reference is a snapshot. */
export type Tree = { readonly root: DirectoryNode };

/** Builds a tree around a root; used by snapshot decoding. */
export function treeFromRoot(root: DirectoryNode): Tree {
  return Object.freeze({ root });
}

export type Lookup = { readonly ok: true; readonly node: TreeNode } | { readonly ok: false; readonly error: TreeError };

/** Finds the node at a canonical path. */
export function lookup(tree: Tree, path: string): Lookup {
  const components = splitPath(path);
  let node: TreeNode = tree.root;
  for (let depth = 0; depth < components.length; depth++) {
    if (node.type !== 'directory') return { ok: false, error: treeErrors.notADirectory(prefixPath(components, depth)) };
    const child: TreeNode | undefined = childOf(node, components[depth] as string);
    if (child === undefined) return { ok: false, error: treeErrors.doesNotExist(path) };
    node = child;
  }
  return { ok: true, node };
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
