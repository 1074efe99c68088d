/**
 * A pool of leases for lock tickets (src/coord/README.md "Spare leases").
 *
 * A lock called without a lease gives its ticket a lease of its own, so that a ticket the
 * client cannot delete still goes within the TTL (a lease the caller keeps alive would hold it,
 * and the queue behind it, for ever). Granting that lease on the acquire's path would cost a
 * commit, and revoking it at release another request; instead the pool keeps leases ready:
 *
 * - `take(ttl)` hands out the most recently returned idle lease of that TTL (or the one being
 *   granted in the background, or a fresh grant), and when that leaves none idle it starts the
 *   background grant of one more;
 * - a release that deleted its ticket gives the lease back (`giveBack`): it held exactly that
 *   node, which is gone, so it is as good as new. A release that could not delete its ticket
 *   revokes the lease instead (held.ts), so the node still goes with the lease.
 *
 * So a client locking one lock after another grants nothing in the steady state: a cycle is
 * the ticket's transaction and one delete. Bounded: at most `idlePerTtlMax` idle leases per
 * TTL and `ttlsMax` TTLs pooled (a lease given back past either is revoked); a lease idle for
 * max(TTL, 5 s) is revoked, so a client that stopped locking keeps nothing. Idle leases are
 * kept alive with the client's others (one batched keep-alive op per period).
 */

import type { KeptLeaseHandle, LeaseKeeper } from './lease.ts';

/** TTLs with a pool. */
const ttlsMax = 4;
/** Idle leases kept per TTL: as many locks of one client as may run at once without a grant on their path. */
const idlePerTtlMax = 16;

type Idle = { readonly lease: KeptLeaseHandle; readonly timer: NodeJS.Timeout };

type Pool = {
  /** Idle leases, the most recently given back last (taken first, so the others age out). */
  readonly idle: Idle[];
  /** The background grant in flight, if any; its lease joins `idle` unless a take claims it first. */
  granting: Promise<KeptLeaseHandle | null> | null;
};

export class SpareLeases {
  readonly #keeper: LeaseKeeper;
  readonly #pools = new Map<number, Pool>();

  constructor(keeper: LeaseKeeper) {
    this.#keeper = keeper;
  }

  /** Leases granted and idle in the pool (the keeper keeps them alive; they hold no node). */
  get ready(): number {
    let count = 0;
    for (const pool of this.#pools.values()) count += pool.idle.length;
    return count;
  }

  /** A lease of `ttlMs` for one ticket, alive when handed out. */
  async take(ttlMs: number): Promise<KeptLeaseHandle> {
    const pool = this.#pools.get(ttlMs);
    if (pool !== undefined) {
      for (let idle = pool.idle.pop(); idle !== undefined; idle = pool.idle.pop()) {
        clearTimeout(idle.timer);
        if (idle.lease.alive) {
          if (pool.idle.length === 0) this.#refill(ttlMs);
          return idle.lease;
        }
        void idle.lease.revoke().catch(() => {});
      }
      const granting = pool.granting;
      if (granting !== null) {
        // Claim the background grant: it is ours now, and the next one starts.
        pool.granting = null;
        this.#refill(ttlMs);
        const lease = await granting;
        if (lease !== null && lease.alive) return lease;
        if (lease !== null) void lease.revoke().catch(() => {});
        return this.#keeper.grant({ ttlMs });
      }
    }
    this.#refill(ttlMs);
    return this.#keeper.grant({ ttlMs });
  }

  /**
   * A lease from `take` whose ticket is gone (deleted by the release): back to the pool, or
   * revoked when it is not alive, past the pool's bounds, or of a TTL the pool does not keep.
   */
  giveBack(lease: KeptLeaseHandle): void {
    const pool = this.#poolFor(lease.ttlMs);
    if (!lease.alive || pool === null || pool.idle.length >= idlePerTtlMax) {
      void lease.revoke().catch(() => {});
      return;
    }
    const idle: Idle = { lease, timer: setTimeout(() => this.#retire(pool, idle), idleMsOf(lease.ttlMs)) };
    idle.timer.unref();
    pool.idle.push(idle);
  }

  /** Starts the background grant of one lease of `ttlMs` unless one is in flight or the pool cannot take it. */
  #refill(ttlMs: number): void {
    const pool = this.#poolFor(ttlMs);
    if (pool === null || pool.granting !== null) return;
    const granting: Promise<KeptLeaseHandle | null> = this.#keeper.grant({ ttlMs }).then(
      (lease) => {
        // Not claimed by a take while in flight: it waits idle.
        if (pool.granting === granting) {
          pool.granting = null;
          this.giveBack(lease);
        }
        return lease;
      },
      () => {
        if (pool.granting === granting) pool.granting = null;
        return null;
      },
    );
    pool.granting = granting;
  }

  #poolFor(ttlMs: number): Pool | null {
    const pool = this.#pools.get(ttlMs);
    if (pool !== undefined) return pool;
    if (this.#pools.size >= ttlsMax) return null;
    const made: Pool = { idle: [], granting: null };
    this.#pools.set(ttlMs, made);
    return made;
  }

  #retire(pool: Pool, idle: Idle): void {
    const at = pool.idle.indexOf(idle);
    if (at < 0) return;
    pool.idle.splice(at, 1);
    void idle.lease.revoke().catch(() => {});
  }
}

/** How long a lease of `ttlMs` may sit idle before it is revoked. */
function idleMsOf(ttlMs: number): number {
  return Math.max(ttlMs, 5_000);
}
