/**
 * What the application holds for one watch: an async iterable of batches, in order.
 *
 *   for await (const batch of client.watch('/config', { recursive: true })) { ... }
 *
 * Batches wait in a bounded buffer until the application takes them. A consumer that falls
 * `bufferedBatchesMax` batches behind gets the batches buffered so far and then a `lagging`
 * error (the watch is cancelled at its replica): memory stays bounded whatever the pace of
 * the writers, and the application re-reads and watches again from `details.lastOp`.
 * An error that ends the watch (compacted, future, lagging, invalid_request, unavailable,
 * stopped, ...) rejects `next()` once every batch received before it was taken; after it, and
 * after `cancel()` or a `break` out of the loop, the iterator is done. Cancelling drops what
 * is buffered: the application said it wants nothing more.
 *
 * No timers and no I/O: the registry that feeds the stream is driven by its shell.
 */

import { HaretError } from './errors.ts';
import type { WatchBatch } from './watch.ts';

/** The registry's side of a stream. */
export type WatchSink = {
  /** A batch for the application (ignored once the stream ended). */
  push(batch: WatchBatch): void;
  /** The watch ended with an error: delivered after the batches already buffered. */
  fail(error: HaretError): void;
  /** The watch ended quietly (cancelled): the iterator is done at once. */
  finish(): void;
  readonly ended: boolean;
};

type Waiter = { readonly resolve: (result: IteratorResult<WatchBatch, undefined>) => void; readonly reject: (error: unknown) => void };

const done: IteratorResult<WatchBatch, undefined> = Object.freeze({ done: true, value: undefined });

export class WatchStream implements AsyncIterable<WatchBatch> {
  readonly #bufferedBatchesMax: number;
  /** Tells the registry to cancel the watch at its replica (the application's wish, or an overflow); called at most once. */
  readonly #onCancel: (why: 'cancelled' | 'lagging') => void;
  /** Batches received, not yet taken; a ring would save the shift, but batches are taken soon or the stream overflows. */
  #buffer: WatchBatch[] = [];
  #head = 0;
  #waiters: Waiter[] = [];
  /** The error to surface once the buffer is drained; null after it was surfaced. */
  #error: HaretError | null = null;
  #ended = false;
  #cancelSent = false;
  #lastOp: number | null = null;

  /** Use `WatchStream.create`: the sink stays with the registry, the stream goes to the application. */
  private constructor(bufferedBatchesMax: number, onCancel: (why: 'cancelled' | 'lagging') => void) {
    this.#bufferedBatchesMax = bufferedBatchesMax;
    this.#onCancel = onCancel;
  }

  /** @internal A stream and the sink that feeds it. */
  static create(bufferedBatchesMax: number, onCancel: (why: 'cancelled' | 'lagging') => void): { readonly stream: WatchStream; readonly sink: WatchSink } {
    if (!Number.isSafeInteger(bufferedBatchesMax) || bufferedBatchesMax < 1) throw new RangeError(`bufferedBatchesMax must be a positive integer, got ${bufferedBatchesMax}`);
    const stream = new WatchStream(bufferedBatchesMax, onCancel);
    const sink: WatchSink = {
      push: (batch) => stream.#push(batch),
      fail: (error) => stream.#fail(error),
      finish: () => stream.#finish(),
      get ended() {
        return stream.#ended;
      },
    };
    return { stream, sink };
  }

  /** Batches received and not yet taken by the application. */
  get buffered(): number {
    return this.#buffer.length - this.#head;
  }

  /** True once the watch ended (an error may still wait for `next()`). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Ends the watch: frees it at its replica, drops what is buffered; the iterator is done. */
  cancel(): void {
    if (this.#ended) {
      // Ended already (the replica's side is freed): only forget what the application declined.
      this.#error = null;
      this.#buffer = [];
      this.#head = 0;
      return;
    }
    this.#finish();
    this.#requestCancel('cancelled');
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchBatch, undefined> {
    return {
      next: () => this.#next(),
      // `break`, `return` or a throw out of `for await`: the application is done with the watch.
      return: () => {
        this.cancel();
        return Promise.resolve(done);
      },
    };
  }

  #next(): Promise<IteratorResult<WatchBatch, undefined>> {
    const batch = this.#take();
    if (batch !== undefined) return Promise.resolve({ done: false, value: batch });
    if (this.#error !== null) {
      const error = this.#error;
      this.#error = null;
      return Promise.reject(error);
    }
    if (this.#ended) return Promise.resolve(done);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #take(): WatchBatch | undefined {
    if (this.#head >= this.#buffer.length) return undefined;
    const batch = this.#buffer[this.#head] as WatchBatch;
    this.#head += 1;
    // Compact now and then, so a long-lived stream does not keep every batch it ever held.
    if (this.#head === this.#buffer.length) {
      this.#buffer = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#buffer.length) {
      this.#buffer = this.#buffer.slice(this.#head);
      this.#head = 0;
    }
    this.#lastOp = batch.op;
    return batch;
  }

  #push(batch: WatchBatch): void {
    if (this.#ended) return;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      this.#lastOp = batch.op;
      waiter.resolve({ done: false, value: batch });
      return;
    }
    if (this.buffered >= this.#bufferedBatchesMax) {
      // Everything buffered stays deliverable; the batch that did not fit is dropped with the watch.
      const through = this.#buffer[this.#buffer.length - 1]?.op ?? this.#lastOp;
      this.#fail(
        new HaretError(
          'lagging',
          `the application fell ${this.#bufferedBatchesMax} batches behind the watch; watch again from op ${through ?? 'its start'}`,
          false,
          null,
          undefined,
          { oldestOp: null, currentOp: null, lastOp: through },
        ),
      );
      this.#requestCancel('lagging');
      return;
    }
    this.#buffer.push(batch);
  }

  #fail(error: HaretError): void {
    if (this.#ended) return;
    this.#ended = true;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      // A waiter means the buffer is empty: the error is next.
      waiter.reject(withLastOp(error, this.#lastOp));
      this.#settleWaiters();
    } else {
      // Surfaced after the buffer drains; `lastOp` is then the last buffered batch's op.
      const last = this.#buffer[this.#buffer.length - 1]?.op ?? this.#lastOp;
      this.#error = withLastOp(error, last);
    }
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#buffer = [];
    this.#head = 0;
    this.#settleWaiters();
  }

  #settleWaiters(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.resolve(done);
  }

  #requestCancel(why: 'cancelled' | 'lagging'): void {
    if (this.#cancelSent) return;
    this.#cancelSent = true;
    this.#onCancel(why);
  }
}

/** The error with `details.lastOp` set to what the application received through. */
function withLastOp(error: HaretError, lastOp: number | null): HaretError {
  if (error.details !== undefined && error.details.lastOp === lastOp) return error;
  const details = { oldestOp: error.details?.oldestOp ?? null, currentOp: error.details?.currentOp ?? null, lastOp };
  return new HaretError(error.code, error.message, error.executed, error.treeError, error.at, details);
}
