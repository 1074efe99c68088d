/**
 * The persistent representation of tree nodes.
 *
 * Nodes are frozen plain objects; their collections are persistent structures (directory
 * children and set members NameMaps, queues ./queue.ts), so replacing one child,
 * element or member costs O(log₃₂ n) or less and shares everything else with the previous
 * version. A node is never mutated
 * after it is built: old trees stay valid.
 */

import { lookupName, NameMap, type TrieRoot } from './name_map.ts';
import { emptyQueueState, queueFirst, queueLast, queueToArray, type QueueState } from './queue.ts';
import type { Bytes } from './ops.ts';

/**
 * A directory carries the root of its children's trie itself (the `TrieRoot` fields), so a
 * lookup reads the directory and then the trie's slots, not a separate map object in between:
 * on a big tree every object on the path is a likely cache miss. `children` is the same trie
 * as a `NameMap`, a view made on demand.
 */
export type DirectoryNode = {
  readonly type: 'directory';
  readonly version: number;
  readonly children: NameMap<TreeNode>;
  /** Nodes strictly below this directory, so a delete can update counts in O(depth). */
  readonly descendants: number;
} & TrieRoot;

class DirectoryRecord implements DirectoryNode {
  readonly type = 'directory' as const;
  readonly version: number;
  readonly descendants: number;
  readonly dataMap: number;
  readonly nodeMap: number;
  readonly slots: readonly unknown[];
  readonly size: number;

  constructor(version: number, children: TrieRoot, descendants: number) {
    this.version = version;
    this.descendants = descendants;
    this.dataMap = children.dataMap;
    this.nodeMap = children.nodeMap;
    this.slots = children.slots;
    this.size = children.size;
    Object.freeze(this);
  }

  get children(): NameMap<TreeNode> {
    return NameMap.from<TreeNode>(this);
  }
}

/** The child called `name` of a directory, or undefined. */
export function childOf(dir: DirectoryNode, name: string): TreeNode | undefined {
  return lookupName<TreeNode>(dir, name);
}

export type BlobNode = { readonly type: 'blob'; readonly version: number; readonly value: Bytes };

/**
 * The queue's contents are fields of the node itself (./queue.ts), so a queue op reads one
 * object for the node and its queue, not two. `elements` is a read-only view for callers
 * that want the elements (built on demand, not stored).
 */
export type QueueNode = {
  readonly type: 'queue';
  readonly version: number;
  readonly elements: QueueElements;
} & QueueState<Bytes>;

/** A read-only view of a queue's elements. */
export type QueueElements = {
  readonly size: number;
  first(): Bytes | undefined;
  last(): Bytes | undefined;
  /** The elements, front first. */
  toArray(): Bytes[];
  [Symbol.iterator](): IterableIterator<Bytes>;
};

class QueueRecord implements QueueNode {
  readonly type = 'queue' as const;
  readonly version: number;
  readonly size: number;
  readonly front: QueueState<Bytes>['front'];
  readonly middle: QueueState<Bytes>['middle'];
  readonly back: QueueState<Bytes>['back'];
  readonly backLength: number;

  constructor(version: number, queue: QueueState<Bytes>) {
    this.version = version;
    this.size = queue.size;
    this.front = queue.front;
    this.middle = queue.middle;
    this.back = queue.back;
    this.backLength = queue.backLength;
    Object.freeze(this);
  }

  get elements(): QueueElements {
    const queue: QueueState<Bytes> = this;
    return {
      size: queue.size,
      first: () => queueFirst(queue),
      last: () => queueLast(queue),
      toArray: () => queueToArray(queue),
      [Symbol.iterator]: () => queueToArray(queue)[Symbol.iterator](),
    };
  }
}

/**
 * Members are binary strings (one char per byte): strings hash and compare by value, and
 * their natural order is the byte order of the members. They are the keys of a NameMap (the
 * value is always `true`) whose root fields the set node carries itself, as a directory does:
 * one object fewer per op than a map held in a field, and a member lookup reads one trie
 * slot and one key per level, where an Immutable.js Set read a Set, a Map, its nodes and a
 * two-element array per entry. `members` is the same trie as a NameMap, a view made on demand.
 */
export type SetNode = {
  readonly type: 'set';
  readonly version: number;
  readonly members: NameMap<true>;
} & TrieRoot;

class SetRecord implements SetNode {
  readonly type = 'set' as const;
  readonly version: number;
  readonly dataMap: number;
  readonly nodeMap: number;
  readonly slots: readonly unknown[];
  readonly size: number;

  constructor(version: number, members: TrieRoot) {
    this.version = version;
    this.dataMap = members.dataMap;
    this.nodeMap = members.nodeMap;
    this.slots = members.slots;
    this.size = members.size;
    Object.freeze(this);
  }

  get members(): NameMap<true> {
    return NameMap.from<true>(this);
  }
}

/** Whether a set node holds the member whose key (bytesToKey) is `key`. */
export function hasMember(set: SetNode, key: string): boolean {
  return lookupName<true>(set, key) !== undefined;
}

/** A set's members from their keys (duplicates count once). */
export function membersOf(keys: Iterable<string>): NameMap<true> {
  let members = NameMap.empty<true>();
  for (const key of keys) members = members.set(key, true);
  return members;
}

export type LeafNode = BlobNode | QueueNode | SetNode;
export type TreeNode = DirectoryNode | LeafNode;

const emptyBytes: Bytes = new Uint8Array(0);
const emptyChildren: NameMap<TreeNode> = NameMap.empty();
const emptyElements: QueueState<Bytes> = emptyQueueState();
const emptyMembers: NameMap<true> = NameMap.empty();

export function newDirectory(version = 0, children: TrieRoot = emptyChildren, descendants = 0): DirectoryNode {
  return new DirectoryRecord(version, children, descendants);
}

export function newBlob(version = 0, value = emptyBytes): BlobNode {
  return Object.freeze({ type: 'blob', version, value });
}

export function newQueue(version = 0, elements = emptyElements): QueueNode {
  return new QueueRecord(version, elements);
}

export function newSet(version = 0, members: TrieRoot = emptyMembers): SetNode {
  return new SetRecord(version, members);
}

/** Nodes in the subtree rooted at `node`, itself included. */
export function subtreeSize(node: TreeNode): number {
  return node.type === 'directory' ? node.descendants + 1 : 1;
}

/** Size reported by stat: bytes, elements, members or children. */
export function nodeSize(node: TreeNode): number {
  switch (node.type) {
    case 'directory':
      return node.size;
    case 'blob':
      return node.value.length;
    case 'queue':
      return node.size;
    case 'set':
      return node.size;
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
