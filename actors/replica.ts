/**
 * The replica actor: feeds its mailbox into the pure VR core (`stepAll`, one transition per
 * drained batch, DESIGN.md convention 5) and executes the effects in order. It never trusts
 * anything that arrives: the core validates every message and traces what it drops. A throw
 * from the core is an assertion (our bug): it crashes the worker, and the supervisor restarts
 * this replica in recovering status with a fresh nonce (VRR §4.3).
 */

import type { Actor, ActorContext } from '../runtime/actor.ts';
import type { ActorId, Envelope } from '../runtime/envelope.ts';
import { isPrimary } from '../src/vr/context.ts';
import { validateReplicaConfig, type ReplicaConfig } from '../src/vr/config.ts';
import type { ReplicaInput, StartMode } from '../src/vr/io.ts';
import type { ClientAnswer, ReplicaMessage } from '../src/vr/messages.ts';
import { initialReplicaState, type ReplicaState } from '../src/vr/state.ts';
import { stepAll } from '../src/vr/step.ts';
import { checkpointTerms } from '../src/vr/checkpoint.ts';
import type { CheckpointImage } from '../src/vr/messages.ts';
import type { Machine } from '../src/vr/state_machine.ts';
import { interpretEffects } from './interpret.ts';
import { isTick } from './messages.ts';

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
  /** Checkpoint images encoded on the offload pool, and attempts that failed. */
  readonly imagesEncoded: number;
  readonly imagesFailed: number;
};

/** Reply routes remembered at most (one per client session seen). */
const routesMax = 200_000;

/**
 * At most one checkpoint image is being encoded at a time, and a new one starts at most this
 * often: encoding walks the whole tree on this thread (only packing and checksumming move to
 * the pool), so it is rate-limited rather than run at every checkpoint.
 */
const checkpointEncodeIntervalMs = 1000;

const checkpointTask = new URL(`./checkpoint_task${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

export function createActor(context: ActorContext, init: unknown): Actor {
  const spec = init as ReplicaInit;
  const problem = validateReplicaConfig(spec.config);
  if (problem !== null) throw new RangeError(`replica ${context.self}: ${problem}`);
  if (spec.config.durable) throw new RangeError(`replica ${context.self}: durable storage is not available in this runtime yet`);
  let state = initialReplicaState(spec.config, spec.index, spec.seed);
  /** clientId -> the proxy that sent its latest request, so the reply goes back there. */
  const routes = new Map<string, ActorId>();
  let dropped = 0;

  const sinks = {
    send(to: number, message: ReplicaMessage): void {
      const peer = spec.replicas[to];
      if (peer !== undefined) context.send(peer, message);
    },
    reply(clientId: string, message: ClientAnswer): void {
      context.send(routes.get(clientId) ?? spec.defaultProxy, message);
    },
    persist(): void {
      throw new Error('persist effect without durable storage');
    },
    trace(trace: { event: string; detail?: unknown }): void {
      if (context.log.isLevelEnabled('debug')) context.log.debug({ ...trace.detail as object }, trace.event);
    },
  };

  // Checkpoint images encoded off this thread (VRR §5.1 state transfer and recovery ship them).
  let encoding = false;
  let lastEncodeMs = Number.NEGATIVE_INFINITY;
  let encodedFor: Machine | null = null;
  let imagesEncoded = 0;
  let imagesFailed = 0;

  const run = (inputs: readonly ReplicaInput[]): void => {
    if (inputs.length === 0) return;
    const result = stepAll(state, inputs);
    state = result.state;
    interpretEffects(result.effects, sinks);
    encodeCheckpointInBackground();
  };

  function encodeCheckpointInBackground(): void {
    const checkpoint = state.checkpoint;
    if (encoding || checkpoint.image !== null || checkpoint.machine === encodedFor || checkpoint.machine.appliedOp === 0) return;
    const now = performance.now();
    if (now - lastEncodeMs < checkpointEncodeIntervalMs) return;
    encoding = true;
    lastEncodeMs = now;
    encodedFor = checkpoint.machine;
    const terms = checkpointTerms(checkpoint.machine);
    context.offload.run<CheckpointImage>(checkpointTask, 'packCheckpointTerms', terms).then(
      (image) => {
        encoding = false;
        imagesEncoded += 1;
        run([{ type: 'checkpoint_encoded', image }]);
      },
      (error: unknown) => {
        encoding = false;
        imagesFailed += 1;
        context.log.warn({ error: String(error) }, 'checkpoint_offload_failed');
      },
    );
  }

  run([{ type: 'start', mode: spec.mode, nonce: spec.nonce }]);

  return {
    receive(batch: readonly Envelope[]) {
      const inputs: ReplicaInput[] = [];
      let ticked = false;
      for (const envelope of batch) {
        const msg = envelope.msg;
        if (isTick(msg)) {
          // Ticks that queued up while we were busy collapse into one: time is for timeouts,
          // and a burst of stale ticks would only fire them spuriously.
          if (!ticked) inputs.push({ type: 'tick' });
          ticked = true;
          continue;
        }
        if (typeof msg !== 'object' || msg === null) {
          dropped += 1;
          continue;
        }
        const message = msg as ReplicaMessage;
        if (message.type === 'request' && typeof message.clientId === 'string') remember(routes, message.clientId, envelope.from);
        // The core validates shape, epoch and sender, and traces what it drops.
        inputs.push({ type: 'receive', message });
      }
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
      imagesFailed,
    }),
    inspect: () => ({
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
      heapUsedBytes: process.memoryUsage().heapUsed,
    }),
  };
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
