/**
 * How busy each thread of a run was: event-loop active and idle time per thread, read before
 * and after a measured window (the runtime and watch benchmarks' "busy" columns).
 */

import type { HaretNode } from '../src/node/index.ts';

/** Per thread, its event loop's active and idle time so far (ms). */
export type LoopTimes = Record<string, { activeMs: number; idleMs: number }>;

/** Every thread's event-loop time so far: the node's workers, and this thread as `mainLabel`. */
export async function nodeLoopTimes(node: HaretNode, mainLabel = 'main'): Promise<LoopTimes> {
  const out: LoopTimes = {};
  for (const worker of (await node.status()).workers) if (worker.detail !== null) out[worker.name] = { ...worker.detail.loop };
  const main = performance.eventLoopUtilization();
  out[mainLabel] = { activeMs: main.active, idleMs: main.idle };
  return out;
}

/** The share of the window between `before` and `after` each thread was busy (0-1). */
export function busyShare(before: LoopTimes, after: LoopTimes): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [thread, end] of Object.entries(after)) {
    const start = before[thread];
    if (start === undefined) continue;
    const active = end.activeMs - start.activeMs;
    const total = active + (end.idleMs - start.idleMs);
    out[thread] = total > 0 ? active / total : 0;
  }
  return out;
}
