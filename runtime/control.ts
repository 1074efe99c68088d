/**
 * Control-plane calls with a deadline (DESIGN.md "Control plane"): every call to a worker
 * rejects with a typed error when it takes longer than its timeout or when the worker exits
 * first, and leaves no timer behind either way.
 */

export type ControlErrorCode = 'control_timeout' | 'worker_exited' | 'worker_unavailable';

export class ControlError extends Error {
  override readonly name = 'ControlError';
  readonly code: ControlErrorCode;
  readonly thread: string;

  constructor(code: ControlErrorCode, thread: string, message: string) {
    super(message);
    this.code = code;
    this.thread = thread;
  }
}

/**
 * Races `call` against `timeoutMs` and against `exited` (a promise that resolves when the
 * worker exits). The call's own late settlement is ignored.
 */
export function withDeadline<T>(thread: string, what: string, call: Promise<T>, timeoutMs: number, exited: Promise<unknown>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      finish(() => reject(new ControlError('control_timeout', thread, `${what} on ${thread}: no answer within ${timeoutMs} ms`)));
    }, timeoutMs);
    const finish = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      settle();
    };
    call.then(
      (value) => finish(() => resolve(value)),
      (error: unknown) => finish(() => reject(error instanceof Error ? error : new Error(String(error)))),
    );
    void exited.then(() => finish(() => reject(new ControlError('worker_exited', thread, `${what} on ${thread}: the worker exited`))));
  });
}
