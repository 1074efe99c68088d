/**
 * haret's coordination layer (README.md here): kept-alive leases, and the lock, leader
 * election, barrier and semaphore built on them. Shell code: it uses timers and the monotonic
 * clock, and only NamespaceClient's public methods, so it works the same embedded and over TCP.
 * The core's NamespaceClient reaches it through the factory `coordinationFor`, which the shell
 * (startNode's `node.client()`, `connect()`'s `client()`) passes in.
 */

import type {
  Barrier,
  BarrierOptions,
  Coordination,
  Election,
  ElectionOptions,
  HeldLock,
  KeptLease,
  LeaseOptions,
  LockOptions,
  NamespaceClient,
  Semaphore,
  SemaphoreOptions,
} from '../client/namespace_client.ts';
import { barrier } from './barrier.ts';
import { CoordContext, type CoordClient, type CoordStats, type OpenWatch } from './context.ts';
import { election } from './election.ts';
import { LeaseKeeper } from './lease.ts';
import { acquireLock, withLock } from './lock.ts';
import { semaphore } from './semaphore.ts';
import { SpareLeases } from './spare_leases.ts';

export type { CoordClient, CoordStats, OpenWatch, WatchPurpose } from './context.ts';
export { KeptLeaseHandle } from './lease.ts';
export type {
  Barrier,
  BarrierOptions,
  Coordination,
  CoordinationFactory,
  Election,
  ElectionOptions,
  HeldLock,
  HeldNode,
  KeptLease,
  Leader,
  Leadership,
  LeaseOptions,
  LockOptions,
  Permit,
  QueueOptions,
  Semaphore,
  SemaphoreOptions,
} from '../client/namespace_client.ts';

/** The recipes over one client; all its leases share one keeper (one timer, batched keep-alives). */
export class Coordinator implements Coordination {
  readonly #context: CoordContext;
  readonly #leases: LeaseKeeper;
  readonly #spares: SpareLeases;

  constructor(db: CoordClient) {
    this.#context = new CoordContext(db);
    this.#leases = new LeaseKeeper(this.#context);
    this.#spares = new SpareLeases(this.#leases);
  }

  grantLease(options: LeaseOptions): Promise<KeptLease> {
    return this.#leases.grant(options);
  }
  lock(path: string, options?: LockOptions): Promise<HeldLock> {
    return acquireLock(this.#context, this.#leases, this.#spares, path, options);
  }
  withLock<T>(path: string, fn: (held: HeldLock) => Promise<T> | T, options?: LockOptions): Promise<T> {
    return withLock(this.#context, this.#leases, this.#spares, path, fn, options);
  }
  election(path: string, options?: ElectionOptions): Election {
    return election(this.#context, this.#leases, path, options);
  }
  barrier(path: string, count: number, options?: BarrierOptions): Barrier {
    return barrier(this.#context, this.#leases, path, count, options);
  }
  semaphore(path: string, permits: number, options?: SemaphoreOptions): Semaphore {
    return semaphore(this.#context, this.#leases, path, permits, options);
  }

  /** Counters for tests, benchmarks and operators; `leases` leaves out the spares (spare_leases.ts), counted apart. */
  stats(): CoordStats {
    const { keepAliveOps, keepAliveIds, lists, watchesOpened } = this.#context.counters;
    const spareLeases = this.#spares.ready;
    return { leases: this.#leases.size - spareLeases, spareLeases, keepAliveOps, keepAliveIds, lists, watchesOpen: this.#context.openWatches.length, watchesOpened };
  }

  /** The watches the recipes hold open now (what and why). */
  openWatches(): readonly OpenWatch[] {
    return this.#context.openWatches;
  }
}

/** The factory NamespaceClient takes: one Coordinator per client. */
export function coordinationFor(db: NamespaceClient): Coordinator {
  return new Coordinator(db);
}
