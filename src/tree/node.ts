/**
 * The persistent representation of tree nodes.
 *
 * Nodes are frozen plain objects; their collections are Immutable.js structures (hash array
 * mapped tries and vector tries), so replacing one child, element or member costs
 * O(log₃₂ n) and shares everything else with the previous version. A node is never mutated
 * after it is built: old trees stay valid.
 */

import { List, Set as ImmutableSet } from 'immutable';
import { NameMap } from './name_map.ts';
import type { Bytes } from './ops.ts';

export type DirectoryNode = {
  readonly type: 'directory';
  readonly version: number;
  readonly children: NameMap<TreeNode>;
  /** Nodes strictly below this directory, so a delete can update counts in O(depth). */
  readonly descendants: number;
};

export type BlobNode = { readonly type: 'blob'; readonly version: number; readonly value: Bytes };

export type QueueNode = { readonly type: 'queue'; readonly version: number; readonly elements: List<Bytes> };

/**
 * Members are binary strings (one char per byte): strings hash and compare by value, and
 * their natural order is the byte order of the members.
 */
export type SetNode = { readonly type: 'set'; readonly version: number; readonly members: ImmutableSet<string> };

export type LeafNode = BlobNode | QueueNode | SetNode;
export type TreeNode = DirectoryNode | LeafNode;

const emptyBytes: Bytes = new Uint8Array(0);
const emptyChildren: NameMap<TreeNode> = NameMap.empty();
const emptyElements: List<Bytes> = List();
const emptyMembers: ImmutableSet<string> = ImmutableSet();

export function newDirectory(version = 0, children = emptyChildren, descendants = 0): DirectoryNode {
  return Object.freeze({ type: 'directory', version, children, descendants });
}

export function newBlob(version = 0, value = emptyBytes): BlobNode {
  return Object.freeze({ type: 'blob', version, value });
}

export function newQueue(version = 0, elements = emptyElements): QueueNode {
  return Object.freeze({ type: 'queue', version, elements });
}

export function newSet(version = 0, members = emptyMembers): SetNode {
  return Object.freeze({ type: 'set', version, members });
}

/** Nodes in the subtree rooted at `node`, itself included. */
export function subtreeSize(node: TreeNode): number {
  return node.type === 'directory' ? node.descendants + 1 : 1;
}

/** Size reported by stat: bytes, elements, members or children. */
export function nodeSize(node: TreeNode): number {
  switch (node.type) {
    case 'directory':
      return node.children.size;
    case 'blob':
      return node.value.length;
    case 'queue':
      return node.elements.size;
    case 'set':
      return node.members.size;
  }
}

// ---- byte strings as set keys ------------------------------------------------------------

const chunk = 0x8000;

/** Bytes to a binary string (one char per byte), the key form of a set member. */
export function bytesToKey(bytes: Bytes): string {
  if (bytes.length <= chunk) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let key = '';
  for (let start = 0; start < bytes.length; start += chunk) {
    key += String.fromCharCode.apply(null, bytes.subarray(start, start + chunk) as unknown as number[]);
  }
  return key;
}

export function keyToBytes(key: string): Bytes {
  const bytes = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) bytes[i] = key.charCodeAt(i);
  return bytes;
}

export function bytesEqual(a: Bytes, b: Bytes): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Set members in ascending byte order, as bytes. */
export function sortedMembers(members: Iterable<string>): Bytes[] {
  return Array.from(members).sort(compareKeys).map(keyToBytes);
}

/** Code-unit order; for binary strings this is byte order. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
