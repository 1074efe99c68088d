/**
 * One supervised child (DESIGN.md "Supervisor"): a worker thread or an actor on the host
 * thread, the same unit for both. It carries out the RestartPolicy's decisions: a child that
 * dies unasked comes back after a backoff; past the restart intensity it is `failed`, and after
 * the cool-down it is started afresh (a fresh intensity window), so a node is always either
 * serving or saying plainly that it is not, and when it will try again.
 *
 * What a start is (spawn a worker and wire it into the mesh, or import an actor's module onto
 * the host thread) and how a change is told (log lines, events) is the owner's business,
 * given as hooks: this file knows only the states and the timers.
 */

import { RestartPolicy, failedCoolDownMsOf, type SupervisorOptions } from './supervisor.ts';

export type SupervisedState = 'running' | 'restarting' | 'failed' | 'stopped';

export type SupervisedHooks = {
  /**
   * (Re)starts the child; `restarts` counts every restart so far, this one included (the
   * argument of a restart init). Resolves once the child serves again. A rejection counts as a
   * crash, unless the death was already reported through `crashed`.
   */
  readonly start: (restarts: number) => Promise<void>;
  /** The child serves again after a restart (after a backoff or after the cool-down). */
  readonly restarted: (restarts: number) => void;
  /** Past the restart intensity: the child stays down until `retryAt` (epoch ms). */
  readonly failed: (reason: string, coolDownMs: number, retryAt: number) => void;
};

export class Supervised {
  readonly #policy: RestartPolicy;
  readonly #coolDownMs: number;
  readonly #hooks: SupervisedHooks;
  #state: SupervisedState = 'running';
  /** The backoff or cool-down timer; while it is set, the child is down and nothing is in flight. */
  #timer: NodeJS.Timeout | null = null;
  /** Numbers the starts, so that the outcome of a start overtaken by a crash report is ignored. */
  #attempt = 0;
  #failure: string | null = null;
  #retryAt: number | null = null;
  #stopped = false;

  /** The child runs when this is made (its first start is the owner's, outside supervision). */
  constructor(options: SupervisorOptions, hooks: SupervisedHooks, random: () => number = Math.random) {
    this.#policy = new RestartPolicy(options, random);
    this.#coolDownMs = failedCoolDownMsOf(options);
    this.#hooks = hooks;
  }

  get state(): SupervisedState {
    return this.#state;
  }

  /** Every restart so far, the cool-down restarts included. */
  get restarts(): number {
    return this.#policy.total;
  }

  /** Why the supervisor gave up, while the state is `failed`. */
  get failure(): string | null {
    return this.#failure;
  }

  /** When (epoch ms) a failed child is started afresh; null when no such restart is scheduled. */
  get retryAt(): number | null {
    return this.#retryAt;
  }

  /**
   * The child died unasked (or its start failed): a restart after the backoff, or, past the
   * intensity, `failed` until the cool-down. Ignored while the child is already down (a second
   * report of one death, e.g. a worker's exit after its start timed out) and after `stop`.
   */
  crashed(): void {
    if (this.#stopped || this.#timer !== null || this.#state === 'failed') return;
    this.#attempt += 1;
    const decision = this.#policy.decide(performance.now());
    switch (decision.type) {
      case 'restart':
        this.#state = 'restarting';
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.#start();
        }, decision.delayMs);
        return;
      case 'give_up': {
        this.#state = 'failed';
        this.#failure = decision.reason;
        const retryAt = Date.now() + this.#coolDownMs;
        this.#retryAt = retryAt;
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.#afresh();
        }, this.#coolDownMs);
        this.#hooks.failed(decision.reason, this.#coolDownMs, retryAt);
        return;
      }
      default: {
        const never: never = decision;
        throw new Error(`unknown restart decision ${String(never)}`);
      }
    }
  }

  /** No more restarts: cancels a pending backoff or cool-down. A failed child reports `failed` still. */
  stop(): void {
    this.#stopped = true;
    this.#attempt += 1;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#retryAt = null;
    if (this.#state !== 'failed') this.#state = 'stopped';
  }

  /** The cool-down is over: the restart history is forgotten (not the count) and the child starts again. */
  #afresh(): void {
    if (this.#stopped) return;
    this.#policy.startAfresh();
    this.#failure = null;
    this.#retryAt = null;
    this.#state = 'restarting';
    this.#start();
  }

  #start(): void {
    if (this.#stopped) return;
    this.#attempt += 1;
    const attempt = this.#attempt;
    const restarts = this.#policy.total;
    let started: Promise<void>;
    try {
      started = this.#hooks.start(restarts);
    } catch (error) {
      started = Promise.reject(error);
    }
    started.then(
      () => {
        if (attempt !== this.#attempt) return;
        this.#state = 'running';
        this.#hooks.restarted(restarts);
      },
      () => {
        if (attempt === this.#attempt) this.crashed();
      },
    );
  }
}
