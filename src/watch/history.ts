/**
 * The replica's bounded window of recent committed entries, each with its net changes (and
 * blob values, by reference): what lets a watch start in the past and a slow watch catch up.
 *
 * The window covers the ops (start, last applied]. Only entries that changed the tree are
 * stored: an op missing from the window changed nothing, so nothing is lost by skipping it.
 * Bounded twice, in stored entries and in estimated bytes (the same estimate flow control
 * uses, values included, because the window keeps them alive after the tree moved on);
 * evicting the oldest entry moves `start` to its op. Each entry's changes are computed once
 * and shared by every watch that reads them.
 */

import { changeMatches, entryChanges, type TreeChange } from '../tree/events.ts';
import type { Tree } from '../tree/lookup.ts';
import type { TreeNode } from '../tree/node.ts';
import type { TreeOp } from '../tree/ops.ts';
import { estimateEventBytes, type WatchEvent } from './messages.ts';

export type HistoryEntry = {
  readonly op: number;
  /** The entry's net changes; a change is a WatchEvent without a value, so it is sent as is. */
  readonly changes: readonly TreeChange[];
  /** The events for watches that asked for values: `changes` itself when no blob was written. */
  readonly valued: readonly WatchEvent[];
  /** Estimated bytes retained by the entry. */
  readonly bytes: number;
  /** path -> index in `changes`, built on first use by an exact watch reading a large entry. */
  exact: Map<string, number> | null;
};

/** Fixed cost of one stored entry in the byte estimate (the object, its arrays). */
const entryOverheadBytes = 64;

/**
 * What the window really holds per event beyond the flow-control estimate (which counts what
 * travels): the change object, its valued twin and the path string (~130 bytes), and for a
 * value its typed array and buffer objects (~160 bytes, V8 on 64 bits). Measured: 1,000,000
 * puts of 100-byte values by 1,024 callers held ~250 MB per replica against a flow-control
 * estimate of 67 MB; with these added the estimate is within ~25% of the heap it holds.
 */
const retainedEventBytes = 128;
const retainedValueBytes = 160;

/** Changes at which an exact watch's lookup beats a scan. */
const exactIndexThreshold = 16;

/** The entry's events, or null when it changed nothing (before === after). */
export function makeEntry(op: number, before: Tree, ops: readonly TreeOp[], after: Tree, valueBytesMax: number): HistoryEntry | null {
  if (before === after) return null;
  // Each change's node in `after`, from the diff's own walk: no second lookup per blob.
  const nodes: (TreeNode | undefined)[] = [];
  const changes = entryChanges(before, ops, after, nodes);
  if (changes.length === 0) return null;
  let valued: WatchEvent[] | null = null;
  for (let i = 0; i < changes.length; i++) {
    const node = nodes[i];
    if (node === undefined || node.type !== 'blob') continue;
    valued ??= changes.slice();
    const change = changes[i] as TreeChange;
    const value = node.value;
    valued[i] = value.byteLength <= valueBytesMax ? { ...change, value } : { ...change, value: null, valueOmitted: true };
  }
  const events: readonly WatchEvent[] = valued ?? changes;
  let bytes = entryOverheadBytes;
  for (const event of events) bytes += estimateEventBytes(event) + retainedEventBytes + (event.value !== undefined && event.value !== null ? retainedValueBytes : 0);
  return { op, changes, valued: events, bytes, exact: null };
}

/** Indices in `entry.changes` of the changes a watch on (path, recursive) sees, in order. */
export function matchingIndices(entry: HistoryEntry, path: string, recursive: boolean): number[] {
  const changes = entry.changes;
  if (!recursive) {
    if (changes.length >= exactIndexThreshold) {
      if (entry.exact === null) {
        entry.exact = new Map();
        for (let i = 0; i < changes.length; i++) entry.exact.set((changes[i] as TreeChange).path, i);
      }
      const at = entry.exact.get(path);
      return at !== undefined ? [at] : [];
    }
    for (let i = 0; i < changes.length; i++) if ((changes[i] as TreeChange).path === path) return [i];
    return [];
  }
  const out: number[] = [];
  for (let i = 0; i < changes.length; i++) if (changeMatches(changes[i] as TreeChange, path, true)) out.push(i);
  return out;
}

export class History {
  /** The window starts after this op: positions below it cannot be served. */
  private startOp: number;
  private entries: (HistoryEntry | undefined)[] = [];
  private head = 0;
  private totalBytes = 0;

  constructor(start: number) {
    this.startOp = start;
  }

  get start(): number {
    return this.startOp;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Empties the window, which now starts after `start` (a checkpoint was installed). */
  restart(start: number): void {
    this.startOp = start;
    this.entries = [];
    this.head = 0;
    this.totalBytes = 0;
  }

  /** Appends the newest entry (ops increase). */
  push(entry: HistoryEntry): void {
    this.entries.push(entry);
    this.totalBytes += entry.bytes;
  }

  /** Drops the oldest entries until both bounds hold; an entry alone over the byte bound goes too. */
  evict(opsMax: number, bytesMax: number): void {
    while (this.head < this.entries.length && (this.size > opsMax || this.totalBytes > bytesMax)) {
      const oldest = this.entries[this.head] as HistoryEntry;
      // Released now, not at the next compaction: a dead entry may hold large values.
      this.entries[this.head] = undefined;
      this.head++;
      this.totalBytes -= oldest.bytes;
      this.startOp = oldest.op;
    }
    // Compact once the dead prefix dominates, so the array stays within twice the window.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** The oldest stored entry with op > `op`, or undefined. */
  firstAfter(op: number): HistoryEntry | undefined {
    let low = this.head;
    let high = this.entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.entries[mid] as HistoryEntry).op <= op) low = mid + 1;
      else high = mid;
    }
    return this.entries[low];
  }
}
