/**
 * Executing committed entries (VRR §4.1 steps 5 and 7), checkpoints and log truncation
 * (VRR §5.1, haret RFC 2).
 */

import { assert } from '../base/assert.ts';
import { answer, isNormalPrimary, trace, type Ctx } from './context.ts';
import { dropThrough, entryAt } from './log.ts';
import type { LogEntry } from './messages.ts';
import type { TreeOp } from '../tree/ops.ts';
import { applyEntry, expireAtCheckpoint, type AppliedReply } from './state_machine.ts';

/**
 * Applies every entry up to `target` (capped at the replica's own op) to the machine. The
 * primary of a normal view answers the clients; backups only apply.
 */
export function commitUpTo(ctx: Ctx, target: number): void {
  const s = ctx.s;
  const upTo = Math.min(target, s.op);
  if (upTo <= s.commit) return;
  const replying = isNormalPrimary(s);
  for (let op = s.commit + 1; op <= upTo; op++) {
    const entry = entryAt(s.log, op);
    assert(entry !== undefined, `committed op ${op} is missing from the log (start ${s.log.start}, op ${s.op})`);
    const replies: AppliedReply[] = [];
    const ops: TreeOp[] = [];
    const before = s.machine.tree;
    s.machine = applyEntry(s.machine, entry, s.config, replies, ops);
    ctx.out.push({ type: 'applied', op, before, after: s.machine.tree, ops, requests: entry.requests.length });
    s.commit = op;
    if (replying) sendReplies(ctx, entry, replies);
    if (op % s.config.checkpointIntervalOps === 0) takeCheckpoint(ctx);
  }
  truncateLog(ctx);
}

/**
 * Answers the entry's requests, and ends each one's time in progress: answered or not, an
 * applied request no longer blocks its session (normal.ts `admit` lets one request per session
 * be in progress, VRR §4.1).
 */
function sendReplies(ctx: Ctx, entry: LogEntry, replies: readonly AppliedReply[]): void {
  const s = ctx.s;
  let next = 0;
  for (const request of entry.requests) {
    if (s.primary.inProgress.get(request.clientId) === request.requestNum) {
      s.primary.inProgress = s.primary.inProgress.delete(request.clientId);
    }
    // Replies come in the order of the requests; one that has none was a read retried as a write.
    const reply = replies[next];
    if (reply !== undefined && reply.clientId === request.clientId && reply.requestNum === request.requestNum) {
      next += 1;
    } else {
      trace(ctx, 'drop_request_at_apply', { clientId: request.clientId, requestNum: request.requestNum, op: entry.op });
    }
  }
  for (const reply of replies) {
    answer(ctx, reply.clientId, {
      type: 'reply',
      epoch: s.epoch,
      view: s.view,
      op: reply.op,
      clientId: reply.clientId,
      requestNum: reply.requestNum,
      body: reply.body,
    });
  }
}

/** With a persistent machine a checkpoint is a reference; its image is encoded on demand. */
function takeCheckpoint(ctx: Ctx): void {
  const s = ctx.s;
  s.machine = expireAtCheckpoint(s.machine, s.config);
  s.checkpoint = { machine: s.machine, image: null };
}

/**
 * Drops entries that a checkpoint covers and every replica holds (≤ globalMinAccept, RFC 2).
 * When some replica lags further behind, at most `logRetainOps` committed entries are kept for
 * it: the log stays bounded however long a replica stays away; past that it catches up from a
 * checkpoint.
 */
export function truncateLog(ctx: Ctx): void {
  const s = ctx.s;
  const through = Math.min(s.checkpoint.machine.appliedOp, Math.max(s.globalMinAccept, s.commit - s.config.logRetainOps));
  if (through > s.log.start) s.log = dropThrough(s.log, through);
}
