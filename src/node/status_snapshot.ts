/**
 * The node's status for its HTTP side (metrics, readiness, status.json), taken through the
 * control plane and never awaited for longer than `timeoutMs`. One status call is in flight at
 * a time however many scrapes ask: they share it. A call that outlasts the timeout goes on;
 * its result, when it comes, is the `latest` snapshot that a later scrape may show as stale.
 *
 * The control plane already bounds each worker's answer (the node's `controlTimeoutMs`): a
 * worker that does not answer is reported without its live figures, so one hung replica
 * shows as absent rather than holding up the rest. The timeout here bounds the whole.
 */

import type { NodeStatus } from './node.ts';

export type StatusSnapshot = {
  readonly status: NodeStatus;
  /** performance.now() when it was taken. */
  readonly takenAtMs: number;
};

export class StatusSnapshots {
  readonly #take: () => Promise<NodeStatus>;
  readonly #timeoutMs: number;
  #inFlight: Promise<StatusSnapshot | null> | null = null;
  #latest: StatusSnapshot | null = null;
  readonly counters = { taken: 0, failed: 0, timeouts: 0 };

  constructor(take: () => Promise<NodeStatus>, timeoutMs: number) {
    this.#take = take;
    this.#timeoutMs = timeoutMs;
  }

  /** The last snapshot taken, however old; null before the first. */
  get latest(): StatusSnapshot | null {
    return this.#latest;
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** A snapshot taken now, or null when none came within the timeout (or the call failed). */
  async fresh(): Promise<StatusSnapshot | null> {
    const call = (this.#inFlight ??= this.#call());
    let timer: NodeJS.Timeout | null = null;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#timeoutMs);
    });
    try {
      const result = await Promise.race([call, timedOut]);
      if (result !== 'timeout') return result;
      this.counters.timeouts += 1;
      return null;
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  async #call(): Promise<StatusSnapshot | null> {
    try {
      const status = await this.#take();
      const snapshot = { status, takenAtMs: performance.now() };
      this.counters.taken += 1;
      this.#latest = snapshot;
      return snapshot;
    } catch {
      this.counters.failed += 1;
      return null;
    } finally {
      this.#inFlight = null;
    }
  }
}
