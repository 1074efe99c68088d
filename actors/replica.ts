/**
 * The replica actor: feeds its mailbox into the pure VR core (`stepAll`, one transition per
 * drained batch, DESIGN.md convention 5) and executes the effects in order. It never trusts
 * anything that arrives: the core validates every message and traces what it drops. A throw
 * from the core is an assertion (our bug): it crashes the worker, and the supervisor restarts
 * this replica in recovering status with a fresh nonce (VRR §4.3).
 *
 * The work is done by `createReplica`, the glue between envelopes and the core, written against
 * `ReplicaPorts` rather than the runtime: `createActor` gives it the actor context, and the
 * simulator (test/sim/cluster.ts) gives it its seeded network, storage and clock, so the seeds
 * exercise the same glue the product runs.
 */

import { setAutoFreeze } from 'immer';
import { transferWithAnswer, wholeBuffer, type Actor, type ActorContext } from '../runtime/actor.ts';
import type { ActorId, Envelope } from '../runtime/envelope.ts';
import { isPrimary } from '../src/vr/context.ts';
import { validateReplicaConfig, type ReplicaConfig } from '../src/vr/config.ts';
import type { PersistRecord, ReplicaInput, StartMode, StepResult, StoredState, TraceEvent } from '../src/vr/io.ts';
import type { ClientAnswer, ReplicaMessage } from '../src/vr/messages.ts';
import { initialReplicaState, type ReplicaState } from '../src/vr/state.ts';
import { stepAll } from '../src/vr/step.ts';
import { validateMessage } from '../src/vr/validate.ts';
import { CheckpointWriter } from '../src/vr/checkpoint_writer.ts';
import type { CheckpointImage } from '../src/vr/messages.ts';
import type { Machine } from '../src/vr/state_machine.ts';
import { interpretEffects, type EffectSinks } from './interpret.ts';
import { isTick, tickCount } from './messages.ts';
import { defaultWatchHubLimits, WatchHub, type WatchHubLimits } from '../src/watch/hub.ts';
import { watchRequestTypes } from '../src/watch/messages.ts';
import type { StorageCounters } from './storage/replica_store.ts';

export type ReplicaInit = {
  readonly ns: string;
  readonly index: number;
  readonly config: ReplicaConfig;
  /** Actor ids of the group's replicas, by index (this one included). */
  readonly replicas: readonly ActorId[];
  /** Where replies go for a client whose request this replica has not seen (e.g. after a restart). */
  readonly defaultProxy: ActorId;
  readonly mode: StartMode;
  readonly nonce: number;
  readonly seed: number;
  /**
   * Durable mode (`config.durable`): the replica's own directory and the node it belongs to
   * (actors/storage/replica_store.ts). What the directory holds decides how the replica starts:
   * intact storage resumes (`restart`, README rule 18); empty storage starts `fresh` only when
   * `mode` says so (a brand-new group), otherwise recovers; damaged storage recovers.
   */
  readonly storage?: { readonly dir: string; readonly node: string };
  /** Limits of the replica's watch hub (src/watch/hub.ts); absent: the defaults. */
  readonly watch?: WatchHubLimits;
};

export type ReplicaStatusView = {
  readonly role: 'primary' | 'backup';
  readonly ns: string;
  readonly index: number;
  readonly status: ReplicaState['status'];
  readonly view: number;
  readonly lastNormalView: number;
  readonly op: number;
  readonly commit: number;
  readonly startedAs: StartMode;
  readonly dropped: number;
  readonly checkpointOp: number;
  /** Checkpoint images written in slices on this thread; of them, finished after their checkpoint moved on. */
  readonly imagesEncoded: number;
  readonly imagesStale: number;
  /** The longest slice of image writing so far, in ms (GC pauses inside it included). */
  readonly imageSliceMsMax: number;
  /** Durable mode: the store's counters (fsyncs, entries, ...) and whether its disk works. */
  readonly storage?: StorageCounters;
  /** Watches this replica serves, and its event history (src/watch/hub.ts). */
  readonly watches: number;
  readonly watchHistoryOps: number;
  readonly watchHistoryBytes: number;
  /** Live leases, their ephemeral nodes, and the lease clock (ticks committed) in this replica's machine. */
  readonly leases: number;
  readonly ephemeralNodes: number;
  readonly leaseClock: number;
  /** Client sessions in this replica's client table. Absent while a durable replica is down. */
  readonly clients?: number;
  /** Bytes of the checkpoint image this replica holds (0 before one is encoded). */
  readonly checkpointImageBytes?: number;
  /** Protocol events since this actor started (the node's metrics, src/node/metrics.ts). */
  readonly events?: ReplicaEvents;
};

/**
 * Counts of the protocol's lifecycle events as this replica saw them, from its traces, and the
 * durations of its latest view changes. Counts start at zero when the actor starts: the node
 * turns them into counters that survive a worker restart.
 */
export type ReplicaEvents = {
  /** View changes this replica started or joined (`view_change_started`, VRR §4.2). */
  readonly viewChanges: number;
  /** Views this replica started as the new primary (`view_started`): leader changes. */
  readonly viewsStarted: number;
  /** Recoveries completed (`recovered`, VRR §4.3). */
  readonly recoveries: number;
  /** State transfers asked for (`get_state_sent`, VRR §5.2). */
  readonly stateTransfers: number;
  /** View changes that ended with this replica in normal status again. */
  readonly viewChangesDone: number;
  /** Milliseconds each of the latest `viewChangeDurationsKept` of them took, oldest first. */
  readonly viewChangeMs: readonly number[];
  /** Log entries applied, and the requests they held (their ratio: the batch size, entries per prepare). */
  readonly entriesApplied?: number;
  readonly requestsApplied?: number;
  /** Leases that expired in entries this replica applied (src/tree/leases.ts expiredTotal). */
  readonly leaseExpiries?: number;
  /** Watches this replica ended because their watcher lagged behind the history (src/watch/hub.ts). */
  readonly watchesLagging?: number;
};

/** View change durations kept for the node to read: more than a scrape interval ever sees. */
export const viewChangeDurationsKept = 32;

/** The last (or only) tick of a timer message, as a core input. */
const tickInput: ReplicaInput = { type: 'tick' };

/** Reply routes remembered at most (one per client session seen). */
const routesMax = 200_000;

/**
 * Checkpoint images are written on the replica's own thread, a slice at a time
 * (src/vr/checkpoint_writer.ts), one at a time: a new one starts at most this often, and no
 * sooner than its predecessor's slices over `checkpointEncodeShare`, so that in the long run
 * images take at most that share of the thread (a node checkpoints every 16 entries, far more
 * often than large images can be written).
 */
const checkpointEncodeIntervalMs = 1000;
const checkpointEncodeShare = 0.05;
/** A slice stops once it has taken this long (the clock is read every `checkpointStepsPerCheck` steps). */
const checkpointSliceMs = 2;
const checkpointStepsPerCheck = 4;
/** And after this many steps whatever the clock says (the simulator's clock stands still within a step). */
const checkpointSliceStepsMax = 256;
/**
 * While an image is being written, its slices take at most this share of the thread: after a
 * slice of d ms the next one waits until d / share ms after it began.
 */
const checkpointWriteShare = 0.25;

/**
 * What the replica's glue needs from whatever hosts it. The actor runtime supplies it from its
 * ActorContext (`createActor` below); the simulator (test/sim/cluster.ts) from its seeded
 * network, its simulated storage and its own clock, so the code that turns envelopes into
 * inputs and effects into envelopes is the same in production and under the simulator's seeds
 * (TigerBeetle's replica is built the same way over a message bus and storage).
 */
export type ReplicaPorts = {
  /** Queues an envelope for another actor (ActorContext.send). */
  send(to: ActorId, msg: unknown): void;
  /** Durable mode: write `record`; once stored, the host calls `input([{ type: 'persisted', generation, op }])`. */
  persist(record: PersistRecord, generation: number, op: number): void;
  /** A trace effect of the core, with the view the replica is in once the step is done. */
  trace(trace: TraceEvent, view: number): void;
  /** A checkpoint image this replica finished writing, once the core was handed it (a durable store writes it to disk, if newer than its own). */
  imageWritten?(image: CheckpointImage): void;
  /** Milliseconds since any fixed origin: the pacing of checkpoint writing and view-change timing read it. */
  nowMs(): number;
};

/** Steps the core; `stepAll` unless a test substitutes its own (a mutant, or a wrapper that checks every transition). */
export type ReplicaStep = (state: ReplicaState, inputs: readonly ReplicaInput[]) => StepResult<ReplicaState>;

export type ReplicaGlueOptions = {
  /** Durable mode: what the replica reloads before recovering (a restart in `recovering` mode). */
  readonly stored?: StoredState;
  readonly step?: ReplicaStep;
};

export type ReplicaInspectView = {
  readonly ns: string;
  readonly index: number;
  readonly status: ReplicaState['status'];
  readonly view: number;
  readonly op: number;
  readonly commit: number;
  readonly globalMinAccept: number;
  readonly logStart: number;
  readonly logEntries: number;
  readonly clients: number;
  readonly checkpointOp: number;
  readonly checkpointImageBytes: number;
  readonly pending: number;
  readonly inProgress: number;
  readonly routes: number;
};

/** One replica's glue: its state, the envelopes it takes, the inputs its host hands it. */
export type ReplicaGlue = {
  /** The replica's current state. */
  readonly state: ReplicaState;
  /** A batch of envelopes from the mailbox, oldest first (one transition for the batch). */
  receive(batch: readonly Envelope[]): void;
  /** Inputs from the host itself (`persisted`), as one transition. */
  input(inputs: readonly ReplicaInput[]): void;
  status(): ReplicaStatusView;
  inspect(): ReplicaInspectView;
};

/**
 * The replica's glue, shared by the actor and the simulator: starts the replica (the `start`
 * input runs before this returns), turns envelopes into core inputs (ticks collapsed, reply
 * routes remembered), runs one `stepAll` per batch and executes the effects in order through
 * `ports` (actors/interpret.ts), and keeps checkpoint images encoding in the background.
 * A throw from the core propagates: it is our bug (the actor's worker crashes, the simulator
 * reports a violation); the state stays as it was before the throwing step.
 */
export function createReplica(ports: ReplicaPorts, spec: ReplicaInit, options: ReplicaGlueOptions = {}): ReplicaGlue {
  const step: ReplicaStep = options.step ?? stepAll;
  let state = initialReplicaState(spec.config, spec.index, spec.seed);
  /** clientId -> the proxy that sent its latest request, so the reply goes back there. */
  const routes = new Map<string, ActorId>();
  let dropped = 0;
  const events = { viewChanges: 0, viewsStarted: 0, recoveries: 0, stateTransfers: 0, viewChangesDone: 0, entriesApplied: 0, requestsApplied: 0 };
  const viewChangeMs: number[] = [];
  /** When (nowMs) the view change in progress began: normal status left for view_change. */
  let viewChangeSince: number | null = null;
  // Watches (issue 14): fed every applied entry, served up to this replica's commit.
  const hub = new WatchHub(spec.watch ?? defaultWatchHubLimits, spec.config.treeLimits);

  const sinks: EffectSinks = {
    applied(effect): void {
      hub.applied(effect.op, effect.before, effect.ops, effect.after);
      events.entriesApplied += 1;
      events.requestsApplied += effect.requests;
    },
    send(to: number, message: ReplicaMessage): void {
      const peer = spec.replicas[to];
      if (peer !== undefined) ports.send(peer, message);
    },
    reply(clientId: string, message: ClientAnswer): void {
      ports.send(routes.get(clientId) ?? spec.defaultProxy, message);
    },
    persist(record: PersistRecord, generation: number, op: number): void {
      ports.persist(record, generation, op);
    },
    trace(trace: TraceEvent): void {
      countEvent(trace.event);
      ports.trace(trace, state.view);
    },
  };

  function countEvent(event: string): void {
    if (event === 'view_change_started') events.viewChanges += 1;
    else if (event === 'view_started') events.viewsStarted += 1;
    else if (event === 'recovered') events.recoveries += 1;
    else if (event === 'get_state_sent') events.stateTransfers += 1;
  }

  /** Times a view change from the step that leaves normal status to the one that returns to it. */
  function timeViewChange(before: ReplicaState['status']): void {
    if (before === 'normal' && state.status === 'view_change') viewChangeSince = ports.nowMs();
    else if (state.status === 'normal' && viewChangeSince !== null) {
      viewChangeMs.push(ports.nowMs() - viewChangeSince);
      if (viewChangeMs.length > viewChangeDurationsKept) viewChangeMs.shift();
      events.viewChangesDone += 1;
      viewChangeSince = null;
    }
  }

  // Checkpoint images written ahead of need (VRR §5.1 state transfer and recovery ship them).
  let writer: CheckpointWriter | null = null;
  /** Monotonic ms before which no new image is started, and before which the next slice waits. */
  let nextImageAtMs = Number.NEGATIVE_INFINITY;
  let nextSliceAtMs = Number.NEGATIVE_INFINITY;
  let writeStartedAtMs = 0;
  let writeSpentMs = 0;
  let writtenFor: Machine | null = null;
  let imagesEncoded = 0;
  let imagesStale = 0;
  let imageSliceMsMax = 0;

  const stepWith = (inputs: readonly ReplicaInput[]): void => {
    const before = state.status;
    const result = step(state, inputs);
    state = result.state;
    if (state.status !== before) timeViewChange(before);
    interpretEffects(result.effects, sinks);
  };

  const run = (inputs: readonly ReplicaInput[]): void => {
    if (inputs.length > 0) {
      stepWith(inputs);
      const image = writeCheckpointInBackground();
      if (image !== null) {
        stepWith([{ type: 'checkpoint_encoded', image }]);
        ports.imageWritten?.(image);
      }
    }
    // After the effects: replies leave before the events of the same entries.
    hub.committed(state.commit, state.op, state.status === 'normal' || state.status === 'view_change');
    for (const output of hub.drain()) ports.send(output.to, output.notice);
  };

  /**
   * Writes the current checkpoint's image ahead of need, so that a suffix that must carry it
   * (a view change, a lagging replica: src/vr/suffix.ts) finds it ready, and a durable replica's
   * store can write it (its log is cut only behind a written checkpoint). One slice per batch
   * at most, each ~`checkpointSliceMs`, paced to `checkpointWriteShare` of the thread: with the
   * image built in one go, 100,000 sessions stopped the thread for 100-200 ms per image. A write
   * is never abandoned: the image is of the checkpoint it started from.
   * None is started on an in-memory primary in normal status: it is the busiest thread of the
   * group, and the backups keep images ready; a primary that needs one encodes it then (one
   * begun as a backup is finished). Returns a finished image for the caller to hand to the core.
   */
  function writeCheckpointInBackground(): CheckpointImage | null {
    if (writer === null) {
      // Nothing to write is the common case of a batch: decided before the clock is read.
      const checkpoint = state.checkpoint;
      if (checkpoint.image !== null || checkpoint.machine.appliedOp === 0 || checkpoint.machine === writtenFor) return null;
      if (!state.config.durable && state.status === 'normal' && isPrimary(state)) return null;
      const startAt = ports.nowMs();
      if (startAt < nextImageAtMs) return null;
      writer = new CheckpointWriter(checkpoint.machine);
      writeStartedAtMs = startAt;
      writeSpentMs = 0;
      nextSliceAtMs = startAt;
    }
    const now = ports.nowMs();
    if (now < nextSliceAtMs) return null;
    const { image, elapsed } = writeSlice(writer, now, ports.nowMs);
    imageSliceMsMax = Math.max(imageSliceMsMax, elapsed);
    writeSpentMs += elapsed;
    nextSliceAtMs = now + elapsed / checkpointWriteShare;
    if (image === null) return null;
    // Finished, even if its checkpoint moved on meanwhile (the core then ignores it, but a
    // durable store still cuts its log behind it). The next one waits its turn: in the long run
    // images take at most `checkpointEncodeShare` of the thread.
    writtenFor = writer.machine;
    if (writer.machine !== state.checkpoint.machine) imagesStale += 1;
    writer = null;
    imagesEncoded += 1;
    nextImageAtMs = writeStartedAtMs + Math.max(checkpointEncodeIntervalMs, writeSpentMs / checkpointEncodeShare);
    return image;
  }

  const watchCounts = (): Pick<ReplicaStatusView, 'watches' | 'watchHistoryOps' | 'watchHistoryBytes'> => {
    const stats = hub.stats();
    return { watches: stats.watches, watchHistoryOps: stats.historyOps, watchHistoryBytes: stats.historyBytes };
  };

  run([options.stored === undefined ? { type: 'start', mode: spec.mode, nonce: spec.nonce } : { type: 'start', mode: spec.mode, nonce: spec.nonce, stored: options.stored }]);

  return {
    get state() {
      return state;
    },
    receive(batch) {
      const inputs: ReplicaInput[] = [];
      let ticked = false;
      for (const envelope of batch) {
        const msg = envelope.msg;
        if (isTick(msg)) {
          // Ticks that queued up while we were busy collapse into one message: time is for
          // timeouts, and a burst of stale ticks would only fire them spuriously. One message
          // may stand for several ticks (the timer's `ticksPerWakeup`): each is its own input,
          // all in this one transition, each saying how many of the message follow it (the
          // lease clock begins intervals only at a message's last tick, src/vr/README.md rule 21).
          if (!ticked) {
            const count = tickCount(msg);
            for (let i = 0; i < count; i++) {
              const following = count - 1 - i;
              inputs.push(following === 0 ? tickInput : { type: 'tick', following });
              hub.tick();
            }
          }
          ticked = true;
          continue;
        }
        if (typeof msg !== 'object' || msg === null) {
          dropped += 1;
          continue;
        }
        // Watch requests are the hub's, which validates them; the core never sees them.
        if (watchRequestTypes.has((msg as { type?: unknown }).type as string)) {
          hub.receive(envelope.from, msg);
          continue;
        }
        const message = msg as ReplicaMessage;
        // Only a well-formed request names a route: a malformed one carrying a real session's
        // client id must not send that session's replies elsewhere (the core drops it anyway).
        // A request from the proxy its session already routes to changes nothing, so it is not
        // validated here a second time (the core's gate validates every message).
        if (message.type === 'request' && routes.get(message.clientId) !== envelope.from && validateMessage(message, spec.config, spec.index) === null) {
          remember(routes, message.clientId, envelope.from);
        }
        // The core validates shape, epoch and sender, and traces what it drops.
        inputs.push({ type: 'receive', message });
      }
      run(inputs);
    },
    input(inputs) {
      run(inputs);
    },
    status: (): ReplicaStatusView => ({
      role: isPrimary(state) ? 'primary' : 'backup',
      ns: spec.ns,
      index: spec.index,
      status: state.status,
      view: state.view,
      lastNormalView: state.lastNormalView,
      op: state.op,
      commit: state.commit,
      startedAs: spec.mode,
      dropped,
      checkpointOp: state.checkpoint.machine.appliedOp,
      imagesEncoded,
      imagesStale,
      imageSliceMsMax,
      ...watchCounts(),
      leases: state.machine.leases.size,
      ephemeralNodes: state.machine.leases.ephemeral.size,
      leaseClock: state.machine.leases.clock,
      clients: state.machine.clients.size,
      checkpointImageBytes: state.checkpoint.image?.snapshot.byteLength ?? 0,
      events: { ...events, viewChangeMs: [...viewChangeMs], leaseExpiries: state.machine.leases.expiredTotal, watchesLagging: hub.stats().ended['lagging'] ?? 0 },
    }),
    inspect: (): ReplicaInspectView => ({
      ns: spec.ns,
      index: spec.index,
      status: state.status,
      view: state.view,
      op: state.op,
      commit: state.commit,
      globalMinAccept: state.globalMinAccept,
      logStart: state.log.start,
      logEntries: state.op - state.log.start,
      clients: state.machine.clients.size,
      checkpointOp: state.checkpoint.machine.appliedOp,
      checkpointImageBytes: state.checkpoint.image?.snapshot.byteLength ?? 0,
      pending: state.primary.pending.size,
      inProgress: state.primary.inProgress.size,
      routes: routes.size,
    }),
  };
}

/** The replica actor: the glue over the runtime's context (mailbox batches, envelopes, pino). */
export function createActor(context: ActorContext, init: unknown): Actor {
  // In production immer does not freeze the core's states: the freeze walks every new value a
  // step stores, on every step, and no code relies on a state being frozen. It is a guard
  // against our own mutations, and it stays where those are looked for: the unit tests and the
  // simulator drive the same core (and this glue, `createReplica`) without this actor, with
  // autoFreeze on, so an accidental mutation still throws there. The setting is global to
  // immer in this worker, which hosts replicas only (src/node/layout.ts).
  setAutoFreeze(false);
  const spec = init as ReplicaInit;
  const problem = validateReplicaConfig(spec.config);
  if (problem !== null) throw new RangeError(`replica ${context.self}: ${problem}`);
  // A durable replica is the same glue over its store: actors/durable_replica.ts (layout picks it).
  if (spec.config.durable) throw new RangeError(`replica ${context.self}: a durable replica runs actors/durable_replica.ts`);
  const glue = createReplica(
    {
      send: (to, msg) => context.send(to, msg),
      persist(): void {
        throw new Error('persist effect without durable storage');
      },
      trace: (trace, view) => traceTo(context, trace, spec, view),
      nowMs: () => performance.now(),
    },
    spec,
  );
  return {
    receive: (batch) => glue.receive(batch),
    status: () => glue.status(),
    inspect: () => ({ ...glue.inspect(), heapUsedBytes: process.memoryUsage().heapUsed }),
    query: (request) => answerQuery(spec, glue, request),
  };
}

/** A control-plane question to a replica (Actor.query). */
export type ReplicaQuery = { readonly type: 'snapshot' } | { readonly type: 'applied' };

/** The answer to `snapshot`: the machine at the replica's commit, as a checkpoint image (a backup). */
export type ReplicaSnapshot = { readonly ns: string; readonly index: number; readonly status: ReplicaState['status']; readonly view: number; readonly image: CheckpointImage };

/** The answer to `applied`: how far the replica's machine is, without walking it (which replica to snapshot). */
export type ReplicaApplied = { readonly ns: string; readonly index: number; readonly status: ReplicaState['status']; readonly view: number; readonly appliedOp: number };

/**
 * Answers a control-plane question. `snapshot`: the machine holds exactly the committed ops
 * (VRR §4.1: a replica applies only what is committed), so its image is a consistent backup;
 * it is written here in slices (`writeImageInSlices`) while the replica goes on serving.
 * `applied`: the op that image would be at, read without walking anything, so a node asks all
 * its replicas of a namespace which is furthest and walks only that one.
 */
export async function answerQuery(spec: Pick<ReplicaInit, 'ns' | 'index'>, glue: ReplicaGlue | null, request: unknown, clock: SliceClock = realSliceClock): Promise<ReplicaSnapshot | ReplicaApplied> {
  const type = typeof request === 'object' && request !== null ? (request as { type?: unknown }).type : undefined;
  if (type !== 'snapshot' && type !== 'applied') throw new RangeError('unknown replica query');
  if (glue === null) throw new Error(`replica ${spec.ns}/r${spec.index} is down`);
  const state = glue.state;
  if (type === 'applied') return { ns: spec.ns, index: spec.index, status: state.status, view: state.view, appliedOp: state.machine.appliedOp };
  const image = await writeImageInSlices(state.machine, clock);
  // The image was written for this answer alone (its own buffer, exactly its size): given away.
  const buffer = wholeBuffer(image.snapshot);
  return transferWithAnswer({ ns: spec.ns, index: spec.index, status: state.status, view: state.view, image }, buffer === null ? [] : [buffer]);
}

/** The clock and the wait a sliced write runs on; the tests give their own. */
export type SliceClock = { nowMs(): number; pause(ms: number): Promise<void> };

const realSliceClock: SliceClock = {
  nowMs: () => performance.now(),
  pause: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * An image of `machine` written on this thread in slices of ~`checkpointSliceMs`, each followed
 * by a wait that leaves the thread to the replicas for the rest of `checkpointWriteShare`: the
 * same pace as a background image's. Walked in one go, a 50 MB namespace stopped its replicas
 * for 0.8-1.0 s. The machine is persistent, so the image is of the state asked for, however
 * far the replica has gone on meanwhile.
 */
export async function writeImageInSlices(machine: Machine, clock: SliceClock): Promise<CheckpointImage> {
  const writer = new CheckpointWriter(machine);
  for (;;) {
    const { image, elapsed } = writeSlice(writer, clock.nowMs(), clock.nowMs);
    if (image !== null) return image;
    await clock.pause(elapsed / checkpointWriteShare - elapsed);
  }
}

/**
 * One slice of a write begun at `began`: steps until ~`checkpointSliceMs` have passed or
 * `checkpointSliceStepsMax` steps were taken (the clock read every `checkpointStepsPerCheck`).
 * The image if the write finished, and the slice's time.
 */
function writeSlice(writer: CheckpointWriter, began: number, nowMs: () => number): { readonly image: CheckpointImage | null; readonly elapsed: number } {
  let image: CheckpointImage | null = null;
  let elapsed = 0;
  for (let steps = 0; image === null && steps < checkpointSliceStepsMax && elapsed < checkpointSliceMs; steps += checkpointStepsPerCheck) {
    image = writer.advance(checkpointStepsPerCheck);
    elapsed = nowMs() - began;
  }
  return { image, elapsed };
}

/**
 * The lifecycle events an operator looks for (issue 17): a view change starting, a new primary
 * (leader change), a state transfer, a recovery, a restart from storage. Each is one info line
 * naming the namespace, the replica and its view; they are rare (not per message), so info
 * costs nothing on the hot path. Every other trace stays at debug.
 */
const lifecycleEvents: ReadonlySet<string> = new Set(['view_change_started', 'view_started', 'catch_up_to_view', 'get_state_sent', 'recovered', 'restarted', 'reloaded', 'restart_without_promise_recovers']);

export function traceTo(context: ActorContext, trace: TraceEvent, replica: Pick<ReplicaInit, 'ns' | 'index'>, view: number): void {
  if (lifecycleEvents.has(trace.event)) context.log.info({ namespace: replica.ns, replica: replica.index, view, ...trace.detail }, trace.event);
  else if (context.log.isLevelEnabled('debug')) context.log.debug({ ...trace.detail }, trace.event);
}

function remember(routes: Map<string, ActorId>, clientId: string, from: ActorId): void {
  if (routes.get(clientId) === from) return;
  routes.delete(clientId);
  routes.set(clientId, from);
  if (routes.size > routesMax) {
    const oldest = routes.keys().next();
    if (oldest.done !== true) routes.delete(oldest.value);
  }
}
