/**
 * A held ticket (a lock, a leadership, a permit): tells its holder at once when it stops
 * holding, and releases it. It watches its own node (one watch) and follows its lease; `lost`
 * resolves exactly once with the first of: the lease's loss, the node deleted by someone else
 * (`does_not_exist`), a watch that cannot go on (its error: the holder can no longer be told,
 * so it is told now), or `stopped` when released.
 */

import { HaretError } from '../client/errors.ts';
import type { HeldNode, KeptLease } from '../client/namespace_client.ts';
import type { Guard } from '../tree/ops.ts';
import { asHaretError, backoffMs, quietError, retriesMax, transient } from './bound.ts';
import type { CoordContext, TrackedWatch } from './context.ts';
import { onLoss } from './lease.ts';
import { deleteQuietly, ticketGone, type OwnTicket } from './ticket.ts';

/** How long a held ticket waits before it watches its own node (see the constructor). */
export const heldWatchDelayMs = 10;

export class HeldTicket implements HeldNode {
  readonly token: number;
  readonly path: string;
  readonly lost: Promise<HaretError>;
  readonly #context: CoordContext;
  readonly #ticket: OwnTicket;
  readonly #lease: KeptLease;
  /** The lease was made for this ticket: revoke it on release. */
  readonly #ownLease: boolean;
  readonly #what: string;
  readonly #giveBack: (() => void) | null;
  #resolveLost: (error: HaretError) => void = () => {};
  #ended = false;
  #watch: TrackedWatch | null = null;
  /** Until the watch of our node starts. */
  #watchTimer: NodeJS.Timeout | null = null;
  /** Ends the pause between watch attempts early (on #end). */
  #endPause: (() => void) | null = null;
  #unfollow: () => void = () => {};
  #releasing: Promise<void> | null = null;

  /**
   * `heldAt`: the op of the read that first showed the ticket holding (its token); the node is
   * watched from there. `giveBack`: for a lease made for the ticket that came from the pool
   * (spare_leases.ts), returns it there once a release has deleted the ticket.
   */
  constructor(context: CoordContext, ticket: OwnTicket, lease: KeptLease, ownLease: boolean, heldAt: number, what: string, giveBack: (() => void) | null = null) {
    this.#context = context;
    this.#ticket = ticket;
    this.#lease = lease;
    this.#ownLease = ownLease;
    this.#what = what;
    this.#giveBack = ownLease ? giveBack : null;
    this.token = heldAt;
    this.path = ticket.path;
    this.lost = new Promise<HaretError>((resolve) => {
      this.#resolveLost = resolve;
    });
    this.#unfollow = onLoss(lease, (error) => this.#end(error));
    // The watch of our own node starts `heldWatchDelayMs` after we hold: a ticket released
    // sooner (a short critical section) never pays for opening and closing it. Nothing is
    // missed: it starts from the op before our token (the read that showed it holding may have
    // been part-way through its entry, ticket.ts Listing, and a deletion later in that entry
    // counts), so a deletion in the meantime is replayed at once. The lease's loss is followed
    // from the start (above), without a watch.
    if (!this.#ended) {
      this.#watchTimer = setTimeout(() => {
        this.#watchTimer = null;
        if (!this.#ended) void this.#watchOwnNode(heldAt - 1);
      }, heldWatchDelayMs);
      this.#watchTimer.unref();
    }
  }

  guard(): Guard {
    return { path: this.#ticket.path, version: this.#ticket.version };
  }

  /**
   * `lost` resolves (`stopped`) first; then the node goes: with the lease made for it (one
   * revoke), else by a delete. Idempotent. If the service cannot be reached, a lease made for
   * the ticket is no longer kept alive, so the node still goes within its TTL.
   */
  release(): Promise<void> {
    if (this.#releasing === null) this.#releasing = this.#release();
    return this.#releasing;
  }

  async #release(): Promise<void> {
    this.#end(quietError('stopped', `${this.#what} ${this.path} was released`, false));
    // A pooled lease held only this node: once the node is deleted the lease goes back to the
    // pool for the next ticket. If the delete fails, removeTicket revokes the lease (the node
    // goes with it) or, unreachable, stops keeping it alive, so the node still goes in its TTL.
    if (this.#giveBack !== null && (await deleteQuietly(this.#context, this.path))) {
      this.#giveBack();
      return;
    }
    await removeTicket(this.#context, this.path, this.#lease, this.#ownLease);
  }

  #end(error: HaretError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#unfollow();
    if (this.#watchTimer !== null) clearTimeout(this.#watchTimer);
    this.#watchTimer = null;
    this.#watch?.close();
    this.#watch = null;
    this.#endPause?.();
    this.#resolveLost(error);
  }

  /** Watches our node from `fromOp` until it is deleted or we end; after a watch error, re-stats and watches again. */
  async #watchOwnNode(fromOp: number): Promise<void> {
    let from = fromOp;
    let failures = 0;
    while (!this.#ended) {
      try {
        this.#watch = this.#context.watch(this.path, { fromOp: from }, 'held');
        for await (const batch of this.#watch.stream) {
          failures = 0;
          if (batch.events.some((event) => event.kind === 'deleted' && event.path === this.path)) {
            this.#end(ticketGone(this.#ticket, `while held as a ${this.#what}`));
            return;
          }
        }
        // Ended quietly: only our own cancel does that (on #end).
        if (!this.#ended) this.#end(new HaretError('unavailable', `the watch of ${this.path} ended; cannot tell whether it is still held`, false));
        return;
      } catch (error) {
        if (this.#ended) return;
        failures += 1;
        if (!transient(error) || failures > retriesMax) {
          this.#end(asHaretError(error));
          return;
        }
      } finally {
        this.#watch?.close();
        this.#watch = null;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoffMs(failures));
        timer.unref();
        this.#endPause = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#endPause = null;
      if (this.#ended) return;
      try {
        from = (await this.#context.db.stat(this.path)).op;
      } catch (error) {
        const failure = asHaretError(error);
        if (failure.code === 'does_not_exist') this.#end(ticketGone(this.#ticket, `while held as a ${this.#what}`));
        else if (!transient(failure) || failures >= retriesMax) this.#end(failure);
      }
    }
  }
}

/**
 * Removes a ticket: with the lease made for it (one revoke, which deletes it in the same op),
 * else, or if the revoke fails, by a delete. Throws when the delete fails (not when the node is
 * gone already); a lease made for the ticket is no longer kept alive then, so it still goes
 * within the lease's TTL.
 */
export async function removeTicket(context: CoordContext, path: string, lease: KeptLease | null, ownLease: boolean): Promise<void> {
  if (lease !== null && ownLease) {
    try {
      await lease.revoke();
      return;
    } catch {
      // Delete the ticket itself.
    }
  }
  try {
    await context.db.delete(path);
  } catch (error) {
    if (asHaretError(error).code !== 'does_not_exist') throw error;
  }
}

/** Best effort, for a ticket that will not be held (the error that stopped it is the one to report). */
export async function abandonTicket(context: CoordContext, ticket: OwnTicket | null, lease: KeptLease | null, ownLease: boolean): Promise<void> {
  if (ticket === null) {
    if (lease !== null && ownLease) await lease.revoke().catch(() => {});
    return;
  }
  await removeTicket(context, ticket.path, lease, ownLease).catch(() => {});
}
