/**
 * NameMap: the persistent map from child name to child node held by every directory, and
 * from member key to `true` held by every set.
 *
 * A hash array mapped trie (CHAMP layout: Steindorfer and Vinju, OOPSLA 2015), specialised
 * for string keys. Each trie node holds two 32-bit bitmaps and one array: the key/value pairs
 * stored at this level come first, `[key, value, key, value, ...]`, in bit order, and the
 * sub-tries follow, in reverse bit order. A lookup hashes the name once and reads, per level,
 * the node and its array, then compares the key in place: no per-entry objects. A write copies
 * one array per level, O(log₃₂ n), and shares everything else with the previous map; old maps
 * stay valid. Deletes keep the trie canonical (a sub-trie always holds at least two entries),
 * so a map's shape depends only on its contents.
 *
 * Why not Immutable.js Map (what directories used before): each entry there is a ValueNode
 * plus a two-element entry array, so a lookup follows about twice as many pointers and an
 * entry costs about 60 more bytes. On a 1M-node tree most of those pointers miss every cache
 * and the TLB, so they, not the arithmetic, set the per-op cost (src/tree/README.md).
 *
 * Iteration order is the trie's (hash) order: callers that need name order sort the keys.
 */

const bitsPerLevel = 5;
const levelMask = 0b11111;
/** At this shift the 32 hash bits are used up: a node there is a collision list. */
const collisionShift = 35;

/** FNV-1a over UTF-16 code units, then the murmur3 finaliser so every bit avalanches. */
export function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

function fragmentBit(hash: number, shift: number): number {
  return 1 << ((hash >>> shift) & levelMask);
}

/**
 * The fields of a trie's root node. A directory node carries them itself (node.ts), so a
 * lookup goes from the directory straight to its slots, one object fewer per level of the
 * path; `NameMap.from` and `lookupName` work on any holder of them.
 */
export type TrieRoot = {
  /** Bit i set: the entry whose hash fragment at this level is i is stored here. */
  readonly dataMap: number;
  /** Bit i set: the entries with fragment i are in a sub-trie. */
  readonly nodeMap: number;
  /** Entries (key, value pairs) in bit order, then sub-tries in reverse bit order. */
  readonly slots: readonly unknown[];
  /** Entries in this trie (sub-tries included). */
  readonly size: number;
};

/** The value bound to `name` in the trie rooted at `root`, or undefined. */
export function lookupName<V>(root: TrieRoot, name: string): V | undefined {
  const hash = hashName(name);
  let dataMap = root.dataMap;
  let nodeMap = root.nodeMap;
  let slots = root.slots;
  for (let shift = 0; shift < collisionShift; shift += bitsPerLevel) {
    const bit = fragmentBit(hash, shift);
    if ((dataMap & bit) !== 0) {
      const at = 2 * popcount(dataMap & (bit - 1));
      return slots[at] === name ? (slots[at + 1] as V) : undefined;
    }
    if ((nodeMap & bit) === 0) return undefined;
    const node = slots[slots.length - 1 - popcount(nodeMap & (bit - 1))] as TrieRoot;
    dataMap = node.dataMap;
    nodeMap = node.nodeMap;
    slots = node.slots;
  }
  return collisionFind(slots, name) as V | undefined;
}

export class NameMap<V> implements TrieRoot {
  readonly dataMap: number;
  readonly nodeMap: number;
  readonly slots: readonly unknown[];
  readonly size: number;

  private constructor(dataMap: number, nodeMap: number, slots: readonly unknown[], size: number) {
    this.dataMap = dataMap;
    this.nodeMap = nodeMap;
    this.slots = slots;
    this.size = size;
  }

  private static readonly theEmpty: NameMap<never> = new NameMap<never>(0, 0, [], 0);

  static empty<V>(): NameMap<V> {
    return NameMap.theEmpty as NameMap<V>;
  }

  /** The map whose root has these fields (the same object when it already is a NameMap). */
  static from<V>(root: TrieRoot): NameMap<V> {
    if (root instanceof NameMap) return root as NameMap<V>;
    if (root.size === 0) return NameMap.empty<V>();
    return new NameMap<V>(root.dataMap, root.nodeMap, root.slots, root.size);
  }

  get(name: string): V | undefined {
    return lookupName<V>(this, name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** The map with `name` bound to `value` (this map itself when it already was). */
  set(name: string, value: V): NameMap<V> {
    return NameMap.setIn<V>(this, name, value);
  }

  /** The map without `name` (this map itself when it had no such key). */
  delete(name: string): NameMap<V> {
    return NameMap.deleteIn<V>(this, name);
  }

  /**
   * `set` on the trie whose root fields `root` holds (a directory or set node), without first
   * making a NameMap view of it: a write calls this once per directory on its path.
   */
  static setIn<V>(root: TrieRoot, name: string, value: V): NameMap<V> {
    const next = NameMap.insert<V>(root, name, hashName(name), 0, value);
    return next === root ? NameMap.from<V>(root) : (next as NameMap<V>);
  }

  /** `delete` on the trie whose root fields `root` holds, without a view (see `setIn`). */
  static deleteIn<V>(root: TrieRoot, name: string): NameMap<V> {
    const next = NameMap.remove<V>(root, name, hashName(name), 0);
    if (next === root) return NameMap.from<V>(root);
    return next.size === 0 ? NameMap.empty<V>() : (next as NameMap<V>);
  }

  *keys(): IterableIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  *entries(): IterableIterator<[string, V]> {
    if (this.isCollision()) {
      for (let i = 0; i < this.slots.length; i += 2) yield [this.slots[i] as string, this.slots[i + 1] as V];
      return;
    }
    const pairs = 2 * popcount(this.dataMap);
    for (let i = 0; i < pairs; i += 2) yield [this.slots[i] as string, this.slots[i + 1] as V];
    for (let i = pairs; i < this.slots.length; i++) yield* (this.slots[i] as NameMap<V>).entries();
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }

  /** A collision list: only below the last hash level, where both bitmaps are 0. */
  private isCollision(): boolean {
    return this.dataMap === 0 && this.nodeMap === 0 && this.slots.length > 0;
  }

  /** `node` with `name` bound to `value`: a new trie node, or `node` itself when nothing changed. */
  private static insert<V>(node: TrieRoot, name: string, hash: number, shift: number, value: V): TrieRoot {
    const { dataMap, nodeMap, slots, size } = node;
    if (shift >= collisionShift) {
      const at = collisionIndex(slots, name);
      if (at >= 0) {
        if (slots[at + 1] === value) return node;
        return new NameMap<V>(0, 0, replaceAt(slots, at + 1, value), size);
      }
      // Kept in key order, so the list too depends only on the contents.
      let to = 0;
      while (to < slots.length && (slots[to] as string) < name) to += 2;
      return new NameMap<V>(0, 0, insertPair(slots, to, name, value), size + 1);
    }
    const bit = fragmentBit(hash, shift);
    if ((dataMap & bit) !== 0) {
      const at = 2 * popcount(dataMap & (bit - 1));
      const key = slots[at] as string;
      if (key === name) {
        if (slots[at + 1] === value) return node;
        return new NameMap<V>(dataMap, nodeMap, replaceAt(slots, at + 1, value), size);
      }
      // Two keys share this fragment: push both one level down.
      const sub = NameMap.pair(key, hashName(key), slots[at + 1] as V, name, hash, value, shift + bitsPerLevel);
      const nodeAt = slots.length - 2 - popcount(nodeMap & (bit - 1));
      return new NameMap<V>(dataMap ^ bit, nodeMap | bit, pairToNode(slots, at, nodeAt, sub), size + 1);
    }
    if ((nodeMap & bit) !== 0) {
      const nodeAt = slots.length - 1 - popcount(nodeMap & (bit - 1));
      const sub = slots[nodeAt] as NameMap<V>;
      const next = NameMap.insert<V>(sub, name, hash, shift + bitsPerLevel, value);
      if (next === sub) return node;
      return new NameMap<V>(dataMap, nodeMap, replaceAt(slots, nodeAt, next), size + next.size - sub.size);
    }
    const at = 2 * popcount(dataMap & (bit - 1));
    return new NameMap<V>(dataMap | bit, nodeMap, insertPair(slots, at, name, value), size + 1);
  }

  /** A trie of two entries whose hashes agree below `shift`. */
  private static pair<V>(key1: string, hash1: number, value1: V, key2: string, hash2: number, value2: V, shift: number): NameMap<V> {
    if (shift >= collisionShift) {
      return new NameMap<V>(0, 0, key1 < key2 ? [key1, value1, key2, value2] : [key2, value2, key1, value1], 2);
    }
    const bit1 = fragmentBit(hash1, shift);
    const bit2 = fragmentBit(hash2, shift);
    if (bit1 === bit2) {
      return new NameMap<V>(0, bit1, [NameMap.pair(key1, hash1, value1, key2, hash2, value2, shift + bitsPerLevel)], 2);
    }
    // Bit order, as unsigned: bit 31 is the largest.
    const first = bit1 >>> 0 < bit2 >>> 0;
    return new NameMap<V>(bit1 | bit2, 0, first ? [key1, value1, key2, value2] : [key2, value2, key1, value1], 2);
  }

  /** `node` without `name`: a new trie node, or `node` itself when it had no such key. */
  private static remove<V>(node: TrieRoot, name: string, hash: number, shift: number): TrieRoot {
    const { dataMap, nodeMap, slots, size } = node;
    if (shift >= collisionShift) {
      const at = collisionIndex(slots, name);
      if (at < 0) return node;
      return new NameMap<V>(0, 0, removePair(slots, at), size - 1);
    }
    const bit = fragmentBit(hash, shift);
    if ((dataMap & bit) !== 0) {
      const at = 2 * popcount(dataMap & (bit - 1));
      if (slots[at] !== name) return node;
      return new NameMap<V>(dataMap ^ bit, nodeMap, removePair(slots, at), size - 1);
    }
    if ((nodeMap & bit) === 0) return node;
    const nodeAt = slots.length - 1 - popcount(nodeMap & (bit - 1));
    const sub = slots[nodeAt] as NameMap<V>;
    const next = NameMap.remove<V>(sub, name, hash, shift + bitsPerLevel);
    if (next === sub) return node;
    if (next.size === 1) {
      // Canonical form: a sub-trie left with one entry is inlined as an entry here.
      const [key, value] = (next as NameMap<V>).entries().next().value as [string, V];
      const at = 2 * popcount(dataMap & (bit - 1));
      return new NameMap<V>(dataMap | bit, nodeMap ^ bit, nodeToPair(slots, at, nodeAt, key, value), size - 1);
    }
    return new NameMap<V>(dataMap, nodeMap, replaceAt(slots, nodeAt, next), size - 1);
  }
}

function collisionIndex(slots: readonly unknown[], name: string): number {
  for (let i = 0; i < slots.length; i += 2) if (slots[i] === name) return i;
  return -1;
}

function collisionFind(slots: readonly unknown[], name: string): unknown {
  const at = collisionIndex(slots, name);
  return at < 0 ? undefined : slots[at + 1];
}

function replaceAt(slots: readonly unknown[], at: number, value: unknown): unknown[] {
  const copy = slots.slice();
  copy[at] = value;
  return copy;
}

// Array copies are built at their exact length (spread and push leave spare capacity, which
// on a million entries is megabytes of heap that every lookup's pages are spread across).

/** `slots` with `key, value` inserted at `at`. */
function insertPair(slots: readonly unknown[], at: number, key: string, value: unknown): unknown[] {
  const out = new Array<unknown>(slots.length + 2);
  for (let i = 0; i < at; i++) out[i] = slots[i];
  out[at] = key;
  out[at + 1] = value;
  for (let i = at; i < slots.length; i++) out[i + 2] = slots[i];
  return out;
}

/** `slots` without the pair at `at`. */
function removePair(slots: readonly unknown[], at: number): unknown[] {
  const out = new Array<unknown>(slots.length - 2);
  for (let i = 0; i < at; i++) out[i] = slots[i];
  for (let i = at + 2; i < slots.length; i++) out[i - 2] = slots[i];
  return out;
}

/** `slots` without the pair at `at`, with `sub` at `nodeAt` of the result. */
function pairToNode(slots: readonly unknown[], at: number, nodeAt: number, sub: unknown): unknown[] {
  const out = new Array<unknown>(slots.length - 1);
  for (let i = 0; i < at; i++) out[i] = slots[i];
  for (let i = at + 2; i < nodeAt + 2; i++) out[i - 2] = slots[i];
  out[nodeAt] = sub;
  for (let i = nodeAt + 2; i < slots.length; i++) out[i - 1] = slots[i];
  return out;
}

/** `slots` without the sub-trie at `nodeAt`, with `key, value` at `at`. */
function nodeToPair(slots: readonly unknown[], at: number, nodeAt: number, key: string, value: unknown): unknown[] {
  const out = new Array<unknown>(slots.length + 1);
  for (let i = 0; i < at; i++) out[i] = slots[i];
  out[at] = key;
  out[at + 1] = value;
  for (let i = at; i < nodeAt; i++) out[i + 2] = slots[i];
  for (let i = nodeAt + 1; i < slots.length; i++) out[i + 1] = slots[i];
  return out;
}
