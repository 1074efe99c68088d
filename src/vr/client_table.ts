/**
 * The client table (VRR §4.1, §6): per client, the last request number executed and its
 * reply, so a duplicate gets the identical answer and never executes twice. Replicated: every
 * replica updates it when it applies a committed entry, so it survives view changes, recovery
 * and state transfer. Expiry is deterministic (by committed op, never by a clock).
 */

import { Map as ImmutableMap } from 'immutable';
import type { ReplyBody } from './messages.ts';

export type ClientRecord = {
  readonly requestNum: number;
  /** The reply to `requestNum` (null right after registration). */
  readonly reply: ReplyBody | null;
  /** The log entry that executed `requestNum`. */
  readonly replyOp: number;
  /** The op at which the client was last active, for expiry. */
  readonly lastActiveOp: number;
};

export type ClientTable = ImmutableMap<string, ClientRecord>;

export function emptyClientTable(): ClientTable {
  return ImmutableMap();
}

/**
 * Expires sessions idle for more than `idleOps` at `atOp`, then the least recently active
 * ones while more than `max` remain (ties by client id, so every replica agrees).
 */
export function expireSessions(table: ClientTable, atOp: number, idleOps: number, max: number): ClientTable {
  let next = table.filter((record) => atOp - record.lastActiveOp <= idleOps);
  if (next.size > max) {
    const victims = Array.from(next.entries())
      .sort(([idA, a], [idB, b]) => a.lastActiveOp - b.lastActiveOp || (idA < idB ? -1 : idA > idB ? 1 : 0))
      .slice(0, next.size - max)
      .map(([id]) => id);
    next = next.deleteAll(victims);
  }
  return next;
}
