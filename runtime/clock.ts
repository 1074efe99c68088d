/**
 * Wall-clock time for the shell. The protocol never reads it (it counts ticks); the timer
 * service turns it into ticks.
 */

export type Interval = { cancel(): void };

/** Calls `fn` every `ms`; the timer does not keep the process alive on its own. */
export function every(ms: number, fn: () => void): Interval {
  const handle = setInterval(fn, ms);
  handle.unref();
  return { cancel: () => clearInterval(handle) };
}
