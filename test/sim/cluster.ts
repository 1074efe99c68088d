/**
 * A deterministic, single-threaded simulated cluster: n replicas, k client processes, one
 * seeded network, one seed. It runs the product's code, not a stand-in for it:
 *
 * - each replica is the replica actor's glue (`createReplica`, actors/replica.ts) over the pure
 *   core, with the simulator as its ports: sends go onto the seeded network, persist effects
 *   into a per-replica SimStore (after a drawn write latency), checkpoint images are written in
 *   slices by the glue itself, and the clock that paces those slices counts ticks;
 * - each client process (`c0`, `c1`, ...) is a session host (`hostStepAll`, src/client/host.ts,
 *   the pool the proxy actor and the client library run) serving one namespace with client
 *   ids `c0.1`, `c0.2`, ...; replies find their way back by the route the replica remembered
 *   from the request's envelope, as in the product.
 *
 * Time advances in ticks. In each tick:
 *   1. finished writes are handed to their replicas;
 *   2. the network hands over the messages due; all those due for one replica are given to it
 *      as ONE batch of envelopes (one `stepAll`, so the primary batches them into one log
 *      entry); a replica that is stopped or recovering gets them one at a time instead, so the
 *      checkers can tell exactly what it sent while it had no state;
 *   3. answers due for a client process are fed to its host as one batch;
 *   4. every running replica and every client process gets a tick;
 *   5. the workload generator may start a call on each client process with a free session.
 * After every replica step the checkers (./checkers.ts) run; a step that throws is recorded as
 * a violation, never allowed to crash the simulator. Forged messages (./byzantine.ts) enter the
 * network from the node `forgerNode` through `injectForged`; a step given a malformed one that
 * does not drop it as malformed is a `forged_accepted` violation.
 *
 * Every call is recorded (client, op, call tick, return tick, result) for the linearizability
 * check. Besides ticks, calls and returns get a strictly increasing event sequence number: it
 * orders a return before any later call exactly as the simulation ran them.
 */

import { assertNever } from '../../src/base/assert.ts';
import type { CallOutcome } from '../../src/client/io.ts';
import { defaultClientConfig, type ClientConfig } from '../../src/client/config.ts';
import { hostStats, hostServes, hostStepAll, initialHostState, type HostEffect, type HostInput, type HostState } from '../../src/client/host.ts';
import type { OpOutcome, OpResult, SimpleOp, TreeOp } from '../../src/tree/ops.ts';
import type { NodeType } from '../../src/tree/node_type.ts';
import { makeReplicaConfig, primaryOf, type ReplicaConfig } from '../../src/vr/config.ts';
import type { ReplicaEffect, ReplicaInput, StartMode, StepResult, StoredState, TraceEvent } from '../../src/vr/io.ts';
import type { ClientAnswer, PeerMessageType, ReplicaMessage } from '../../src/vr/messages.ts';
import { initialReplicaState, type ReplicaState } from '../../src/vr/state.ts';
import { stepAll } from '../../src/vr/step.ts';
import { createReplica, type ReplicaGlue, type ReplicaStep } from '../../actors/replica.ts';
import type { ActorId, Envelope } from '../../runtime/envelope.ts';
import { SimStore, type StorageDamageKind } from './storage.ts';
import type { PersistRecord } from '../../src/vr/io.ts';
import type { ForgeryKind } from './byzantine.ts';
import { Checkers, type Violation } from './checkers.ts';
import { PENDING, type Operation } from './linearizability.ts';
import { Network, reliableNetwork, type NetworkFaults, type NodeId } from './network.ts';
import { Prng } from './prng.ts';
import { canonical, isReadOnly } from './tree_model.ts';
import { WatchSim, type WatchNoticeMutation, type WatchSimOptions } from './watchers.ts';
import { LeaseSim, type LeaseSimOptions } from './leases.ts';

/**
 * How the cluster steps replica `index`: the real core (`stepAll`) unless a test substitutes
 * its own, e.g. a deliberately broken core wrapping it (test/sim/mutants.ts).
 */
export type StepFunction = (index: number, state: ReplicaState, inputs: readonly ReplicaInput[]) => StepResult<ReplicaState>;

/** What travels on the simulated network: to a replica a ReplicaMessage, to a client an answer. */
export type SimMessage = ReplicaMessage | ClientAnswer;

// ---- workload ------------------------------------------------------------------------------

export type WorkloadOptions = {
  /** Per tick, the probability that a client process with a free session starts a call. */
  readonly opProbability: number;
  /** Top-level components `/k0` .. `/k{n-1}`. */
  readonly components: number;
  /** Probability that a call is a multi_cas (over paths of one component). */
  readonly multiCasProbability: number;
  /** Values are 0..valueBytesMax bytes, each in 0..valueAlphabet-1 (small: equal values recur). */
  readonly valueBytesMax: number;
  readonly valueAlphabet: number;
};

export const defaultWorkload: WorkloadOptions = {
  opProbability: 0.2,
  components: 6,
  multiCasProbability: 0.08,
  valueBytesMax: 3,
  valueAlphabet: 4,
};

const nodeTypes: readonly NodeType[] = ['directory', 'blob', 'queue', 'set'];
const children: readonly string[] = ['x', 'y'];

/**
 * Random tree ops over a small set of paths: `/kN` and `/kN/x`, `/kN/y`. No op touches the
 * root or two components, so the linearizability check can split the history by component.
 * Multi_cas guards use versions seen in earlier results, so some of them succeed.
 */
export class WorkloadGenerator {
  readonly #prng: Prng;
  readonly options: WorkloadOptions;
  /** Versions seen in results, by path. */
  readonly #versions = new Map<string, number>();

  constructor(prng: Prng, options: WorkloadOptions = defaultWorkload) {
    this.#prng = prng;
    this.options = options;
  }

  #component(): number {
    return this.#prng.int(this.options.components);
  }

  #path(component: number): string {
    const top = `/k${component}`;
    return this.#prng.chance(0.5) ? top : `${top}/${this.#prng.pick(children)}`;
  }

  #value(): Uint8Array {
    const p = this.#prng;
    const out = new Uint8Array(p.int(this.options.valueBytesMax + 1));
    for (let i = 0; i < out.length; i++) out[i] = p.int(this.options.valueAlphabet);
    return out;
  }

  #simple(component: number): SimpleOp {
    const p = this.#prng;
    const path = this.#path(component);
    const roll = p.int(100);
    if (roll < 14) return { type: 'create', path, nodeType: p.pick(nodeTypes) };
    if (roll < 19) return { type: 'delete', path };
    if (roll < 30) return { type: 'blob_put', path, value: this.#value() };
    if (roll < 37) return { type: 'blob_get', path };
    if (roll < 46) return { type: 'queue_push', path, value: this.#value() };
    if (roll < 52) return { type: 'queue_pop', path };
    if (roll < 55) return { type: 'queue_front', path };
    if (roll < 58) return { type: 'queue_len', path };
    if (roll < 66) return { type: 'set_insert', path, value: this.#value() };
    if (roll < 71) return { type: 'set_remove', path, value: this.#value() };
    if (roll < 76) return { type: 'set_contains', path, value: this.#value() };
    if (roll < 78) return { type: 'set_intersection', path1: `/k${component}/x`, path2: `/k${component}/y` };
    if (roll < 85) return { type: 'stat', path };
    return { type: 'list', path: `/k${component}`, recursive: p.chance(0.3) };
  }

  next(): TreeOp {
    const p = this.#prng;
    const component = this.#component();
    if (!p.chance(this.options.multiCasProbability)) return this.#simple(component);
    const guards = [];
    const guardCount = p.int(3);
    for (let i = 0; i < guardCount; i++) {
      const path = this.#path(component);
      const seen = this.#versions.get(path);
      guards.push({ path, version: seen !== undefined && p.chance(0.8) ? seen : p.int(4) });
    }
    const ops: SimpleOp[] = [];
    const opCount = 1 + p.int(3);
    for (let i = 0; i < opCount; i++) ops.push(this.#simple(component));
    return { type: 'multi_cas', guards, ops };
  }

  /** Learns versions from a completed call, for later guards. */
  observe(op: TreeOp, outcome: OpOutcome): void {
    if (op.type === 'multi_cas') {
      if (outcome.type !== 'txn') return;
      outcome.results.forEach((result, i) => {
        const inner = op.ops[i];
        if (inner !== undefined) this.#learn(inner, result);
      });
      return;
    }
    if (op.type === 'lease_grant' || op.type === 'lease_keepalive' || op.type === 'lease_revoke') return;
    if (outcome.type !== 'error') this.#learn(op, outcome);
  }

  #learn(op: SimpleOp, result: OpResult): void {
    if (result.type === 'list') {
      for (const entry of result.entries) this.#versions.set(entry.path, entry.version);
    }
    if ('version' in result && 'path' in op) {
      if (op.type === 'delete') this.#versions.delete(op.path);
      else this.#versions.set(op.path, result.version);
    }
  }
}

// ---- history -------------------------------------------------------------------------------

export type CallSource = 'workload' | 'test' | 'probe' | 'lease';

/** One call: a handle for tests, and a history record. */
export type CallRecord = {
  readonly clientId: string;
  readonly callId: number;
  readonly op: TreeOp;
  readonly source: CallSource;
  readonly callTick: number;
  /** Event sequence number of the call (strictly increasing over calls and returns). */
  readonly callSeq: number;
  result: CallOutcome | null;
  returnTick: number | null;
  returnSeq: number | null;
};

/**
 * The history for the linearizability checker: done calls with their outcome; calls that may or
 * may not have run (no answer, a timeout, stale_request, and any answer saying `executed` true
 * or 'maybe') pending; calls certainly not executed dropped.
 */
export function checkerHistory(records: readonly CallRecord[]): Operation<TreeOp, OpOutcome>[] {
  const history: Operation<TreeOp, OpOutcome>[] = [];
  const pending = (record: CallRecord): void => {
    // May or may not have taken effect. A pending read changes nothing: dropping it is exact.
    if (!isReadOnly(record.op)) history.push({ clientId: record.clientId, input: record.op, call: record.callSeq, ret: Infinity, output: PENDING });
  };
  for (const record of records) {
    const result = record.result;
    if (result === null) {
      pending(record);
      continue;
    }
    switch (result.type) {
      case 'done':
        history.push({ clientId: record.clientId, input: record.op, call: record.callSeq, ret: record.returnSeq as number, output: result.outcome });
        break;
      case 'timeout':
      case 'stale_request':
        pending(record);
        break;
      case 'session_expired':
        // 'maybe': an earlier attempt was sent and may have run before the session was evicted.
        if (result.executed === 'maybe') pending(record);
        break;
      case 'refused':
        // Executed (true) with an answer we never saw is as good as pending: its outcome is unknown.
        if (result.executed !== false) pending(record);
        break;
      case 'rejected':
      case 'overloaded':
      case 'unknown_namespace':
      case 'invalid_call':
        // Certainly not executed.
        break;
      default:
        assertNever(result, 'call outcome');
    }
  }
  return history;
}

// ---- trace ---------------------------------------------------------------------------------

export type TraceLine = {
  /** Order of recording, across all trace rings. */
  readonly seq?: number;
  readonly tick: number;
  readonly who: string;
  readonly event: string;
  readonly detail?: unknown;
};

export function formatTraceLine(line: TraceLine): string {
  const detail = line.detail === undefined ? '' : ` ${canonical(line.detail)}`;
  return `[${String(line.tick).padStart(5)}] ${line.who.padEnd(4)} ${line.event}${detail}`;
}

/** A fixed-size ring of trace lines. */
class TraceRing {
  readonly #lines: TraceLine[] = [];
  readonly #capacity: number;
  readonly #counter: { value: number };
  #next = 0;

  constructor(capacity: number, counter: { value: number }) {
    this.#capacity = Math.max(1, capacity);
    this.#counter = counter;
  }

  push(line: TraceLine): void {
    line = { ...line, seq: this.#counter.value++ };
    if (this.#lines.length < this.#capacity) this.#lines.push(line);
    else this.#lines[this.#next] = line;
    this.#next = (this.#next + 1) % this.#capacity;
  }

  last(count: number): TraceLine[] {
    const ordered = this.#lines.length < this.#capacity ? this.#lines.slice() : [...this.#lines.slice(this.#next), ...this.#lines.slice(0, this.#next)];
    return ordered.slice(-count);
  }
}

/**
 * Null when `value` can be read as plain data (what crossing a worker boundary needs), else
 * where it cannot: a revoked immer draft leaking out of a step throws on any access.
 */
export function unreadable(value: unknown, maxDepth = 12, path = 'message', depth = 0): string | null {
  try {
    if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return null;
    if (depth > maxDepth) return null;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const problem = unreadable(value[i], maxDepth, `${path}[${i}]`, depth + 1);
        if (problem !== null) return problem;
      }
      return null;
    }
    for (const key of Object.keys(value)) {
      const problem = unreadable((value as Record<string, unknown>)[key], maxDepth, `${path}.${key}`, depth + 1);
      if (problem !== null) return problem;
    }
    return null;
  } catch (error) {
    return `${path}: ${error instanceof Error ? error.message : String(error)}`;
  }
}

// ---- the cluster -----------------------------------------------------------------------------

type PendingWrite = { readonly due: number; readonly record: PersistRecord; readonly generation: number; readonly op: number };

export type ClusterOptions = {
  readonly seed: number;
  readonly replicaCount?: number;
  /** Client processes `c0`.. (each a session host). */
  readonly clientCount?: number;
  /** Sessions each client process may open (its host's sessionsMax): calls it runs at once. Default 1. */
  readonly sessionsPerClient?: number;
  readonly replicaConfig?: Partial<ReplicaConfig>;
  readonly clientConfig?: Partial<ClientConfig>;
  readonly faults?: NetworkFaults;
  /** null: no automatic calls (tests drive calls with `call`). */
  readonly workload?: WorkloadOptions | null;
  /** Stop advancing time at the first violation (default true). */
  readonly stopOnViolation?: boolean;
  /** Trace lines kept for reports. */
  readonly traceCapacity?: number;
  /** Also keep replica `drop_*` traces (noisy). */
  readonly traceDrops?: boolean;
  /** Steps replicas with this instead of the real `stepAll` (mutation tests). */
  readonly stepFunction?: StepFunction;
  /**
   * Watchers (./watchers.ts) beside the clients, and the watch checker; null or absent: none.
   * Their traffic draws from its own PRNG: a seed's core run is the same with or without them.
   */
  readonly watchers?: WatchSimOptions | null;
  /** Rewrites what the replicas' watch hubs send (mutation tests of the watch checker, ./mutants.ts). */
  readonly watchNoticeMutation?: WatchNoticeMutation;
  /**
   * Lease, lock and election clients (./leases.ts) beside the others, and the lease checkers;
   * null or absent: none. They and their session hosts draw from their own PRNG stream.
   */
  readonly leases?: LeaseSimOptions | null;
  /**
   * Durable replicas: persist effects go to a per-replica store that survives crashes, and a
   * restarted replica reloads it before recovering the rest (PROTOCOL.md "Durability").
   */
  readonly durable?: boolean;
  /**
   * Ticks a replica gets per timer message, as a node's `ticksPerWakeup` hands them
   * (actors/timer.ts): every that many steps one `{ type: 'tick', ticks }`. Default 1 (a tick
   * per step, seeds exactly as before); at most the config's `commitIntervalTicks`, as on a node.
   */
  readonly ticksPerWakeup?: number;
};

/** Simulator-friendly protocol timing: short timeouts, small checkpoints. */
export const simReplicaConfig: Partial<ReplicaConfig> = {
  commitIntervalTicks: 5,
  prepareResendTicks: 5,
  viewChangeTimeoutTicks: 30,
  viewChangeJitterTicks: 30,
  recoveryRetryTicks: 15,
  stateTransferRetryTicks: 15,
  checkpointIntervalOps: 64,
};

export type MessageFilter = {
  /** Sender (replica index or client id); any when absent. */
  readonly from?: NodeId;
  /** Receiver; any when absent. */
  readonly to?: NodeId;
  /** Message types to drop; every type when absent. */
  readonly types?: readonly (PeerMessageType | 'request' | ClientAnswer['type'])[];
};

/** The namespace every client process serves (the simulated group is one namespace). */
export const simNamespace = 'sim';

/**
 * Where a replica sends a reply for a client whose request it never received (e.g. a new
 * primary executing the old primary's requests): the glue's default proxy. In the product that
 * is the replica's own node's proxy, which drops an answer for a session it does not host; the
 * simulated clients are all remote, so such replies are counted and dropped, and the client's
 * retry fetches the answer from the client table.
 */
const unroutedProxy: ActorId = 'proxy';

/**
 * The network node forged messages come from (./byzantine.ts): not a replica, not a client
 * process. The simulator knows the true sender; a replica sees only the message (and the
 * glue the envelope's `from`, which is this node's id).
 */
export const forgerNode = 'forger';

/** Milliseconds per tick on the clock the glue reads (the node's default tickMs). */
const simTickMs = 10;

/** A step the step wrapper already reported as a violation; unwinds the glue without crashing the simulator. */
class ReportedStepFailure extends Error {
  override readonly name = 'ReportedStepFailure';
}

export class Cluster {
  readonly seed: number;
  readonly replicaCount: number;
  readonly config: ReplicaConfig;
  readonly clientConfig: ClientConfig;
  readonly sessionsPerClient: number;
  readonly clientIds: readonly string[];
  readonly network: Network<SimMessage>;
  readonly checkers: Checkers;
  readonly history: CallRecord[] = [];
  readonly stopOnViolation: boolean;
  /** Current tick. */
  now = 0;
  readonly #ticksPerWakeup: number;
  /** Replica steps run (for reports). */
  replicaSteps = 0;
  /** Messages delivered to a crashed replica, hence lost. */
  droppedAtDownReplica = 0;
  /** Replies a replica sent to its default proxy (no route to the client: see `unroutedProxy`). */
  unroutedReplies = 0;
  /** Checkpoint images the replicas' glue finished writing (in slices, actors/replica.ts). */
  imagesEncoded = 0;
  /** Forged messages put on the wire (./byzantine.ts), by kind. */
  readonly forged: Record<ForgeryKind, number> = { huge_view: 0, huge_number: 0, forged_sender: 0, future_op: 0 };
  /** Malformed forged messages that reached a replica's step, and the gate dropped. */
  forgedDelivered = 0;
  /** When false, the workload generator starts no calls. */
  workloadEnabled: boolean;
  readonly workload: WorkloadGenerator | null;
  /** Per replica: its durable storage (written only in durable mode). */
  readonly stores: readonly SimStore[];
  /** Per replica: writes issued but not finished (lost if it crashes). */
  readonly #writes: PendingWrite[][];
  /** Per replica: checkpoint images being packed (lost if it crashes). */

  readonly #prng: Prng;
  readonly #workloadPrng: Prng;
  /** Per replica: its glue while it runs; null while it is down. */
  readonly #glues: (ReplicaGlue | null)[] = [];
  /** Per replica: the state shown while it is down (a fresh one, as a restart begins with), and its seed. */
  readonly #downStates: ReplicaState[] = [];
  readonly #downSeeds: number[] = [];
  /** States handed in by `replaceReplicaState`, used by the replica's next step. */
  readonly #overrides = new Map<number, ReplicaState>();
  readonly #down: boolean[];
  /** Actor ids of the replicas, by index, and the network node of every actor id. */
  readonly #replicaIds: readonly ActorId[];
  readonly #nodes = new Map<ActorId, NodeId>();
  readonly #hosts = new Map<string, HostState>();
  readonly #calls = new Map<number, CallRecord>();
  readonly #trace: TraceRing;
  readonly #replicaTrace: TraceRing;
  readonly #traceDrops: boolean;
  readonly #step: StepFunction;
  /** Forged messages the gate must drop (the very objects put on the wire). */
  readonly #forgedMalformed = new WeakSet<object>();
  /** Watchers, their links and the watch checker (./watchers.ts); null without watchers. */
  readonly watch: WatchSim | null;
  /** Lease clients and the lease checkers (./leases.ts); null without them. */
  readonly leases: LeaseSim | null;
  /** Every client process: the workload's (`clientIds`), then the lease clients. */
  readonly #allClientIds: readonly string[];
  #nextCallId = 1;
  #seq = 0;

  constructor(options: ClusterOptions) {
    this.seed = options.seed;
    this.#prng = new Prng(options.seed);
    const networkPrng = this.#prng.fork();
    this.#workloadPrng = this.#prng.fork();
    this.replicaCount = options.replicaCount ?? 3;
    this.config = makeReplicaConfig({ ...simReplicaConfig, ...options.replicaConfig, replicaCount: this.replicaCount, durable: options.durable ?? false });
    this.stores = Array.from({ length: this.replicaCount }, () => new SimStore());
    this.#writes = Array.from({ length: this.replicaCount }, () => []);
    this.clientConfig = { ...defaultClientConfig, retryTicks: 10, retryTicksMax: 60, giveUpTicks: 600, queueMax: 8, ...options.clientConfig, replicaCount: this.replicaCount };
    this.sessionsPerClient = options.sessionsPerClient ?? 1;
    this.#ticksPerWakeup = Math.max(1, Math.min(options.ticksPerWakeup ?? 1, this.config.commitIntervalTicks));
    this.network = new Network<SimMessage>(networkPrng, options.faults ?? reliableNetwork);
    this.checkers = new Checkers(this.replicaCount);
    this.stopOnViolation = options.stopOnViolation ?? true;
    const counter = { value: 0 };
    this.#trace = new TraceRing(options.traceCapacity ?? 400, counter);
    this.#replicaTrace = new TraceRing(options.traceCapacity ?? 400, counter);
    this.#traceDrops = options.traceDrops ?? false;
    this.#step = options.stepFunction ?? ((_index, state, inputs) => stepAll(state, inputs));
    const workload = options.workload === undefined ? defaultWorkload : options.workload;
    this.workload = workload === null ? null : new WorkloadGenerator(this.#workloadPrng.fork(), workload);
    this.workloadEnabled = this.workload !== null;

    this.#replicaIds = Array.from({ length: this.replicaCount }, (_, i) => `r${i}`);
    this.#replicaIds.forEach((id, i) => this.#nodes.set(id, i));
    this.#down = [];
    for (let i = 0; i < this.replicaCount; i++) {
      const seed = this.#prng.next();
      this.#downSeeds.push(seed);
      this.#downStates.push(initialReplicaState(this.config, i, seed));
      this.#glues.push(null);
      this.#down.push(false);
    }
    const { replicaCount: _replicaCount, ...sessionConfig } = this.clientConfig;
    const hostConfig = { client: sessionConfig, sessionsMax: this.sessionsPerClient, waitingMax: this.clientConfig.queueMax };
    const clientIds: string[] = [];
    for (let c = 0; c < (options.clientCount ?? 3); c++) {
      const id = `c${c}`;
      clientIds.push(id);
      this.#nodes.set(id, id);
      const added = hostStepAll(initialHostState(hostConfig), [{ type: 'add_namespace', ns: simNamespace, replicaCount: this.replicaCount, clientIdPrefix: id, seed: this.#prng.next() }]).state;
      if (!hostServes(added, simNamespace)) throw new RangeError(`client ${id} cannot serve a group of ${this.replicaCount} replicas`);
      this.#hosts.set(id, added);
    }
    this.clientIds = clientIds;
    this.watch = options.watchers === undefined || options.watchers === null ? null : this.#makeWatchSim(options.watchers, options.watchNoticeMutation ?? null);
    for (const id of this.watch?.watcherIds ?? []) this.#nodes.set(id, id);
    this.leases = options.leases === undefined || options.leases === null ? null : this.#makeLeaseSim(options.leases, hostConfig);
    this.#allClientIds = [...clientIds, ...(this.leases?.clientIds ?? [])];
    for (let i = 0; i < this.replicaCount; i++) this.#startReplica(i, 'fresh', 0, this.#downSeeds[i] as number, undefined);
  }

  // ---- accessors -----------------------------------------------------------------------------

  replica(index: number): ReplicaState {
    if (!Number.isInteger(index) || index < 0 || index >= this.replicaCount) throw new RangeError(`no replica ${index}`);
    return this.#overrides.get(index) ?? this.#glues[index]?.state ?? (this.#downStates[index] as ReplicaState);
  }

  get replicas(): readonly ReplicaState[] {
    return Array.from({ length: this.replicaCount }, (_, i) => this.replica(i));
  }

  /**
   * Test hook: replaces a replica's state as if it had stepped there (the checkers do not see
   * this), e.g. to hand a replica a corrupted state and watch the simulator report it. The
   * replica's next step starts from it.
   */
  replaceReplicaState(index: number, state: ReplicaState): void {
    this.replica(index);
    this.#overrides.set(index, state);
  }

  isDown(index: number): boolean {
    return this.#down[index] === true;
  }

  /** The session host of client process `clientId`. */
  client(clientId: string): HostState {
    const state = this.#hosts.get(clientId);
    if (state === undefined) throw new RangeError(`no client ${clientId}`);
    return state;
  }

  /** Whether client process `clientId` would hand a new call to a session at once (none waits). */
  clientHasRoom(clientId: string): boolean {
    const stats = hostStats(this.client(clientId));
    return stats.waiting === 0 && stats.busy < this.sessionsPerClient;
  }

  get violations(): readonly Violation[] {
    return this.checkers.violations;
  }

  get halted(): boolean {
    return this.stopOnViolation && this.checkers.violations.length > 0;
  }

  /** The highest view any running replica is in. */
  highestView(): number {
    let view = 0;
    this.replicas.forEach((state, i) => {
      if (!this.#down[i] && state.status !== 'stopped' && state.status !== 'recovering') view = Math.max(view, state.view);
    });
    return view;
  }

  /** The replica that is normal primary of the highest view, or null (view change under way). */
  primaryIndex(): number | null {
    const view = this.highestView();
    const index = primaryOf(view, this.config);
    if (index >= this.replicaCount) return null;
    const state = this.replica(index);
    if (this.#down[index] || state.status !== 'normal' || state.view !== view) return null;
    return index;
  }

  /** Replicas that count as failed for the f bound: crashed, or restarted and still recovering. */
  failedCount(): number {
    let failed = 0;
    this.replicas.forEach((state, i) => {
      if (this.#down[i] || state.status === 'stopped' || state.status === 'recovering') failed += 1;
    });
    return failed;
  }

  /**
   * The last `count` trace lines: simulator events (faults, status and view changes, failed
   * calls, violations) and replica/client trace effects (without the noisy `drop_*` ones unless
   * `traceDrops`), merged in the order they happened.
   */
  traceTail(count = 30): string[] {
    const lines = [...this.#trace.last(count), ...this.#replicaTrace.last(count)];
    lines.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    return lines.slice(-count).map(formatTraceLine);
  }

  note(event: string, detail?: unknown): void {
    this.#trace.push(detail === undefined ? { tick: this.now, who: 'sim', event } : { tick: this.now, who: 'sim', event, detail });
  }

  // ---- time ----------------------------------------------------------------------------------

  /** Advances `n` ticks (fewer if a violation halts the run). Returns the ticks run. */
  runTicks(n: number): number {
    for (let i = 0; i < n; i++) {
      if (this.halted) return i;
      this.tick();
    }
    return n;
  }

  /** Runs until `predicate` holds (checked before each tick) or `maxTicks` pass; returns whether it held. */
  runUntil(predicate: (cluster: Cluster) => boolean, maxTicks: number): boolean {
    for (let i = 0; i < maxTicks; i++) {
      if (predicate(this)) return true;
      if (this.halted) return false;
      this.tick();
    }
    return predicate(this);
  }

  tick(): void {
    this.now += 1;
    const now = this.now;
    this.#completeWrites(now);
    this.network.expireClogs(now);
    const due = this.network.deliverDue(now);
    const toReplicas = new Map<number, Envelope[]>();
    const toClients = new Map<string, HostInput[]>();
    for (const envelope of due) {
      if (typeof envelope.to === 'number') {
        if (this.#down[envelope.to]) {
          this.droppedAtDownReplica += 1;
          continue;
        }
        let batch = toReplicas.get(envelope.to);
        if (batch === undefined) {
          batch = [];
          toReplicas.set(envelope.to, batch);
        }
        batch.push({ from: this.#actorId(envelope.from), to: this.#replicaIds[envelope.to] as ActorId, msg: envelope.message });
      } else {
        let inputs = toClients.get(envelope.to);
        if (inputs === undefined) {
          inputs = [];
          toClients.set(envelope.to, inputs);
        }
        inputs.push({ type: 'receive', message: envelope.message as ClientAnswer });
      }
    }
    for (let i = 0; i < this.replicaCount; i++) {
      const batch = toReplicas.get(i);
      if (batch !== undefined) this.#deliver(i, batch);
    }
    for (const clientId of this.#allClientIds) {
      const inputs = toClients.get(clientId);
      if (inputs !== undefined) this.#stepClient(clientId, inputs);
    }
    this.watch?.deliver(now);
    const perWakeup = this.#ticksPerWakeup;
    if ((now + 1) % perWakeup === 0) {
      const tick = perWakeup === 1 ? { type: 'tick' } : { type: 'tick', ticks: perWakeup };
      for (let i = 0; i < this.replicaCount; i++) this.#deliver(i, [{ from: 'timer', to: this.#replicaIds[i] as ActorId, msg: tick }]);
    }
    for (const clientId of this.#allClientIds) this.#stepClient(clientId, [{ type: 'tick' }]);
    if (!this.halted) this.watch?.tick(now);
    if (!this.halted) this.leases?.tick(now);
    if (this.workloadEnabled && this.workload !== null) {
      for (const clientId of this.clientIds) {
        if (this.clientHasRoom(clientId) && this.#workloadPrng.chance(this.workload.options.opProbability)) {
          this.call(clientId, this.workload.next(), 'workload');
        }
      }
    }
  }

  // ---- calls ---------------------------------------------------------------------------------

  /** Starts a call on a client process; the handle's `result` is set when it completes. */
  call(clientId: string, op: TreeOp, source: CallSource = 'test'): CallRecord {
    this.client(clientId);
    const callId = this.#nextCallId++;
    const record: CallRecord = { clientId, callId, op, source, callTick: this.now, callSeq: ++this.#seq, result: null, returnTick: null, returnSeq: null };
    this.history.push(record);
    this.#calls.set(callId, record);
    this.#stepClient(clientId, [{ type: 'call', callId, ns: simNamespace, op }]);
    return record;
  }

  /** Runs until the call completes (or `maxTicks` pass); returns its result or null. */
  await(handle: CallRecord, maxTicks = 2000): CallOutcome | null {
    this.runUntil(() => handle.result !== null, maxTicks);
    return handle.result;
  }

  /** Calls that have not completed yet. */
  openCalls(): CallRecord[] {
    return this.history.filter((record) => record.result === null);
  }

  // ---- faults ----------------------------------------------------------------------------------

  /** The replica loses all volatile state and receives nothing until restarted. */
  crash(index: number): void {
    this.replica(index);
    // Writes not finished are lost with the process (and an image half written, with the glue); finished writes stay in the store.
    this.#writes[index] = [];
    const seed = this.#prng.next();
    this.#downSeeds[index] = seed;
    this.#downStates[index] = initialReplicaState(this.config, index, seed);
    this.#glues[index] = null;
    this.#overrides.delete(index);
    this.#down[index] = true;
    this.checkers.onCrash(index);
    this.note('crash', { replica: index });
  }

  /**
   * Issue 13: whether replica `index` would restart in recovery if it crashed now, i.e. holds
   * nothing the group can count on until it has recovered: durable, its store holds no promise
   * (damaged and not yet back in normal status with its promise stored again: a recovering
   * replica promises nothing, README rule 18); diskless, always. A replica in recovering status
   * counts too (in durable mode that implies the first). The scheduler keeps at most f of them.
   */
  untrusted(index: number): boolean {
    if (!this.config.durable) return true;
    return (this.stores[index] as SimStore).promise === null || (!this.#down[index] && this.replica(index).status === 'recovering');
  }

  /**
   * Issue 13: damages a crashed replica's storage (./storage.ts `damage`); its restart then
   * finds no promise and recovers with the trusted prefix only.
   */
  damageStore(index: number, kind: StorageDamageKind, at: number): void {
    if (!this.#down[index]) throw new Error(`replica ${index} is not down`);
    (this.stores[index] as SimStore).damage(kind, at);
    this.note('storage_damage', { replica: index, kind, at: Number(at.toFixed(3)) });
  }

  /**
   * Restarts a crashed replica with a fresh nonce, as the supervisor does: in recovery (VRR
   * §4.3) when diskless or when its store holds no promise; a durable replica whose store holds
   * its promise resumes from it (README rule 18, `restart`).
   */
  restart(index: number): void {
    if (!this.#down[index]) throw new Error(`replica ${index} is not down`);
    this.#down[index] = false;
    const nonce = 1 + this.#prng.int(2 ** 31 - 1);
    const stored = this.config.durable ? (this.stores[index] as SimStore).stored() : undefined;
    const mode: StartMode = stored?.promise === undefined ? 'recovering' : 'restart';
    this.note('restart', { replica: index, nonce, mode });
    this.#startReplica(index, mode, nonce, this.#downSeeds[index] as number, stored);
  }

  #allNodes(): NodeId[] {
    return [...Array.from({ length: this.replicaCount }, (_, i) => i), ...this.#allClientIds, ...(this.watch?.watcherIds ?? [])];
  }

  /** Cuts a replica off from every other node (replicas and clients), both ways. */
  isolate(index: number): void {
    this.network.isolate(index, this.#allNodes());
    this.note('isolate', { replica: index });
  }

  /** Cuts every link between the two groups, both ways. */
  partition(groupA: readonly NodeId[], groupB: readonly NodeId[]): void {
    this.network.partition(groupA, groupB);
    this.note('partition', { a: groupA.map(String).join(','), b: groupB.map(String).join(',') });
  }

  /** Cuts the one-way link from -> to. */
  asymmetric(from: NodeId, to: NodeId): void {
    this.network.cut(from, to);
    this.note('asymmetric', { from: String(from), to: String(to) });
  }

  /** Holds messages on from -> to for `ticks` ticks. */
  clog(from: NodeId, to: NodeId, ticks: number): void {
    this.network.clog(from, to, this.now + ticks);
    this.note('clog', { from: String(from), to: String(to), ticks });
  }

  /** Restores every link (filters stay). */
  heal(): void {
    this.network.heal();
    this.note('heal');
  }

  /** Drops matching messages at send time until removed; returns the filter's id. */
  dropMessages(filter: MessageFilter): number {
    const types = filter.types === undefined ? null : new Set<string>(filter.types);
    return this.network.addFilter((from, to, message) => {
      if (filter.from !== undefined && filter.from !== from) return false;
      if (filter.to !== undefined && filter.to !== to) return false;
      return types === null || types.has(message.type);
    });
  }

  removeFilter(id: number): void {
    this.network.removeFilter(id);
  }

  /**
   * Puts a forged message on the wire from `forgerNode` to replica `to` (./byzantine.ts). A
   * `malformed` one must be dropped by the gate: a step given it that does not trace
   * `drop_malformed` for it is a `forged_accepted` violation.
   */
  injectForged(to: number, message: Record<string, unknown>, malformed: boolean, kind: ForgeryKind): void {
    this.replica(to);
    if (malformed) this.#forgedMalformed.add(message);
    this.forged[kind] += 1;
    this.note('forged', { to, kind, type: String(message['type']) });
    this.network.send(forgerNode, to, message as SimMessage, this.now);
  }

  /** Forged malformed messages among `inputs`, and whether the step's effects dropped as many as malformed. */
  #checkForged(index: number, inputs: readonly ReplicaInput[], effects: StepResult<ReplicaState>['effects']): void {
    let forged = 0;
    for (const input of inputs) {
      if (input.type === 'receive' && typeof input.message === 'object' && input.message !== null && this.#forgedMalformed.has(input.message)) forged += 1;
    }
    if (forged === 0) return;
    this.forgedDelivered += forged;
    let dropped = 0;
    for (const effect of effects) if (effect.type === 'trace' && effect.trace.event === 'drop_malformed') dropped += 1;
    if (dropped < forged) {
      this.checkers.report({
        kind: 'forged_accepted',
        replica: index,
        tick: this.now,
        message: `replica ${index} was given ${forged} forged malformed message(s) but dropped ${dropped} as malformed: ${canonical(inputs)}`,
      });
    }
  }

  // ---- watchers ----------------------------------------------------------------------------------

  #makeWatchSim(options: WatchSimOptions, mutation: WatchNoticeMutation | null): WatchSim {
    const cluster = this;
    return new WatchSim(
      options,
      {
        replicaCount: this.replicaCount,
        get now() {
          return cluster.now;
        },
        faults: () => this.network.faults,
        canDeliver: (from, to) => this.network.canDeliver(from, to),
        report: (message) => {
          this.checkers.report({ kind: 'watch', tick: this.now, message });
          this.note('violation', { kind: 'watch' });
        },
        deliverToReplica: (index, envelopes) => {
          if (this.#down[index] || this.halted) return false;
          const replicaId = this.#replicaIds[index] as ActorId;
          this.#drive(index, (glue) => glue.receive(envelopes.map((envelope) => ({ from: envelope.from, to: replicaId, msg: envelope.msg }))));
          return true;
        },
      },
      mutation,
    );
  }

  /** Replica `index`'s glue status (watches it serves, its history), or null while it is down. */
  replicaStatus(index: number): ReturnType<ReplicaGlue['status']> | null {
    return this.#down[index] ? null : (this.#glues[index]?.status() ?? null);
  }

  /** Liveness: every watcher runs a watch delivered through `op` or later (true without watchers). */
  watchersCaughtUp(op: number): boolean {
    return this.watch === null || this.watch.caughtUp(op);
  }

  // ---- lease clients -----------------------------------------------------------------------------

  /** The lease clients: session hosts of their own (two sessions each: a main flow and keep-alives), seeded from the lease stream. */
  #makeLeaseSim(options: LeaseSimOptions, hostConfig: { readonly client: Omit<ClientConfig, 'replicaCount'>; readonly waitingMax: number }): LeaseSim {
    const cluster = this;
    const sim = new LeaseSim(options, {
      get now() {
        return cluster.now;
      },
      config: this.config,
      call: (clientId, op) => this.call(clientId, op, 'lease'),
      report: (message) => {
        this.checkers.report({ kind: 'lease', tick: this.now, message });
        this.note('violation', { kind: 'lease' });
      },
    });
    for (const id of sim.clientIds) {
      this.#nodes.set(id, id);
      const config = { client: hostConfig.client, sessionsMax: 2, waitingMax: hostConfig.waitingMax };
      this.#hosts.set(id, hostStepAll(initialHostState(config), [{ type: 'add_namespace', ns: simNamespace, replicaCount: this.replicaCount, clientIdPrefix: id, seed: sim.hostSeed() }]).state);
    }
    return sim;
  }

  // ---- replicas: the actor's glue over simulated ports ------------------------------------------

  #actorId(node: NodeId): ActorId {
    return typeof node === 'number' ? (this.#replicaIds[node] as ActorId) : node;
  }

  /** Creates replica `index`'s glue, which starts it at once (the `start` input is its first step). */
  #startReplica(index: number, mode: StartMode, nonce: number, seed: number, stored: StoredState | undefined): void {
    if (this.halted) return;
    const spec = {
      ns: simNamespace,
      index,
      config: this.config,
      replicas: this.#replicaIds,
      defaultProxy: unroutedProxy,
      mode,
      nonce,
      seed,
      ...(this.watch === null ? {} : { watch: this.watch.options.hub }),
    };
    const ports = {
      send: (to: ActorId, msg: unknown): void => this.#replicaSend(index, to, msg),
      persist: (record: PersistRecord, generation: number, op: number): void => {
        // A write takes a tick or three (like an fsync); writes of one replica finish in order.
        const queue = this.#writes[index] as PendingWrite[];
        const due = Math.max(queue.at(-1)?.due ?? 0, this.now + 1 + this.#prng.int(3));
        queue.push({ due, record, generation, op });
      },
      trace: (trace: TraceEvent): void => {
        if (this.#traceDrops || !trace.event.startsWith('drop_')) {
          const line = { tick: this.now, who: `r${index}`, event: trace.event };
          this.#replicaTrace.push(trace.detail === undefined ? line : { ...line, detail: trace.detail });
        }
      },
      imageWritten: (): void => {
        this.imagesEncoded += 1;
      },
      nowMs: (): number => this.now * simTickMs,
    };
    try {
      this.#glues[index] = createReplica(ports, spec, { ...(stored === undefined ? {} : { stored }), step: this.#checkedStep(index) });
    } catch (error) {
      // The start step failed (reported by the step wrapper): the replica stays as it was shown.
      this.#glueFailed(index, error);
    }
  }

  /**
   * The step the glue runs: the core (or the test's substitute), from the state a test may
   * have handed in, checked after every transition before its effects run. A throw is recorded
   * as a violation and unwinds the glue, leaving the replica's state as it was.
   */
  #checkedStep(index: number): ReplicaStep {
    return (state: ReplicaState, inputs: readonly ReplicaInput[]): StepResult<ReplicaState> => {
      const before = this.#overrides.get(index) ?? state;
      let result: StepResult<ReplicaState>;
      try {
        result = this.#step(index, before, inputs);
      } catch (error) {
        const violation = this.checkers.onException(index, this.now, error, inputs);
        this.note('violation', { kind: violation.kind });
        throw new ReportedStepFailure(violation.message);
      }
      this.#overrides.delete(index);
      this.replicaSteps += 1;
      // The committed history for the watch checker, before the glue runs the effects (and its hub sends).
      if (this.watch !== null) for (const effect of result.effects) if (effect.type === 'applied') this.watch.applied(effect.op, effect.before, effect.ops, effect.after);
      // Commit numbers, committed entries and machines for the lease checkers.
      this.leases?.afterStep(index, before, result.state, this.now);
      const after = result.state;
      if (after.status !== before.status || after.view !== before.view) {
        this.#trace.push({ tick: this.now, who: `r${index}`, event: 'status', detail: { from: `${before.status}@${before.view}`, to: `${after.status}@${after.view}`, op: after.op, commit: after.commit } });
      }
      this.#checkForged(index, inputs, result.effects);
      this.#checkPromises(index, result.effects);
      const found = this.checkers.afterStep({ replica: index, tick: this.now, before, after, inputs, effects: result.effects });
      for (const violation of found) this.note('violation', { kind: violation.kind, replica: violation.replica ?? null });
      return result;
    };
  }

  /**
   * README rule 18: a durable replica sends a message that depends on its view or
   * lastNormalView only once its store holds a promise covering it (writes finish ticks later,
   * so what this step persists does not count).
   */
  #checkPromises(index: number, effects: readonly ReplicaEffect[]): void {
    if (!this.config.durable) return;
    const store = this.stores[index] as SimStore;
    const promise = store.promise;
    for (const effect of effects) {
      if (effect.type !== 'send') continue;
      const message = effect.message;
      // An acknowledgement covers only what is stored (PROTOCOL.md "Durability").
      if (message.type === 'prepare_ok' && message.op > store.lastOp) {
        this.checkers.report({ kind: 'persist', replica: index, tick: this.now, message: `replica ${index} acknowledged op ${message.op} with only op ${store.lastOp} stored` });
      }
      let uncovered = false;
      switch (message.type) {
        case 'start_view_change':
        // README rule 22: a confirmation claims the view only (a backup catching up confirms it too).
        case 'read_round_ok':
          uncovered = promise === null || promise.view < message.view;
          break;
        case 'do_view_change':
          uncovered = promise === null || promise.view < message.view || promise.lastNormalView < message.lastNormalView;
          break;
        case 'prepare_ok':
        case 'start_view':
        case 'prepare':
        case 'commit':
        case 'read_round':
          uncovered = promise === null || promise.view < message.view || promise.lastNormalView < message.view;
          break;
        default:
          break;
      }
      if (uncovered) {
        const stored = promise === null ? 'none' : `(${promise.view}, ${promise.lastNormalView})`;
        this.checkers.report({ kind: 'persist', replica: index, tick: this.now, message: `replica ${index} sent ${message.type} for view ${'view' in message ? message.view : '?'} with stored promise ${stored}` });
      }
    }
  }

  #glueFailed(index: number, error: unknown): void {
    if (error instanceof ReportedStepFailure) return;
    // Not the core: the glue itself threw, which would crash the product's worker.
    const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.checkers.report({ kind: 'exception', replica: index, tick: this.now, message: `replica ${index}'s glue threw ${what}` });
  }

  /** Runs `action` on replica `index`'s glue, unless the run halted or the replica is down. */
  #drive(index: number, action: (glue: ReplicaGlue) => void): void {
    if (this.halted || this.#down[index]) return;
    const glue = this.#glues[index];
    if (glue === null || glue === undefined) return;
    try {
      action(glue);
    } catch (error) {
      this.#glueFailed(index, error);
    }
  }

  /** Envelopes for replica `index`: one batch, or one at a time while it has no state to speak from. */
  #deliver(index: number, batch: readonly Envelope[]): void {
    if (batch.length > 1) {
      const status = this.replica(index).status;
      if (status === 'recovering' || status === 'stopped') {
        for (const envelope of batch) this.#drive(index, (glue) => glue.receive([envelope]));
        return;
      }
    }
    this.#drive(index, (glue) => glue.receive(batch));
  }

  /** What replica `index`'s glue sends: onto the network, unless unreadable or unroutable. */
  #replicaSend(index: number, to: ActorId, msg: unknown): void {
    // Three levels reach what a step could read out of its draft (log entries live in
    // Immutable.js structures, plain); deeper walks of every entry cost too much.
    const problem = unreadable(msg, 3);
    if (problem !== null) {
      this.checkers.report({ kind: 'unreadable_message', replica: index, tick: this.now, message: `replica ${index} sent an unreadable message to ${to} (${problem})` });
      return;
    }
    if (this.watch?.isWatcher(to) === true) {
      this.watch.sendFromReplica(index, to, msg, this.now);
      return;
    }
    const node = this.#nodes.get(to);
    if (node === undefined) {
      this.unroutedReplies += 1;
      this.#replicaTrace.push({ tick: this.now, who: `r${index}`, event: 'reply_unrouted', detail: { to, type: (msg as { type?: unknown }).type === undefined ? null : String((msg as { type?: unknown }).type) } });
      return;
    }
    this.network.send(index, node, msg as SimMessage, this.now);
  }

  /**
   * Finished writes reach the store, and their replica hears `persisted` once the last write
   * carrying a step's (generation, op) is done: every record of a step carries the step's pair,
   * so answering its first record would report the step's entries stored while they are still
   * being written (the production store answers per batch, after all of them).
   */
  #completeWrites(now: number): void {
    for (let index = 0; index < this.replicaCount; index++) {
      const queue = this.#writes[index] as PendingWrite[];
      const done: ReplicaInput[] = [];
      while (queue.length > 0 && (queue[0] as PendingWrite).due <= now) {
        const write = queue.shift() as PendingWrite;
        const store = this.stores[index] as SimStore;
        const anomalies = store.anomalies.length;
        store.apply(write.record);
        if (store.anomalies.length > anomalies) {
          this.checkers.report({ kind: 'persist', replica: index, tick: now, message: `replica ${index} persisted out of order: ${store.anomalies.at(-1) ?? ''}` });
        }
        const next = queue[0];
        if (next !== undefined && next.generation === write.generation && next.op === write.op) continue;
        done.push({ type: 'persisted', generation: write.generation, op: write.op });
      }
      if (done.length > 0) this.#drive(index, (glue) => glue.input(done));
    }
  }

  // ---- clients: session hosts ------------------------------------------------------------------

  /** One step of client process `clientId`'s session host with `inputs`, its effects carried out. */
  #stepClient(clientId: string, inputs: readonly HostInput[]): void {
    const before = this.client(clientId);
    let result: ReturnType<typeof hostStepAll>;
    try {
      result = hostStepAll(before, inputs);
    } catch (error) {
      const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.checkers.report({ kind: 'exception', tick: this.now, message: `client ${clientId} threw ${what} on ${canonical(inputs)}` });
      return;
    }
    this.#hosts.set(clientId, result.state);
    for (const effect of result.effects) this.#clientEffect(clientId, inputs, effect);
  }

  #clientEffect(clientId: string, inputs: readonly HostInput[], effect: HostEffect): void {
    switch (effect.type) {
      case 'send': {
        const problem = unreadable(effect.request);
        if (problem !== null) {
          this.checkers.report({ kind: 'unreadable_message', tick: this.now, message: `client ${clientId} sent an unreadable request to replica ${effect.replica} (${problem}) on inputs ${canonical(inputs)}` });
          return;
        }
        this.network.send(clientId, effect.replica, effect.request, this.now);
        return;
      }
      case 'result':
        this.#complete(clientId, effect.callId, effect.result);
        return;
      case 'trace':
        if (this.#traceDrops || !effect.event.includes('stale')) {
          const line = { tick: this.now, who: clientId, event: effect.event };
          this.#replicaTrace.push(effect.detail === undefined ? line : { ...line, detail: effect.detail });
        }
        return;
      default:
        assertNever(effect, 'host effect');
    }
  }

  #complete(clientId: string, callId: number, result: CallOutcome): void {
    const record = this.#calls.get(callId);
    if (record === undefined || record.result !== null || record.clientId !== clientId) {
      this.checkers.report({ kind: 'exception', tick: this.now, message: `client ${clientId} returned a result for unknown or finished call ${callId}` });
      return;
    }
    record.result = result;
    record.returnTick = this.now;
    record.returnSeq = ++this.#seq;
    this.#calls.delete(callId);
    if (result.type === 'done' && record.source !== 'lease') this.workload?.observe(record.op, result.outcome);
    if (result.type !== 'done') this.note(`call_${result.type}`, { client: clientId, call: callId, op: record.op.type });
  }
}
