/**
 * Durable mode (PROTOCOL.md "Durability"): what a step changed in the log and the checkpoint,
 * as persist records. They are placed before every other effect of the step, so every
 * acknowledgement the step sends leaves after the entries it vouches for are stored
 * (DESIGN.md convention 7).
 */

import type { PersistRecord, ReplicaEffect } from './io.ts';
import { entryAt, entriesAfter } from './log.ts';
import type { ReplicaState } from './state.ts';

export function persistEffects(before: ReplicaState, after: ReplicaState): ReplicaEffect[] {
  // The start step only reloads what storage already holds.
  if (!after.config.durable || before === after || before.status === 'stopped') return [];
  const records: PersistRecord[] = [];
  if (after.checkpoint.machine !== before.checkpoint.machine) {
    records.push({ kind: 'checkpoint', machine: after.checkpoint.machine });
  }
  if (after.log !== before.log) {
    const kept = commonPrefix(before, after);
    if (before.op > kept) records.push({ kind: 'truncate_after', op: kept });
    if (after.op > kept) records.push({ kind: 'entries', entries: entriesAfter(after.log, Math.max(kept, after.log.start), Number.MAX_SAFE_INTEGER) });
  }
  return records.map((record) => ({ type: 'persist', record }));
}

/** The last op up to which both logs hold the very same entries (shared structure). */
function commonPrefix(before: ReplicaState, after: ReplicaState): number {
  let op = Math.min(before.op, after.op);
  const floor = Math.max(before.log.start, after.log.start);
  while (op > floor && entryAt(before.log, op) !== entryAt(after.log, op)) op--;
  return op;
}
