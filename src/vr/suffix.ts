/**
 * Log suffixes: what do_view_change, start_view and new_state carry (haret RFC 2, VRR §5.2),
 * and how a replica installs one. A suffix is the entries after `logStart`; when the sender's
 * log no longer reaches back to `logStart` it carries its checkpoint instead, and the entries
 * after that checkpoint.
 */

import { assert } from '../base/assert.ts';
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint.ts';
import { trace, type Ctx } from './context.ts';
import { append, emptyLog, entriesAfter, entryAt, lastOp, truncateAfter } from './log.ts';
import type { CheckpointImage, LogEntry } from './messages.ts';

export type Suffix = {
  readonly logStart: number;
  readonly entries: readonly LogEntry[];
  readonly checkpoint: CheckpointImage | null;
};

/** The checkpoint's image, encoded once and kept. */
export function checkpointImage(ctx: Ctx): CheckpointImage {
  const s = ctx.s;
  if (s.checkpoint.image !== null) return s.checkpoint.image;
  const image = encodeCheckpoint(s.checkpoint.machine);
  s.checkpoint = { machine: s.checkpoint.machine, image };
  return image;
}

/**
 * An image of the current checkpoint encoded by the shell off this thread. Trusted to be the
 * encoding of our own checkpoint machine (it comes from our shell, not a peer), so only its op
 * is checked: one for an older checkpoint is dropped.
 */
export function adoptCheckpointImage(ctx: Ctx, image: CheckpointImage): void {
  const s = ctx.s;
  if (s.checkpoint.image !== null || image.op !== s.checkpoint.machine.appliedOp) {
    trace(ctx, 'checkpoint_image_ignored', { op: image.op, checkpointOp: s.checkpoint.machine.appliedOp });
    return;
  }
  s.checkpoint = { machine: s.checkpoint.machine, image };
}

/** Entries after `from` (at most `max`), or the checkpoint and what follows it. */
export function suffixFrom(ctx: Ctx, from: number, max: number): Suffix {
  const s = ctx.s;
  const start = Math.min(from, s.op);
  if (start >= s.log.start) return { logStart: start, entries: entriesAfter(s.log, start, max), checkpoint: null };
  const image = checkpointImage(ctx);
  return { logStart: image.op, entries: entriesAfter(s.log, image.op, max), checkpoint: image };
}

/**
 * Replaces the log after `logStart` with the suffix (replacing, never appending: haret bug 3),
 * keeping committed entries. For a new view's log (start_view, do_view_change, recovery,
 * catching up). Returns false, changing nothing, when the suffix cannot be installed: it does
 * not reach back to what this replica holds and carries no checkpoint, or it would drop
 * committed entries.
 */
export function installSuffix(ctx: Ctx, suffix: Suffix): boolean {
  const s = ctx.s;
  const suffixOp = suffix.logStart + suffix.entries.length;
  if (suffixOp < s.commit) {
    trace(ctx, 'suffix_behind_commit', { suffixOp, commit: s.commit });
    return false;
  }
  // A checkpoint beyond our commit number: our entries up to it may be uncommitted ones the
  // group discarded, so they cannot be kept; the checkpoint replaces them.
  if (suffix.checkpoint !== null && suffix.logStart > s.commit) return installCheckpoint(ctx, suffix.checkpoint, suffix.entries);
  // Entries up to max(logStart, commit) are already here and agree (committed, or held by every
  // replica: RFC 2's globalMinAccept); take the rest.
  return takeSuffix(ctx, suffix, Math.max(suffix.logStart, s.commit));
}

/**
 * Within one view: adds the entries of a suffix beyond this replica's op, never removing any
 * (both logs are prefixes of the view's log, and a late, shorter answer must not cut off
 * entries already acknowledged). Returns false when the suffix starts beyond our op and
 * carries no usable checkpoint.
 */
export function extendWithSuffix(ctx: Ctx, suffix: Suffix): boolean {
  const s = ctx.s;
  if (suffix.logStart + suffix.entries.length <= s.op) return true;
  return takeSuffix(ctx, suffix, s.op);
}

/**
 * Keeps our entries up to `keep` and takes the suffix's entries after it; when the suffix
 * starts beyond our op, installs its checkpoint instead (if it has one).
 */
function takeSuffix(ctx: Ctx, suffix: Suffix, keep: number): boolean {
  const s = ctx.s;
  if (s.op >= suffix.logStart) {
    // Entries the suffix repeats (the very same entries) stay; replace from the first difference.
    let same = keep;
    for (const entry of suffix.entries) {
      if (entry.op <= same) continue;
      if (entry.op > s.op || entryAt(s.log, entry.op) !== entry) break;
      same = entry.op;
    }
    let log = s.log;
    if (same < s.op) {
      log = truncateAfter(log, same);
      // Stored entries after `same` are replaced: answers about them no longer count.
      s.durable.generation += 1;
      s.durable.op = Math.min(s.durable.op, same);
      ctx.logChange.truncatedAfter = Math.min(ctx.logChange.truncatedAfter ?? same, same);
    }
    for (const entry of suffix.entries) if (entry.op > same) log = append(log, entry);
    s.log = log;
    s.op = lastOp(log);
    return true;
  }
  if (suffix.checkpoint === null) {
    trace(ctx, 'suffix_gap_without_checkpoint', { logStart: suffix.logStart, op: s.op });
    return false;
  }
  return installCheckpoint(ctx, suffix.checkpoint, suffix.entries);
}

/** Replaces machine and log with a checkpoint and the entries after it (never re-applying them: haret bug 2). */
function installCheckpoint(ctx: Ctx, image: CheckpointImage, entries: readonly LogEntry[]): boolean {
  const s = ctx.s;
  const decoded = decodeCheckpoint(image);
  if (!decoded.ok) {
    trace(ctx, 'checkpoint_rejected', { reason: decoded.reason });
    return false;
  }
  assert(image.op >= s.commit, `checkpoint ${image.op} would roll back commit ${s.commit}`);
  // Stored entries after our commit are replaced: answers about them no longer count.
  s.durable.generation += 1;
  s.durable.op = Math.min(s.durable.op, s.commit);
  ctx.logChange.truncatedAfter = Math.min(ctx.logChange.truncatedAfter ?? image.op, image.op);
  let log = emptyLog(image.op);
  for (const entry of entries) log = append(log, entry);
  s.machine = decoded.machine;
  s.checkpoint = { machine: decoded.machine, image };
  s.commit = image.op;
  s.log = log;
  s.op = lastOp(log);
  return true;
}
