/**
 * The replica side of watches (issue 14; design in src/watch/README.md): a bounded history of
 * recent committed entries' changes, and every watch served by this replica as a cursor into
 * it. Pure: the replica glue feeds it committed entries, its commit and ticks, hands it the
 * subscribers' requests, and drains the notices it produces, in order.
 *
 * A watch is in one of three states:
 * - `held`: subscribed with a fromOp this replica has in its log but has not applied yet;
 *   silent until it applies fromOp.
 * - `live`: complete through the last applied op (its position is implicit, so an op that
 *   matches no watch costs no watch anything); new entries go to it as they are applied.
 * - `behind`: complete through `position` < last applied; it reads on from the history when
 *   its subscriber acknowledges (or at a tick), and becomes live on reaching the end.
 *
 * Flow control: a watch starts sending an op only while its unacknowledged bytes are below
 * bufferBytesMax; an op, once started, is sent whole, in parts (a batch is atomic: the
 * subscriber holds it whole before delivering it anyway). A watch that cannot start its next
 * op waits at the op boundary; once that op has left the history, it ends `lagging`.
 *
 * Every notice of a watch carries the next number of that watch (`seq`, 1 for the opening
 * progress; src/watch/messages.ts), so the subscriber can tell a notice lost on the way.
 */

import { assert, assertNever } from '../base/assert.ts';
import type { TreeLimits } from '../base/limits.ts';
import type { TreeChange } from '../tree/events.ts';
import type { Tree } from '../tree/lookup.ts';
import type { TreeOp } from '../tree/ops.ts';
import { rootPath } from '../tree/path.ts';
import { History, makeEntry, matchingIndices, type HistoryEntry } from './history.ts';
import {
  estimateEventBytes,
  estimateNoticeBytes,
  watchMessageBytesMax,
  watchMessageEventsMax,
  type WatchEndReason,
  type WatchEvent,
  type WatchNotice,
} from './messages.ts';
import { parseWatchRequest, validateWatchHubLimits, type ParsedSubscribe, type WatchHubLimits } from './validate.ts';

export { defaultWatchHubLimits, validateWatchHubLimits, type WatchHubLimits } from './validate.ts';

export type HubOutput = { readonly to: string; readonly notice: WatchNotice };

export type WatchHubStats = {
  watches: number;
  historyOps: number;
  historyBytes: number;
  oldestOp: number;
  lastOp: number;
  ended: Record<WatchEndReason, number>;
  noticesSent: number;
  malformed: number;
};

type WatchState = 'held' | 'live' | 'behind';

type Watch = {
  readonly from: string;
  readonly id: string;
  readonly path: string;
  readonly recursive: boolean;
  readonly values: boolean;
  /** The op a held watch waits for (its fromOp). */
  readonly holdUntil: number;
  state: WatchState;
  /** Complete through this op; meaningful while `behind` (a live watch is at the hub's last applied op). */
  position: number;
  ended: boolean;
  /** Estimated bytes sent and acknowledged, cumulative. */
  sentBytes: number;
  ackedBytes: number;
  /** The highest op a sent notice said the watch is complete through; -1 before the first. */
  sentThrough: number;
  /** The seq of the last notice sent for this watch (0 before the first). */
  seq: number;
  /**
   * What an acknowledgement frees: pairs (op, cumulative sentBytes after the last notice of
   * that op), ops ascending. Bounded by merging into the newest pair (see `recordSent`).
   */
  ackOps: number[];
  ackCum: number[];
  ackHead: number;
  lastSentTick: number;
  lastAckTick: number;
  /**
   * A progress went out when the watch's buffer filled, asking the subscriber to acknowledge
   * (it acknowledges every progress); cleared by the next ack, so one per stall.
   */
  ackAsked: boolean;
};

/**
 * Pending acknowledgement points kept per watch. Beyond it, newer notices share the newest
 * point: an acknowledgement between them frees nothing until it covers the newest, which the
 * subscriber sends at the latest on the next progress notice. Keeps a watch's memory constant.
 */
const ackPointsMax = 32;

const progressNoticeBytes = 64;

export class WatchHub {
  private readonly limits: WatchHubLimits;
  private readonly treeLimits: TreeLimits;
  private readonly history = new History(0);
  private lastApplied = 0;
  private logOp = 0;
  /** Nothing is served before the glue first reports a serving status. */
  private serving = false;
  private now = 0;
  private outbox: HubOutput[] = [];

  private readonly bySender = new Map<string, Map<string, Watch>>();
  private readonly all = new Set<Watch>();
  private readonly exact = new Map<string, Set<Watch>>();
  private readonly recursive = new Map<string, Set<Watch>>();
  private readonly held = new Map<number, Set<Watch>>();

  private readonly endedCounts: Record<WatchEndReason, number> = {
    compacted: 0,
    future: 0,
    lagging: 0,
    idle: 0,
    not_serving: 0,
    too_many: 0,
    invalid: 0,
  };
  private noticesSent = 0;
  private malformed = 0;

  constructor(limits: WatchHubLimits, treeLimits: TreeLimits) {
    const problem = validateWatchHubLimits(limits);
    assert(problem === null, `invalid watch hub limits: ${problem ?? ''}`);
    this.limits = { ...limits };
    this.treeLimits = treeLimits;
  }

  // ---- the replica's progress -------------------------------------------------------------

  /** One committed entry (every one, in op order; before === after when it changed nothing). */
  applied(op: number, before: Tree, ops: readonly TreeOp[], after: Tree): void {
    // A checkpoint was installed: the ops before this one were never seen here. `before` is the
    // state after op - 1, so the window can restart there and keep this entry.
    if (op !== this.lastApplied + 1) this.restart(op - 1);
    const entry = makeEntry(op, before, ops, after, this.limits.valueBytesMax);
    if (entry !== null) {
      this.history.push(entry);
      this.deliverLive(entry);
    }
    this.lastApplied = op;
    const waiting = this.held.get(op);
    if (waiting !== undefined) for (const watch of waiting) this.release(watch);
    // After live delivery, so that an entry alone over the byte bound still reaches live watches.
    this.history.evict(this.limits.historyOpsMax, this.limits.historyBytesMax);
  }

  /** After every replica step: its commit number, its log op, whether it may serve (normal/view_change). */
  committed(commit: number, logOp: number, serving: boolean): void {
    this.logOp = logOp;
    this.serving = serving;
    if (!serving) {
      for (const watch of this.all) this.end(watch, 'not_serving', 'the replica is recovering');
    }
    if (commit > this.lastApplied) this.restart(commit);
  }

  tick(): void {
    this.now++;
    for (const watch of this.all) {
      if (this.now - watch.lastAckTick >= this.limits.idleTicks) {
        this.end(watch, 'idle', `no acknowledgement for ${this.limits.idleTicks} ticks`);
        continue;
      }
      if (watch.state === 'held') continue;
      if (watch.state === 'behind') {
        this.advance(watch);
        if (watch.ended) continue;
      }
      if (this.now - watch.lastSentTick >= this.limits.progressTicks) this.sendProgress(watch, this.positionOf(watch));
    }
  }

  drain(): HubOutput[] {
    const out = this.outbox;
    this.outbox = [];
    return out;
  }

  stats(): WatchHubStats {
    return {
      watches: this.all.size,
      historyOps: this.history.size,
      historyBytes: this.history.bytes,
      oldestOp: this.history.start,
      lastOp: this.lastApplied,
      ended: { ...this.endedCounts },
      noticesSent: this.noticesSent,
      malformed: this.malformed,
    };
  }

  // ---- requests ---------------------------------------------------------------------------

  /** A request from actor `from` (untrusted). Never throws on any input. */
  receive(from: string, message: unknown): void {
    if (typeof from !== 'string') {
      this.malformed++;
      return;
    }
    const request = parseWatchRequest(message, this.treeLimits);
    switch (request.type) {
      case 'drop':
        this.malformed++;
        return;
      case 'invalid':
        this.malformed++;
        if (request.request === 'watch_subscribe') this.refuseSubscribe(from, request.watchId, request.reason);
        return;
      case 'watch_cancel': {
        const watch = this.find(from, request.watchId);
        if (watch !== undefined) this.remove(watch);
        return;
      }
      case 'watch_ack': {
        // An ack for a watch that already ended is a normal race, not an error.
        const watch = this.find(from, request.watchId);
        if (watch === undefined) return;
        if (request.through > watch.sentThrough) {
          this.malformed++;
          return;
        }
        this.acknowledge(watch, request.through);
        return;
      }
      case 'watch_subscribe':
        this.subscribe(from, request);
        return;
      default:
        assertNever(request, 'parsed watch request');
    }
  }

  private subscribe(from: string, request: ParsedSubscribe): void {
    const { watchId, fromOp } = request;
    if (this.find(from, watchId) !== undefined) {
      this.malformed++;
      this.refuseSubscribe(from, watchId, 'duplicate watchId');
      return;
    }
    if (!this.serving) return this.refuse(from, watchId, 'not_serving', 'the replica is not serving watches');
    if (this.all.size >= this.limits.watchesMax) {
      return this.refuse(from, watchId, 'too_many', `the replica serves its maximum of ${this.limits.watchesMax} watches`);
    }
    if (fromOp !== null && fromOp < this.history.start) {
      return this.refuse(from, watchId, 'compacted', `op ${fromOp} is older than the retained history`);
    }
    if (fromOp !== null && fromOp > this.lastApplied && fromOp > this.logOp) {
      return this.refuse(from, watchId, 'future', `op ${fromOp} is beyond this replica's log`);
    }
    const start = fromOp ?? this.lastApplied;
    const watch: Watch = {
      from,
      id: watchId,
      path: request.path,
      recursive: request.recursive,
      values: request.values,
      holdUntil: start,
      state: start > this.lastApplied ? 'held' : 'behind',
      position: start,
      ended: false,
      sentBytes: 0,
      ackedBytes: 0,
      sentThrough: -1,
      seq: 0,
      ackOps: [],
      ackCum: [],
      ackHead: 0,
      lastSentTick: this.now,
      lastAckTick: this.now,
      ackAsked: false,
    };
    this.add(watch);
    if (watch.state === 'held') return;
    this.sendProgress(watch, start);
    this.advance(watch);
  }

  /**
   * A malformed or duplicate subscription. A watch already holding the id ends with it: after
   * watch_ended the subscriber expects nothing more for that id, so none may follow.
   */
  private refuseSubscribe(from: string, watchId: string, reason: string): void {
    const existing = this.find(from, watchId);
    if (existing === undefined) return this.refuse(from, watchId, 'invalid', reason);
    this.end(existing, 'invalid', reason);
  }

  private acknowledge(watch: Watch, through: number): void {
    watch.lastAckTick = this.now;
    watch.ackAsked = false;
    const { ackOps, ackCum } = watch;
    while (watch.ackHead < ackOps.length && (ackOps[watch.ackHead] as number) <= through) {
      watch.ackedBytes = ackCum[watch.ackHead] as number;
      watch.ackHead++;
    }
    if (watch.ackHead === ackOps.length) {
      watch.ackOps = [];
      watch.ackCum = [];
      watch.ackHead = 0;
    }
    if (watch.state === 'behind') this.advance(watch);
  }

  // ---- delivery ---------------------------------------------------------------------------

  /**
   * Sends a new entry to the live watches it concerns, found through the path indexes: each
   * change is looked up once under its own path (exact watches) and once under each of its
   * ancestors and itself (recursive watches), never once per watch.
   */
  private deliverLive(entry: HistoryEntry): void {
    if (this.exact.size === 0 && this.recursive.size === 0) return;
    const matches = new Map<Watch, number[]>();
    const note = (watches: Set<Watch> | undefined, index: number): void => {
      if (watches === undefined) return;
      for (const watch of watches) {
        if (watch.state !== 'live') continue;
        const indices = matches.get(watch);
        if (indices === undefined) matches.set(watch, [index]);
        else indices.push(index);
      }
    };
    const { changes } = entry;
    for (let index = 0; index < changes.length; index++) {
      const path = (changes[index] as TreeChange).path;
      if (this.exact.size > 0) note(this.exact.get(path), index);
      if (this.recursive.size === 0) continue;
      note(this.recursive.get(rootPath), index);
      if (path === rootPath) continue;
      for (let slash = path.indexOf('/', 1); slash !== -1; slash = path.indexOf('/', slash + 1)) {
        note(this.recursive.get(path.slice(0, slash)), index);
      }
      note(this.recursive.get(path), index);
    }
    for (const [watch, indices] of matches) {
      if (!this.sendOp(watch, entry, indices)) {
        // Its buffer is full: it was complete through the previous op and reads on from the history.
        watch.state = 'behind';
        watch.position = entry.op - 1;
        this.askForAck(watch);
      }
    }
  }

  /** Reads a behind watch on from the history until its buffer is full or it catches up. */
  private advance(watch: Watch): void {
    if (watch.position < this.history.start) {
      this.end(watch, 'lagging', `op ${watch.position + 1} left the history before the subscriber acknowledged enough`);
      return;
    }
    for (;;) {
      const entry = this.history.firstAfter(watch.position);
      if (entry === undefined) {
        watch.state = 'live';
        return;
      }
      const indices = matchingIndices(entry, watch.path, watch.recursive);
      if (indices.length > 0 && !this.sendOp(watch, entry, indices)) {
        // Nothing matched between the position and this entry.
        watch.position = entry.op - 1;
        this.askForAck(watch);
        return;
      }
      watch.position = entry.op;
    }
  }

  /**
   * Sends one op's matching changes to a watch, in parts; false, sending nothing, when the
   * watch's unacknowledged bytes do not allow starting the op.
   */
  private sendOp(watch: Watch, entry: HistoryEntry, indices: readonly number[]): boolean {
    if (watch.sentBytes - watch.ackedBytes >= this.limits.bufferBytesMax) return false;
    const source: readonly WatchEvent[] = watch.values ? entry.valued : entry.changes;
    let next = 0;
    while (next < indices.length) {
      const events: WatchEvent[] = [];
      let bytes = progressNoticeBytes;
      while (next < indices.length && events.length < watchMessageEventsMax) {
        const event = source[indices[next] as number] as WatchEvent;
        const eventBytes = estimateEventBytes(event);
        // One event larger than a message still travels, alone.
        if (events.length > 0 && bytes + eventBytes > watchMessageBytesMax) break;
        events.push(event);
        bytes += eventBytes;
        next++;
      }
      this.emit(watch, entry.op, { type: 'watch_events', watchId: watch.id, seq: watch.seq + 1, op: entry.op, events, more: next < indices.length });
    }
    watch.sentThrough = entry.op;
    return true;
  }

  /**
   * A stalled watch asks for an acknowledgement with a progress at once, instead of waiting up
   * to `progressTicks` for the periodic one: a subscriber acknowledges by bytes received
   * (its ackBytes) and on every progress, so a buffer smaller than its ack interval would
   * otherwise crawl, one op per progress period.
   */
  private askForAck(watch: Watch): void {
    if (watch.ackAsked) return;
    watch.ackAsked = true;
    this.sendProgress(watch, watch.position);
  }

  private sendProgress(watch: Watch, through: number): void {
    this.emit(watch, through, { type: 'watch_progress', watchId: watch.id, seq: watch.seq + 1, through });
    watch.sentThrough = Math.max(watch.sentThrough, through);
  }

  /** Queues a notice that completes the watch through `op` (or is a part of op `op`); it carries the watch's next seq. */
  private emit(watch: Watch, op: number, notice: WatchNotice): void {
    assert(notice.seq === watch.seq + 1, 'a watch notice carries the next seq');
    watch.seq = notice.seq;
    this.outbox.push({ to: watch.from, notice });
    this.noticesSent++;
    watch.lastSentTick = this.now;
    watch.sentBytes += estimateNoticeBytes(notice);
    const { ackOps, ackCum } = watch;
    const last = ackOps.length - 1;
    if (last >= watch.ackHead && (ackOps[last] === op || ackOps.length - watch.ackHead >= ackPointsMax)) {
      ackOps[last] = op;
      ackCum[last] = watch.sentBytes;
    } else {
      ackOps.push(op);
      ackCum.push(watch.sentBytes);
    }
  }

  // ---- discontinuities --------------------------------------------------------------------

  /**
   * The history restarts empty after `start` (a checkpoint was installed, or the first commit
   * of a restarted replica). Watches positioned elsewhere cannot continue from here.
   */
  private restart(start: number): void {
    const previous = this.lastApplied;
    this.history.restart(start);
    this.lastApplied = start;
    for (const watch of this.all) {
      if (watch.state === 'held') {
        if (watch.holdUntil < start) this.end(watch, 'compacted', `op ${watch.holdUntil} is older than the installed checkpoint`);
        else if (watch.holdUntil === start) this.release(watch);
        continue;
      }
      const position = watch.state === 'live' ? previous : watch.position;
      if (position === start) {
        watch.state = 'live';
        continue;
      }
      this.end(watch, 'compacted', `the replica installed a checkpoint at op ${start}`);
    }
  }

  /** A held watch whose fromOp was just applied: its stream starts now. */
  private release(watch: Watch): void {
    this.unhold(watch);
    watch.state = 'live';
    this.sendProgress(watch, watch.holdUntil);
  }

  // ---- bookkeeping ------------------------------------------------------------------------

  private positionOf(watch: Watch): number {
    switch (watch.state) {
      case 'live':
        return this.lastApplied;
      case 'behind':
        return watch.position;
      case 'held':
        return watch.holdUntil;
      default:
        return assertNever(watch.state, 'watch state');
    }
  }

  private find(from: string, watchId: string): Watch | undefined {
    return this.bySender.get(from)?.get(watchId);
  }

  /** Ends `watchId` for `from`: a subscription refused outright (seq 1), or a watch's last notice (`end`). */
  private refuse(from: string, watchId: string, reason: WatchEndReason, message: string, seq = 1): void {
    this.endedCounts[reason]++;
    this.noticesSent++;
    const notice: WatchNotice = {
      type: 'watch_ended',
      watchId,
      seq,
      reason,
      oldestOp: this.history.start,
      currentOp: this.lastApplied,
      message,
    };
    this.outbox.push({ to: from, notice });
  }

  private end(watch: Watch, reason: WatchEndReason, message: string): void {
    this.remove(watch);
    watch.seq += 1;
    this.refuse(watch.from, watch.id, reason, message, watch.seq);
  }

  private add(watch: Watch): void {
    let mine = this.bySender.get(watch.from);
    if (mine === undefined) {
      mine = new Map();
      this.bySender.set(watch.from, mine);
    }
    mine.set(watch.id, watch);
    this.all.add(watch);
    addTo(watch.recursive ? this.recursive : this.exact, watch.path, watch);
    if (watch.state === 'held') addTo(this.held, watch.holdUntil, watch);
  }

  /** Forgets a watch everywhere; its memory is gone with it. */
  private remove(watch: Watch): void {
    watch.ended = true;
    const mine = this.bySender.get(watch.from);
    if (mine !== undefined) {
      mine.delete(watch.id);
      if (mine.size === 0) this.bySender.delete(watch.from);
    }
    this.all.delete(watch);
    removeFrom(watch.recursive ? this.recursive : this.exact, watch.path, watch);
    if (watch.state === 'held') this.unhold(watch);
  }

  private unhold(watch: Watch): void {
    removeFrom(this.held, watch.holdUntil, watch);
  }
}

function addTo<K>(index: Map<K, Set<Watch>>, key: K, watch: Watch): void {
  const watches = index.get(key);
  if (watches === undefined) index.set(key, new Set([watch]));
  else watches.add(watch);
}

function removeFrom<K>(index: Map<K, Set<Watch>>, key: K, watch: Watch): void {
  const watches = index.get(key);
  if (watches === undefined) return;
  watches.delete(watch);
  if (watches.size === 0) index.delete(key);
}
