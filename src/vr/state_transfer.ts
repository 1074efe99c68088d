/**
 * State transfer (VRR §5.2): a replica that lacks entries asks a replica of its view with
 * get_state; new_state carries the missing suffix, or a checkpoint and what follows it when
 * the requester is behind the responder's truncated log (VRR §5.1).
 */

import { commitUpTo } from './commit.ts';
import { send, trace, type Ctx } from './context.ts';
import type { GetState, NewState } from './messages.ts';
import { sendPrepareOk } from './normal.ts';
import { installSuffix, suffixFrom } from './suffix.ts';

/** Asks `target` for what follows our op, unless a request is already out. */
export function requestState(ctx: Ctx, target: number): void {
  const s = ctx.s;
  if (s.stateTransfer !== null) return;
  s.stateTransfer = { target, ticks: 0 };
  sendGetState(ctx, target);
}

function sendGetState(ctx: Ctx, target: number): void {
  const s = ctx.s;
  const message: GetState = { type: 'get_state', epoch: s.epoch, view: s.view, replica: s.index, op: s.op };
  send(ctx, target, message);
  trace(ctx, 'get_state_sent', { to: target, op: s.op });
}

/** Only a replica in normal status in the same view answers, from its own log. */
export function onGetState(ctx: Ctx, message: GetState): void {
  const s = ctx.s;
  if (s.status !== 'normal' || message.view !== s.view || s.stateTransfer !== null || message.op >= s.op) {
    trace(ctx, 'drop_get_state', { view: message.view, op: message.op });
    return;
  }
  const suffix = suffixFrom(ctx, message.op, s.config.logSuffixMax);
  // At most logSuffixMax entries: the requester asks again for the rest.
  const op = suffix.logStart + suffix.entries.length;
  const reply: NewState = { type: 'new_state', epoch: s.epoch, view: s.view, replica: s.index, op, commit: Math.min(s.commit, op), ...suffix };
  send(ctx, message.replica, reply);
}

export function onNewState(ctx: Ctx, message: NewState): void {
  const s = ctx.s;
  if (s.stateTransfer === null || s.status !== 'normal' || message.view !== s.view) {
    trace(ctx, 'drop_new_state', { view: message.view });
    return;
  }
  if (!installSuffix(ctx, message)) return;
  s.stateTransfer = null;
  commitUpTo(ctx, message.commit);
  sendPrepareOk(ctx);
}

/** No answer: ask the next replica (VRR §5.2 allows any replica of the view). */
export function onStateTransferTick(ctx: Ctx): void {
  const s = ctx.s;
  const pending = s.stateTransfer;
  if (pending === null) return;
  pending.ticks += 1;
  if (pending.ticks < s.config.stateTransferRetryTicks) return;
  let target = (pending.target + 1) % s.config.replicaCount;
  if (target === s.index) target = (target + 1) % s.config.replicaCount;
  pending.target = target;
  pending.ticks = 0;
  sendGetState(ctx, target);
}
