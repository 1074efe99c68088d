/**
 * The barrier (src/coord/README.md "Barrier"): each party adds a member ticket
 * `${path}/member-…` and waits, following the directory op by op (children.ts), until at least
 * `count` members exist at some op; so a barrier that was full for a single op opens for every
 * party that entered, even if some left at once.
 */

import { HaretError } from '../client/errors.ts';
import type { Barrier, BarrierOptions, KeptLease } from '../client/namespace_client.ts';
import { Bound } from './bound.ts';
import { ChildrenFeed } from './children.ts';
import type { CoordContext } from './context.ts';
import { abandonTicket, removeTicket } from './held.ts';
import type { LeaseKeeper } from './lease.ts';
import { checkCount, checkQueueOptions, invalid, type CheckedQueueOptions } from './options.ts';
import { createTicket, ticketGone, type OwnTicket } from './ticket.ts';

export function barrier(context: CoordContext, leases: LeaseKeeper, path: string, count: number, options: BarrierOptions | undefined): Barrier {
  checkCount(count, 'barrier count');
  return new BarrierParty(context, leases, path, count, checkQueueOptions(options, 'barrier'));
}

class BarrierParty implements Barrier {
  readonly #context: CoordContext;
  readonly #leases: LeaseKeeper;
  readonly #path: string;
  readonly #count: number;
  readonly #options: CheckedQueueOptions;
  #entering: Promise<void> | null = null;
  #leaving: Promise<void> | null = null;
  #bound: Bound | null = null;
  #ticket: OwnTicket | null = null;
  #lease: KeptLease | null = null;

  constructor(context: CoordContext, leases: LeaseKeeper, path: string, count: number, options: CheckedQueueOptions) {
    this.#context = context;
    this.#leases = leases;
    this.#path = path;
    this.#count = count;
    this.#options = options;
  }

  enter(): Promise<void> {
    if (this.#entering !== null) return Promise.reject(invalid(`barrier ${this.#path}: enter() was called already on this party`));
    this.#entering = this.#enter();
    return this.#entering;
  }

  /** Leaves (a pending enter rejects with `stopped`): our member node goes, with the lease made for it. Idempotent. */
  leave(): Promise<void> {
    if (this.#leaving === null) this.#leaving = this.#leave();
    return this.#leaving;
  }

  async #enter(): Promise<void> {
    const bound = new Bound(`barrier ${this.#path}`, this.#options.timeoutMs);
    this.#bound = bound;
    if (this.#leaving !== null) bound.cancel(left(this.#path));
    const ownLease = this.#options.lease === undefined;
    try {
      this.#lease = this.#options.lease ?? (await this.#leases.grant({ ttlMs: this.#options.ttlMs }));
      bound.follow(this.#lease);
      bound.check();
      this.#ticket = await createTicket(this.#context, this.#path, 'member', this.#lease);
      bound.check();
      await this.#waitForCount(this.#ticket, bound);
    } catch (error) {
      await abandonTicket(this.#context, this.#ticket, this.#lease, ownLease);
      this.#ticket = null;
      throw bound.reason ?? error;
    } finally {
      bound.dispose();
    }
  }

  async #waitForCount(ours: OwnTicket, bound: Bound): Promise<void> {
    const feed = new ChildrenFeed(this.#context, this.#path, 'member', { values: false, createDirectory: false });
    try {
      for (;;) {
        const state = await bound.race(feed.next(), () => feed.close());
        if (!state.children.some((child) => child.name === ours.name)) {
          bound.check();
          throw ticketGone(ours, 'while waiting at the barrier');
        }
        if (state.children.length >= this.#count) return;
      }
    } finally {
      feed.close();
    }
  }

  async #leave(): Promise<void> {
    this.#bound?.cancel(left(this.#path));
    if (this.#entering !== null) await this.#entering.catch(() => {});
    const ticket = this.#ticket;
    this.#ticket = null;
    if (ticket !== null) await removeTicket(this.#context, ticket.path, this.#lease, this.#options.lease === undefined);
  }
}

function left(path: string): HaretError {
  return new HaretError('stopped', `barrier ${path}: left before it opened`, false);
}
