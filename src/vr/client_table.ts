/**
 * The client table (VRR §4.1, §6): per client, the last request number executed and, for a
 * write, its reply, so a duplicate gets the identical answer and never executes twice.
 * Replicated: every replica updates it when it applies a committed entry, so it survives view
 * changes, recovery and state transfer. Expiry is deterministic (by committed op, never by a
 * clock).
 *
 * Shape: a persistent LRU in two persistent parts, both shared with older tables:
 * - `sessions`, a NameMap (src/tree/name_map.ts) from client id to the session's record;
 * - `order`, a queue (src/tree/queue.ts) of records in the order they were activated. A record
 *   in the queue is live while `sessions` still maps its client id to that very object; an
 *   activation writes a new record and pushes it at the back, which leaves the session's earlier
 *   record in the queue stale.
 * So
 * - activating a session (register, or a tree request that executes) costs one map write and
 *   one push, O(log32 n);
 * - the front of the queue is always live (stale records are dropped when they reach it), so the
 *   least recently active session is read in O(1); eviction at capacity and idle expiry pop it:
 *   O(evicted) plus the stale records behind it;
 * - stale records are bounded without a pause: when the queue holds more than twice the
 *   sessions plus `clientTableStaleSlack`, a sweep starts, and every activation then moves
 *   `sweepStep` records from the unswept part of the queue to the swept part (in order,
 *   dropping the stale ones) until the unswept part is empty. The queue is the swept part then
 *   the unswept part, and pushes go to the back of the unswept part, so the order is unchanged.
 *   A sweep of L records ends within L/3 activations, so the queue never holds more than about
 *   (8/3)n + 2 * slack records. A one-shot rebuild did the same work at once: a 50-136 ms pause
 *   at 100,000 sessions, on every replica at the same op.
 * Nothing ever sorts the table. The production wedge this replaced: at 100,000
 * sessions every further `register` copied and sorted the whole table (O(n log n), ~150 ms),
 * hundreds of times per log entry, on every replica. Before this shape, a doubly linked list
 * threaded through an Immutable.js Map took four map writes per activation (the session, both
 * neighbours, the old tail) and was half of a replica's apply time under load.
 *
 * Order: least recently active first; sessions active at the same op are in the order the log
 * applied them (the order of requests in the entry). Every replica applying the same log
 * holds the same sessions in the same order (how many stale records each holds may differ, e.g.
 * after a checkpoint image, and never shows), and checkpoint images carry that order
 * (src/vr/checkpoint.ts). Invariant: lastActiveOp never decreases from front to back (an
 * activation at op k goes to the back, and ops are applied in increasing order), which is what
 * makes popping idle sessions from the front exact.
 *
 * A class on purpose (like `Machine`): immer does not draft class instances, so a step never
 * proxies or walks the table; it is frozen, and every change returns a new table.
 */

import { assert } from '../base/assert.ts';
import { NameMap } from '../tree/name_map.ts';
import { emptyQueueState, queueFirst, queueLast, queueOf, queuePush, queueShift, queueToArray, queueValues, type QueueState } from '../tree/queue.ts';
import type { ReplyBody } from './messages.ts';

export type ClientRecord = {
  readonly requestNum: number;
  /**
   * The reply to `requestNum` when it was a write: a retry gets it again. Null after
   * registration (requestNum 0), and after a read-only request: a read's answer (possibly a
   * large blob) is not kept, a retry of it executes again (src/vr/state_machine.ts).
   */
  readonly reply: ReplyBody | null;
  /** The log entry that executed `requestNum`. */
  readonly replyOp: number;
  /** The op at which the client was last active, for expiry. */
  readonly lastActiveOp: number;
};

/** A record as the table holds it: its client id with it, so a queued record names its session. */
type Session = ClientRecord & { readonly clientId: string };

type Sessions = NameMap<Session>;
type Queue = QueueState<Session>;

/**
 * Every activation's record, oldest first: `swept` then `rest`. `sweeping`: a sweep is moving
 * records from the front of `rest` to the back of `swept`, dropping stale ones. The front and
 * the back of the whole are live (or it is empty).
 */
type Order = { readonly swept: Queue; readonly rest: Queue; readonly sweeping: boolean };

/** Stale records the queue may hold beyond as many as there are sessions before a sweep starts. */
export const clientTableStaleSlack = 1024;

/** Records a sweep moves per activation: more than the one each activation pushes, so it ends. */
const sweepStep = 4;

const emptyQueue = emptyQueueState<Session>();
const emptyOrder: Order = { swept: emptyQueue, rest: emptyQueue, sweeping: false };

function orderSize(order: Order): number {
  return order.swept.size + order.rest.size;
}

/** The least recently active record of the order `swept` then `rest` (the table's and the editor's). */
function frontOf(swept: Queue, rest: Queue): Session | undefined {
  return swept.size > 0 ? queueFirst(swept) : queueFirst(rest);
}

/** The most recently active record of the order `swept` then `rest`. */
function backOf(swept: Queue, rest: Queue): Session | undefined {
  return rest.size > 0 ? queueLast(rest) : queueLast(swept);
}

function orderToArray(order: Order): Session[] {
  const swept = queueToArray(order.swept);
  return swept.length === 0 ? queueToArray(order.rest) : swept.concat(queueToArray(order.rest));
}

export class ClientTable {
  readonly #sessions: Sessions;
  /** Every activation's record, oldest first (see `Order`). */
  readonly #order: Order;
  /** Least recently active session, null when empty. */
  readonly head: string | null;
  /** Most recently active session, null when empty. */
  readonly tail: string | null;

  /** Use `emptyClientTable`, `edit` or `clientTableFromOrdered`: sessions and order must agree. */
  private constructor(sessions: Sessions, order: Order) {
    this.#sessions = sessions;
    this.#order = order;
    this.head = frontOf(order.swept, order.rest)?.clientId ?? null;
    this.tail = backOf(order.swept, order.rest)?.clientId ?? null;
    Object.freeze(this);
  }

  static readonly empty: ClientTable = new ClientTable(NameMap.empty<Session>(), emptyOrder);

  get size(): number {
    return this.#sessions.size;
  }

  /** Records in the order queue, live and stale (for tests and the bound on stale records). */
  get recordsQueued(): number {
    return orderSize(this.#order);
  }

  /** Whether a sweep of stale records is under way (for tests). */
  get sweeping(): boolean {
    return this.#order.sweeping;
  }

  has(clientId: string): boolean {
    return this.#sessions.get(clientId) !== undefined;
  }

  /** The record of `clientId`, or undefined. */
  get(clientId: string): ClientRecord | undefined {
    const session = this.#sessions.get(clientId);
    return session === undefined ? undefined : recordOf(session);
  }

  /**
   * Sessions from least to most recently active (head to tail), as an array: what a checkpoint
   * image holds. O(n + stale), and a map lookup per record only when some are stale (a table
   * decoded from an image has none, nor one whose stale records all reached the front): at 100,000 sessions a checkpoint's walk runs on the
   * replica's thread, between its messages.
   */
  orderedRecords(): [string, ClientRecord][] {
    const queued = orderToArray(this.#order);
    const sessions = this.#sessions;
    const out = new Array<[string, ClientRecord]>(sessions.size);
    const allLive = queued.length === sessions.size;
    let live = 0;
    for (const session of queued) {
      if (allLive || sessions.get(session.clientId) === session) out[live++] = [session.clientId, recordOf(session)];
    }
    assert(live === sessions.size, `client table queue holds ${live} live records for ${sessions.size} sessions`);
    return out;
  }

  /**
   * The records of `orderedRecords`, one at a time, for a checkpoint written over many turns
   * (src/vr/checkpoint_writer.ts): the table is persistent, so a walk that pauses between
   * records still reads this very table, and nothing is copied up front.
   */
  *recordsInOrder(): Generator<readonly [string, ClientRecord], void, void> {
    const sessions = this.#sessions;
    // No stale record queued: every record is live, and no lookup is needed to tell.
    const allLive = orderSize(this.#order) === sessions.size;
    let live = 0;
    for (const part of [this.#order.swept, this.#order.rest]) {
      for (const session of queueValues(part)) {
        if (!allLive && sessions.get(session.clientId) !== session) continue;
        live += 1;
        yield [session.clientId, recordOf(session)];
      }
    }
    assert(live === sessions.size, `client table queue holds ${live} live records for ${sessions.size} sessions`);
  }

  /** Sessions from least to most recently active (head to tail). O(n + stale); for images and tests. */
  *entries(): IterableIterator<[string, ClientRecord]> {
    yield* this.orderedRecords();
  }

  [Symbol.iterator](): IterableIterator<[string, ClientRecord]> {
    return this.entries();
  }

  /** Client ids from least to most recently active. */
  ids(): string[] {
    const out: string[] = [];
    for (const [id] of this.entries()) out.push(id);
    return out;
  }

  /**
   * Applies `change` to a working copy and returns the new table (this one when nothing
   * changed). One working copy per log entry.
   */
  edit(change: (editor: ClientTableEditor) => void): ClientTable {
    const editor = new ClientTableEditor(this.#sessions, this.#order);
    change(editor);
    return editor.done(this);
  }

  /** Internal: the editor's result. */
  static fromEditor(sessions: Sessions, order: Order): ClientTable {
    return sessions.size === 0 ? ClientTable.empty : new ClientTable(sessions, order);
  }
}

/** A working copy of a table: changes make new persistent maps and queues; the table it came from is untouched. */
export class ClientTableEditor {
  #sessions: Sessions;
  /** The table's `Order`, in three fields: one new object per change would be garbage per request. */
  #swept: Queue;
  #rest: Queue;
  #sweeping: boolean;
  #changed = false;
  /**
   * What the last `get` found, until the next change: applying a request reads its session,
   * then activates that same session, which need not be looked up again.
   */
  #gotId: string | null = null;
  #got: Session | undefined = undefined;
  /** The back of the queue as `activate` last pushed it (null: read the queue), for the order assertion. */
  #tailSession: Session | null = null;

  constructor(sessions: Sessions, order: Order) {
    this.#sessions = sessions;
    this.#swept = order.swept;
    this.#rest = order.rest;
    this.#sweeping = order.sweeping;
  }

  get size(): number {
    return this.#sessions.size;
  }

  get(clientId: string): ClientRecord | undefined {
    const session = this.#sessions.get(clientId);
    this.#gotId = clientId;
    this.#got = session;
    return session;
  }

  /** The least recently active session's id and record, or null. */
  oldest(): { readonly clientId: string; readonly record: ClientRecord } | null {
    const front = this.#front();
    return front === undefined ? null : { clientId: front.clientId, record: front };
  }

  /**
   * Stores the record `{requestNum, reply, replyOp, lastActiveOp}` for `clientId` (new or known)
   * as the most recently active session. Callers activate at the op being applied, so
   * lastActiveOp stays non-decreasing along the order.
   */
  activate(clientId: string, requestNum: number, reply: ReplyBody | null, replyOp: number, lastActiveOp: number): void {
    const known = clientId === this.#gotId ? this.#got : this.#sessions.get(clientId);
    this.#gotId = null;
    const newest = this.#tailSession ?? backOf(this.#swept, this.#rest);
    assert(newest === undefined || newest.lastActiveOp <= lastActiveOp, `client ${clientId} activated at op ${lastActiveOp}, before the tail`);
    const session: Session = { requestNum, reply, replyOp, lastActiveOp, clientId };
    this.#changed = true;
    this.#sessions = this.#sessions.set(clientId, session);
    this.#rest = queuePush(this.#rest, session);
    this.#tailSession = session;
    // Its earlier record is stale now; when that was the front, the front moves on.
    if (known !== undefined && this.#front() === known) this.#dropStaleFront();
    if (this.#sweeping) this.#sweep();
    else if (this.#swept.size + this.#rest.size > 2 * this.#sessions.size + clientTableStaleSlack) this.#sweeping = true;
  }

  /** Removes the least recently active session; returns its id (null when empty). */
  evictOldest(): string | null {
    const front = this.#front();
    if (front === undefined) return null;
    this.#changed = true;
    this.#gotId = null;
    this.#sessions = this.#sessions.delete(front.clientId);
    this.#dropStaleFront();
    if (this.#sessions.size === 0) this.#tailSession = null;
    return front.clientId;
  }

  /** Evicts least recently active sessions while more than `max` remain. O(evicted). */
  evictBeyond(max: number): void {
    while (this.size > max) this.evictOldest();
  }

  /** Expires sessions idle for more than `idleOps` at `atOp`, oldest first. O(expired). */
  expireIdle(atOp: number, idleOps: number): void {
    for (let oldest = this.oldest(); oldest !== null && atOp - oldest.record.lastActiveOp > idleOps; oldest = this.oldest()) this.evictOldest();
  }

  done(base: ClientTable): ClientTable {
    if (!this.#changed) return base;
    return ClientTable.fromEditor(this.#sessions, { swept: this.#swept, rest: this.#rest, sweeping: this.#sweeping });
  }

  #front(): Session | undefined {
    return frontOf(this.#swept, this.#rest);
  }

  /** Shifts the front off the queue, then every stale record that reaches the front. */
  #dropStaleFront(): void {
    for (;;) {
      if (this.#swept.size > 0) this.#swept = queueShift(this.#swept) ?? emptyQueue;
      else this.#rest = queueShift(this.#rest) ?? emptyQueue;
      const front = this.#front();
      if (front === undefined || this.#sessions.get(front.clientId) === front) return;
    }
  }

  /** One step of the sweep: `sweepStep` records from the front of `rest` to `swept`, the stale ones dropped. */
  #sweep(): void {
    for (let moved = 0; moved < sweepStep; moved++) {
      const record = queueFirst(this.#rest);
      if (record === undefined) {
        // Swept through: the swept part is the whole queue again.
        this.#rest = this.#swept;
        this.#swept = emptyQueue;
        this.#sweeping = false;
        return;
      }
      this.#rest = queueShift(this.#rest) ?? emptyQueue;
      if (this.#sessions.get(record.clientId) === record) this.#swept = queuePush(this.#swept, record);
    }
  }
}

function recordOf(session: Session): ClientRecord {
  return { requestNum: session.requestNum, reply: session.reply, replyOp: session.replyOp, lastActiveOp: session.lastActiveOp };
}

export function emptyClientTable(): ClientTable {
  return ClientTable.empty;
}

/**
 * A table holding `ordered` (least to most recently active), e.g. decoded from a checkpoint
 * image. O(n). Returns a reason instead when the list cannot be such a table: a duplicate
 * client id, or lastActiveOp decreasing along the order.
 */
export function clientTableFromOrdered(ordered: readonly (readonly [string, ClientRecord])[]): { readonly ok: true; readonly table: ClientTable } | { readonly ok: false; readonly reason: string } {
  if (ordered.length === 0) return { ok: true, table: ClientTable.empty };
  let previousActive = -1;
  for (let i = 0; i < ordered.length; i++) {
    const active = (ordered[i] as readonly [string, ClientRecord])[1].lastActiveOp;
    if (active < previousActive) return { ok: false, reason: `client table out of order at position ${i}: lastActiveOp ${active} after ${previousActive}` };
    previousActive = active;
  }
  let sessions = NameMap.empty<Session>();
  const order: Session[] = new Array<Session>(ordered.length);
  for (let i = 0; i < ordered.length; i++) {
    const [clientId, record] = ordered[i] as readonly [string, ClientRecord];
    const session: Session = { requestNum: record.requestNum, reply: record.reply, replyOp: record.replyOp, lastActiveOp: record.lastActiveOp, clientId };
    sessions = sessions.set(clientId, session);
    order[i] = session;
  }
  if (sessions.size !== ordered.length) return { ok: false, reason: 'client table holds a client id twice' };
  return { ok: true, table: ClientTable.fromEditor(sessions, { swept: emptyQueue, rest: queueOf(order), sweeping: false }) };
}
