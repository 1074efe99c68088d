/**
 * The watches of one shell (the embedded endpoint, one TCP connection): one machine
 * (watch.ts) and one stream (watch_stream.ts) per watch, notices routed by watch id, one tick
 * for all. The shell sends what the machines send and feeds back what the replicas answer.
 *
 * Watch ids: `${idPrefix}.${n}` per watch (n = 1, 2, ... never reused), and
 * `${idPrefix}.${n}.${attempt}` per subscription, so a late notice of a closed watch or of a
 * previous attempt can never reach the wrong one.
 *
 * Identical watches share one subscription. A watch opened with the same namespace, path,
 * `recursive` and `values` as an open one joins it when it would start at the same place: the
 * open one has started and the new one asks no `fromOp` or exactly its position (its `start`
 * is that position), or the open one has not started yet and both asked the same `fromOp`
 * (null included: a watch without `fromOp` may start at any op up to the commit when it is
 * opened, and the open one's start is no later). It receives every later batch, the same
 * objects, in the same order. Only the
 * machine and the replica's watch are shared; each joined watch keeps its own stream, buffer
 * and `lagging` end, and the subscription is cancelled when its last watch leaves. A thousand
 * watchers of one hot path thus cost the replicas one watch, and this client one machine.
 */

import { assertNever } from '../base/assert.ts';
import type { WatchNotice, WatchRequest } from '../watch/messages.ts';
import { HaretError, type HaretErrorCode } from './errors.ts';
import { initialWatchMachine, watchStep, type WatchError, type WatchInput, type WatchMachine, type WatchMachineConfig, type WatchSpec } from './watch.ts';
import { WatchStream, type WatchSink } from './watch_stream.ts';

export type WatchSender = (ns: string, replica: number, request: WatchRequest) => void;

export type WatchRegistryLimits = {
  /** Watches open at once; `open` beyond it throws `too_many_watches`. */
  readonly watchesMax: number;
  /** Batches a stream buffers for a slow application before it ends `lagging`. */
  readonly bufferedBatchesMax: number;
};

export const defaultWatchRegistryLimits: WatchRegistryLimits = Object.freeze({ watchesMax: 16_384, bufferedBatchesMax: 10_000 });

export type WatchRegistryStats = {
  /** Application watches open. */
  readonly open: number;
  /** Subscriptions open (identical watches share one). */
  readonly subscriptions: number;
  /** Watches that joined an open subscription rather than opening their own. */
  readonly joined: number;
  readonly opened: number;
  readonly notices: number;
  /** Notices for no open watch (closed, or not ours): dropped. */
  readonly unknownNotices: number;
  readonly sent: number;
  readonly delivered: number;
  /** Watches ended by the application (cancel, break). */
  readonly cancelled: number;
  /** Watches ended with an error, by code. */
  readonly failed: Readonly<Record<string, number>>;
};

/** One subscription (a machine) and the application watches (streams) it feeds. */
type Entry = {
  readonly n: number;
  readonly ns: string;
  /** Watches with this key may join the entry (see the file comment). */
  readonly key: string;
  /** The spec's fromOp: before the entry starts, only a watch asking the same may join. */
  readonly fromOp: number | null;
  machine: WatchMachine;
  readonly members: Set<Member>;
  closed: boolean;
};

/** One application watch: its stream's feeding side. */
type Member = {
  readonly sink: WatchSink;
  closed: boolean;
};

function shareKey(ns: string, spec: WatchSpec): string {
  return `${ns}\u0000${spec.path}\u0000${spec.recursive ? 'r' : 'e'}${spec.values ? 'v' : 'n'}`;
}

export class WatchRegistry {
  readonly #idPrefix: string;
  readonly #send: WatchSender;
  readonly #config: Omit<WatchMachineConfig, 'replicaCount'>;
  readonly #limits: WatchRegistryLimits;
  readonly #random: () => number;
  readonly #entries = new Map<number, Entry>();
  /** The entry new watches of each share key may join (the oldest open one). */
  readonly #shared = new Map<string, Entry>();
  /** Application watches open (members of every entry). */
  #members = 0;
  #joined = 0;
  #nextN = 1;
  #closedWith: HaretError | null | undefined = undefined;
  #opened = 0;
  #notices = 0;
  #unknownNotices = 0;
  #sent = 0;
  #delivered = 0;
  #cancelled = 0;
  readonly #failed: Record<string, number> = {};

  /** `random` in [0, 1) picks each watch's first replica (spreading watches over replicas). */
  constructor(idPrefix: string, send: WatchSender, config: Omit<WatchMachineConfig, 'replicaCount'>, limits: WatchRegistryLimits, random: () => number) {
    if (idPrefix === '' || idPrefix.includes('.')) throw new RangeError(`a watch id prefix must be non-empty and without '.', got ${JSON.stringify(idPrefix)}`);
    for (const key of ['watchesMax', 'bufferedBatchesMax'] as const) {
      if (!Number.isSafeInteger(limits[key]) || limits[key] < 1) throw new RangeError(`${key} must be a positive integer, got ${limits[key]}`);
    }
    this.#idPrefix = idPrefix;
    this.#send = send;
    this.#config = config;
    this.#limits = limits;
    this.#random = random;
  }

  /**
   * Opens a watch on namespace `ns` (of `replicaCount` replicas) and sends its subscribe. Throws
   * `too_many_watches` at the limit, or the reason the registry was closed with.
   */
  open(ns: string, replicaCount: number, spec: WatchSpec): WatchStream {
    if (this.#closedWith !== undefined) throw this.#closedWith ?? new HaretError('stopped', 'watches are closed on this client', false);
    if (this.#members >= this.#limits.watchesMax) {
      throw new HaretError('too_many_watches', `${this.#limits.watchesMax} watches are open on this client already; the watch was not opened`, false);
    }
    if (!Number.isSafeInteger(replicaCount) || replicaCount < 1) throw new HaretError('internal', `namespace ${ns} has ${replicaCount} replicas`, false);
    const key = shareKey(ns, spec);
    const shared = this.#shared.get(key);
    const position = shared === undefined || shared.closed ? null : shared.machine.position;
    // Started: join at its position when asked to start there or anywhere (no fromOp). Not yet
    // started: join when asking the same start (its first progress starts every member).
    const joinable = shared !== undefined && !shared.closed && (position !== null ? spec.fromOp === null || spec.fromOp === position : spec.fromOp === shared.fromOp);
    if (shared !== undefined && joinable) {
      const { stream } = this.#join(shared);
      this.#joined += 1;
      return stream;
    }
    const n = this.#nextN++;
    const drawn = Math.floor(this.#random() * replicaCount);
    const firstReplica = Number.isSafeInteger(drawn) ? Math.min(replicaCount - 1, Math.max(0, drawn)) : 0;
    const machine = initialWatchMachine({ ...this.#config, replicaCount }, spec, `${this.#idPrefix}.${n}`, firstReplica);
    const entry: Entry = { n, ns, key, fromOp: spec.fromOp, machine, members: new Set(), closed: false };
    const { stream } = this.#join(entry);
    this.#entries.set(n, entry);
    // The oldest open entry of a key stays the one to join (it starts first); a newer one opened
    // before it started keeps its own subscription.
    if (shared === undefined || shared.closed) this.#shared.set(key, entry);
    this.#step(entry, { type: 'start' });
    return stream;
  }

  /** A new application watch of `entry`; one joining a started entry gets its start now. */
  #join(entry: Entry): { readonly stream: WatchStream } {
    let member: Member | undefined;
    const { stream, sink } = WatchStream.create(this.#limits.bufferedBatchesMax, (why) => {
      if (member === undefined || member.closed) return;
      this.#leave(entry, member, why === 'lagging');
    });
    member = { sink, closed: false };
    entry.members.add(member);
    this.#members += 1;
    this.#opened += 1;
    const position = entry.machine.position;
    if (position !== null) sink.push({ kind: 'start', op: position, events: [] });
    return { stream };
  }

  /** An application watch leaves (cancel, break, or its own buffer overflowed); the last one cancels the subscription. */
  #leave(entry: Entry, member: Member, overflowed: boolean): void {
    member.closed = true;
    entry.members.delete(member);
    this.#members -= 1;
    if (overflowed) this.#count('lagging');
    else this.#cancelled += 1;
    member.sink.finish();
    if (entry.members.size === 0) this.#step(entry, { type: 'cancel' });
  }

  /** A notice from a replica: routed by its watch id; one for no open watch is counted and dropped. */
  receive(notice: WatchNotice): void {
    this.#notices += 1;
    const entry = this.#route(notice.watchId);
    if (entry === undefined) {
      this.#unknownNotices += 1;
      return;
    }
    this.#step(entry, { type: 'notice', notice });
  }

  /** One client tick for every watch. */
  /**
   * The path to replica `replica` of namespace `ns` was lost (its worker died), or, with
   * `replica` null, to every replica of every namespace (the connection dropped and came back):
   * the watches there resubscribe at once (see WatchInput 'lost').
   */
  lost(ns: string | null, replica: number | null): void {
    for (const entry of [...this.#entries.values()]) {
      if (!entry.closed && (ns === null || entry.ns === ns)) this.#step(entry, { type: 'lost', replica });
    }
  }

  tick(): void {
    for (const entry of [...this.#entries.values()]) {
      if (!entry.closed) this.#step(entry, { type: 'tick' });
    }
  }

  /**
   * Ends every watch, for good (the node stops, the connection is closed for good): with
   * `reason` as each stream's error, or quietly when null. Sends nothing: the transport is
   * going away, and replicas free what they served when its subscriber stops acknowledging.
   */
  closeAll(reason: HaretError | null): void {
    if (this.#closedWith === undefined) this.#closedWith = reason;
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    this.#shared.clear();
    for (const entry of entries) {
      entry.closed = true;
      for (const member of entry.members) {
        member.closed = true;
        this.#members -= 1;
        if (reason === null) {
          this.#cancelled += 1;
          member.sink.finish();
        } else {
          this.#count(reason.code);
          member.sink.fail(reason);
        }
      }
      entry.members.clear();
    }
  }

  /** Application watches open now. */
  get openCount(): number {
    return this.#members;
  }

  /** Subscriptions open now (machines; identical watches share one). */
  get subscriptionCount(): number {
    return this.#entries.size;
  }

  stats(): WatchRegistryStats {
    return {
      open: this.#members,
      subscriptions: this.#entries.size,
      joined: this.#joined,
      opened: this.#opened,
      notices: this.#notices,
      unknownNotices: this.#unknownNotices,
      sent: this.#sent,
      delivered: this.#delivered,
      cancelled: this.#cancelled,
      failed: { ...this.#failed },
    };
  }

  /** The open watch a watch id `${idPrefix}.${n}.${attempt}` belongs to. */
  #route(watchId: string): Entry | undefined {
    const prefix = `${this.#idPrefix}.`;
    if (!watchId.startsWith(prefix)) return undefined;
    const dot = watchId.indexOf('.', prefix.length);
    if (dot < 0) return undefined;
    const digits = watchId.slice(prefix.length, dot);
    if (!/^[1-9][0-9]{0,15}$/.test(digits)) return undefined;
    return this.#entries.get(Number(digits));
  }

  #step(entry: Entry, input: WatchInput): void {
    if (entry.closed) return;
    const { machine, outputs } = watchStep(entry.machine, input);
    // The new state first: a stream overflowing below re-enters with a cancel, on this state.
    entry.machine = machine;
    for (const output of outputs) {
      if (entry.closed) break;
      switch (output.type) {
        case 'send':
          this.#sent += 1;
          this.#send(entry.ns, output.replica, output.request);
          break;
        case 'deliver':
          // A member whose buffer overflows leaves inside push (its own lagging end): iterate a copy.
          for (const member of [...entry.members]) {
            if (member.closed) continue;
            this.#delivered += 1;
            member.sink.push(output.batch);
          }
          break;
        case 'end': {
          entry.closed = true;
          this.#entries.delete(entry.n);
          if (this.#shared.get(entry.key) === entry) this.#shared.delete(entry.key);
          const members = [...entry.members];
          entry.members.clear();
          for (const member of members) {
            if (member.closed) continue;
            member.closed = true;
            this.#members -= 1;
            if (output.error === null) {
              this.#cancelled += 1;
              member.sink.finish();
            } else {
              this.#count(output.error.code);
              member.sink.fail(toHaretError(output.error, entry.machine.position));
            }
          }
          break;
        }
        default:
          assertNever(output, 'watch output');
      }
    }
  }

  #count(code: string): void {
    this.#failed[code] = (this.#failed[code] ?? 0) + 1;
  }
}

/** A machine's error as the application sees it; `invalid` is the client's `invalid_request`. */
export function toHaretError(error: WatchError, lastOp: number | null): HaretError {
  const code: HaretErrorCode = error.code === 'invalid' ? 'invalid_request' : error.code;
  return new HaretError(code, error.message, false, null, undefined, { oldestOp: error.oldestOp, currentOp: error.currentOp, lastOp });
}
