/**
 * How long a recipe may wait: until the caller's timeout, while its lease lives, and until it
 * is cancelled (a campaign withdrawn by resign). Every wait of a recipe races its Bound, so a
 * recipe never waits past any of the three; and how it retries a call that failed for a
 * reason that may pass (a bounded number of times, with backoff).
 */

import { HaretError, type HaretErrorCode } from '../client/errors.ts';
import type { KeptLease } from '../client/namespace_client.ts';
import { onLoss } from './lease.ts';

/** Consecutive failures that may pass (see `transient`) a recipe retries before giving up with the last one. */
export const retriesMax = 10;

/** Milliseconds to wait before retry `attempt` (1, 2, ...): 50, 100, 200, ... up to 1 s. */
export function backoffMs(attempt: number): number {
  return Math.min(1_000, 50 * 2 ** Math.max(0, attempt - 1));
}

const transientCodes: ReadonlySet<HaretErrorCode> = new Set<HaretErrorCode>([
  'timeout',
  'unavailable',
  'overloaded',
  'proxy_restarted',
  'session_expired',
  // Watch ends: re-read and watch again from the read's op.
  'compacted',
  'future',
  'lagging',
]);

/** True when trying again (a read, or a watch from a new read) may succeed. */
export function transient(error: unknown): boolean {
  return error instanceof HaretError && transientCodes.has(error.code);
}

/**
 * A HaretError without a stack trace, for an expected end on a hot path (a lock's `stopped` at
 * release): capturing the stack cost ~12 µs a lock cycle, and the trace of a release tells nothing.
 */
export function quietError(code: HaretErrorCode, message: string, executed: boolean | 'maybe'): HaretError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new HaretError(code, message, executed);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export function asHaretError(error: unknown): HaretError {
  if (error instanceof HaretError) return error;
  return new HaretError('internal', `unexpected error in a coordination recipe: ${String(error)}`, 'maybe');
}

export class Bound {
  /** Why the bound ended (null while it holds). A plain field and listener set, not an AbortController: a lock makes one Bound per acquire, on its hot path. */
  #reason: HaretError | null = null;
  readonly #onEnd = new Set<() => void>();
  #timer: NodeJS.Timeout | null = null;
  #unfollow: (() => void) | null = null;

  /** `what` names the wait in the timeout's message; `timeoutMs` undefined: no timeout. */
  constructor(what: string, timeoutMs: number | undefined) {
    if (timeoutMs !== undefined) {
      this.#timer = setTimeout(() => this.cancel(new HaretError('timeout', `${what}: gave up after ${timeoutMs} ms`, false)), timeoutMs);
      this.#timer.unref();
    }
  }

  /** Also ends when `lease` is lost (with the loss as reason); replaces an earlier lease. */
  follow(lease: KeptLease): void {
    this.#unfollow?.();
    this.#unfollow = onLoss(lease, (error) => this.cancel(error));
  }

  /** Ends every wait with `reason` (the first reason wins). */
  cancel(reason: HaretError): void {
    if (this.#reason !== null) return;
    this.#reason = reason;
    const waits = [...this.#onEnd];
    this.#onEnd.clear();
    for (const end of waits) end();
    this.dispose();
  }

  /** Why the bound ended, or null while it holds. */
  get reason(): HaretError | null {
    return this.#reason;
  }

  /** Throws the reason the bound ended, if it did. */
  check(): void {
    const reason = this.#reason;
    if (reason !== null) throw reason;
  }

  /**
   * Waits for `work` unless the bound ends first: then `onAbort` undoes the work's wait (closes
   * its watch) and the promise rejects with the reason. A late failure of `work` is swallowed.
   */
  race<T>(work: Promise<T>, onAbort: () => void = () => {}): Promise<T> {
    const ended = this.#reason;
    if (ended !== null) {
      work.catch(() => {});
      onAbort();
      return Promise.reject(ended);
    }
    return new Promise<T>((resolve, reject) => {
      const abort = (): void => {
        work.catch(() => {});
        onAbort();
        reject(this.#reason as HaretError);
      };
      this.#onEnd.add(abort);
      work.then(
        (value) => {
          this.#onEnd.delete(abort);
          resolve(value);
        },
        (error: unknown) => {
          this.#onEnd.delete(abort);
          reject(error instanceof Error ? error : asHaretError(error));
        },
      );
    });
  }

  /** Sleeps `ms` (an unref'd timer), or less if the bound ends (then rejects with the reason). */
  sleep(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | null = null;
    const slept = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    });
    return this.race(slept, () => {
      if (timer !== null) clearTimeout(timer);
    });
  }

  /** Frees the timer and the lease subscription; the reason (if any) stays readable. */
  dispose(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#unfollow?.();
    this.#unfollow = null;
  }
}

/** Sleeps `ms` on an unref'd timer (a pause that needs no Bound). */
export function pause(ms: number): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
}
