/**
 * Restart policy (DESIGN.md "Supervisor"): one-for-one, with restart intensity. A worker that
 * dies without being asked is restarted after an exponential backoff with jitter, unless it
 * has already been restarted `maxRestarts` times within the last `windowMs`; then it is marked
 * failed, the failure is visible in status and logged, and after `failedCoolDownMs` it is
 * started afresh with an empty window (escalation: a child is never down for good while the
 * node runs, and never restarted in a tight loop either). This file decides; supervised.ts
 * carries the decision out.
 */

export type SupervisorOptions = {
  /** Restarts allowed within `windowMs`; one more marks the worker failed. */
  readonly maxRestarts: number;
  readonly windowMs: number;
  /** Backoff of the first restart in a window; doubles per restart, capped at backoffMaxMs. */
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /**
   * How long a failed child stays down before it is started afresh (default 30 s). Long
   * enough that a child failing at once again costs little; short enough that a transient
   * cause (a full disk, a peer away) does not take the node's service away for good.
   */
  readonly failedCoolDownMs?: number;
};

export const defaultFailedCoolDownMs = 30_000;
/** An hour: longer is "never" in practice, which the cool-down exists to rule out. */
export const maxFailedCoolDownMs = 3_600_000;

export const defaultSupervisorOptions: SupervisorOptions = { maxRestarts: 5, windowMs: 10_000, backoffMinMs: 20, backoffMaxMs: 2_000, failedCoolDownMs: defaultFailedCoolDownMs };

/** The cool-down of a validated options record (a missing field is the default). */
export function failedCoolDownMsOf(options: SupervisorOptions): number {
  return options.failedCoolDownMs ?? defaultFailedCoolDownMs;
}

export function validateSupervisorOptions(options: SupervisorOptions): string | null {
  for (const [key, value] of Object.entries(options)) {
    // An optional field left undefined (from JavaScript) means its default.
    if (key === 'failedCoolDownMs' && value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return `supervisor.${key} must be a non-negative number`;
  }
  if (!Number.isSafeInteger(options.maxRestarts)) return 'supervisor.maxRestarts must be an integer';
  if (options.windowMs <= 0) return 'supervisor.windowMs must be positive';
  if (options.backoffMaxMs < options.backoffMinMs) return 'supervisor.backoffMaxMs must be at least backoffMinMs';
  const coolDown = failedCoolDownMsOf(options);
  if (!Number.isSafeInteger(coolDown) || coolDown < 1 || coolDown > maxFailedCoolDownMs) return `supervisor.failedCoolDownMs must be an integer between 1 and ${maxFailedCoolDownMs}`;
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

  /**
   * The restart after a failed child's cool-down: counted in `total`, but the window starts
   * empty, so the child gets its full intensity again.
   */
  startAfresh(): void {
    this.#recent = [];
    this.#total += 1;
  }
}
