/**
 * View changes (VRR §4.2) with RFC 2 log suffixes, and catching up with a view this replica
 * missed (VRR §5.2).
 *
 * The rule haret broke: lastNormalView = view every time a replica enters normal status,
 * whichever path it came by. Every path into normal status in this folder goes through
 * `enterNormal`.
 */

import { List } from 'immutable';
import { NameMap } from '../tree/name_map.ts';
import { assert, assertNever } from '../base/assert.ts';
import { protocolNumberMax } from '../base/limits.ts';
import { commitUpTo } from './commit.ts';
import { faultsTolerated, primaryOf, quorumSize } from './config.ts';
import { ackableOp, broadcast, isPrimary, promiseHeld, send, trace, type Ctx } from './context.ts';
import { entryAt } from './log.ts';
import type { DoViewChange, StartView, StartViewChange } from './messages.ts';
import { advanceCommit, sendPrepareOk } from './normal.ts';
import { requestState } from './state_transfer.ts';
import { freshLeaseClock, freshReadPath } from './state.ts';
import { installSuffix, suffixFrom } from './suffix.ts';
import { resetViewChangeTimer } from './timeout.ts';

/**
 * Enters normal status in the current view. Callers have made the log this view's log (or a
 * prefix of it taken from a replica that holds it), so lastNormalView may be set to the view.
 */
export function enterNormal(ctx: Ctx): void {
  // First: a durable primary's own count (joinView) depends on the promise it now makes.
  ctx.s.lastNormalView = ctx.s.view;
  joinView(ctx);
}

/** Normal status in the current view, lastNormalView untouched; fresh view bookkeeping. */
function joinView(ctx: Ctx): void {
  const s = ctx.s;
  s.status = 'normal';
  s.stateTransfer = null;
  s.viewChange = { startViewChangeFrom: [], sentDoViewChange: false, doViewChanges: new Array(s.config.replicaCount).fill(null) };
  resetViewChangeTimer(ctx);
  s.timers.heartbeatTicks = 0;
  s.timers.stallTicks = 0;
  resetPrimaryState(ctx);
}

/**
 * Fresh primary bookkeeping for the view: every backup is known to hold the entries up to
 * globalMinAccept (RFC 2 step 5); requests prepared but uncommitted stay in progress so a
 * client's retry is not logged twice.
 */
function resetPrimaryState(ctx: Ctx): void {
  const s = ctx.s;
  const acks = new Array<number>(s.config.replicaCount).fill(Math.min(s.globalMinAccept, s.op));
  acks[s.index] = ackableOp(s);
  let inProgress = NameMap.empty<number>();
  if (isPrimary(s)) {
    for (let op = s.commit + 1; op <= s.op; op++) {
      for (const request of entryAt(s.log, op)?.requests ?? []) if (request.op.type !== 'lease_clock') inProgress = inProgress.set(request.clientId, request.requestNum);
    }
  }
  // README rule 21: a new primary counts lease time only from now, covering what it knows committed.
  s.primary = { acks, pending: List(), inProgress, leaseClock: freshLeaseClock(s.commit), reads: freshReadPath(s.config.replicaCount) };
}

/** VRR §4.2 step 1: move to `view`, status view_change, and tell everyone. */
export function startViewChange(ctx: Ctx, view: number): void {
  const s = ctx.s;
  assert(view > s.view || (view === s.view && s.status === 'normal'), `view change must move forward: ${view} from ${s.view}`);
  s.view = view;
  s.status = 'view_change';
  s.stateTransfer = null;
  s.viewChange = { startViewChangeFrom: [], sentDoViewChange: false, doViewChanges: new Array(s.config.replicaCount).fill(null) };
  s.primary = { acks: new Array<number>(s.config.replicaCount).fill(0), pending: List(), inProgress: NameMap.empty<number>(), leaseClock: freshLeaseClock(s.commit), reads: freshReadPath(s.config.replicaCount) };
  resetViewChangeTimer(ctx);
  s.timers.heartbeatTicks = 0;
  trace(ctx, 'view_change_started', { view });
  broadcastStartViewChange(ctx);
  // f = 0 (one replica, restarted as primary: README rule 18): no vote to wait for.
  maybeSendDoViewChange(ctx);
}

function broadcastStartViewChange(ctx: Ctx): void {
  const s = ctx.s;
  const message: StartViewChange = { type: 'start_view_change', epoch: s.epoch, view: s.view, replica: s.index };
  broadcast(ctx, message);
}

/** Whether a view-change message for `view` concerns us; moves to a newer view first. */
function joinViewChange(ctx: Ctx, view: number, type: string): boolean {
  const s = ctx.s;
  if (view < s.view || (view === s.view && s.status === 'normal')) {
    trace(ctx, 'drop_stale_view_change', { type, view, own: s.view });
    return false;
  }
  if (view > s.view) startViewChange(ctx, view);
  return true;
}

export function onStartViewChange(ctx: Ctx, message: StartViewChange): void {
  if (!joinViewChange(ctx, message.view, 'start_view_change')) return;
  noteVote(ctx, message.replica);
  maybeSendDoViewChange(ctx);
}

function noteVote(ctx: Ctx, replica: number): void {
  const viewChange = ctx.s.viewChange;
  if (!viewChange.startViewChangeFrom.includes(replica)) {
    ctx.s.viewChange = { ...viewChange, startViewChangeFrom: [...viewChange.startViewChangeFrom, replica] };
  }
}

/** Keeps `message` as the do_view_change from its sender (the state is replaced, never mutated). */
function noteDoViewChange(ctx: Ctx, replica: number, message: DoViewChange): void {
  const doViewChanges = ctx.s.viewChange.doViewChanges.slice();
  doViewChanges[replica] = message;
  ctx.s.viewChange = { ...ctx.s.viewChange, doViewChanges };
}

/** VRR §4.2 step 2: with f start_view_change from others, send do_view_change to the new primary. */
function maybeSendDoViewChange(ctx: Ctx): void {
  const s = ctx.s;
  if (s.viewChange.sentDoViewChange || s.viewChange.startViewChangeFrom.length < faultsTolerated(s.config)) return;
  s.viewChange = { ...s.viewChange, sentDoViewChange: true };
  const message = doViewChangeMessage(ctx);
  const primary = primaryOf(s.view, s.config);
  if (primary === s.index) {
    noteDoViewChange(ctx, s.index, message);
    maybeStartView(ctx);
  } else {
    send(ctx, primary, message);
  }
}

function doViewChangeMessage(ctx: Ctx): DoViewChange {
  const s = ctx.s;
  return {
    type: 'do_view_change',
    epoch: s.epoch,
    view: s.view,
    replica: s.index,
    lastNormalView: s.lastNormalView,
    op: s.op,
    commit: s.commit,
    ...suffixFrom(ctx, s.globalMinAccept, Number.MAX_SAFE_INTEGER),
  };
}

export function onDoViewChange(ctx: Ctx, message: DoViewChange): void {
  const s = ctx.s;
  if (!joinViewChange(ctx, message.view, 'do_view_change')) return;
  if (primaryOf(s.view, s.config) !== s.index) {
    trace(ctx, 'drop_do_view_change_not_primary', { view: message.view });
    return;
  }
  noteDoViewChange(ctx, message.replica, message);
  // Its sender has seen f start_view_change messages: it counts as a vote too.
  noteVote(ctx, message.replica);
  maybeSendDoViewChange(ctx);
  maybeStartView(ctx);
}

/**
 * VRR §4.2 step 3: with f+1 do_view_change (possibly including our own), take the log with the
 * largest lastNormalView, ties to the largest op; commit the largest commit; become primary.
 */
function maybeStartView(ctx: Ctx): void {
  const s = ctx.s;
  if (s.status !== 'view_change') return;
  const received = s.viewChange.doViewChanges.filter((message): message is DoViewChange => message !== null);
  if (received.length < quorumSize(s.config)) return;
  let best = received[0] as DoViewChange;
  for (const candidate of received) {
    if (candidate.lastNormalView > best.lastNormalView || (candidate.lastNormalView === best.lastNormalView && candidate.op > best.op)) {
      best = candidate;
    }
  }
  const commit = Math.max(...received.map((message) => message.commit));
  if (!installSuffix(ctx, best)) {
    trace(ctx, 'cannot_install_view_log', { view: s.view, from: best.replica });
    return;
  }
  assert(s.op === best.op, `installed log ends at ${s.op}, expected ${best.op}`);
  assert(commit <= s.op, `view ${s.view}: commit ${commit} beyond the chosen log's op ${s.op}`);
  enterNormal(ctx);
  trace(ctx, 'view_started', { view: s.view, op: s.op, commit });
  broadcastStartView(ctx, commit);
  commitUpTo(ctx, commit);
}

function broadcastStartView(ctx: Ctx, commit: number): void {
  const s = ctx.s;
  const startView: StartView = {
    type: 'start_view',
    epoch: s.epoch,
    view: s.view,
    replica: s.index,
    op: s.op,
    commit,
    ...suffixFrom(ctx, s.globalMinAccept, Number.MAX_SAFE_INTEGER),
  };
  broadcast(ctx, startView);
}

/**
 * README rule 18: the replica's promise is stored; send what was held for it and is not
 * repeated by a timer: our vote (start_view_change, do_view_change), a new primary's start_view
 * (and its own count towards commits), a backup's prepare_ok. Prepares, commits and answers to
 * get_state or recovery come again on their own (re-send, heartbeat, the requester's retry).
 */
export function onPromiseStored(ctx: Ctx): void {
  const s = ctx.s;
  if (!promiseHeld(s)) return;
  switch (s.status) {
    case 'view_change':
      broadcastStartViewChange(ctx);
      if (s.viewChange.sentDoViewChange && primaryOf(s.view, s.config) !== s.index) send(ctx, primaryOf(s.view, s.config), doViewChangeMessage(ctx));
      return;
    case 'normal':
      if (isCatchingUp(s)) return;
      if (isPrimary(s)) {
        s.primary.acks[s.index] = ackableOp(s);
        broadcastStartView(ctx, s.commit);
        advanceCommit(ctx);
      } else {
        sendPrepareOk(ctx);
      }
      return;
    case 'stopped':
    case 'recovering':
      return;
    default:
      assertNever(s.status, 'status');
  }
}

/** VRR §4.2 step 5: take the new primary's log and enter normal status in its view. */
export function onStartView(ctx: Ctx, message: StartView): void {
  const s = ctx.s;
  if (message.view < s.view || (message.view === s.view && s.status === 'normal')) {
    trace(ctx, 'drop_stale_start_view', { view: message.view, own: s.view });
    return;
  }
  if (!installSuffix(ctx, message)) {
    catchUpToView(ctx, message.view, message.replica);
    return;
  }
  s.view = message.view;
  enterNormal(ctx);
  commitUpTo(ctx, message.commit);
  sendPrepareOk(ctx);
}

/**
 * This replica learned of `view` from its primary without taking part in the view change, or
 * could not install the new log. It joins the view in normal status and asks the view's
 * primary for its log after our commit number (VRR §5.2). Until that arrives it applies,
 * acknowledges and answers nothing, and its log and lastNormalView stay exactly as they were:
 * should another view change come first, it takes part as a replica that never heard of this
 * view, which is safe. (Truncating to the commit number here, as VRR §5.2 does, and then
 * voting with that log is not: the commit number may lag, so the truncated log can lack
 * committed entries it once held. The simulator found both variants losing committed ops.)
 */
export function catchUpToView(ctx: Ctx, view: number, primary: number): void {
  const s = ctx.s;
  s.view = view;
  joinView(ctx);
  trace(ctx, 'catch_up_to_view', { view, commit: s.commit, op: s.op });
  requestState(ctx, primary);
}

/** Normal status in a view whose log this replica has not fetched yet (see catchUpToView). */
export function isCatchingUp(s: { readonly lastNormalView: number; readonly view: number; readonly status: string }): boolean {
  return s.status === 'normal' && s.lastNormalView < s.view;
}

/** Silence from the primary, or a stuck view change: try the next view (VRR §4.2). */
export function onViewTimerTick(ctx: Ctx): void {
  const s = ctx.s;
  s.timers.idleTicks += 1;
  if (s.timers.idleTicks >= s.timers.timeoutTicks) {
    if (s.view >= protocolNumberMax) {
      // README rule 17: no view beyond protocolNumberMax. Only a peer could have brought us
      // here (2^48 view changes take longer than any deployment lives), and it must not make
      // the next view change trip an assertion: trace, wait a timeout, and stay in this view.
      trace(ctx, 'view_numbers_exhausted', { view: s.view });
      resetViewChangeTimer(ctx);
      return;
    }
    startViewChange(ctx, s.view + 1);
    return;
  }
  if (s.status !== 'view_change') return;
  // Messages may be lost: repeat our part of this view change now and then.
  s.timers.heartbeatTicks += 1;
  if (s.timers.heartbeatTicks < s.config.commitIntervalTicks) return;
  s.timers.heartbeatTicks = 0;
  broadcastStartViewChange(ctx);
  if (s.viewChange.sentDoViewChange && primaryOf(s.view, s.config) !== s.index) {
    send(ctx, primaryOf(s.view, s.config), doViewChangeMessage(ctx));
  }
}
