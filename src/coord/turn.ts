/**
 * Waiting for the front of a queue without a herd (lock, election): list the directory; if our
 * ticket is first we hold; otherwise watch only the ticket just before ours, from the listing's
 * op (so its deletion cannot slip between the list and the watch), and list again when it is
 * deleted. A departure therefore wakes exactly one waiter, and each waiter keeps one watch.
 * A predecessor that leaves while others remain before us only moves our watch one step up.
 */

import { HaretError } from '../client/errors.ts';
import { backoffMs, retriesMax, transient, type Bound } from './bound.ts';
import type { CoordContext } from './context.ts';
import { ticketGone, ticketsIn, type Listing, type Ticket, type TicketKind } from './ticket.ts';

/** Resolves with the op of the listing that showed our ticket first; rejects with the bound's reason or a lasting error. */
export async function waitForTurn(context: CoordContext, dir: string, kind: TicketKind, ours: Ticket & { readonly listing?: Listing }, bound: Bound): Promise<number> {
  let failures = 0;
  const retry = async (error: unknown): Promise<void> => {
    failures += 1;
    if (!transient(error) || failures > retriesMax) throw error;
    await bound.sleep(backoffMs(failures));
  };
  // The create's own listing is the first look (ticket.ts); later looks list again.
  let known: Listing | undefined = ours.listing;
  for (;;) {
    bound.check();
    let listing: Listing;
    try {
      listing = known ?? (await bound.race(context.list(dir)).then((listed) => ({ entries: listed.entries, op: listed.op, watchFrom: listed.op })));
      known = undefined;
    } catch (error) {
      if (bound.reason !== null) throw bound.reason;
      await retry(error);
      continue;
    }
    const queue = ticketsIn(listing.entries, kind);
    const index = queue.findIndex((ticket) => ticket.name === ours.name);
    if (index < 0) {
      bound.check();
      throw ticketGone(ours, 'while waiting for its turn');
    }
    const predecessor = queue[index - 1];
    if (predecessor === undefined) return listing.op;
    const outcome = await waitForDeletion(context, predecessor.path, listing.watchFrom, bound);
    if (outcome === 'deleted') failures = 0;
    else await retry(outcome);
  }
}

/** Watches `path` from `fromOp` until it is deleted; a watch that ends with an error that may pass answers that error (list again). */
async function waitForDeletion(context: CoordContext, path: string, fromOp: number, bound: Bound): Promise<'deleted' | HaretError> {
  let watch;
  try {
    watch = context.watch(path, { fromOp }, 'predecessor');
  } catch (error) {
    if (transient(error)) return error as HaretError;
    throw error;
  }
  try {
    const batches = watch.stream[Symbol.asyncIterator]();
    for (;;) {
      const next = await bound.race(batches.next(), () => watch.close());
      if (next.done === true) return new HaretError('unavailable', `the watch of ${path} ended`, false);
      if (next.value.events.some((event) => event.kind === 'deleted' && event.path === path)) return 'deleted';
    }
  } catch (error) {
    if (bound.reason !== null) throw bound.reason;
    if (transient(error)) return error as HaretError;
    throw error;
  } finally {
    watch.close();
  }
}
