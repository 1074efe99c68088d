/**
 * Lock throughput, for the recipes benchmark: contenders in closed loops, each taking the
 * lock at one path and releasing it at once, for a fixed window. Counts the holds that ended
 * in the window and times each acquisition (the `lock` call to its promise resolving: under
 * contention, mostly waiting in the queue). The etcd loop does the same with the `etcd3`
 * client's lock recipe (a lease, a put-if-absent txn on it; release revokes the lease).
 */

import type { Etcd3 } from 'etcd3';
import type { KeptLease, LockOptions, NamespaceClient } from '../src/client/namespace_client.ts';
import { percentile } from './runtime.bench.ts';

export type LockRun = {
  /** Lock+release cycles that ended within the window. */
  readonly holds: number;
  /** Every cycle that ended, the window's and those its contenders finished after it. */
  readonly cycles: number;
  readonly errors: number;
  /** The first error's message, for the table's note. */
  readonly firstError: string | null;
  readonly seconds: number;
  /** Acquisition times of every cycle that ended. */
  readonly p50Us: number;
  readonly p99Us: number;
  /** Contenders still inside a lock call `drainMs` after the window closed. */
  readonly stuck: number;
};

/** One lock and release, for a contender; returns when the lock was acquired. */
type Cycle = (contender: number) => Promise<number>;

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** How long a run lasts: its window, at least `minCycles` per contender, and at most `drainMs` after both. */
export type RunLength = { readonly ms: number; readonly minCycles: number; readonly drainMs: number };

/**
 * `contenders` closed loops of `cycle` for `ms`, each contender looping on past the window
 * until it has finished `minCycles` (a smoke run's guarantee of a measure however slow the
 * machine); then waits for the loops to finish their current cycle, at most `drainMs`.
 */
async function closedLoops(contenders: number, length: RunLength, cycle: Cycle): Promise<LockRun> {
  const { ms, minCycles, drainMs } = length;
  let running = true;
  /** Past the drain bound: no contender starts another cycle. */
  let abandoned = false;
  let holds = 0;
  let cycles = 0;
  let errors = 0;
  let firstError: string | null = null;
  let finished = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const stopAt = started + ms;
  const windowTimer = setTimeout(() => (running = false), ms);
  const loops = Array.from({ length: contenders }, async (_, k) => {
    let done = 0;
    while (!abandoned && (running || done < minCycles)) {
      const t0 = performance.now();
      try {
        const acquiredAt = await cycle(k);
        done += 1;
        cycles += 1;
        latencies.push((acquiredAt - t0) * 1000);
        if (performance.now() <= stopAt) holds += 1;
      } catch (error: unknown) {
        errors += 1;
        firstError ??= errorText(error);
        // A failing cycle must not spin: back off a little.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    finished += 1;
  });
  await new Promise((resolve) => setTimeout(resolve, ms));
  let drainTimer: NodeJS.Timeout | undefined;
  const drained = new Promise((resolve) => (drainTimer = setTimeout(resolve, drainMs)));
  void drained.then(() => (abandoned = true));
  await Promise.race([Promise.all(loops), drained]);
  clearTimeout(drainTimer);
  clearTimeout(windowTimer);
  const sorted = Float64Array.from(latencies).sort();
  return { holds, cycles, errors, firstError, seconds: ms / 1000, p50Us: percentile(sorted, 0.5), p99Us: percentile(sorted, 0.99), stuck: contenders - finished };
}

export type LeaseMode = 'per lock' | 'held';

/**
 * haret: contender k locks `path` through `clientFor(k)`. `per lock`: the lock's own lease
 * (the default: granted with the lock, revoked at release); `held`: a lease each contender
 * grants once before the window (`grantLease`), passed to every lock.
 */
export async function haretLockRun(clientFor: (contender: number) => NamespaceClient, path: string, contenders: number, leaseMode: LeaseMode, length: RunLength): Promise<LockRun> {
  const leases: KeptLease[] = [];
  try {
    if (leaseMode === 'held') {
      for (let k = 0; k < contenders; k += 1) leases.push(await clientFor(k).grantLease({ ttlMs: 10_000 }));
    }
    return await closedLoops(contenders, length, async (k) => {
      const lease = leases[k];
      const options: LockOptions = lease === undefined ? {} : { lease };
      const held = await clientFor(k).lock(path, options);
      const acquiredAt = performance.now();
      await held.release();
      return acquiredAt;
    });
  } finally {
    await Promise.allSettled(leases.map((lease) => lease.revoke()));
  }
}

/** etcd: one contender (etcd3's lock fails at once when held: it does not queue), lock and release of `key`. */
export async function etcdLockRun(client: Etcd3, key: string, length: RunLength): Promise<LockRun> {
  return closedLoops(1, length, async () => {
    const lock = client.lock(key);
    await lock.acquire();
    const acquiredAt = performance.now();
    await lock.release();
    return acquiredAt;
  });
}
