/**
 * README rule 22: read-only requests answered by the primary without a log entry, once its
 * commit covers what it had logged when the read arrived and f backups confirmed, after the
 * read arrived, that the primary's view is still theirs (etcd's ReadIndex, in VR's terms).
 */

import { List } from 'immutable';
import { assert } from '../base/assert.ts';
import type { TreeOp } from '../tree/ops.ts';
import { applyStoreOp } from '../tree/store.ts';
import { faultsTolerated, primaryOf } from './config.ts';
import { answer, broadcast, isNormalPrimary, send, trace, type Ctx } from './context.ts';
import type { ReadRound, ReadRoundOk, Request } from './messages.ts';
import type { ReadPath, WaitingRead } from './state.ts';
import type { ClientRecord } from './client_table.ts';

/**
 * Whether an admitted read-only request may skip the log: the namespace allows it
 * (`readsSkipLog`), its session's record is known (one registered in an uncommitted entry is
 * not yet, and goes through the log), and its last logged activity is recent enough that the
 * session cannot expire while it only reads.
 */
export function readMaySkipLog(ctx: Ctx, record: ClientRecord | undefined): record is ClientRecord {
  const s = ctx.s;
  if (record === undefined || !s.config.readsSkipLog) return false;
  return s.commit - record.lastActiveOp <= Math.floor(s.config.sessionIdleOps / 2);
}

/**
 * Holds an admitted read-only request until its commit and its round are in (`serveReads`).
 * Counted with the pending requests against `pendingMax`: returns false when there is no room
 * (the caller answers `busy`).
 */
export function holdRead(ctx: Ctx, request: Request): boolean {
  const s = ctx.s;
  const reads = s.primary.reads;
  if (s.primary.pending.size + reads.waiting.size >= s.config.pendingMax) return false;
  const waiting: WaitingRead = { request, readIndex: s.op, round: reads.round + 1 };
  s.primary.reads = { ...reads, wanted: true, waiting: reads.waiting.push(waiting) };
  s.primary.inProgress = s.primary.inProgress.set(request.clientId, request.requestNum);
  return true;
}

/**
 * At the end of a step: starts the next confirmation round if a read arrived since the latest
 * one started (every read of the step shares it), then answers the reads whose conditions hold.
 */
export function advanceReads(ctx: Ctx): void {
  const s = ctx.s;
  let reads = s.primary.reads;
  if (reads.waiting.size === 0) return;
  if (reads.wanted && faultsTolerated(s.config) > 0) {
    const round = reads.round + 1;
    const message: ReadRound = { type: 'read_round', epoch: s.epoch, view: s.view, replica: s.index, round };
    broadcast(ctx, message);
    reads = { ...reads, round, wanted: false, roundTicks: 0 };
    s.primary.reads = reads;
  }
  serveReads(ctx);
}

/** The primary's tick: a round whose answers did not come (lost) is started again. */
export function onReadTick(ctx: Ctx): void {
  const s = ctx.s;
  const reads = s.primary.reads;
  if (reads.waiting.size === 0) return;
  const roundTicks = reads.roundTicks + 1;
  // Any later round serves every read waiting for an earlier one.
  s.primary.reads = { ...reads, roundTicks, wanted: reads.wanted || roundTicks >= s.config.commitIntervalTicks };
}

/** At a backup: confirm a round of the primary of its own view (normal status, catching up included). */
export function onReadRound(ctx: Ctx, message: ReadRound): void {
  const s = ctx.s;
  if (s.status !== 'normal' || message.view !== s.view || primaryOf(s.view, s.config) !== message.replica) {
    trace(ctx, 'drop_read_round', { view: message.view, own: s.view, status: s.status });
    return;
  }
  const ok: ReadRoundOk = { type: 'read_round_ok', epoch: s.epoch, view: s.view, replica: s.index, round: message.round };
  send(ctx, message.replica, ok);
}

/** At the primary: a backup confirmed a round of this view. */
export function onReadRoundOk(ctx: Ctx, message: ReadRoundOk): void {
  const s = ctx.s;
  const reads = s.primary.reads;
  if (!isNormalPrimary(s) || message.view !== s.view || message.round > reads.round) {
    // A round this primary never started is a forgery or another view's: never counted.
    trace(ctx, 'drop_read_round_ok', { view: message.view, round: message.round, own: s.view, latest: reads.round });
    return;
  }
  if (message.round <= (reads.confirmed[message.replica] ?? 0)) return;
  const confirmed = reads.confirmed.slice();
  confirmed[message.replica] = message.round;
  s.primary.reads = { ...reads, confirmed };
  serveReads(ctx);
}

/** The highest round at least f backups confirmed (every round, with no backup to ask). */
function confirmedRound(ctx: Ctx, reads: ReadPath): number {
  const s = ctx.s;
  const f = faultsTolerated(s.config);
  if (f === 0) return Number.POSITIVE_INFINITY;
  let best = 0;
  for (let candidate = 0; candidate < reads.confirmed.length; candidate++) {
    if (candidate === s.index) continue;
    const round = reads.confirmed[candidate] ?? 0;
    if (round <= best) continue;
    let atLeast = 0;
    for (let other = 0; other < reads.confirmed.length; other++) if (other !== s.index && (reads.confirmed[other] ?? 0) >= round) atLeast += 1;
    if (atLeast >= f) best = round;
  }
  return best;
}

/**
 * Answers, in arrival order, every waiting read whose readIndex is committed and whose round is
 * confirmed. Reads arrive with non-decreasing readIndex and round, so the first one that must
 * still wait stops the scan.
 */
function serveReads(ctx: Ctx): void {
  const s = ctx.s;
  if (!isNormalPrimary(s)) return;
  const reads = s.primary.reads;
  const confirmed = confirmedRound(ctx, reads);
  let served = 0;
  for (const read of reads.waiting) {
    if (read.readIndex > s.commit || read.round > confirmed) break;
    answerRead(ctx, read.request);
    served += 1;
  }
  if (served === 0) return;
  s.primary.reads = { ...reads, waiting: served === reads.waiting.size ? List() : reads.waiting.skip(served).toList() };
}

/** Executes the read on the committed state and answers it at the commit number. */
function answerRead(ctx: Ctx, request: Request): void {
  const s = ctx.s;
  assert(request.op.type === 'tree', 'a waiting read is a tree request');
  const treeOp: TreeOp = request.op.op;
  const applied = applyStoreOp(s.machine.tree, s.machine.leases, treeOp, { clientId: request.clientId, op: s.commit, limits: s.config.treeLimits, tickMs: s.config.tickMs });
  // A read-only op leaves the tree as it was: anything else is our bug.
  assert(applied.tree === s.machine.tree && applied.leases === s.machine.leases, 'a read-only op changed the state');
  if (s.primary.inProgress.get(request.clientId) === request.requestNum) s.primary.inProgress = s.primary.inProgress.delete(request.clientId);
  answer(ctx, request.clientId, {
    type: 'reply',
    epoch: s.epoch,
    view: s.view,
    op: s.commit,
    clientId: request.clientId,
    requestNum: request.requestNum,
    body: { type: 'tree', outcome: applied.outcome },
  });
}
