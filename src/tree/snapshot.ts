/**
 * Snapshots: a tree to canonical, checksummed bytes and back, and structural equality.
 *
 * The encoding is canonical (children sorted by name, set members in byte order, queue
 * elements in queue order), so equal trees give equal bytes on every replica and a snapshot's
 * bytes can be compared or checksummed directly. Layout:
 *
 *   magic "HRTS" (4 bytes) | format version (1 byte) | CRC-32 of the body (4 bytes, BE) | body
 *
 * The body is msgpack of nested arrays: a node is `[kind, version, payload]` with kind
 * 0 directory (payload: [name, node, name, node, ...]), 1 blob (bytes), 2 queue
 * ([bytes, ...]), 3 set ([bytes, ...]). Decoding trusts nothing: bad magic, checksum, shape,
 * order or limits give a typed failure, never an exception.
 */

import CRC32 from 'crc-32';
import { Packr } from 'msgpackr';
import { treeFromRoot, type Tree } from './lookup.ts';
import { NameMap } from './name_map.ts';
import {
  bytesEqual,
  bytesToKey,
  compareKeys,
  hasMember,
  keyToBytes,
  membersOf,
  newBlob,
  newDirectory,
  newQueue,
  newSet,
  subtreeSize,
  type TreeNode,
} from './node.ts';
import type { Bytes } from './ops.ts';
import { queueOf, queueToArray, queueValues } from './queue.ts';
import { assert, assertNever } from '../base/assert.ts';
import type { ByteSink } from '../base/byte_sink.ts';

const magic = [0x48, 0x52, 0x54, 0x53]; // "HRTS"
const formatVersion = 1;
const headerBytes = 9;
/** Depth of nested directories a snapshot may hold; paths are far shallower (pathDepthMax). */
const snapshotDepthMax = 256;

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

const kindCode = { directory: 0, blob: 1, queue: 2, set: 3 } as const;

type EncodedNode = [number, number, unknown];

function encodeNode(node: TreeNode): EncodedNode {
  switch (node.type) {
    case 'directory': {
      const names = Array.from(node.children.keys()).sort(compareKeys);
      const payload: unknown[] = [];
      for (const name of names) payload.push(name, encodeNode(node.children.get(name) as TreeNode));
      return [kindCode.directory, node.version, payload];
    }
    case 'blob':
      return [kindCode.blob, node.version, node.value];
    case 'queue':
      return [kindCode.queue, node.version, queueToArray(node)];
    case 'set':
      return [kindCode.set, node.version, Array.from(node.members.keys()).sort(compareKeys).map(keyToBytes)];
    default:
      return assertNever(node, 'tree node');
  }
}

/**
 * A snapshot's content as plain nested arrays (the msgpack body before packing): what a walk of
 * the tree produces on the thread that owns it. Plain data, so it can be handed to another
 * thread (structured clone) where `packSnapshot` does the packing and checksumming.
 */
export type SnapshotTerms = { readonly root: unknown };

export function snapshotTerms(tree: Tree): SnapshotTerms {
  return { root: encodeNode(tree.root) };
}

/** Packs and checksums `snapshotTerms(tree)`: `packSnapshot(snapshotTerms(t))` equals `encodeSnapshot(t)`. */
export function packSnapshot(terms: SnapshotTerms): Uint8Array {
  const body = packr.pack(terms.root);
  const out = new Uint8Array(headerBytes + body.length);
  out.set(magic, 0);
  out[4] = formatVersion;
  new DataView(out.buffer).setUint32(5, CRC32.buf(body) >>> 0);
  out.set(body, headerBytes);
  return out;
}

/**
 * Writes the body of `tree`'s snapshot (the msgpack `packSnapshot(snapshotTerms(tree))`
 * checksums) into `sink`, byte for byte the same, yielding after every node and every
 * `elementsPerYield` elements of a queue or set, so that its caller can spread a large tree
 * over many turns of its thread (src/vr/checkpoint_writer.ts). The tree is persistent: it does
 * not change under a paused walk. A directory's names and a set's members are sorted in steps
 * too (`sortedKeys`).
 */
export function* writeSnapshotBody(tree: Tree, sink: ByteSink): Generator<void, void, void> {
  yield* writeNode(tree.root, sink);
}

/** Elements of a queue or set written between two yields. */
const elementsPerYield = 64;

/** Names listed, compared or moved between two yields while a large directory's or set's keys are sorted. */
const keysPerYield = 1024;

function* writeNode(node: TreeNode, sink: ByteSink): Generator<void, void, void> {
  sink.writeArrayHeader(3);
  sink.write(packr.pack(kindCode[node.type]));
  sink.write(packr.pack(node.version));
  switch (node.type) {
    case 'directory': {
      const names = yield* sortedKeys(node.children.keys());
      sink.writeArrayHeader(2 * names.length);
      yield;
      for (const name of names) {
        const child = node.children.get(name) as TreeNode;
        if (child.type === 'blob') {
          // A leaf, the common child: its name and node packed in one msgpackr call (each call
          // has a fixed cost), as the pair [name, node] without the pair's 1-byte header.
          sink.write(packr.pack([name, [kindCode.blob, child.version, child.value]]).subarray(1));
          yield;
          continue;
        }
        sink.write(packr.pack(name));
        yield* writeNode(child, sink);
      }
      return;
    }
    case 'blob':
      sink.write(packr.pack(node.value));
      yield;
      return;
    case 'queue':
      yield* writeElements(node.size, queueValues(node), sink);
      return;
    case 'set': {
      const members = yield* sortedKeys(node.members.keys());
      yield* writeElements(members.length, members.map(keyToBytes), sink);
      return;
    }
    default:
      return assertNever(node, 'tree node');
  }
}

/**
 * `Array.from(keys).sort(compareKeys)`, with a yield every `keysPerYield` keys listed,
 * compared or moved: a directory of 100,000 children took 87-101 ms to list and sort in one
 * go. Listed, sorted in runs of `keysPerYield`, then merged bottom-up; keys are distinct, so
 * the order is the one a single sort gives.
 */
function* sortedKeys(keys: Iterable<string>): Generator<void, string[], void> {
  let items: string[] = [];
  for (const key of keys) {
    items.push(key);
    if (items.length % keysPerYield === 0) yield;
  }
  const count = items.length;
  for (let start = 0; start < count; start += keysPerYield) {
    const run = items.slice(start, start + keysPerYield).sort(compareKeys);
    for (let i = 0; i < run.length; i++) items[start + i] = run[i] as string;
    yield;
  }
  let merged = new Array<string>(count);
  let moved = 0;
  for (let width = keysPerYield; width < count; width *= 2) {
    for (let left = 0; left < count; left += 2 * width) {
      const middle = Math.min(left + width, count);
      const right = Math.min(left + 2 * width, count);
      let i = left;
      let j = middle;
      for (let k = left; k < right; k++) {
        const a = items[i] as string;
        const b = items[j] as string;
        if (j >= right || (i < middle && compareKeys(a, b) <= 0)) {
          merged[k] = a;
          i++;
        } else {
          merged[k] = b;
          j++;
        }
        if (++moved % keysPerYield === 0) yield;
      }
    }
    [items, merged] = [merged, items];
  }
  return items;
}

function* writeElements(count: number, elements: Iterable<Bytes>, sink: ByteSink): Generator<void, void, void> {
  sink.writeArrayHeader(count);
  let written = 0;
  for (const element of elements) {
    sink.write(packr.pack(element));
    written += 1;
    if (written % elementsPerYield === 0) yield;
  }
  assert(written === count, `a queue or set of ${count} elements gave ${written}`);
  yield;
}

/** The snapshot of a body written by `writeSnapshotBody`, whose CRC-32 is `bodyCrc`: header, then body. */
export function writeSnapshotHeader(sink: ByteSink, bodyCrc: number): void {
  for (const byte of magic) sink.writeByte(byte);
  sink.writeByte(formatVersion);
  sink.writeUint32(bodyCrc >>> 0);
}

/** Bytes of a snapshot's header (magic, version, checksum) before its body. */
export const snapshotHeaderBytes = headerBytes;

export function encodeSnapshot(tree: Tree): Uint8Array {
  return packSnapshot(snapshotTerms(tree));
}

export type SnapshotDecodeResult = { readonly ok: true; readonly tree: Tree } | { readonly ok: false; readonly reason: string };

class SnapshotFormatError extends Error {}

export function decodeSnapshot(bytes: Uint8Array): SnapshotDecodeResult {
  if (!(bytes instanceof Uint8Array)) return { ok: false, reason: 'snapshot must be a Uint8Array' };
  if (bytes.length < headerBytes) return { ok: false, reason: 'snapshot truncated: no header' };
  for (let i = 0; i < magic.length; i++) {
    if (bytes[i] !== magic[i]) return { ok: false, reason: 'not a snapshot: bad magic' };
  }
  if (bytes[4] !== formatVersion) return { ok: false, reason: `unsupported snapshot format ${bytes[4]}` };
  const expected = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(5);
  const body = bytes.subarray(headerBytes);
  if (CRC32.buf(body) >>> 0 !== expected) return { ok: false, reason: 'snapshot checksum mismatch' };
  let decoded: unknown;
  try {
    decoded = packr.unpack(body);
  } catch (error) {
    return { ok: false, reason: `snapshot body is not msgpack: ${String(error)}` };
  }
  try {
    const root = decodeNode(decoded, 0);
    if (root.type !== 'directory') return { ok: false, reason: 'snapshot root is not a directory' };
    return { ok: true, tree: treeFromRoot(root) };
  } catch (error) {
    if (error instanceof SnapshotFormatError) return { ok: false, reason: error.message };
    return { ok: false, reason: `snapshot malformed: ${String(error)}` };
  }
}

function malformed(reason: string): never {
  throw new SnapshotFormatError(`snapshot malformed: ${reason}`);
}

function decodeNode(value: unknown, depth: number): TreeNode {
  if (depth > snapshotDepthMax) malformed('too deep');
  if (!Array.isArray(value) || value.length !== 3) malformed('node is not [kind, version, payload]');
  const [kind, version, payload] = value as [unknown, unknown, unknown];
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) malformed('bad version');
  switch (kind) {
    case kindCode.directory:
      return decodeDirectory(payload, version, depth);
    case kindCode.blob:
      return newBlob(version, decodeBytes(payload));
    case kindCode.queue:
      if (!Array.isArray(payload)) malformed('queue payload is not an array');
      return newQueue(version, queueOf(payload.map(decodeBytes)));
    case kindCode.set: {
      if (!Array.isArray(payload)) malformed('set payload is not an array');
      const keys = payload.map((member) => bytesToKey(decodeBytes(member)));
      for (let i = 1; i < keys.length; i++) {
        if (compareKeys(keys[i - 1] as string, keys[i] as string) >= 0) malformed('set members not in strict order');
      }
      return newSet(version, membersOf(keys));
    }
    default:
      return malformed(`unknown node kind ${String(kind)}`);
  }
}

function decodeDirectory(payload: unknown, version: number, depth: number): TreeNode {
  if (!Array.isArray(payload) || payload.length % 2 !== 0) malformed('directory payload is not [name, node, ...]');
  let descendants = 0;
  let previous: string | null = null;
  let children = NameMap.empty<TreeNode>();
  for (let i = 0; i < payload.length; i += 2) {
    const name: unknown = payload[i];
    if (typeof name !== 'string' || name === '' || name.includes('/')) malformed('bad child name');
    if (previous !== null && compareKeys(previous, name) >= 0) malformed('children not in strict order');
    previous = name;
    const child = decodeNode(payload[i + 1], depth + 1);
    descendants += subtreeSize(child);
    children = children.set(name, child);
  }
  return newDirectory(version, children, descendants);
}

/** Copies out of the decode buffer so the tree never pins the whole snapshot in memory. */
function decodeBytes(value: unknown): Bytes {
  if (!(value instanceof Uint8Array)) malformed('value is not bytes');
  return new Uint8Array(value);
}

/** Structural equality: same shape, names, types, versions and contents. */
export function treesEqual(a: Tree, b: Tree): boolean {
  return nodesEqual(a.root, b.root);
}

function nodesEqual(a: TreeNode, b: TreeNode): boolean {
  if (a === b) return true;
  if (a.version !== b.version) return false;
  switch (a.type) {
    case 'directory': {
      if (b.type !== 'directory' || a.children.size !== b.children.size) return false;
      for (const [name, child] of a.children) {
        const other = b.children.get(name);
        if (other === undefined || !nodesEqual(child, other)) return false;
      }
      return true;
    }
    case 'blob':
      return b.type === 'blob' && bytesEqual(a.value, b.value);
    case 'queue': {
      if (b.type !== 'queue' || a.size !== b.size) return false;
      const mine = queueToArray(a);
      const others = queueToArray(b);
      for (let i = 0; i < mine.length; i++) if (!bytesEqual(mine[i] as Bytes, others[i] as Bytes)) return false;
      return true;
    }
    case 'set':
      if (b.type !== 'set' || a.size !== b.size) return false;
      for (const key of a.members.keys()) if (!hasMember(b, key)) return false;
      return true;
    default:
      return assertNever(a, 'tree node');
  }
}
