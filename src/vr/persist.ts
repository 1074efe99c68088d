/**
 * Durable mode (PROTOCOL.md "Durability"): what a step changed in the log and the checkpoint,
 * as persist records, placed first among the step's effects. Each carries the replica's
 * durable generation and op after the step; the shell echoes them in `persisted` once the
 * record is stored, and only then are those entries acknowledged (DESIGN.md convention 7).
 */

import type { PersistRecord, ReplicaEffect } from './io.ts';
import { entriesAfter } from './log.ts';
import type { ReplicaState } from './state.ts';

export function persistEffects(before: ReplicaState, after: ReplicaState, truncatedAfter: number | null): ReplicaEffect[] {
  // The start step only reloads what storage already holds.
  if (!after.config.durable || before === after || before.status === 'stopped') return [];
  const records: PersistRecord[] = [];
  if (after.checkpoint.machine !== before.checkpoint.machine) {
    records.push({ kind: 'checkpoint', machine: after.checkpoint.machine });
  }
  // A replaced suffix is always recorded, so the new generation always gets an answer.
  if (truncatedAfter !== null) records.push({ kind: 'truncate_after', op: truncatedAfter });
  const kept = truncatedAfter ?? before.op;
  if (after.op > kept) {
    records.push({ kind: 'entries', entries: entriesAfter(after.log, Math.max(kept, after.log.start), Number.MAX_SAFE_INTEGER) });
  }
  return records.map((record) => ({ type: 'persist', record, generation: after.durable.generation, op: after.op }));
}
