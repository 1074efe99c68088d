/**
 * Deliberately broken replica cores ("mutants") for mutation testing of the simulator: each is
 * a wrapper around the real `stepAll` that produces one well-known protocol bug. The simulator
 * (checkers after every step, liveness and linearizability at the end of a VOPR run) must
 * report a violation when a cluster runs a mutant; test/sim/mutants.test.ts measures how many
 * seeds each one needs.
 *
 * src/ is untouched: a mutant only rewrites what goes into or comes out of the real step
 * (inputs, effects, and the returned state). A mutant is a factory, because some keep state
 * for one cluster run: `make()` returns a fresh step function for each run.
 */

import { faultsTolerated, primaryOf } from '../../src/vr/config.ts';
import { promiseHeld } from '../../src/vr/context.ts';
import type { ReplicaEffect, ReplicaInput } from '../../src/vr/io.ts';
import { entryAt } from '../../src/vr/log.ts';
import type { DoViewChange, PeerMessage, Prepare, PrepareOk, ReadRoundOk } from '../../src/vr/messages.ts';
import type { ReplicaState } from '../../src/vr/state.ts';
import { applyEntry, type AppliedReply, type Machine } from '../../src/vr/state_machine.ts';
import { stepAll } from '../../src/vr/step.ts';
import type { WatchEvents } from '../../src/watch/messages.ts';
import type { StepFunction } from './cluster.ts';
import { Prng } from './prng.ts';
import type { WatchNoticeMutation } from './watchers.ts';

export type Mutant = {
  readonly name: string;
  /** The bug, in a sentence. */
  readonly description: string;
  /** The checker(s) expected to catch it. */
  readonly expectedCatch: string;
  /** A fresh step function for one cluster run. */
  make(): StepFunction;
};

function isNormalPrimary(state: ReplicaState): boolean {
  return state.status === 'normal' && primaryOf(state.view, state.config) === state.index;
}

function receivedPrepares(inputs: readonly ReplicaInput[]): Prepare[] {
  const prepares: Prepare[] = [];
  for (const input of inputs) if (input.type === 'receive' && input.message.type === 'prepare') prepares.push(input.message);
  return prepares;
}

function send(to: number, message: PeerMessage): ReplicaEffect {
  return { type: 'send', to, message };
}

function prepareOk(state: ReplicaState, view: number, op: number): PrepareOk {
  return { type: 'prepare_ok', epoch: state.epoch, view, replica: state.index, op };
}

// ---- 1. commit on f-1 acknowledgements ---------------------------------------------------

/**
 * Whenever the primary prepares an entry, it is fed (within the same step) a forged prepare_ok
 * for that op from one backup. With n = 2f+1 it then commits once f-1 real backups acknowledged
 * (n = 3: on its own copy alone). A committed entry that reached no other replica is lost when
 * the primary fails.
 */
export const commitOnFewerAcks: Mutant = {
  name: 'commit on f-1 acknowledgements',
  description: 'the primary counts one forged backup acknowledgement for every op it prepares',
  expectedCatch: 'committed_lost / committed_prefix (a later view lacks or replaces a committed op), linearizability',
  make: () => (index, state, inputs) => {
    let result = stepAll(state, inputs);
    let effects: ReplicaEffect[] = [...result.effects];
    // Repeat: the forged ack may free pipeline room, and the step then prepares more.
    for (let round = 0; round < 8; round++) {
      const s = result.state;
      if (!isNormalPrimary(s)) break;
      let op = 0;
      for (const effect of result.effects) {
        if (effect.type === 'send' && effect.message.type === 'prepare' && effect.message.view === s.view) op = Math.max(op, effect.message.op);
      }
      if (op === 0) break;
      const backup = (index + 1) % s.config.replicaCount;
      const forged: PrepareOk = { type: 'prepare_ok', epoch: s.epoch, view: s.view, replica: backup, op };
      result = stepAll(s, [{ type: 'receive', message: forged }]);
      effects = [...effects, ...result.effects];
    }
    return { state: result.state, effects };
  },
};

// ---- 2. reply before commit ----------------------------------------------------------------

/**
 * The replies a prepared entry will produce, computed on a shadow machine: the primary's
 * committed machine with the uncommitted entries up to `op` applied in order (pipelined
 * entries chain). Stateless: recomputed from the log, which holds every prepared entry.
 */
function shadowReplies(state: ReplicaState, op: number): AppliedReply[] {
  let machine: Machine = state.machine;
  let replies: AppliedReply[] = [];
  for (let at = state.commit + 1; at <= op; at++) {
    const entry = entryAt(state.log, at);
    if (entry === undefined) return [];
    replies = [];
    machine = applyEntry(machine, entry, state.config, replies);
  }
  return replies;
}

/**
 * `disguise`: name the primary's commit number as the reply's op instead of the entry's, so the
 * per-step reply check (a reply naming an op beyond the sender's commit) cannot see it and only
 * end-to-end checks (distinct replies, linearizability) can.
 */
function replyBeforeCommit(disguise: boolean): StepFunction {
  /** Requests already answered early, so re-sent prepares do not answer again. */
  const answered = new Set<string>();
  return (_index, state, inputs) => {
    const result = stepAll(state, inputs);
    const s = result.state;
    if (!isNormalPrimary(s)) return result;
    const early: ReplicaEffect[] = [];
    const prepared = new Set<number>();
    for (const effect of result.effects) {
      if (effect.type === 'send' && effect.message.type === 'prepare' && effect.message.op > s.commit) prepared.add(effect.message.op);
    }
    for (const op of [...prepared].sort((a, b) => a - b)) {
      for (const reply of shadowReplies(s, op)) {
        const key = `${reply.clientId}#${reply.requestNum}`;
        if (answered.has(key)) continue;
        answered.add(key);
        early.push({
          type: 'reply',
          clientId: reply.clientId,
          message: { type: 'reply', epoch: s.epoch, view: s.view, op: disguise ? s.commit : reply.op, clientId: reply.clientId, requestNum: reply.requestNum, body: reply.body },
        });
      }
    }
    // The real reply still follows at commit; the client ignores it (it is no longer waiting).
    return early.length === 0 ? result : { state: s, effects: [...result.effects, ...early] };
  };
}

export const replyBeforeCommitMutant: Mutant = {
  name: 'reply before commit',
  description: 'the primary answers a request as soon as it prepares its entry, from a shadow machine',
  expectedCatch: 'reply (a reply naming an op beyond the sender\'s commit)',
  make: () => replyBeforeCommit(false),
};

export const replyBeforeCommitDisguised: Mutant = {
  name: 'reply before commit (disguised op)',
  description: 'as above, but the reply names the primary\'s commit number, so only end-to-end checks can tell',
  expectedCatch: 'reply (two different replies to one request) or linearizability',
  make: () => replyBeforeCommit(true),
};

// ---- 3. forget the lastNormalView rule -----------------------------------------------------

/**
 * Literal version: after any step in which the replica entered normal status from view_change,
 * recovering or catching up, its lastNormalView is put back to what it was. In this core
 * lastNormalView < view in normal status means "catching up with the view", which the core's
 * own invariants (src/vr/invariants.ts) reject at the replica's next step.
 */
export const forgetLastNormalView: Mutant = {
  name: 'forget the lastNormalView rule',
  description: 'entering normal status (view change, recovery, catching up) leaves lastNormalView unchanged',
  expectedCatch: 'exception (the core\'s invariant: a normal replica with lastNormalView < view must be fetching the view\'s log)',
  make: () => (_index, state, inputs) => {
    const result = stepAll(state, inputs);
    const after = result.state;
    const catchingUp = state.status === 'normal' && state.lastNormalView < state.view;
    const entered = after.status === 'normal' && (state.status === 'view_change' || state.status === 'recovering' || catchingUp);
    if (!entered || after.lastNormalView === state.lastNormalView) return result;
    return { state: { ...after, lastNormalView: state.lastNormalView }, effects: result.effects };
  },
};

/**
 * The same bug where the core cannot see it: each replica keeps its true lastNormalView (so
 * the core's own bookkeeping stays consistent) but reports, in do_view_change, the value it
 * would hold if the rule were forgotten on the recovery and state-transfer (catching up)
 * paths: there it keeps the value it had before (0 after a restart). The new primary then
 * ranks an up-to-date log below a stale one.
 */
export const staleLastNormalViewReported: Mutant = {
  name: 'forget the lastNormalView rule (reported in do_view_change)',
  description: 'do_view_change carries a lastNormalView not updated on recovery and on catching up with a view',
  expectedCatch: 'committed_lost / committed_prefix (a view change picks a log missing committed ops), linearizability',
  make: () => {
    /** Per replica, lastNormalView as the buggy core would hold it. */
    const forgotten = new Map<number, number>();
    const lie = (index: number, message: DoViewChange): DoViewChange => ({ ...message, lastNormalView: Math.min(message.lastNormalView, forgotten.get(index) ?? 0) });
    return (index, state, inputs) => {
      let before = state;
      if (before.status === 'view_change') {
        // While changing views lastNormalView only feeds do_view_change: give it the stale value.
        const reported = Math.min(before.lastNormalView, forgotten.get(index) ?? 0);
        const own = before.viewChange.doViewChanges[index];
        const doViewChanges = own === null || own === undefined ? before.viewChange.doViewChanges : before.viewChange.doViewChanges.map((m, i) => (i === index && m !== null ? lie(index, m) : m));
        before = { ...before, lastNormalView: reported, viewChange: { ...before.viewChange, doViewChanges } };
      }
      const result = stepAll(before, inputs);
      const after = result.state;
      if (state.status === 'stopped') {
        forgotten.set(index, after.lastNormalView);
      } else if (after.lastNormalView > before.lastNormalView) {
        // Completing a view change (as its primary, or by start_view, possibly for a newer view
        // while normal) still sets it; recovering and catching up with a view "forget".
        const viaViewChange = state.status === 'view_change' || (state.status === 'normal' && after.view > state.view);
        if (viaViewChange) forgotten.set(index, after.lastNormalView);
      }
      const effects = result.effects.map((effect) =>
        effect.type === 'send' && effect.message.type === 'do_view_change' ? send(effect.to, lie(index, effect.message)) : effect,
      );
      return { state: after, effects };
    };
  },
};

/**
 * The opposite mistake, the regression fixed in bb043f0: a replica that joins a newer view by
 * catching up (it heard the view's primary but does not hold the view's log yet) claims the
 * view as its lastNormalView at once, and takes part as a full backup. Its log may lack ops
 * committed in a view it missed, yet it now outranks replicas that hold them.
 */
export const claimLastNormalViewWhenCatchingUp: Mutant = {
  name: 'claim lastNormalView when catching up (regression of bb043f0)',
  description: 'joining a newer view by catching up sets lastNormalView = view before the view\'s log has arrived',
  expectedCatch: 'committed_lost / exception (a later view change picks a short log)',
  make: () => (_index, state, inputs) => {
    const result = stepAll(state, inputs);
    const after = result.state;
    if (after.status !== 'normal' || after.lastNormalView >= after.view) return result;
    return { state: { ...after, lastNormalView: after.view }, effects: result.effects };
  },
};

// ---- 4. a recovering replica that acks prepares --------------------------------------------

/** While recovering, the replica answers every prepare with a prepare_ok for the prepare's op. */
export const recoveringAcks: Mutant = {
  name: 'a recovering replica that acks prepares',
  description: 'a replica in recovering status answers each prepare with prepare_ok for its op',
  expectedCatch: 'recovering_vote',
  make: () => (_index, state, inputs) => {
    const result = stepAll(state, inputs);
    if (state.status !== 'recovering') return result;
    const acks = receivedPrepares(inputs).map((prepare) => send(prepare.replica, prepareOk(state, prepare.view, prepare.op)));
    return acks.length === 0 ? result : { state: result.state, effects: [...result.effects, ...acks] };
  },
};

// ---- 5. a backup accepting a prepare with a gap --------------------------------------------

/**
 * A normal backup that receives a prepare beyond its op + 1 acknowledges that op (claiming the
 * entries in between, which it lacks) besides asking for state as the real core does.
 */
export const gapAck: Mutant = {
  name: 'a backup accepting a prepare with a gap',
  description: 'a backup acknowledges a prepare with op > its op + 1, claiming entries it lacks',
  expectedCatch: 'committed_lost / committed_prefix, exception, linearizability',
  make: () => (_index, state, inputs) => {
    const result = stepAll(state, inputs);
    const after = result.state;
    if (after.status !== 'normal' || state.status !== 'normal' || primaryOf(after.view, after.config) === after.index || after.view !== state.view) return result;
    // Only this bug: a durable replica still holds its messages until its promise is stored
    // (README rule 18) and a replica catching up with a view acknowledges nothing, or the
    // promise checker (cluster.ts) would catch the mutant first.
    if (!promiseHeld(after) || after.lastNormalView !== after.view) return result;
    // Still lacking the prepared op after the whole step: it arrived with a gap.
    const acks = receivedPrepares(inputs)
      .filter((prepare) => prepare.view === after.view && prepare.op > after.op)
      .map((prepare) => send(prepare.replica, prepareOk(after, prepare.view, prepare.op)));
    return acks.length === 0 ? result : { state: after, effects: [...result.effects, ...acks] };
  },
};

// ---- 6. leases (README rule 21) -------------------------------------------------------------

function isTick(inputs: readonly ReplicaInput[]): boolean {
  return inputs.some((input) => input.type === 'tick');
}

/** The primary's lease clock state with `change` applied, for one step. */
function withLeaseClock(state: ReplicaState, change: Partial<ReplicaState['primary']['leaseClock']>): ReplicaState {
  return { ...state, primary: { ...state.primary, leaseClock: { ...state.primary.leaseClock, ...change } } };
}

/**
 * The primary names, as a lease_clock entry's `through`, its commit number when it proposes
 * the entry instead of the one at the start of the interval the entry measured: renewals that
 * committed during the interval count ticks measured before they committed. (Done by setting
 * the interval's `through` to the commit number before every tick of a normal primary.)
 */
export const leaseThroughAtProposal: Mutant = {
  name: 'lease clock: through = commit at proposal',
  description: "a lease_clock entry covers renewals committed up to its proposal, counting for them ticks measured before they committed",
  expectedCatch: 'lease (never early: an expiry before ttlTicks passed since the renewal was first committed)',
  make: () => (_index, state, inputs) => {
    if (!isNormalPrimary(state) || !isTick(inputs) || state.primary.leaseClock.through === state.commit) return stepAll(state, inputs);
    return stepAll(withLeaseClock(state, { through: state.commit }), inputs);
  },
};

/**
 * A lease expires once ttlTicks − 1 ticks are counted, one tick early. Done at the primary,
 * whose entries every replica applies: when the tick about to be counted would bring the
 * nearest deadline within one tick, the primary counts one tick more, so the lease_clock entry
 * it proposes at once (the deadline reached) ends that lease with ttlTicks − 1 ticks counted.
 */
export const leaseExpiresOneTickEarly: Mutant = {
  name: 'lease expires one tick early',
  description: 'a lease expires at countedTicks >= ttlTicks − 1 (the primary adds one tick to the entry that would bring a lease to ttlTicks − 1)',
  expectedCatch: 'lease (never early), in groups that judge an expiry to the tick (one replica, leaseClockTicks 2)',
  make: () => (_index, state, inputs) => {
    if (!isNormalPrimary(state) || !isTick(inputs)) return stepAll(state, inputs);
    const clock = state.primary.leaseClock;
    const leases = state.machine.leases;
    const inFlight = clock.waiting && (clock.entryOp === 0 || state.commit < clock.entryOp);
    // This tick brings the count to clock + ticks + 1; one more reaches the nearest deadline.
    if (inFlight || leases.clock + clock.ticks + 2 !== leases.nextDeadline) return stepAll(state, inputs);
    return stepAll(withLeaseClock(state, { ticks: clock.ticks + 1 }), inputs);
  },
};

export const leaseMutants: readonly Mutant[] = [leaseThroughAtProposal, leaseExpiresOneTickEarly];

// ---- 7. reads without the log (README rule 22) ------------------------------------------------

/**
 * Whenever the primary starts a confirmation round with reads waiting, it is fed (within the
 * same step) forged read_round_ok messages from f backups for that round. It then answers reads
 * as soon as its commit covers them, without knowing it is still the primary: a primary cut off
 * from its backups keeps answering reads from a state a newer view has moved past.
 */
export const readsWithoutConfirmation: Mutant = {
  name: 'reads without confirmation',
  description: 'the primary counts forged read_round_ok messages from f backups for every round it starts',
  expectedCatch: 'linearizability (a deposed primary answers a read a completed write should have changed)',
  make: () => (index, state, inputs) => {
    let result = stepAll(state, inputs);
    const s = result.state;
    const reads = s.primary.reads;
    if (!isNormalPrimary(s) || reads.waiting.size === 0 || reads.round === 0) return result;
    const effects: ReplicaEffect[] = [...result.effects];
    for (let k = 1; k <= faultsTolerated(s.config); k++) {
      const backup = (index + k) % s.config.replicaCount;
      const forged: ReadRoundOk = { type: 'read_round_ok', epoch: s.epoch, view: s.view, replica: backup, round: reads.round };
      result = stepAll(result.state, [{ type: 'receive', message: forged }]);
      effects.push(...result.effects);
    }
    return { state: result.state, effects };
  },
};

/**
 * README rule 22's other condition dropped: before each step the primary's waiting reads have
 * their readIndex lowered to its commit, so a read is answered as soon as its round is
 * confirmed, at whatever the commit is. A new primary whose commit lags behind an op the
 * deposed primary committed and acknowledged then answers without that write.
 */
export const readsBeforeReadIndex: Mutant = {
  name: 'reads before their readIndex',
  description: 'a waiting read is answered once its round is confirmed, at the commit the primary has, not after the commit reaches the op it had when the read arrived',
  expectedCatch: "reply (a read's answer misses a write acknowledged before the read arrived), and linearizability",
  make: () => (_index, state, inputs) => {
    const reads = state.primary.reads;
    if (!isNormalPrimary(state) || reads.waiting.size === 0) return stepAll(state, inputs);
    const commit = state.commit;
    const waiting = reads.waiting.map((read) => (read.readIndex > commit ? { ...read, readIndex: commit } : read));
    return stepAll({ ...state, primary: { ...state.primary, reads: { ...reads, waiting } } }, inputs);
  },
};

export const mutants: readonly Mutant[] = [
  commitOnFewerAcks,
  replyBeforeCommitMutant,
  replyBeforeCommitDisguised,
  forgetLastNormalView,
  staleLastNormalViewReported,
  claimLastNormalViewWhenCatchingUp,
  recoveringAcks,
  gapAck,
  readsWithoutConfirmation,
  readsBeforeReadIndex,
];

// ---- watches: deliberately broken hubs -------------------------------------------------------

/**
 * A broken watch hub (issue 14): rewrites what a replica's hub sends to watchers (the glue's
 * notices, as they leave the replica), so src/watch/hub.ts stays untouched. The watch checker
 * (./watchers.ts) must catch it. `make()` returns a fresh rewriter for one run; its randomness
 * is its own seeded stream.
 */
export type WatchMutant = {
  readonly name: string;
  readonly description: string;
  readonly expectedCatch: string;
  make(): WatchNoticeMutation;
};

/** Now and then, a watch_events message is not sent (a hub that loses an event). */
export const watchDropsEvents: WatchMutant = {
  name: 'a hub that drops an event now and then',
  description: 'one watch_events message in 8 is never sent; later ones are',
  expectedCatch: 'watch (reliable: a later batch or progress skips a committed op that changed the path)',
  make: () => {
    const prng = new Prng(0x57a7c4);
    return (_replica, _to, notice) => (notice.type === 'watch_events' && prng.chance(1 / 8) ? [] : [notice]);
  },
};

/**
 * On a resumed subscription (one that opens at a fromOp), the hub also re-sends the last batch
 * it sent that watcher at or before fromOp, as if its cursor started one batch early. The
 * client machine drops it (it is at or below its position), so the application never sees
 * it: only the check of the hub's own stream can tell.
 */
export const watchReplaysAfterResume: WatchMutant = {
  name: 'a hub that re-delivers after resume',
  description: 'a subscription opening at fromOp first replays the last batch at or before fromOp',
  expectedCatch: 'watch (ordered, unique: events at or before the position, in the hub\'s stream)',
  make: () => {
    /** Per replica and watcher: the events messages sent, by op. */
    const sent = new Map<string, WatchEvents[]>();
    const opened = new Set<string>();
    return (replica, to, notice) => {
      const key = `${replica}|${to}`;
      if (notice.type === 'watch_events') {
        const list = sent.get(key) ?? [];
        list.push(notice);
        if (list.length > 64) list.shift();
        sent.set(key, list);
        return [notice];
      }
      if (notice.type !== 'watch_progress' || opened.has(notice.watchId)) return [notice];
      opened.add(notice.watchId);
      // The same watch's earlier attempt (ids `${watcher}.${watch}.${attempt}`).
      const watch = notice.watchId.slice(0, notice.watchId.lastIndexOf('.') + 1);
      const earlier = (sent.get(key) ?? []).filter((events) => events.watchId.startsWith(watch) && events.op <= notice.through && !events.more).at(-1);
      return earlier === undefined ? [notice] : [notice, { ...earlier, watchId: notice.watchId }];
    };
  },
};

/** A batch of several events goes out as two complete batches of the same op (not atomic). */
export const watchSplitsBatches: WatchMutant = {
  name: 'a hub that splits a batch',
  description: 'the events of one op, when several, are sent as two messages each marked complete (more: false)',
  expectedCatch: 'watch (atomic: a batch that is not the whole entry\'s matching changes)',
  make: () => (_replica, _to, notice) => {
    if (notice.type !== 'watch_events' || notice.more || notice.events.length < 2) return [notice];
    const half = Math.floor(notice.events.length / 2);
    return [
      { ...notice, events: notice.events.slice(0, half) },
      { ...notice, events: notice.events.slice(half) },
    ];
  },
};

/** A blob's value travels with one byte changed (values must equal the blob at the op). */
export const watchWrongValue: WatchMutant = {
  name: 'a hub that serves a wrong value',
  description: 'the first byte of every non-empty blob value in an event is incremented',
  expectedCatch: 'watch (values: an event whose value is not the blob\'s bytes at the op)',
  make: () => (_replica, _to, notice) => {
    if (notice.type !== 'watch_events') return [notice];
    const events = notice.events.map((event) => {
      const value = event.value;
      if (value === undefined || value === null || value.byteLength === 0) return event;
      const wrong = Uint8Array.from(value);
      wrong[0] = ((wrong[0] as number) + 1) & 0xff;
      return { ...event, value: wrong };
    });
    return [{ ...notice, events }];
  },
};

/** Progress one op ahead of what the hub knows (a bookmark the stream has not earned). */
export const watchProgressAhead: WatchMutant = {
  name: 'a hub whose progress runs ahead',
  description: 'every watch_progress after a subscription\'s first says through + 1',
  expectedCatch: 'watch (bookmarkable: progress beyond the committed history, or past an op that changed the path)',
  make: () => {
    const opened = new Set<string>();
    return (_replica, _to, notice) => {
      if (notice.type !== 'watch_progress') return [notice];
      if (!opened.has(notice.watchId)) {
        opened.add(notice.watchId);
        return [notice];
      }
      return [{ ...notice, through: notice.through + 1 }];
    };
  },
};

export const watchMutants: readonly WatchMutant[] = [watchDropsEvents, watchReplaysAfterResume, watchSplitsBatches, watchWrongValue, watchProgressAhead];
