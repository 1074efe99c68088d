/**
 * One watch, client side (issue 14), pure: `watchStep(machine, input) -> { machine, outputs }`.
 *
 * The machine subscribes at one replica, delivers what it receives exactly once and in order,
 * and fails over on its own: a new attempt (a new watch id, `${idPrefix}.${attempt}`) at the
 * next replica resumes from the position delivered through, so a failover loses nothing and
 * repeats nothing the application saw. It
 * - resubscribes after `silenceTicks` without a notice from the current attempt (the replica
 *   crashed or is partitioned; a serving replica sends progress at least every few ticks),
 *   cancelling the silent attempt so its replica frees it if it is alive after all;
 * - retries at the next replica after `retryTicks` on `not_serving`, `too_many`, `idle`, and on
 *   `future` once a server confirmed the position (that replica is behind and will catch up);
 * - asks every replica once per round on `compacted` (and on `future` for a `fromOp` nobody
 *   confirmed) before ending with that error: another replica may still hold the history;
 * - ends at once on `lagging` and `invalid`, and with `unavailable` when no replica served
 *   (no progress, no events) for `giveUpTicks`;
 * - assembles multi-part batches (`more`), and acknowledges every `ackBytes` received and each
 *   progress (the replica sends only while its unacknowledged bytes are below its buffer);
 * - takes an attempt's notices strictly in sequence (`seq`, src/watch/messages.ts): it expects
 *   each to be numbered the last one's + 1, drops a repeated or older one unseen, and on a gap
 *   (a notice lost on the way: a bounded mailbox dropped it) delivers nothing of that notice or
 *   any later one of the attempt: it cancels the attempt and resumes from its position at the
 *   next replica after `retryTicks`, as for any replica that breaks the contract (the pause
 *   lets an overflowing mailbox drain; any replica serves the same stream). `watch_ended` is
 *   taken whatever its seq.
 *
 * The same machine runs in the embedded endpoint, the TCP client library and the simulator.
 */

import { assert, assertNever } from '../base/assert.ts';
import { estimateNoticeBytes, type WatchEnded, type WatchEvent, type WatchEvents, type WatchNotice, type WatchProgress, type WatchRequest } from '../watch/messages.ts';

export type WatchSpec = { readonly path: string; readonly recursive: boolean; readonly fromOp: number | null; readonly values: boolean };

export type WatchMachineConfig = {
  readonly replicaCount: number;
  /** No notice for this long from the current attempt: resubscribe at the next replica. */
  readonly silenceTicks: number;
  /** Wait before resubscribing after a retryable end. */
  readonly retryTicks: number;
  /** No replica serving (no progress, no events) for this long: end `unavailable`. */
  readonly giveUpTicks: number;
  /** Acknowledge after this many estimated bytes received (`estimateNoticeBytes`). */
  readonly ackBytes: number;
};

/** Client ticks are 50 ms: silence 3 s, retry 200 ms, give up after 30 s, ack every 64 KiB. */
export const defaultWatchMachineConfig: Omit<WatchMachineConfig, 'replicaCount'> = Object.freeze({
  silenceTicks: 60,
  retryTicks: 4,
  giveUpTicks: 600,
  ackBytes: 64 * 1024,
});

/** What the application gets: `start` once (the op the watch starts after), then events and progress, each complete through `op`. */
export type WatchBatch = { readonly kind: 'start' | 'events' | 'progress'; readonly op: number; readonly events: readonly WatchEvent[] };

export type WatchErrorCode = 'compacted' | 'future' | 'lagging' | 'invalid' | 'unavailable';
export type WatchError = { readonly code: WatchErrorCode; readonly message: string; readonly oldestOp: number | null; readonly currentOp: number | null };

export type WatchInput =
  /** Sends the first subscribe. */
  | { readonly type: 'start' }
  /** Any notice whose watchId starts with this machine's id prefix. */
  | { readonly type: 'notice'; readonly notice: WatchNotice }
  | { readonly type: 'tick' }
  /**
   * The shell lost the path to replica `replica` (its worker died), or to every replica
   * (`replica` null: the connection to the node dropped and came back): notices of the current
   * attempt may be gone, so a subscribed attempt there resubscribes at once from the position,
   * at the next replica, instead of waiting out `silenceTicks`.
   */
  | { readonly type: 'lost'; readonly replica: number | null }
  /** Sends watch_cancel for the current attempt; the machine ends quietly. */
  | { readonly type: 'cancel' };

export type WatchOutput =
  | { readonly type: 'send'; readonly replica: number; readonly request: WatchRequest }
  | { readonly type: 'deliver'; readonly batch: WatchBatch }
  /** null: cancelled. Terminal: after it the machine outputs nothing, ever. */
  | { readonly type: 'end'; readonly error: WatchError | null };

/** A definitive refusal of the watch's start by one replica, in the current round. */
type Refusal = { readonly reason: 'compacted' | 'future'; readonly oldestOp: number; readonly currentOp: number };

type Partial = { readonly op: number; readonly events: readonly WatchEvent[] };

export type WatchMachine = {
  readonly config: WatchMachineConfig;
  readonly spec: WatchSpec;
  readonly idPrefix: string;
  /** new: not started; subscribed: attempt `attempt` live at `replica`; waiting: subscribing at `replica` in `waitTicks`. */
  readonly phase: 'new' | 'subscribed' | 'waiting' | 'ended';
  readonly attempt: number;
  readonly replica: number;
  /** The current attempt's first progress arrived (its events may be trusted from then on). */
  readonly attemptStarted: boolean;
  /** The seq of the current attempt's last notice taken; 0 before its first. */
  readonly lastSeq: number;
  /** The op delivered through; null until the first progress (the `start`). */
  readonly position: number | null;
  /** The parts received so far of a batch sent with `more`. */
  readonly partial: Partial | null;
  readonly bytesSinceAck: number;
  readonly ticksSinceAck: number;
  readonly silentTicks: number;
  readonly waitTicks: number;
  /** Ticks since a replica last served (progress or events), against `giveUpTicks`. */
  readonly unservedTicks: number;
  /** Per replica, its refusal in this round (cleared whenever a replica serves). */
  readonly refusals: readonly (Refusal | null)[];
};

type Working = { -readonly [K in keyof WatchMachine]: WatchMachine[K] };

export function initialWatchMachine(config: WatchMachineConfig, spec: WatchSpec, idPrefix: string, firstReplica: number): WatchMachine {
  assert(Number.isSafeInteger(config.replicaCount) && config.replicaCount >= 1, `watch replicaCount must be a positive integer, got ${config.replicaCount}`);
  for (const key of ['silenceTicks', 'retryTicks', 'giveUpTicks', 'ackBytes'] as const) {
    assert(Number.isSafeInteger(config[key]) && config[key] >= 1, `watch ${key} must be a positive integer, got ${config[key]}`);
  }
  assert(Number.isSafeInteger(firstReplica) && firstReplica >= 0 && firstReplica < config.replicaCount, `first replica ${firstReplica} out of range`);
  return Object.freeze({
    config,
    spec,
    idPrefix,
    phase: 'new',
    attempt: 0,
    replica: firstReplica,
    attemptStarted: false,
    lastSeq: 0,
    position: null,
    partial: null,
    bytesSinceAck: 0,
    ticksSinceAck: 0,
    silentTicks: 0,
    waitTicks: 0,
    unservedTicks: 0,
    refusals: noRefusals(config.replicaCount),
  });
}

export function watchPosition(machine: WatchMachine): number | null {
  return machine.position;
}

export function watchEnded(machine: WatchMachine): boolean {
  return machine.phase === 'ended';
}

/** The watch id of an attempt. */
export function watchAttemptId(idPrefix: string, attempt: number): string {
  return `${idPrefix}.${attempt}`;
}

export function watchStep(machine: WatchMachine, input: WatchInput): { readonly machine: WatchMachine; readonly outputs: readonly WatchOutput[] } {
  if (machine.phase === 'ended') return { machine, outputs: [] };
  const w: Working = { ...machine };
  const out: WatchOutput[] = [];
  switch (input.type) {
    case 'start':
      if (w.phase === 'new') subscribe(w, out);
      break;
    case 'notice':
      onNotice(w, input.notice, out);
      break;
    case 'tick':
      onTick(w, out);
      break;
    case 'lost':
      if (w.phase === 'subscribed' && (input.replica === null || input.replica === w.replica)) moveOn(w, out, true, 0);
      break;
    case 'cancel':
      cancelAttempt(w, out);
      end(w, out, null);
      break;
    default:
      return assertNever(input, 'watch input');
  }
  return { machine: Object.freeze(w), outputs: out };
}

// ---- attempts ------------------------------------------------------------------------------

function subscribe(w: Working, out: WatchOutput[]): void {
  w.attempt += 1;
  w.phase = 'subscribed';
  w.attemptStarted = false;
  w.lastSeq = 0;
  w.partial = null;
  w.bytesSinceAck = 0;
  w.ticksSinceAck = 0;
  w.silentTicks = 0;
  w.waitTicks = 0;
  const { path, recursive, values } = w.spec;
  // Resume after what was delivered; before any start, ask for what the application asked.
  const fromOp = w.position ?? w.spec.fromOp;
  send(w, out, { type: 'watch_subscribe', watchId: watchAttemptId(w.idPrefix, w.attempt), path, recursive, fromOp, values });
}

/** Frees the live attempt at its replica (a replica that ended it itself needs no cancel). */
function cancelAttempt(w: Working, out: WatchOutput[]): void {
  if (w.phase === 'subscribed') send(w, out, { type: 'watch_cancel', watchId: watchAttemptId(w.idPrefix, w.attempt) });
}

/**
 * Leaves the current attempt for the next replica: at once, or after `delay` ticks. Replicas
 * that refused in this round are skipped, so each is asked at most once per round.
 */
function moveOn(w: Working, out: WatchOutput[], cancelOld: boolean, delay: number): void {
  if (cancelOld) cancelAttempt(w, out);
  w.replica = nextReplica(w);
  w.partial = null;
  if (delay > 0) {
    w.phase = 'waiting';
    w.waitTicks = delay;
  } else {
    subscribe(w, out);
  }
}

function nextReplica(w: Working): number {
  const n = w.config.replicaCount;
  for (let i = 1; i <= n; i++) {
    const candidate = (w.replica + i) % n;
    if (w.refusals[candidate] === null) return candidate;
  }
  return (w.replica + 1) % n;
}

function end(w: Working, out: WatchOutput[], error: WatchError | null): void {
  w.phase = 'ended';
  w.partial = null;
  out.push({ type: 'end', error });
}

function send(w: Working, out: WatchOutput[], request: WatchRequest): void {
  out.push({ type: 'send', replica: w.replica, request });
}

/** Acknowledges through the position: always after a progress, else once `ackBytes` arrived. */
function maybeAck(w: Working, out: WatchOutput[], force: boolean): void {
  if (w.position === null || w.phase !== 'subscribed') return;
  if (!force && w.bytesSinceAck < w.config.ackBytes) return;
  send(w, out, { type: 'watch_ack', watchId: watchAttemptId(w.idPrefix, w.attempt), through: w.position });
  w.bytesSinceAck = 0;
  w.ticksSinceAck = 0;
}

// ---- notices -------------------------------------------------------------------------------

function onNotice(w: Working, notice: WatchNotice, out: WatchOutput[]): void {
  // Only the live attempt speaks; a stale attempt's late notices (or a forged id) are dropped.
  if (w.phase !== 'subscribed' || notice.watchId !== watchAttemptId(w.idPrefix, w.attempt)) return;
  if (notice.type !== 'watch_ended') {
    const seq: unknown = notice.seq;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return protocolBroken(w, out);
    // Already taken (a duplicate): drop it unseen, counting nothing.
    if (seq <= w.lastSeq) return;
    // A notice was lost: the attempt's stream is no longer complete; nothing of it is delivered from here.
    if (seq !== w.lastSeq + 1) return protocolBroken(w, out);
    w.lastSeq = seq;
  }
  w.silentTicks = 0;
  w.bytesSinceAck += estimateNoticeBytes(notice);
  switch (notice.type) {
    case 'watch_progress':
      onProgress(w, notice, out);
      break;
    case 'watch_events':
      onEvents(w, notice, out);
      break;
    case 'watch_ended':
      onEnded(w, notice, out);
      break;
    default:
      assertNever(notice, 'watch notice');
  }
}

function onProgress(w: Working, notice: WatchProgress, out: WatchOutput[]): void {
  // A progress past a batch whose last part never came breaks the contract: leave that replica.
  if (w.partial !== null && notice.through >= w.partial.op) return protocolBroken(w, out);
  w.attemptStarted = true;
  w.unservedTicks = 0;
  w.refusals = noRefusals(w.config.replicaCount);
  if (w.position === null) {
    w.position = notice.through;
    out.push({ type: 'deliver', batch: { kind: 'start', op: notice.through, events: noEvents } });
  } else if (notice.through >= w.position) {
    w.position = notice.through;
    out.push({ type: 'deliver', batch: { kind: 'progress', op: notice.through, events: noEvents } });
  }
  // (A progress below the position says nothing new: a resubscription starts at the position.)
  maybeAck(w, out, true);
}

function onEvents(w: Working, notice: WatchEvents, out: WatchOutput[]): void {
  // Every subscription opens with a progress; events before it have no known predecessor.
  if (!w.attemptStarted || w.position === null) return protocolBroken(w, out);
  w.unservedTicks = 0;
  if (notice.op <= w.position) {
    // Already delivered (a replica replaying from before the position): exactly once.
  } else if (w.partial !== null && w.partial.op !== notice.op) {
    return protocolBroken(w, out);
  } else {
    const events = w.partial === null ? notice.events : [...w.partial.events, ...notice.events];
    if (notice.more) {
      w.partial = Object.freeze({ op: notice.op, events });
    } else {
      w.partial = null;
      w.position = notice.op;
      out.push({ type: 'deliver', batch: { kind: 'events', op: notice.op, events } });
    }
  }
  maybeAck(w, out, false);
}

function onEnded(w: Working, notice: WatchEnded, out: WatchOutput[]): void {
  w.phase = 'waiting'; // the replica freed the attempt: nothing to cancel
  switch (notice.reason) {
    case 'compacted':
      return refused(w, notice, 'compacted', out);
    case 'future':
      // A confirmed position is one some replica committed: this one is behind and will catch up.
      if (w.position !== null) return moveOn(w, out, false, w.config.retryTicks);
      return refused(w, notice, 'future', out);
    case 'not_serving':
    case 'too_many':
    case 'idle':
      return moveOn(w, out, false, w.config.retryTicks);
    case 'lagging':
      return end(w, out, {
        code: 'lagging',
        message: `the watch of ${w.spec.path} fell too far behind (${notice.message}); watch again from op ${w.position ?? w.spec.fromOp ?? 'its start'}`,
        oldestOp: notice.oldestOp,
        currentOp: notice.currentOp,
      });
    case 'invalid':
      return end(w, out, { code: 'invalid', message: `the watch of ${w.spec.path} was refused: ${notice.message}`, oldestOp: notice.oldestOp, currentOp: notice.currentOp });
    default:
      return assertNever(notice.reason, 'watch end reason');
  }
}

/** A definitive answer from this replica; ends once every replica gave one in this round. */
function refused(w: Working, notice: WatchEnded, reason: Refusal['reason'], out: WatchOutput[]): void {
  const refusals = [...w.refusals];
  refusals[w.replica] = { reason, oldestOp: notice.oldestOp, currentOp: notice.currentOp };
  w.refusals = Object.freeze(refusals);
  if (refusals.some((refusal) => refusal === null)) return moveOn(w, out, false, 0);
  end(w, out, finalRefusal(w, refusals as readonly Refusal[], notice));
}

/**
 * Every replica refused: the most advanced replica's answer (the highest commit; a backup learns
 * commits after the primary, so the last answer may name an older one than the caller knows).
 */
function finalRefusal(w: Working, refusals: readonly Refusal[], last: WatchEnded): WatchError {
  let chosen: Refusal = { reason: last.reason === 'future' ? 'future' : 'compacted', oldestOp: last.oldestOp, currentOp: last.currentOp };
  for (const refusal of refusals) if (refusal.currentOp > chosen.currentOp) chosen = refusal;
  const from = w.position ?? w.spec.fromOp;
  const message =
    chosen.reason === 'compacted'
      ? `the watch of ${w.spec.path} cannot resume after op ${from ?? '(commit)'}: the replicas keep history only after op ${chosen.oldestOp} (commit ${chosen.currentOp}); read again and watch from there`
      : `the watch of ${w.spec.path} asked to start after op ${from ?? '(commit)'}, beyond every replica's commit (${chosen.currentOp})`;
  return { code: chosen.reason, message, oldestOp: chosen.oldestOp, currentOp: chosen.currentOp };
}

/**
 * The replica broke the message contract, or a notice of the attempt was lost (a seq gap):
 * leave it (cancelled) and resume at the next replica from the position, after `retryTicks`.
 */
function protocolBroken(w: Working, out: WatchOutput[]): void {
  moveOn(w, out, true, w.config.retryTicks);
}

// ---- time ----------------------------------------------------------------------------------

function onTick(w: Working, out: WatchOutput[]): void {
  if (w.phase === 'new') return;
  w.unservedTicks += 1;
  if (w.unservedTicks >= w.config.giveUpTicks) {
    cancelAttempt(w, out);
    const ticks = w.config.giveUpTicks;
    return end(w, out, { code: 'unavailable', message: `no replica served the watch of ${w.spec.path} for ${ticks} ticks`, oldestOp: null, currentOp: null });
  }
  if (w.phase === 'waiting') {
    w.waitTicks -= 1;
    if (w.waitTicks <= 0) subscribe(w, out);
    return;
  }
  w.silentTicks += 1;
  if (w.silentTicks >= w.config.silenceTicks) return moveOn(w, out, true, 0);
  // Events arriving steadily bring no progress; acknowledge what came at least every half
  // silence, so the replica never takes a busy, small-volume watcher for a gone one (idle).
  w.ticksSinceAck += 1;
  if (w.bytesSinceAck > 0 && w.ticksSinceAck >= Math.max(1, Math.floor(w.config.silenceTicks / 2))) maybeAck(w, out, true);
}

const noEvents: readonly WatchEvent[] = Object.freeze([]);

function noRefusals(count: number): readonly (Refusal | null)[] {
  return Object.freeze(new Array<Refusal | null>(count).fill(null));
}
