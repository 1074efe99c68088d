/**
 * The semaphore (src/coord/README.md "Semaphore"): a fair queue of tickets `${path}/permit-…`;
 * a ticket holds once it is among the first `permits`. Unlike the lock a waiter cannot watch
 * one predecessor: any of the tickets ahead of it may leave first. So each waiter follows the
 * whole directory with one recursive watch (children.ts) and counts locally: every change
 * reaches every waiter, but no waiter reads anything again.
 */

import type { Permit, Semaphore, SemaphoreOptions } from '../client/namespace_client.ts';
import type { Bound } from './bound.ts';
import { ChildrenFeed } from './children.ts';
import type { CoordContext } from './context.ts';
import type { LeaseKeeper } from './lease.ts';
import { checkCount, checkQueueOptions } from './options.ts';
import { enqueueAndWait } from './queue.ts';
import { ticketGone, type Ticket } from './ticket.ts';

export function semaphore(context: CoordContext, leases: LeaseKeeper, path: string, permits: number, options: SemaphoreOptions | undefined): Semaphore {
  checkCount(permits, 'semaphore permits');
  const checked = checkQueueOptions(options, 'semaphore');
  return {
    acquire: (): Promise<Permit> =>
      enqueueAndWait({
        context,
        leases,
        dir: path,
        kind: 'permit',
        options: checked,
        what: `semaphore ${path}`,
        noun: 'permit',
        wait: (ticket, bound) => waitForPermit(context, path, permits, ticket, bound),
      }),
  };
}

async function waitForPermit(context: CoordContext, dir: string, permits: number, ours: Ticket, bound: Bound): Promise<number> {
  const feed = new ChildrenFeed(context, dir, 'permit', { values: false, createDirectory: false });
  try {
    for (;;) {
      const state = await bound.race(feed.next(), () => feed.close());
      const index = state.children.findIndex((child) => child.name === ours.name);
      if (index < 0) {
        bound.check();
        throw ticketGone(ours, 'while waiting for a permit');
      }
      if (index < permits) return state.op;
    }
  } finally {
    feed.close();
  }
}
