/**
 * "Where the time goes" (issue 16): per thread of a node, what one committed op costs over a
 * measured window: event-loop busy time, garbage collection, postMessage calls, envelopes and
 * bytes; for the whole process, CPU time from process.cpuUsage(); at the primary, requests
 * per log entry (how many requests one prepare carries).
 *
 * Read from two snapshots around the window: the node's status (each worker's loop time, GC
 * time and router counters; each replica's applied entries and requests) and this thread's
 * own figures (its loop time, its GC time from a PerformanceObserver, its routers' post totals).
 *
 * What is and is not measured, plainly:
 * - Node 20 has no per-thread CPU clock: a thread's "CPU" is its event loop's active time
 *   (performance.eventLoopUtilization), which counts the thread's callbacks and microtasks,
 *   including time blocked in synchronous calls, and leaves out work V8 and libuv do on helper
 *   threads. The process row is true CPU (user + system, every thread of the process).
 * - GC: the pauses each thread's perf_hooks 'gc' entries report (time that thread stood still);
 *   concurrent marking and parallel scavenging on V8's helper threads show only in the process
 *   CPU.
 * - Bytes: msgpack batches are counted exactly; structured-clone posts are sampled (one in
 *   128 at random, re-serialized with v8.serialize) and the bytes per post scaled to every
 *   post of the thread: an estimate.
 */

import { PerformanceObserver } from 'node:perf_hooks';
import type { HaretNode } from '../src/node/index.ts';
import { threadPostTotals } from '../runtime/router.ts';
import type { LoopTimes } from './loop_times.ts';

/** One thread's cumulative figures at a snapshot. */
export type ThreadCounters = {
  readonly activeMs: number;
  readonly idleMs: number;
  /** Null when the thread does not report its GC time. */
  readonly gcMs: number | null;
  readonly posts: number;
  readonly envelopesOut: number;
  readonly bytesMeasured: number;
  readonly postsMeasured: number;
};

export type BreakdownSnapshot = {
  readonly threads: Readonly<Record<string, ThreadCounters>>;
  /** process.cpuUsage(), µs. */
  readonly processCpuUs: number;
  readonly atMs: number;
  /** The primary's applied log entries and the requests they held, summed over namespaces' primaries; null without one. */
  readonly primary: { readonly actor: string; readonly entries: number; readonly requests: number } | null;
};

/** One thread over the window, per committed op (µs, counts) and as shares of the window. */
export type ThreadBreakdown = {
  readonly thread: string;
  readonly busyUsPerOp: number;
  readonly busyShare: number;
  /** Null when the thread does not report GC time. */
  readonly gcUsPerOp: number | null;
  /** GC pause time as a share of the thread's busy time. */
  readonly gcShareOfBusy: number | null;
  readonly postsPerOp: number;
  readonly envelopesPerOp: number;
  /** NaN-free: 0 when the thread posted nothing. */
  readonly envelopesPerPost: number;
  /** Null when no post of the thread was measured. */
  readonly bytesPerOp: number | null;
};

export type TimeBreakdown = {
  readonly ops: number;
  readonly windowMs: number;
  readonly threads: readonly ThreadBreakdown[];
  /** Every thread together: process CPU per op, and the sums of the thread figures. */
  readonly processCpuUsPerOp: number;
  /** Process CPU as cores busy on average over the window. */
  readonly processCores: number;
  readonly totalBusyUsPerOp: number;
  readonly totalGcUsPerOp: number;
  readonly totalPostsPerOp: number;
  readonly totalEnvelopesPerOp: number;
  readonly totalBytesPerOp: number | null;
  /** Requests per log entry at the primary (entries per prepare); null without a primary or entries. */
  readonly requestsPerEntry: number | null;
};

/** Sums this thread's GC pauses from perf_hooks 'gc' entries while started. */
export class GcClock {
  #ms = 0;
  readonly #observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) this.#ms += entry.duration;
  });

  start(): this {
    this.#observer.observe({ entryTypes: ['gc'] });
    return this;
  }

  stop(): void {
    this.#observer.disconnect();
  }

  get ms(): number {
    return this.#ms;
  }
}

type ReplicaDetail = { readonly role?: unknown; readonly events?: { readonly entriesApplied?: unknown; readonly requestsApplied?: unknown } };

/** Every thread's counters now: the node's workers and this thread as `mainLabel`. */
export async function takeSnapshot(node: HaretNode, mainGc: GcClock, mainLabel = 'main'): Promise<BreakdownSnapshot> {
  const status = await node.status();
  const threads: Record<string, ThreadCounters> = {};
  for (const worker of status.workers) {
    const d = worker.detail;
    if (d === null) continue;
    threads[worker.name] = {
      activeMs: d.loop.activeMs,
      idleMs: d.loop.idleMs,
      gcMs: d.gcMs ?? null,
      posts: d.router.posts,
      envelopesOut: d.router.envelopesOut,
      bytesMeasured: d.router.bytesMeasured ?? 0,
      postsMeasured: d.router.postsMeasured ?? 0,
    };
  }
  const elu = performance.eventLoopUtilization();
  const posted = threadPostTotals();
  threads[mainLabel] = { activeMs: elu.active, idleMs: elu.idle, gcMs: mainGc.ms, ...posted };
  let primary: BreakdownSnapshot['primary'] = null;
  for (const actor of status.actors) {
    const detail = actor.detail as ReplicaDetail | null;
    if (detail === null || typeof detail !== 'object' || detail.role !== 'primary') continue;
    const entries = detail.events?.entriesApplied;
    const requests = detail.events?.requestsApplied;
    if (typeof entries !== 'number' || typeof requests !== 'number') continue;
    primary = { actor: actor.actor, entries, requests };
    break;
  }
  const cpu = process.cpuUsage();
  return { threads, processCpuUs: cpu.user + cpu.system, atMs: performance.now(), primary };
}

/** The loop times in a snapshot, as bench/loop_times.ts reads them (for the busy-share table). */
export function loopTimesOf(snapshot: BreakdownSnapshot): LoopTimes {
  const out: LoopTimes = {};
  for (const [thread, t] of Object.entries(snapshot.threads)) out[thread] = { activeMs: t.activeMs, idleMs: t.idleMs };
  return out;
}

/**
 * The window between two snapshots, per op. `ops`: the ops that completed between them. A
 * thread missing from either snapshot (its worker restarted or down) is left out; a primary
 * that changed in between gives no requests-per-entry figure.
 */
export function breakdown(before: BreakdownSnapshot, after: BreakdownSnapshot, ops: number): TimeBreakdown {
  const perOp = (x: number): number => (ops > 0 ? x / ops : 0);
  const threads: ThreadBreakdown[] = [];
  for (const [thread, end] of Object.entries(after.threads)) {
    const start = before.threads[thread];
    if (start === undefined) continue;
    const activeMs = end.activeMs - start.activeMs;
    const totalMs = activeMs + (end.idleMs - start.idleMs);
    const gcMs = end.gcMs === null || start.gcMs === null ? null : end.gcMs - start.gcMs;
    const posts = end.posts - start.posts;
    const envelopes = end.envelopesOut - start.envelopesOut;
    threads.push({
      thread,
      busyUsPerOp: perOp(activeMs * 1000),
      busyShare: totalMs > 0 ? activeMs / totalMs : 0,
      gcUsPerOp: gcMs === null ? null : perOp(gcMs * 1000),
      gcShareOfBusy: gcMs === null || activeMs <= 0 ? null : gcMs / activeMs,
      postsPerOp: perOp(posts),
      envelopesPerOp: perOp(envelopes),
      envelopesPerPost: posts > 0 ? envelopes / posts : 0,
      bytesPerOp: bytesPerOp(start, end, posts, perOp),
    });
  }
  const windowMs = after.atMs - before.atMs;
  const cpuUs = after.processCpuUs - before.processCpuUs;
  const sum = (f: (t: ThreadBreakdown) => number): number => threads.reduce((acc, t) => acc + f(t), 0);
  const bytes = threads.every((t) => t.bytesPerOp !== null || t.postsPerOp === 0) ? sum((t) => t.bytesPerOp ?? 0) : null;
  const p0 = before.primary;
  const p1 = after.primary;
  const entries = p0 !== null && p1 !== null && p0.actor === p1.actor ? p1.entries - p0.entries : 0;
  return {
    ops,
    windowMs,
    threads,
    processCpuUsPerOp: perOp(cpuUs),
    processCores: windowMs > 0 ? cpuUs / 1000 / windowMs : 0,
    totalBusyUsPerOp: sum((t) => t.busyUsPerOp),
    totalGcUsPerOp: sum((t) => t.gcUsPerOp ?? 0),
    totalPostsPerOp: sum((t) => t.postsPerOp),
    totalEnvelopesPerOp: sum((t) => t.envelopesPerOp),
    totalBytesPerOp: bytes,
    requestsPerEntry: entries > 0 && p0 !== null && p1 !== null ? (p1.requests - p0.requests) / entries : null,
  };
}

/**
 * Bytes per op of one thread: bytes per post from the posts measured in the window (or, when
 * none was sampled in it, over the thread's whole life), times the posts it made. Posts are
 * sampled uniformly, so this is unbiased however unequal their sizes.
 */
function bytesPerOp(start: ThreadCounters, end: ThreadCounters, posts: number, perOp: (x: number) => number): number | null {
  const windowBytes = end.bytesMeasured - start.bytesMeasured;
  const windowPosts = end.postsMeasured - start.postsMeasured;
  if (windowPosts > 0) return perOp((windowBytes / windowPosts) * posts);
  if (posts === 0) return 0;
  if (end.postsMeasured > 0) return perOp((end.bytesMeasured / end.postsMeasured) * posts);
  return null;
}

export const breakdownTitle = [
  "where the time goes, per committed op, over the throughput row's window (median run)",
  "  CPU µs/op: per thread, its event loop's active time (a proxy: Node 20 has no per-thread CPU clock, and V8/libuv",
  "  helper threads are not in it); process row: process.cpuUsage() user+system of every thread, and its average cores;",
  "  GC: the pauses of each thread's perf_hooks 'gc' entries, per op and as a share of that thread's busy time;",
  "  env: envelopes; bytes/op: msgpack counted exactly, structured clone estimated (1 post in 128 re-serialized);",
  "  req/entry: requests per log entry applied at the primary (requests per prepare)",
].join('\n');

export const breakdownColumns = [
  { header: 'case' },
  { header: 'thread' },
  { header: 'CPU µs/op', align: 'right' },
  { header: 'busy', align: 'right' },
  { header: 'GC µs/op', align: 'right' },
  { header: 'GC % busy', align: 'right' },
  { header: 'posts/op', align: 'right' },
  { header: 'env/op', align: 'right' },
  { header: 'env/post', align: 'right' },
  { header: 'bytes/op', align: 'right' },
  { header: 'req/entry', align: 'right' },
] as const;

const fixed = (x: number, digits: number): string => x.toFixed(digits);
const percent = (x: number): string => `${(x * 100).toFixed(0)}%`;

/** The table's lines for one case: one per thread, then the process. */
export function breakdownRows(caseName: string, b: TimeBreakdown): string[][] {
  const rows = b.threads.map((t) => [
    caseName,
    t.thread,
    fixed(t.busyUsPerOp, 1),
    percent(t.busyShare),
    t.gcUsPerOp === null ? 'n/a' : fixed(t.gcUsPerOp, 2),
    t.gcShareOfBusy === null ? 'n/a' : percent(t.gcShareOfBusy),
    fixed(t.postsPerOp, 2),
    fixed(t.envelopesPerOp, 2),
    fixed(t.envelopesPerPost, 1),
    t.bytesPerOp === null ? 'n/a' : fixed(t.bytesPerOp, 0),
    '',
  ]);
  rows.push([
    caseName,
    `process (threads' busy: ${fixed(b.totalBusyUsPerOp, 1)} µs/op)`,
    fixed(b.processCpuUsPerOp, 1),
    `${fixed(b.processCores, 2)} cores`,
    fixed(b.totalGcUsPerOp, 2),
    b.totalBusyUsPerOp > 0 ? percent(b.totalGcUsPerOp / b.totalBusyUsPerOp) : 'n/a',
    fixed(b.totalPostsPerOp, 2),
    fixed(b.totalEnvelopesPerOp, 2),
    b.totalPostsPerOp > 0 ? fixed(b.totalEnvelopesPerOp / b.totalPostsPerOp, 1) : '0.0',
    b.totalBytesPerOp === null ? 'n/a' : fixed(b.totalBytesPerOp, 0),
    b.requestsPerEntry === null ? 'n/a' : fixed(b.requestsPerEntry, 1),
  ]);
  return rows;
}
