/**
 * The lock (src/coord/README.md "Lock"): a fair queue of tickets `${path}/lock-…`; the first
 * holds, each waiter watches only the ticket before its own (turn.ts). The holder's `token`
 * (the op of the listing that showed its ticket first) grows from holder to holder: the next
 * holder's listing comes after the delete of the previous holder's ticket, which comes after
 * that holder's listing. `guard()` fences writes.
 */

import type { HeldLock, LockOptions } from '../client/namespace_client.ts';
import type { CoordContext } from './context.ts';
import type { LeaseKeeper } from './lease.ts';
import type { SpareLeases } from './spare_leases.ts';
import { checkQueueOptions, checkValue, invalid } from './options.ts';
import { enqueueAndWait } from './queue.ts';
import { waitForTurn } from './turn.ts';

export async function acquireLock(context: CoordContext, leases: LeaseKeeper, spares: SpareLeases, path: string, options: LockOptions | undefined): Promise<HeldLock> {
  const checked = checkQueueOptions(options, 'lock');
  const bytes = options?.value === undefined ? undefined : checkValue(options.value, 'lock option value');
  return enqueueAndWait({
    context,
    leases,
    spares,
    dir: path,
    kind: 'lock',
    options: checked,
    what: `lock ${path}`,
    noun: 'lock',
    ...(bytes === undefined ? {} : { value: bytes }),
    wait: (ticket, bound) => waitForTurn(context, path, 'lock', ticket, bound),
  });
}

/** Runs `fn` under the lock; releases whatever happens. A failed release is thrown only when `fn` succeeded. */
export async function withLock<T>(
  context: CoordContext,
  leases: LeaseKeeper,
  spares: SpareLeases,
  path: string,
  fn: (held: HeldLock) => Promise<T> | T,
  options: LockOptions | undefined,
): Promise<T> {
  if (typeof fn !== 'function') throw invalid('withLock needs a function');
  const held = await acquireLock(context, leases, spares, path, options);
  let result: T;
  try {
    result = await fn(held);
  } catch (error) {
    await held.release().catch(() => {});
    throw error;
  }
  await held.release();
  return result;
}
