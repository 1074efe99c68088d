/**
 * The replica's log: a persistent, bounded sequence of entries (VRR §4, §5.1).
 *
 * Entries live in an Immutable.js List (a 32-way trie), so appending, truncating a suffix and
 * dropping a committed prefix cost O(log n) and never copy the whole log; the log is held as an
 * opaque value inside the immer-managed replica state (DESIGN.md convention 5). `start` is the
 * op of the last entry dropped by truncation: the log holds ops start+1 .. start+size.
 */

import { List } from 'immutable';
import { assert } from '../base/assert.ts';
import type { LogEntry } from './messages.ts';

/**
 * A class, not a plain object, on purpose: immer does not draft class instances, so reading the
 * log inside a step costs no proxy and the log is never walked when the step's result is frozen.
 */
export class Log {
  readonly start: number;
  readonly entries: List<LogEntry>;

  constructor(start: number, entries: List<LogEntry>) {
    this.start = start;
    this.entries = entries;
    Object.freeze(this);
  }
}

export function emptyLog(start = 0): Log {
  return new Log(start, List());
}

/** The op of the last entry (or `start` when empty). */
export function lastOp(log: Log): number {
  return log.start + log.entries.size;
}

export function entryAt(log: Log, op: number): LogEntry | undefined {
  if (op <= log.start) return undefined;
  return log.entries.get(op - log.start - 1);
}

export function append(log: Log, entry: LogEntry): Log {
  assert(entry.op === lastOp(log) + 1, `log append out of order: ${entry.op} after ${lastOp(log)}`);
  return new Log(log.start, log.entries.push(entry));
}

/** Keeps entries up to and including `op` (VRR §4.2: discard an uncommitted suffix). */
export function truncateAfter(log: Log, op: number): Log {
  assert(op >= log.start, `cannot truncate the log below its start: ${op} < ${log.start}`);
  if (op >= lastOp(log)) return log;
  return new Log(log.start, log.entries.setSize(op - log.start));
}

/** Drops entries up to and including `op`, which a checkpoint now covers (VRR §5.1). */
export function dropThrough(log: Log, op: number): Log {
  if (op <= log.start) return log;
  assert(op <= lastOp(log), `cannot drop past the log's end: ${op} > ${lastOp(log)}`);
  return new Log(op, log.entries.skip(op - log.start).toList());
}

/** Entries after `op`, at most `max` of them. `op` must not be below the log's start. */
export function entriesAfter(log: Log, op: number, max: number): LogEntry[] {
  assert(op >= log.start, `entries requested below the log's start: ${op} < ${log.start}`);
  const from = op - log.start;
  return log.entries.slice(from, from + max).toArray();
}
