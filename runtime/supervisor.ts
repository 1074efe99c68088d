/**
 * Restart policy (DESIGN.md "Supervisor"): one-for-one, with restart intensity. A worker that
 * dies without being asked is restarted after an exponential backoff with jitter, unless it
 * has already been restarted `maxRestarts` times within the last `windowMs`; then it is marked
 * failed and stays down, and the failure is visible in status. This file decides; the actor
 * system carries the decision out.
 */

export type SupervisorOptions = {
  /** Restarts allowed within `windowMs`; one more marks the worker failed. */
  readonly maxRestarts: number;
  readonly windowMs: number;
  /** Backoff of the first restart in a window; doubles per restart, capped at backoffMaxMs. */
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
};

export const defaultSupervisorOptions: SupervisorOptions = { maxRestarts: 5, windowMs: 10_000, backoffMinMs: 20, backoffMaxMs: 2_000 };

export function validateSupervisorOptions(options: SupervisorOptions): string | null {
  for (const [key, value] of Object.entries(options)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return `supervisor.${key} must be a non-negative number`;
  }
  if (!Number.isSafeInteger(options.maxRestarts)) return 'supervisor.maxRestarts must be an integer';
  if (options.windowMs <= 0) return 'supervisor.windowMs must be positive';
  if (options.backoffMaxMs < options.backoffMinMs) return 'supervisor.backoffMaxMs must be at least backoffMinMs';
  return null;
}

export type RestartDecision = { readonly type: 'restart'; readonly delayMs: number } | { readonly type: 'give_up'; readonly reason: string };

/** The restart history of one worker. */
export class RestartPolicy {
  readonly #options: SupervisorOptions;
  readonly #random: () => number;
  /** Times (ms) of the restarts still inside the window. */
  #recent: number[] = [];
  #total = 0;

  /** `random` returns [0, 1): injected so tests can pin the jitter. */
  constructor(options: SupervisorOptions, random: () => number = Math.random) {
    this.#options = options;
    this.#random = random;
  }

  get total(): number {
    return this.#total;
  }

  /** Called when the worker died unasked at `nowMs`. */
  decide(nowMs: number): RestartDecision {
    const { maxRestarts, windowMs, backoffMinMs, backoffMaxMs } = this.#options;
    this.#recent = this.#recent.filter((at) => nowMs - at < windowMs);
    if (this.#recent.length >= maxRestarts) {
      return { type: 'give_up', reason: `${this.#recent.length} restarts within ${windowMs} ms (limit ${maxRestarts})` };
    }
    const base = Math.min(backoffMaxMs, backoffMinMs * 2 ** this.#recent.length);
    // Jitter in [base/2, base): restarts of several workers do not line up.
    const delayMs = base / 2 + this.#random() * (base / 2);
    this.#recent.push(nowMs);
    this.#total += 1;
    return { type: 'restart', delayMs };
  }
}
