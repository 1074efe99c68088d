/**
 * Durable mode (PROTOCOL.md "Durability"): what a step changed in the log and the checkpoint,
 * as persist records, placed first among the step's effects. Each carries the replica's
 * durable generation and op after the step; the shell echoes them in `persisted` once the
 * record is stored, and only then are those entries acknowledged (DESIGN.md convention 7).
 */

import type { Ctx } from './context.ts';
import type { PersistRecord, ReplicaEffect } from './io.ts';
import { entriesAfter } from './log.ts';
import type { ReplicaState } from './state.ts';

/**
 * README rule 18, at the end of a step: when the replica's view or lastNormalView moved, a new
 * promise is to be written; it bumps the generation, so only the answer to that record (or to a
 * later one, stored after it) marks it stored. A recovering replica promises nothing: its log
 * is not trusted until it is normal again (rule 18, storage missing or damaged).
 */
export function notePromise(ctx: Ctx): void {
  const s = ctx.s;
  if (!s.config.durable || (s.status !== 'normal' && s.status !== 'view_change')) return;
  if (s.view === s.durable.view && s.lastNormalView === s.durable.lastNormalView) return;
  s.durable.view = s.view;
  s.durable.lastNormalView = s.lastNormalView;
  s.durable.generation += 1;
  s.durable.promiseStored = false;
}

export function persistEffects(before: ReplicaState, after: ReplicaState, truncatedAfter: number | null): ReplicaEffect[] {
  if (!after.config.durable || before === after) return [];
  const promised = after.durable.view !== before.durable.view || after.durable.lastNormalView !== before.durable.lastNormalView;
  const promise: ReplicaEffect[] = promised
    ? [{ type: 'persist', record: { kind: 'promise', view: after.durable.view, lastNormalView: after.durable.lastNormalView }, generation: after.durable.generation, op: after.op }]
    : [];
  // The start step only reloads what storage already holds (but a fresh or restarted replica
  // stores its first promise).
  if (before.status === 'stopped') return promise;
  const records: PersistRecord[] = [];
  if (after.checkpoint.machine !== before.checkpoint.machine) {
    records.push({ kind: 'checkpoint', machine: after.checkpoint.machine, image: after.checkpoint.image });
  }
  // A replaced suffix is always recorded, so the new generation always gets an answer.
  if (truncatedAfter !== null) records.push({ kind: 'truncate_after', op: truncatedAfter });
  const kept = truncatedAfter ?? before.op;
  if (after.op > kept) {
    records.push({ kind: 'entries', entries: entriesAfter(after.log, Math.max(kept, after.log.start), Number.MAX_SAFE_INTEGER) });
  }
  // The promise goes last, so a stored promise never labels a log older than what it says
  // (entries of a newer view stored under an older promise only under-claim). The step's other
  // records carry the generation before the promise's: their answers are ignored, and the
  // promise's answer (stored after them) covers them.
  const generation = promised ? after.durable.generation - 1 : after.durable.generation;
  const effects: ReplicaEffect[] = records.map((record) => ({ type: 'persist', record, generation, op: after.op }));
  return promised ? [...effects, ...promise] : effects;
}
