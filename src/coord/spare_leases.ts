/**
 * Leases granted ahead of time for recipe tickets (src/coord/README.md "Spare leases").
 *
 * A recipe called without a lease gives its ticket a lease of its own, so that a release is
 * one revoke (the ticket goes in the same op) and a ticket the client cannot delete still
 * goes within the TTL. Granting it on the acquire's path costs a commit; instead one spare
 * per TTL is granted in the background, kept alive like any lease, and handed to the next
 * acquire, which then needs only its ticket's commit. Taking a spare starts the grant of the
 * next. A spare unused for `idleMs` is revoked, so a client that stopped locking keeps
 * nothing. Bounded: at most `sparesMax` TTLs have a spare.
 */

import type { KeptLease } from '../client/namespace_client.ts';
import type { KeptLeaseHandle, LeaseKeeper } from './lease.ts';

const sparesMax = 4;

type Spare = { readonly lease: Promise<KeptLeaseHandle | null>; readonly timer: NodeJS.Timeout; ready: boolean };

export class SpareLeases {
  readonly #keeper: LeaseKeeper;
  readonly #spares = new Map<number, Spare>();

  constructor(keeper: LeaseKeeper) {
    this.#keeper = keeper;
  }

  /** Spare leases granted and waiting (the keeper keeps them alive; they hold no node). */
  get ready(): number {
    let count = 0;
    for (const spare of this.#spares.values()) if (spare.ready) count += 1;
    return count;
  }

  /** A lease of `ttlMs` for one ticket: the spare when one is alive, else a fresh grant; either way the next spare is started. */
  async take(ttlMs: number): Promise<KeptLease> {
    const spare = this.#spares.get(ttlMs);
    if (spare !== undefined) {
      this.#spares.delete(ttlMs);
      clearTimeout(spare.timer);
      spare.ready = false;
    }
    this.#refill(ttlMs);
    if (spare !== undefined) {
      const lease = await spare.lease;
      if (lease !== null && lease.alive) return lease;
      if (lease !== null) void lease.revoke().catch(() => {});
    }
    return this.#keeper.grant({ ttlMs });
  }

  #refill(ttlMs: number): void {
    if (this.#spares.has(ttlMs) || this.#spares.size >= sparesMax) return;
    const idleMs = Math.max(ttlMs, 5_000);
    const timer = setTimeout(() => this.#retire(ttlMs, spare), idleMs);
    timer.unref();
    const spare: Spare = {
      lease: this.#keeper.grant({ ttlMs }).then(
        (lease) => {
          if (this.#spares.get(ttlMs) === spare) spare.ready = true;
          return lease;
        },
        () => null,
      ),
      timer,
      ready: false,
    };
    this.#spares.set(ttlMs, spare);
  }

  #retire(ttlMs: number, spare: Spare): void {
    if (this.#spares.get(ttlMs) !== spare) return;
    this.#spares.delete(ttlMs);
    spare.ready = false;
    void spare.lease.then((lease) => lease?.revoke()).catch(() => {});
  }
}
