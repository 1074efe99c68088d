/**
 * The life of a queueing recipe's ticket, shared by lock, election and semaphore: take the
 * caller's lease or make one, create the ticket, wait (the recipe's way) under a Bound, and
 * hand back a HeldTicket whose token is the op of the read that first showed it holding. On
 * any failure (timeout, lease lost, a lasting error) delete the ticket and revoke the lease
 * made for it before rejecting, so nothing is left behind.
 */

import type { KeptLease } from '../client/namespace_client.ts';
import type { Bytes } from '../tree/ops.ts';
import { asHaretError, Bound } from './bound.ts';
import type { CoordContext } from './context.ts';
import { abandonTicket, HeldTicket } from './held.ts';
import type { LeaseKeeper } from './lease.ts';
import type { SpareLeases } from './spare_leases.ts';
import type { CheckedQueueOptions } from './options.ts';
import { createTicket, type OwnTicket, type TicketKind } from './ticket.ts';

export type Enqueue = {
  readonly context: CoordContext;
  readonly leases: LeaseKeeper;
  /** Where a ticket without the caller's lease gets its own from a pool, and gives it back after a release (lock); absent: granted now, revoked at release. */
  readonly spares?: SpareLeases;
  readonly dir: string;
  readonly kind: TicketKind;
  readonly options: CheckedQueueOptions;
  /** Names the wait in errors ("lock /x"). */
  readonly what: string;
  /** Names what the held ticket is ("lock", "leadership", "permit"). */
  readonly noun: string;
  /** Written into the ticket when it is created. */
  readonly value?: Bytes;
  /** Waits until the ticket holds; resolves with the op it was seen holding at (the holder's token). */
  readonly wait: (ticket: OwnTicket, bound: Bound) => Promise<number>;
  /** Runs once the ticket holds, before it is handed out (an election announces its leader); resolves with the ticket as written. */
  readonly onHeld?: (ticket: OwnTicket, token: number, bound: Bound) => Promise<OwnTicket>;
  /** Set by the caller to cancel the wait from outside (a withdrawn campaign). */
  readonly onBound?: (bound: Bound) => void;
};

export async function enqueueAndWait(request: Enqueue): Promise<HeldTicket> {
  const { context, leases, options } = request;
  const bound = new Bound(request.what, options.timeoutMs);
  request.onBound?.(bound);
  let lease: KeptLease | null = options.lease ?? null;
  const ownLease = lease === null;
  /** Where our own lease goes back once a release has deleted the ticket (a lease from the pool). */
  let giveBack: (() => void) | null = null;
  let ticket: OwnTicket | null = null;
  try {
    if (lease === null && request.spares !== undefined) {
      const { spares } = request;
      const pooled = await spares.take(options.ttlMs);
      lease = pooled;
      giveBack = () => spares.giveBack(pooled);
    } else if (lease === null) {
      lease = await leases.grant({ ttlMs: options.ttlMs });
    }
    bound.follow(lease);
    bound.check();
    try {
      ticket = await createTicket(context, request.dir, request.kind, lease, request.value);
    } catch (error) {
      // A pooled lease may have ended at the service behind the client's back (revoked through
      // the raw API) before a keep-alive could tell: drop it and try once with a fresh grant.
      const { spares } = request;
      if (giveBack === null || spares === undefined || asHaretError(error).code !== 'no_such_lease') throw error;
      const dead = lease;
      const fresh = await leases.grant({ ttlMs: options.ttlMs });
      lease = fresh;
      giveBack = () => spares.giveBack(fresh);
      bound.follow(lease);
      void dead.revoke().catch(() => {});
      bound.check();
      ticket = await createTicket(context, request.dir, request.kind, lease, request.value);
    }
    bound.check();
    const heldAt = await request.wait(ticket, bound);
    bound.check();
    if (request.onHeld !== undefined) {
      ticket = await request.onHeld(ticket, heldAt, bound);
      bound.check();
    }
    return new HeldTicket(context, ticket, lease, ownLease, heldAt, request.noun, giveBack);
  } catch (error) {
    await abandonTicket(context, ticket, lease, ownLease);
    throw bound.reason ?? error;
  } finally {
    bound.dispose();
  }
}
