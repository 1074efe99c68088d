/**
 * Start and recovery (VRR §4.3). A restarted replica trusts nothing it held in memory: it
 * starts in `recovering` with a fresh nonce (a durable replica first reloads what it stored:
 * a checkpoint and entries), takes part in nothing (no prepare_ok, no view-change vote) and
 * waits for f+1 recovery_response carrying its nonce, including one from the primary of the
 * largest view among them; then it installs that primary's log after what it has committed.
 */

import { commitUpTo } from './commit.ts';
import { primaryOf, quorumSize } from './config.ts';
import { broadcast, isPrimary, send, trace, type Ctx } from './context.ts';
import type { ReplicaInput, StoredState } from './io.ts';
import type { Recovery, RecoveryResponse } from './messages.ts';
import { sendPrepareOk } from './normal.ts';
import { append, emptyLog, lastOp } from './log.ts';
import { installSuffix, suffixFrom } from './suffix.ts';
import { enterNormal, isCatchingUp, startViewChange } from './view_change.ts';
import { resetViewChangeTimer } from './timeout.ts';
import { protocolNumberMax } from '../base/limits.ts';

export function onStart(ctx: Ctx, input: Extract<ReplicaInput, { type: 'start' }>): void {
  const s = ctx.s;
  if (s.status !== 'stopped') {
    trace(ctx, 'drop_start_already_started');
    return;
  }
  if (input.mode === 'fresh') {
    // A new group: everyone starts in view 0 with an empty log (replica 0 is its primary).
    enterNormal(ctx);
    return;
  }
  const promise = input.stored?.promise;
  if (input.mode === 'restart' && input.stored !== undefined && promise !== undefined && s.config.durable) {
    reload(ctx, input.stored);
    resume(ctx, promise);
    return;
  }
  if (input.mode === 'restart') trace(ctx, 'restart_without_promise_recovers');
  s.status = 'recovering';
  s.recovery = { nonce: input.nonce, responses: new Array(s.config.replicaCount).fill(null) };
  if (input.stored !== undefined) reload(ctx, input.stored);
  broadcastRecovery(ctx);
}

/**
 * README rule 18: storage intact. The stored promise is the replica's own again (already
 * stored, so nothing waits for it). A backup in normal status of view v resumes as one, its
 * commit at its checkpoint (the primary's next prepare or commit gives the rest back). A
 * primary, or a replica changing views (or catching up with one: lastNormalView < view), lost
 * its commit and pipeline with its memory: it starts a view change at view + 1, which is
 * stored before its start_view_change leaves.
 */
function resume(ctx: Ctx, promise: NonNullable<StoredState['promise']>): void {
  const s = ctx.s;
  s.view = promise.view;
  s.lastNormalView = promise.lastNormalView;
  s.durable.view = promise.view;
  s.durable.lastNormalView = promise.lastNormalView;
  s.durable.promiseStored = true;
  const backup = promise.lastNormalView === promise.view && primaryOf(promise.view, s.config) !== s.index;
  trace(ctx, 'restarted', { view: promise.view, lastNormalView: promise.lastNormalView, backup });
  if (backup) {
    enterNormal(ctx);
    // The primary learns at once what we hold (every stored entry is ours to acknowledge).
    sendPrepareOk(ctx);
    return;
  }
  if (promise.view >= protocolNumberMax) {
    // README rule 17: no view beyond the bound; wait in this view (its timer starts the next try).
    s.status = 'view_change';
    resetViewChangeTimer(ctx);
    trace(ctx, 'view_numbers_exhausted', { view: s.view });
    return;
  }
  startViewChange(ctx, promise.view + 1);
}

/**
 * A durable replica's own storage: the checkpoint is committed state; the entries after it may
 * include uncommitted ones, which recovery replaces with the primary's log after the checkpoint.
 */
function reload(ctx: Ctx, stored: StoredState): void {
  const s = ctx.s;
  const machine = stored.checkpoint ?? s.machine;
  let log = emptyLog(machine.appliedOp);
  for (const entry of stored.entries) {
    if (entry.op <= machine.appliedOp) continue;
    if (entry.op !== lastOp(log) + 1) break;
    log = append(log, entry);
  }
  s.machine = machine;
  s.checkpoint = { machine, image: null };
  s.commit = machine.appliedOp;
  s.log = log;
  s.op = lastOp(log);
  s.durable.op = s.op;
  trace(ctx, 'reloaded', { committed: s.commit, op: s.op });
}

function broadcastRecovery(ctx: Ctx): void {
  const s = ctx.s;
  const message: Recovery = { type: 'recovery', epoch: s.epoch, replica: s.index, nonce: s.recovery.nonce, committed: s.commit };
  s.timers.recoveryTicks = 0;
  broadcast(ctx, message);
}

/**
 * VRR §4.3 step 2: only replicas in normal status answer; only the primary sends its state. A
 * backup still fetching state answers too: its answer carries only its view.
 */
export function onRecovery(ctx: Ctx, message: Recovery): void {
  const s = ctx.s;
  if (s.status !== 'normal' || isCatchingUp(s)) {
    trace(ctx, 'drop_recovery_not_normal', { status: s.status });
    return;
  }
  let state: RecoveryResponse['state'] = null;
  if (isPrimary(s)) {
    const suffix = suffixFrom(ctx, message.committed, Number.MAX_SAFE_INTEGER);
    state = { op: s.op, commit: s.commit, ...suffix };
  }
  const response: RecoveryResponse = { type: 'recovery_response', epoch: s.epoch, view: s.view, replica: s.index, nonce: message.nonce, state };
  send(ctx, message.replica, response);
}

export function onRecoveryResponse(ctx: Ctx, message: RecoveryResponse): void {
  const s = ctx.s;
  if (s.status !== 'recovering' || message.nonce !== s.recovery.nonce) {
    trace(ctx, 'drop_recovery_response', { status: s.status, nonce: message.nonce });
    return;
  }
  s.recovery = { ...s.recovery, responses: withResponse(s.recovery.responses, message.replica, message) };
  const responses = s.recovery.responses.filter((response): response is RecoveryResponse => response !== null);
  if (responses.length < quorumSize(s.config)) return;
  const view = Math.max(...responses.map((response) => response.view));
  const fromPrimary = s.recovery.responses[primaryOf(view, s.config)];
  if (fromPrimary === null || fromPrimary === undefined || fromPrimary.view !== view || fromPrimary.state === null) return;
  const state = fromPrimary.state;
  if (!installSuffix(ctx, state)) {
    s.recovery = { ...s.recovery, responses: withResponse(s.recovery.responses, fromPrimary.replica, null) };
    return;
  }
  s.view = view;
  enterNormal(ctx);
  trace(ctx, 'recovered', { view, op: s.op, commit: state.commit });
  commitUpTo(ctx, state.commit);
  // An extension (as haret): the primary learns at once what we hold.
  sendPrepareOk(ctx);
}

/** The responses with `replica`'s replaced (the state is replaced, never mutated). */
function withResponse(responses: readonly (RecoveryResponse | null)[], replica: number, response: RecoveryResponse | null): (RecoveryResponse | null)[] {
  const next = responses.slice();
  next[replica] = response;
  return next;
}

/** No quorum yet: ask again, forgetting answers that may be stale. */
export function onRecoveryTick(ctx: Ctx): void {
  const s = ctx.s;
  s.timers.recoveryTicks += 1;
  if (s.timers.recoveryTicks < s.config.recoveryRetryTicks) return;
  s.recovery = { ...s.recovery, responses: new Array<null>(s.config.replicaCount).fill(null) };
  broadcastRecovery(ctx);
}
