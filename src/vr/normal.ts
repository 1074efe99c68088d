/**
 * Normal operation (VRR §4.1): requests at the primary, batching and pipelining, prepare and
 * prepare_ok, commit, heartbeats and prepare re-sends.
 */

import { protocolNumberMax } from '../base/limits.ts';
import { isWriteOp } from '../tree/ops.ts';
import { validateOp } from '../tree/validate.ts';
import { commitUpTo } from './commit.ts';
import { faultsTolerated, leaseClockTicksMax, primaryOf } from './config.ts';
import { ackableOp, answer, broadcast, isPrimary, send, trace, type Ctx } from './context.ts';
import { append, entryAt } from './log.ts';
import type { Commit, LogEntry, Prepare, PrepareOk, Request } from './messages.ts';
import { holdRead, onReadTick, readMaySkipLog } from './read_path.ts';
import { requestBytes } from './request_size.ts';
import { requestState } from './state_transfer.ts';
import { catchUpToView, isCatchingUp, onPromiseStored } from './view_change.ts';

// ---- at the primary ------------------------------------------------------------------------

/** VRR §4.1 steps 1–2, with the client table check first. */
export function onRequest(ctx: Ctx, request: Request): void {
  const s = ctx.s;
  if (s.status === 'recovering' || s.status === 'stopped') {
    trace(ctx, 'drop_request_not_ready', { status: s.status });
    return;
  }
  const base = { epoch: s.epoch, view: s.view, clientId: request.clientId, requestNum: request.requestNum };
  if (s.status !== 'normal' || !isPrimary(s)) {
    // Not dropped silently (haret only timed out): the client redirects at once.
    answer(ctx, request.clientId, { type: 'not_primary', ...base, primary: primaryOf(s.view, s.config) });
    return;
  }
  const accepted = admit(ctx, request);
  if (accepted === null) return;
  if (s.op >= protocolNumberMax) {
    // README rule 17: no op beyond protocolNumberMax, so nothing more can be logged (only a
    // peer's forged log could bring us here). `busy` is the typed "nothing ran" answer.
    trace(ctx, 'op_numbers_exhausted', { op: s.op });
    answer(ctx, request.clientId, { type: 'busy', ...base, retryAfterTicks: s.config.commitIntervalTicks });
    return;
  }
  if (accepted.op.type === 'tree' && !isWriteOp(accepted.op.op) && readMaySkipLog(ctx, s.machine.clients.get(request.clientId))) {
    // README rule 22: answered from the committed state once this primary's view is confirmed.
    if (!holdRead(ctx, accepted)) answer(ctx, request.clientId, { type: 'busy', ...base, retryAfterTicks: s.config.commitIntervalTicks });
    return;
  }
  if (s.primary.pending.size + s.primary.reads.waiting.size >= s.config.pendingMax) {
    answer(ctx, request.clientId, { type: 'busy', ...base, retryAfterTicks: s.config.commitIntervalTicks });
    return;
  }
  s.primary.pending = s.primary.pending.push(accepted);
  s.primary.inProgress = s.primary.inProgress.set(request.clientId, request.requestNum);
}

/**
 * The client table decides (VRR §4.1 step 2): an old request number is answered
 * `stale_request` (README deviation 16), a write's retry gets its cached reply, a read's retry
 * runs again (its reply is not kept, deviation 8); only a new request goes on, and only while
 * its session has no other request in progress (VRR §4.1: one outstanding request per client).
 * A malformed op or one over a limit is refused here, before it reaches the log. Returns the
 * request to log, or null.
 */
function admit(ctx: Ctx, request: Request): Request | null {
  const s = ctx.s;
  const base = { epoch: s.epoch, view: s.view, clientId: request.clientId, requestNum: request.requestNum };
  const inProgress = s.primary.inProgress.get(request.clientId);
  if (request.op.type === 'register') {
    if (inProgress === 0) {
      trace(ctx, 'drop_register_in_progress', { clientId: request.clientId });
      return null;
    }
    return request;
  }
  if (request.op.type === 'lease_clock') {
    // Only a primary makes these (README rule 21); validateMessage refuses them from clients.
    trace(ctx, 'drop_client_lease_clock', { clientId: request.clientId });
    return null;
  }
  const validated = validateOp(request.op.op, s.config.treeLimits);
  if (!validated.ok) {
    answer(ctx, request.clientId, { type: 'reply', ...base, op: 0, body: { type: 'rejected', outcome: { type: 'error', error: validated.error } } });
    return null;
  }
  const record = s.machine.clients.get(request.clientId);
  // Unknown here may still mean registered in an entry not yet committed (a view change can
  // leave one): then the request is logged and applying it decides.
  if (record === undefined && s.op === s.commit) {
    answer(ctx, request.clientId, { type: 'reply', ...base, op: 0, body: { type: 'session_expired' } });
    return null;
  }
  if (record !== undefined && request.requestNum < record.requestNum) {
    // Its answer is no longer kept: say so rather than leave the client to time out.
    answer(ctx, request.clientId, { type: 'reply', ...base, op: 0, body: { type: 'stale_request', lastRequestNum: record.requestNum } });
    return null;
  }
  if (record !== undefined && request.requestNum === record.requestNum) {
    if (record.reply !== null) {
      answer(ctx, request.clientId, { type: 'reply', ...base, op: record.replyOp, body: record.reply });
      return null;
    }
    // Executed as a read (a tree request with no reply kept): only the same read may run again.
    if (isWriteOp(validated.op)) {
      trace(ctx, 'drop_retry_read_as_write', { clientId: request.clientId, requestNum: request.requestNum });
      return null;
    }
  }
  if (inProgress !== undefined) {
    // The same request: its reply comes when it commits. Another one: the client broke the
    // one-outstanding rule (or gave up on the one in progress); it is dropped so the two never
    // both run, and the client's retry gets in once the one in progress has been applied (an
    // applied request leaves inProgress, answered or not; a view change rebuilds it from the
    // uncommitted log, which the new primary commits).
    trace(ctx, request.requestNum === inProgress ? 'drop_request_in_progress' : 'drop_request_other_in_progress', {
      clientId: request.clientId,
      requestNum: request.requestNum,
      inProgress,
    });
    return null;
  }
  return { type: 'request', clientId: request.clientId, requestNum: request.requestNum, op: { type: 'tree', op: validated.op } };
}

/**
 * Cuts the pending requests into log entries (batches bounded by `batchMax` and
 * `batchBytesMax`) while the pipeline has room, and prepares each (VRR §4.1 step 2).
 */
export function preparePending(ctx: Ctx): void {
  const s = ctx.s;
  // Never an op beyond protocolNumberMax (README rule 17): what is pending stays pending.
  while (s.primary.pending.size > 0 && s.op - s.commit < s.config.pipelineMax && s.op < protocolNumberMax) {
    const requests: Request[] = [];
    let bytes = 0;
    for (const request of s.primary.pending) {
      const size = requestBytes(request);
      if (requests.length > 0 && (requests.length >= s.config.batchMax || bytes + size > s.config.batchBytesMax)) break;
      requests.push(request);
      bytes += size;
    }
    s.primary.pending = s.primary.pending.skip(requests.length).toList();
    const entry: LogEntry = { op: s.op + 1, view: s.view, requests };
    const clock = s.primary.leaseClock;
    // The lease_clock request is proposed at the front of pending, so it leads its entry.
    if (clock.waiting && clock.entryOp === 0 && requests[0]?.op.type === 'lease_clock') s.primary.leaseClock = { ...clock, entryOp: entry.op };
    s.log = append(s.log, entry);
    s.op = entry.op;
    s.primary.acks[s.index] = ackableOp(s);
    broadcast(ctx, prepareFor(ctx, entry));
    s.timers.heartbeatTicks = 0;
    advanceCommit(ctx);
  }
}

/**
 * README rule 20: a primary whose commit number moved in this step and that sent no prepare
 * carrying it tells the backups at once with a `commit` (VRR §4.1 step 7 sends one only when
 * idle for a heartbeat). Backups then apply, and serve the watches they hold, one message delay
 * after the primary, not a heartbeat later; under load a prepare of the same step carries it and
 * nothing extra is sent.
 */
export function announceCommit(ctx: Ctx): void {
  const s = ctx.s;
  if (s.commit <= ctx.told.commit) return;
  broadcast(ctx, { type: 'commit', epoch: s.epoch, view: s.view, replica: s.index, commit: s.commit, globalMinAccept: s.globalMinAccept });
  ctx.told.commit = s.commit;
  s.timers.heartbeatTicks = 0;
}

function prepareFor(ctx: Ctx, entry: LogEntry): Prepare {
  const s = ctx.s;
  ctx.told.commit = Math.max(ctx.told.commit, s.commit);
  return {
    type: 'prepare',
    epoch: s.epoch,
    view: s.view,
    replica: s.index,
    op: entry.op,
    commit: s.commit,
    entry,
    globalMinAccept: s.globalMinAccept,
  };
}

/** VRR §4.1 step 5: prepare_ok is cumulative: the backup holds every entry up to `op`. */
export function onPrepareOk(ctx: Ctx, message: PrepareOk): void {
  const s = ctx.s;
  if (message.view !== s.view || s.status !== 'normal' || !isPrimary(s)) {
    trace(ctx, 'drop_prepare_ok', { view: message.view, status: s.status });
    return;
  }
  if (message.op > s.op) {
    trace(ctx, 'drop_prepare_ok_beyond_op', { op: message.op, own: s.op });
    return;
  }
  const acks = s.primary.acks;
  acks[message.replica] = Math.max(acks[message.replica] ?? 0, message.op);
  // RFC 2: every replica holds the entries up to the least op any backup acknowledged.
  let least = Number.POSITIVE_INFINITY;
  for (let replica = 0; replica < acks.length; replica++) if (replica !== s.index) least = Math.min(least, acks[replica] ?? 0);
  if (Number.isFinite(least) && least > s.globalMinAccept) s.globalMinAccept = least;
  advanceCommit(ctx);
}

/** The primary commits the highest op that f+1 replicas (itself included) hold. */
export function advanceCommit(ctx: Ctx): void {
  const s = ctx.s;
  const committable = nthHighest(s.primary.acks, faultsTolerated(s.config));
  if (committable > s.commit) {
    commitUpTo(ctx, committable);
    s.timers.stallTicks = 0;
  }
}

/** The value at index `n` of `values` sorted in descending order (0 if there is none), without sorting a copy. */
function nthHighest(values: readonly number[], n: number): number {
  let best = 0;
  for (const candidate of values) {
    if (candidate <= best) continue;
    let atLeast = 0;
    for (const value of values) if (value >= candidate) atLeast += 1;
    if (atLeast > n) best = candidate;
  }
  return best;
}

/**
 * README rule 21: while leases exist the primary counts its ticks and logs them in a
 * lease_clock entry every `leaseClockTicks`, or as soon as a counting lease is due, one entry
 * in flight at a time. An entry covers the ticks since the previous one was proposed, and names
 * the commit number of that moment (`through`): the renewals committed by then. With no lease
 * and none in flight the interval simply restarts. A timer message may carry several ticks, all
 * of which passed before it was handled: an interval begins (a proposal, a restart) only at a
 * message's last tick (`lastOfMessage`), so none of its ticks is counted in an interval that
 * began while it was handled.
 */
function onLeaseClockTick(ctx: Ctx, lastOfMessage: boolean): void {
  const s = ctx.s;
  const clock = s.primary.leaseClock;
  const inFlight = clock.waiting && (clock.entryOp === 0 || s.commit < clock.entryOp);
  const leases = s.machine.leases;
  if (leases.size === 0 && !inFlight) {
    // Restarted at the end of this message (a partial interval included): the next message's
    // ticks are whole ones.
    if (lastOfMessage && (clock.ticks !== 0 || clock.through !== s.commit || clock.waiting || clock.partial)) s.primary.leaseClock = { ticks: 0, through: s.commit, waiting: false, entryOp: 0, partial: false };
    return;
  }
  if (clock.partial) {
    // The interval began after the previous timer message (a takeover while handling some
    // message): every tick of this one may have passed before it (seed 3000097: a takeover and
    // a tick in one step counted a tick from before the takeover's commit number was known).
    if (lastOfMessage) s.primary.leaseClock = { ...clock, partial: false };
    return;
  }
  const ticks = Math.min(clock.ticks + 1, leaseClockTicksMax);
  const due = ticks >= s.config.leaseClockTicks || leases.clock + ticks >= leases.nextDeadline;
  if (inFlight || !due || !lastOfMessage || s.op >= protocolNumberMax) {
    s.primary.leaseClock = { ...clock, ticks };
    return;
  }
  const request: Request = { type: 'request', clientId: '', requestNum: 0, op: { type: 'lease_clock', elapsedTicks: ticks, through: clock.through } };
  s.primary.pending = s.primary.pending.unshift(request);
  // Proposed at the end of this message: the next interval begins on a message boundary.
  s.primary.leaseClock = { ticks: 0, through: s.commit, waiting: true, entryOp: 0, partial: false };
}

/** `lastOfMessage`: no tick of the same timer message follows this one (README rule 21). */
export function onPrimaryTick(ctx: Ctx, lastOfMessage: boolean): void {
  const s = ctx.s;
  onLeaseClockTick(ctx, lastOfMessage);
  onReadTick(ctx);
  const timers = s.timers;
  timers.heartbeatTicks += 1;
  if (s.op > s.commit) {
    timers.stallTicks += 1;
    if (timers.stallTicks >= s.config.prepareResendTicks) {
      resendPrepares(ctx);
      timers.stallTicks = 0;
    }
  } else {
    timers.stallTicks = 0;
  }
  if (timers.heartbeatTicks >= s.config.commitIntervalTicks) {
    const commit: Commit = { type: 'commit', epoch: s.epoch, view: s.view, replica: s.index, commit: s.commit, globalMinAccept: s.globalMinAccept };
    broadcast(ctx, commit);
    timers.heartbeatTicks = 0;
  }
}

/**
 * Uncommitted entries and no progress: re-send to each backup the prepares it has not
 * acknowledged (haret RFC 2 re-sent only the last one; every missing one repairs loss sooner).
 */
function resendPrepares(ctx: Ctx): void {
  const s = ctx.s;
  for (let replica = 0; replica < s.config.replicaCount; replica++) {
    if (replica === s.index) continue;
    const from = Math.max(s.primary.acks[replica] ?? 0, s.commit) + 1;
    for (let op = from; op <= s.op; op++) {
      const entry = entryAt(s.log, op);
      if (entry !== undefined) send(ctx, replica, prepareFor(ctx, entry));
    }
  }
  s.timers.heartbeatTicks = 0;
}

// ---- at a backup ----------------------------------------------------------------------------

/**
 * A message from the primary of `view`. Returns false when it must be dropped: older view, or
 * this replica is that primary. A newer view (or this view while still changing views) means
 * this replica missed start_view: it catches up first (VRR §5.2).
 */
function fromPrimary(ctx: Ctx, view: number, from: number, type: string): boolean {
  const s = ctx.s;
  if (view < s.view) {
    trace(ctx, 'drop_stale_view', { type, view, own: s.view });
    return false;
  }
  if (view > s.view || s.status === 'view_change') catchUpToView(ctx, view, from);
  if (isPrimary(s)) {
    trace(ctx, 'drop_from_other_primary', { type, from });
    return false;
  }
  s.timers.idleTicks = 0;
  return true;
}

/** VRR §4.1 step 4: accept prepares strictly in order; a gap means state transfer. */
export function onPrepare(ctx: Ctx, message: Prepare): void {
  const s = ctx.s;
  if (!fromPrimary(ctx, message.view, message.replica, 'prepare')) return;
  if (message.globalMinAccept > s.globalMinAccept) s.globalMinAccept = message.globalMinAccept;
  if (isCatchingUp(s)) {
    // Acknowledge nothing until the view's log has arrived (catchUpToView).
    requestState(ctx, message.replica);
    return;
  }
  if (message.op === s.op + 1) {
    s.log = append(s.log, message.entry);
    s.op = message.op;
    // Durable: the prepare_ok goes out when the entry is stored (onPersisted).
    if (!s.config.durable) sendPrepareOk(ctx);
  } else if (message.op <= s.op) {
    // An old or repeated prepare: the primary may have lost our acknowledgement.
    sendPrepareOk(ctx);
  } else {
    requestState(ctx, message.replica);
  }
  commitUpTo(ctx, message.commit);
}

/** VRR §4.1 step 7: the primary's commit heartbeat. */
export function onCommit(ctx: Ctx, message: Commit): void {
  const s = ctx.s;
  if (!fromPrimary(ctx, message.view, message.replica, 'commit')) return;
  if (message.globalMinAccept > s.globalMinAccept) s.globalMinAccept = message.globalMinAccept;
  if (isCatchingUp(s)) {
    // Our entries after our commit may not be this view's: apply nothing until its log arrives.
    requestState(ctx, message.replica);
    return;
  }
  commitUpTo(ctx, message.commit);
  if (message.commit > s.op) requestState(ctx, message.replica);
}

/** prepare_ok for what we may acknowledge (VRR §4.1 step 4; durable: what is stored). */
export function sendPrepareOk(ctx: Ctx): void {
  const s = ctx.s;
  send(ctx, primaryOf(s.view, s.config), { type: 'prepare_ok', epoch: s.epoch, view: s.view, replica: s.index, op: ackableOp(s) });
}

/**
 * Durable mode: the shell stored entries up to `op` of this generation. The primary counts
 * them towards commits; a backup acknowledges them.
 */
export function onPersisted(ctx: Ctx, generation: number, op: number): void {
  const s = ctx.s;
  if (!s.config.durable || generation !== s.durable.generation) {
    trace(ctx, 'drop_persisted_stale', { generation, own: s.durable.generation });
    return;
  }
  const promiseNowStored = !s.durable.promiseStored;
  if (promiseNowStored) {
    // README rule 18: the answer of the current generation proves the latest promise stored.
    s.durable.promiseStored = true;
    if (op > s.durable.op) s.durable.op = Math.min(op, s.op);
    onPromiseStored(ctx);
    return;
  }
  if (op <= s.durable.op) return;
  s.durable.op = Math.min(op, s.op);
  if (s.status !== 'normal' || isCatchingUp(s)) return;
  if (isPrimary(s)) {
    s.primary.acks[s.index] = ackableOp(s);
    advanceCommit(ctx);
  } else {
    sendPrepareOk(ctx);
  }
}
