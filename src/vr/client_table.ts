/**
 * The client table (VRR §4.1, §6): per client, the last request number executed and, for a
 * write, its reply, so a duplicate gets the identical answer and never executes twice.
 * Replicated: every replica updates it when it applies a committed entry, so it survives view
 * changes, recovery and state transfer. Expiry is deterministic (by committed op, never by a
 * clock).
 *
 * Shape: a persistent LRU. The records live in an Immutable.js Map, threaded by an intrusive
 * doubly linked list: each session names its older and newer neighbour by client id, and the
 * table names `head` (least recently active) and `tail` (most recently active). So
 * - activating a session (register, or a tree request that executes) moves it to the tail:
 *   a handful of O(log32 n) map writes;
 * - eviction at capacity pops the head: O(evicted);
 * - idle expiry pops from the head while the head is idle too long: O(expired).
 * Nothing ever scans or sorts the table. The production wedge this replaced: at 100,000
 * sessions every further `register` copied and sorted the whole table (O(n log n), ~150 ms),
 * hundreds of times per log entry, on every replica.
 *
 * Order: least recently active first; sessions active at the same op are in the order the log
 * applied them (the order of requests in the entry). Every replica applying the same log
 * holds the same table, order included, and checkpoint images carry that order
 * (src/vr/checkpoint.ts). Invariant: lastActiveOp never decreases from head to tail (an
 * activation at op k moves the session to the tail, and ops are applied in increasing order),
 * which is what makes popping idle sessions from the head exact.
 *
 * A class on purpose (like `Machine`): immer does not draft class instances, so a step never
 * proxies or walks the table; it is frozen, and every change returns a new table.
 */

import { Map as ImmutableMap } from 'immutable';
import { assert } from '../base/assert.ts';
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

/** A record threaded into the LRU list: its neighbours by client id (null at either end). */
type Session = ClientRecord & {
  /** The next less recently active session, null at the head. */
  readonly older: string | null;
  /** The next more recently active session, null at the tail. */
  readonly newer: string | null;
};

type Sessions = ImmutableMap<string, Session>;

export class ClientTable {
  readonly #sessions: Sessions;
  /** Least recently active session, null when empty. */
  readonly head: string | null;
  /** Most recently active session, null when empty. */
  readonly tail: string | null;

  /** Use `emptyClientTable`, `edit` or `clientTableFromOrdered`: the links must be consistent. */
  private constructor(sessions: Sessions, head: string | null, tail: string | null) {
    this.#sessions = sessions;
    this.head = head;
    this.tail = tail;
    Object.freeze(this);
  }

  static readonly empty: ClientTable = new ClientTable(ImmutableMap(), null, null);

  get size(): number {
    return this.#sessions.size;
  }

  has(clientId: string): boolean {
    return this.#sessions.has(clientId);
  }

  /** The record of `clientId` (without its links), or undefined. */
  get(clientId: string): ClientRecord | undefined {
    const session = this.#sessions.get(clientId);
    return session === undefined ? undefined : recordOf(session);
  }

  /** Sessions from least to most recently active (head to tail). O(n); for images and tests. */
  *entries(): IterableIterator<[string, ClientRecord]> {
    let id = this.head;
    while (id !== null) {
      const session = this.#sessions.get(id);
      assert(session !== undefined, `client table list names missing session ${id}`);
      yield [id, recordOf(session)];
      id = session.newer;
    }
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
   * Applies `change` to a mutable working copy and returns the new table (this one when
   * nothing changed). One working copy per log entry: the map's nodes are then copied once
   * per entry, not once per write.
   */
  edit(change: (editor: ClientTableEditor) => void): ClientTable {
    const editor = new ClientTableEditor(this.#sessions, this.head, this.tail);
    change(editor);
    return editor.done(this);
  }

  /** Internal: the editor's result. */
  static fromEditor(sessions: Sessions, head: string | null, tail: string | null): ClientTable {
    return sessions.size === 0 ? ClientTable.empty : new ClientTable(sessions, head, tail);
  }
}

/**
 * A working copy of a table. Changes go into a mutable Immutable.js map (`asMutable`: the
 * table it came from is untouched) until `done`.
 */
export class ClientTableEditor {
  #sessions: Sessions | null;
  readonly #base: Sessions;
  #head: string | null;
  #tail: string | null;
  #changed = false;
  /**
   * What the last `get` found, until the next change: applying a request reads its session,
   * then activates that same session, which need not be looked up again.
   */
  #gotId: string | null = null;
  #got: Session | undefined = undefined;
  /** The tail's session as `activate` last wrote it (null: look it up), so the next activation need not. */
  #tailSession: Session | null = null;

  constructor(sessions: Sessions, head: string | null, tail: string | null) {
    this.#base = sessions;
    this.#sessions = null;
    this.#head = head;
    this.#tail = tail;
  }

  get size(): number {
    return this.#read().size;
  }

  get(clientId: string): ClientRecord | undefined {
    const session = this.#read().get(clientId);
    this.#gotId = clientId;
    this.#got = session;
    return session;
  }

  /** The least recently active session's id and record, or null. */
  oldest(): { readonly clientId: string; readonly record: ClientRecord } | null {
    if (this.#head === null) return null;
    const record = this.#read().get(this.#head);
    assert(record !== undefined, `client table head ${this.#head} is missing`);
    return { clientId: this.#head, record };
  }

  /**
   * Stores the record `{requestNum, reply, replyOp, lastActiveOp}` for `clientId` (new or known)
   * as the most recently active session. Its fields come one by one, so the session is the only
   * record made. Callers activate at the op being applied, so lastActiveOp stays non-decreasing
   * along the list. A known session moved to the tail costs: its own write, one write to each
   * neighbour and one to the old tail (the neighbour that is the old tail written once).
   */
  activate(clientId: string, requestNum: number, reply: ReplyBody | null, replyOp: number, lastActiveOp: number): void {
    const map = this.#write();
    const tail = this.#tail;
    const known = clientId === this.#gotId ? this.#got : map.get(clientId);
    this.#gotId = null;
    if (known !== undefined && known.newer === null) {
      // Already the tail: only its record changes.
      assert(known.lastActiveOp <= lastActiveOp, `client ${clientId} activated at op ${lastActiveOp}, before the tail`);
      const session: Session = { requestNum, reply, replyOp, lastActiveOp, older: known.older, newer: null };
      map.set(clientId, session);
      this.#tailSession = session;
      return;
    }
    if (tail === null) {
      this.#head = clientId;
    } else {
      const previous = this.#tailSession ?? map.get(tail);
      assert(previous !== undefined, `client table tail ${tail} is missing`);
      assert(previous.lastActiveOp <= lastActiveOp, `client ${clientId} activated at op ${lastActiveOp}, before the tail`);
      if (known === undefined) {
        map.set(tail, linked(previous, previous.older, clientId));
      } else if (known.newer === tail) {
        // The old tail is its newer neighbour: joined to the older one and to this session in one write.
        this.#bypass(map, known.older, tail);
        map.set(tail, linked(previous, known.older, clientId));
      } else {
        this.#bypass(map, known.older, known.newer);
        const after = map.get(known.newer as string);
        assert(after !== undefined, `client table names missing session ${String(known.newer)}`);
        map.set(known.newer as string, linked(after, known.older, after.newer));
        map.set(tail, linked(previous, previous.older, clientId));
      }
    }
    // Written over in place when known: its old links are gone from both neighbours.
    const session: Session = { requestNum, reply, replyOp, lastActiveOp, older: tail, newer: null };
    map.set(clientId, session);
    this.#tail = clientId;
    this.#tailSession = session;
  }

  /** Removes the least recently active session; returns its id (null when empty). */
  evictOldest(): string | null {
    const head = this.#head;
    if (head === null) return null;
    const map = this.#write();
    this.#gotId = null;
    this.#tailSession = null;
    const session = map.get(head);
    assert(session !== undefined, `client table head ${head} is missing`);
    this.#unlink(map, head, session);
    return head;
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
    if (!this.#changed || this.#sessions === null) return base;
    return ClientTable.fromEditor(this.#sessions.asImmutable(), this.#head, this.#tail);
  }

  #read(): Sessions {
    return this.#sessions ?? this.#base;
  }

  #write(): Sessions {
    this.#changed = true;
    if (this.#sessions === null) this.#sessions = this.#base.asMutable();
    return this.#sessions;
  }

  /** Takes `clientId` out of the list and the map, joining its neighbours. */
  #unlink(map: Sessions, clientId: string, session: Session): void {
    const { older, newer } = session;
    this.#bypass(map, older, newer);
    if (newer === null) {
      this.#tail = older;
    } else {
      const after = map.get(newer);
      assert(after !== undefined, `client table names missing session ${newer}`);
      map.set(newer, linked(after, older, after.newer));
    }
    map.delete(clientId);
  }

  /** Points the older neighbour of a session leaving its place (the head, when none) at `newer`. */
  #bypass(map: Sessions, older: string | null, newer: string | null): void {
    if (older === null) {
      this.#head = newer;
      return;
    }
    const before = map.get(older);
    assert(before !== undefined, `client table names missing session ${older}`);
    map.set(older, linked(before, before.older, newer));
  }
}

function linked(record: ClientRecord, older: string | null, newer: string | null): Session {
  return { requestNum: record.requestNum, reply: record.reply, replyOp: record.replyOp, lastActiveOp: record.lastActiveOp, older, newer };
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
  const sessions = ImmutableMap<string, Session>().withMutations((map) => {
    for (let i = 0; i < ordered.length; i++) {
      const [id, record] = ordered[i] as readonly [string, ClientRecord];
      const older = i === 0 ? null : (ordered[i - 1] as readonly [string, ClientRecord])[0];
      const newer = i === ordered.length - 1 ? null : (ordered[i + 1] as readonly [string, ClientRecord])[0];
      map.set(id, linked(record, older, newer));
    }
  });
  if (sessions.size !== ordered.length) return { ok: false, reason: 'client table holds a client id twice' };
  const head = (ordered[0] as readonly [string, ClientRecord])[0];
  const tail = (ordered[ordered.length - 1] as readonly [string, ClientRecord])[0];
  return { ok: true, table: ClientTable.fromEditor(sessions, head, tail) };
}
