/**
 * The watches of one shell (the embedded endpoint, one TCP connection): one machine
 * (watch.ts) and one stream (watch_stream.ts) per watch, notices routed by watch id, one tick
 * for all. The shell sends what the machines send and feeds back what the replicas answer.
 *
 * Watch ids: `${idPrefix}.${n}` per watch (n = 1, 2, ... never reused), and
 * `${idPrefix}.${n}.${attempt}` per subscription, so a late notice of a closed watch or of a
 * previous attempt can never reach the wrong one.
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
  readonly open: number;
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

type Entry = {
  readonly n: number;
  readonly ns: string;
  machine: WatchMachine;
  readonly sink: WatchSink;
  closed: boolean;
  /** The stream overflowed (its cancel is the registry's, not the application's). */
  overflowed: boolean;
};

export class WatchRegistry {
  readonly #idPrefix: string;
  readonly #send: WatchSender;
  readonly #config: Omit<WatchMachineConfig, 'replicaCount'>;
  readonly #limits: WatchRegistryLimits;
  readonly #random: () => number;
  readonly #entries = new Map<number, Entry>();
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
    if (this.#entries.size >= this.#limits.watchesMax) {
      throw new HaretError('too_many_watches', `${this.#limits.watchesMax} watches are open on this client already; the watch was not opened`, false);
    }
    if (!Number.isSafeInteger(replicaCount) || replicaCount < 1) throw new HaretError('internal', `namespace ${ns} has ${replicaCount} replicas`, false);
    const n = this.#nextN++;
    const drawn = Math.floor(this.#random() * replicaCount);
    const firstReplica = Number.isSafeInteger(drawn) ? Math.min(replicaCount - 1, Math.max(0, drawn)) : 0;
    const machine = initialWatchMachine({ ...this.#config, replicaCount }, spec, `${this.#idPrefix}.${n}`, firstReplica);
    let entry: Entry | undefined;
    const { stream, sink } = WatchStream.create(this.#limits.bufferedBatchesMax, (why) => {
      if (entry === undefined) return;
      entry.overflowed = why === 'lagging';
      this.#step(entry, { type: 'cancel' });
    });
    entry = { n, ns, machine, sink, closed: false, overflowed: false };
    this.#entries.set(n, entry);
    this.#opened += 1;
    this.#step(entry, { type: 'start' });
    return stream;
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
    for (const entry of entries) {
      entry.closed = true;
      if (reason === null) {
        this.#cancelled += 1;
        entry.sink.finish();
      } else {
        this.#count(reason.code);
        entry.sink.fail(reason);
      }
    }
  }

  /** Watches open now. */
  get openCount(): number {
    return this.#entries.size;
  }

  stats(): WatchRegistryStats {
    return {
      open: this.#entries.size,
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
          this.#delivered += 1;
          entry.sink.push(output.batch);
          break;
        case 'end':
          entry.closed = true;
          this.#entries.delete(entry.n);
          if (output.error === null) {
            if (entry.overflowed) this.#count('lagging');
            else this.#cancelled += 1;
            entry.sink.finish();
          } else {
            this.#count(output.error.code);
            entry.sink.fail(toHaretError(output.error, entry.machine.position));
          }
          break;
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
