/**
 * State transfer (VRR §5.2): a replica that lacks entries asks a replica of its view with
 * get_state; new_state carries the missing suffix, or a checkpoint and what follows it when
 * the requester is behind the responder's truncated log (VRR §5.1).
 */

import { commitUpTo } from './commit.ts';
import { send, trace, type Ctx } from './context.ts';
import type { GetState, NewState } from './messages.ts';
import { sendPrepareOk } from './normal.ts';
import { primaryOf } from './config.ts';
import { extendWithSuffix, installSuffix, suffixFrom } from './suffix.ts';
import { isCatchingUp } from './view_change.ts';

/** Asks `target` for what follows our op, unless a request is already out. */
export function requestState(ctx: Ctx, target: number): void {
  const s = ctx.s;
  if (s.stateTransfer !== null) return;
  s.stateTransfer = { target, ticks: 0 };
  sendGetState(ctx, target);
}

/**
 * Within a view we hold its log up to our op; while catching up with a view only up to our
 * commit number (what follows may differ from the view's log and is replaced).
 */
function sendGetState(ctx: Ctx, target: number): void {
  const s = ctx.s;
  const whole = isCatchingUp(s);
  const op = whole ? s.commit : s.op;
  const message: GetState = { type: 'get_state', epoch: s.epoch, view: s.view, replica: s.index, op, whole };
  send(ctx, target, message);
  trace(ctx, 'get_state_sent', { to: target, op });
}

/**
 * Only a replica in normal status in the same view that holds (a prefix of) the view's log
 * answers, from its own log; with nothing newer it says so (an empty suffix at its op), which
 * ends the requester's wait.
 */
export function onGetState(ctx: Ctx, message: GetState): void {
  const s = ctx.s;
  if (s.status !== 'normal' || message.view !== s.view || isCatchingUp(s)) {
    trace(ctx, 'drop_get_state', { view: message.view, op: message.op });
    return;
  }
  // At most logSuffixMax entries (the requester asks again for the rest), unless it needs the
  // whole log at once. The log after a commit point is bounded anyway by truncation.
  const suffix = suffixFrom(ctx, Math.min(message.op, s.op), message.whole ? Number.MAX_SAFE_INTEGER : s.config.logSuffixMax);
  const op = suffix.logStart + suffix.entries.length;
  const reply: NewState = {
    type: 'new_state',
    epoch: s.epoch,
    view: s.view,
    replica: s.index,
    op,
    commit: Math.min(s.commit, op),
    ...suffix,
    whole: op === s.op,
  };
  send(ctx, message.replica, reply);
}

export function onNewState(ctx: Ctx, message: NewState): void {
  const s = ctx.s;
  if (s.stateTransfer === null || s.status !== 'normal' || message.view !== s.view) {
    trace(ctx, 'drop_new_state', { view: message.view });
    return;
  }
  if (isCatchingUp(s)) {
    // The view's whole log, from its primary: replace what follows our commit, in one piece.
    if (message.replica !== primaryOf(s.view, s.config) || !message.whole) {
      trace(ctx, 'drop_new_state_not_the_view_log', { from: message.replica, whole: message.whole });
      return;
    }
    if (!installSuffix(ctx, message)) return;
    s.lastNormalView = s.view;
  } else if (!extendWithSuffix(ctx, message)) {
    return;
  }
  s.stateTransfer = null;
  commitUpTo(ctx, message.commit);
  sendPrepareOk(ctx);
}

/**
 * No answer: ask again; the next replica (VRR §5.2 allows any replica of the view), or, while
 * catching up with a view, its primary again (only it is known to hold the whole view's log).
 */
export function onStateTransferTick(ctx: Ctx): void {
  const s = ctx.s;
  const pending = s.stateTransfer;
  if (pending === null) return;
  if (pending.ticks + 1 < s.config.stateTransferRetryTicks) {
    s.stateTransfer = { target: pending.target, ticks: pending.ticks + 1 };
    return;
  }
  let target = isCatchingUp(s) ? primaryOf(s.view, s.config) : (pending.target + 1) % s.config.replicaCount;
  if (target === s.index) target = (target + 1) % s.config.replicaCount;
  s.stateTransfer = { target, ticks: 0 };
  sendGetState(ctx, target);
}
