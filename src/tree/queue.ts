/**
 * The elements of a queue node: a persistent FIFO that touches few objects per operation.
 *
 * Why not Immutable.js List (what queues used before): a push there copies the tail vector
 * node (up to 32 slots) and builds a new List object, and a shift goes through its bounds
 * logic, reading the List, its root and tail nodes and their arrays: about six objects per
 * op. On a big tree each of those is a cache (and TLB) miss (./README.md "Representation and
 * cost"), so that, more than the arithmetic, set the cost of queue_push and queue_pop.
 *
 * Layout (three parts, elements in queue order front, middle, back):
 * - `front`: a cons list, oldest element first; a pop takes its head (reads one cell).
 * - `middle`: an Immutable.js List of chunks, each a cons list of `chunkLength` elements,
 *   oldest first. Touched once per `chunkLength` pushes or pops.
 * - `back`: a cons list, newest element first, of fewer than `chunkLength` elements; a push
 *   adds one cell and reads nothing but the queue value itself. When it is full it is
 *   reversed (into cells allocated together, so later pops read them from a few cache lines)
 *   and appended to `middle`.
 * Invariant: `front` is null only when the queue is empty. Every operation is O(1) plus, once
 * per `chunkLength` elements, O(chunkLength + log₃₂ chunks): a worst-case bound, not an
 * amortised one, so it holds however old versions are reused (a replica re-applies ops to an
 * old tree whenever a transaction aborts). Values are never mutated after they are built.
 */

import { List } from 'immutable';

/** A cell of a persistent singly linked list. */
export type Cell<T> = { readonly value: T; readonly next: Cell<T> | null };

/** Elements per middle chunk, and the most the back list holds before it becomes a chunk. */
const chunkLength = 32;

function cell<T>(value: T, next: Cell<T> | null): Cell<T> {
  return { value, next };
}

/** A cons list in the reverse order of `list`, and its length. */
function reverse<T>(list: Cell<T> | null): Cell<T> | null {
  let out: Cell<T> | null = null;
  for (let at = list; at !== null; at = at.next) out = cell(at.value, out);
  return out;
}

function lastOf<T>(list: Cell<T>): T {
  let at = list;
  while (at.next !== null) at = at.next;
  return at.value;
}

/**
 * A queue's contents. The queue node carries these fields itself (node.ts), so an op reads
 * one object for the node and its queue, not two.
 */
export type QueueState<T> = {
  readonly size: number;
  readonly front: Cell<T> | null;
  readonly middle: List<Cell<T>>;
  readonly back: Cell<T> | null;
  readonly backLength: number;
};

const emptyMiddle: List<Cell<never>> = List();

export function emptyQueueState<T>(): QueueState<T> {
  return { size: 0, front: null, middle: emptyMiddle, back: null, backLength: 0 };
}

function state<T>(size: number, front: Cell<T> | null, middle: List<Cell<T>>, back: Cell<T> | null, backLength: number): QueueState<T> {
  return { size, front, middle, back, backLength };
}

/** A queue of `values`, the first one at the front. */
export function queueOf<T>(values: readonly T[]): QueueState<T> {
  // Chunks from the end backwards, so each list is built oldest first without reversing.
  const chunkOf = (start: number, end: number): Cell<T> | null => {
    let list: Cell<T> | null = null;
    for (let i = end - 1; i >= start; i--) list = cell(values[i] as T, list);
    return list;
  };
  const frontEnd = Math.min(chunkLength, values.length);
  const chunks: Cell<T>[] = [];
  for (let start = frontEnd; start < values.length; start += chunkLength) {
    chunks.push(chunkOf(start, Math.min(start + chunkLength, values.length)) as Cell<T>);
  }
  return state(values.length, chunkOf(0, frontEnd), chunks.length === 0 ? emptyMiddle : List(chunks), null, 0);
}

/** The queue with `value` added at the back. */
export function queuePush<T>(q: QueueState<T>, value: T): QueueState<T> {
  if (q.front === null) return state(1, cell(value, null), q.middle, null, 0);
  if (q.backLength + 1 < chunkLength) return state(q.size + 1, q.front, q.middle, cell(value, q.back), q.backLength + 1);
  // The back is full: it becomes a chunk of the middle, oldest first.
  const chunk = reverse(cell(value, q.back)) as Cell<T>;
  return state(q.size + 1, q.front, q.middle.push(chunk), null, 0);
}

/** The queue without its front element; null when it is empty (nothing to remove). */
export function queueShift<T>(q: QueueState<T>): QueueState<T> | null {
  const front = q.front;
  if (front === null) return null;
  if (front.next !== null) return state(q.size - 1, front.next, q.middle, q.back, q.backLength);
  // The front list is used up: the next chunk, or else the back list, becomes the front.
  const next = q.middle.first();
  if (next !== undefined) return state(q.size - 1, next, q.middle.shift(), q.back, q.backLength);
  return state(q.size - 1, reverse(q.back), q.middle, null, 0);
}

/** The front element; undefined when the queue is empty. */
export function queueFirst<T>(q: QueueState<T>): T | undefined {
  return q.front === null ? undefined : q.front.value;
}

/** The back element; undefined when the queue is empty. */
export function queueLast<T>(q: QueueState<T>): T | undefined {
  if (q.back !== null) return q.back.value;
  const chunk = q.middle.last();
  if (chunk !== undefined) return lastOf(chunk);
  return q.front === null ? undefined : lastOf(q.front);
}

/** The elements, front first. */
export function queueToArray<T>(q: QueueState<T>): T[] {
  const out = new Array<T>(q.size);
  let i = 0;
  for (let at = q.front; at !== null; at = at.next) out[i++] = at.value;
  for (const chunk of q.middle) for (let at: Cell<T> | null = chunk; at !== null; at = at.next) out[i++] = at.value;
  i = q.size;
  for (let at = q.back; at !== null; at = at.next) out[--i] = at.value;
  return out;
}

/**
 * The elements, front first, one at a time: a walk spread over many turns (a checkpoint
 * written in slices) reads a queue that never changes under it, so it needs no copy.
 */
export function* queueValues<T>(q: QueueState<T>): Generator<T, void, void> {
  for (let at = q.front; at !== null; at = at.next) yield at.value;
  for (const chunk of q.middle) for (let at: Cell<T> | null = chunk; at !== null; at = at.next) yield at.value;
  // The back list is newest first and holds fewer than `chunkLength` elements.
  const back: T[] = [];
  for (let at = q.back; at !== null; at = at.next) back.push(at.value);
  for (let i = back.length - 1; i >= 0; i--) yield back[i] as T;
}
