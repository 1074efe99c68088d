/**
 * The typed client of a namespace (`node.client(ns)`): a method for every tree operation and
 * multi_cas. Each resolves with the operation's result and where it ran (epoch, view, op) or
 * rejects with a HaretError. Input is validated here first (the same validator the replicas
 * run), so a malformed call fails at once with a typed error and never crosses a thread.
 */

import type { CallOutcome } from './io.ts';
import { assertNever } from '../base/assert.ts';
import type { NodeType } from '../tree/node_type.ts';
import type { Bytes, Guard, OpResult, SetOperand, SimpleOp, TreeOp } from '../tree/ops.ts';
import { validateOp } from '../tree/validate.ts';
import { protocolNumberMax, type TreeLimits } from '../base/limits.ts';
import { checkPath } from '../tree/path.ts';
import { treeErrors } from '../tree/errors.ts';
import { HaretError } from './errors.ts';
import type { WatchSpec } from './watch.ts';
import type { WatchStream } from './watch_stream.ts';

/** Where a result was decided: the log entry `op` of `view` (in `epoch`) committed it. */
export type LogPosition = { readonly epoch: number; readonly view: number; readonly op: number };
export type Committed<R> = R & LogPosition;

type ResultOf<T extends OpResult['type']> = Committed<Extract<OpResult, { type: T }>>;

/** A value: bytes, or a string taken as UTF-8. */
export type Value = Bytes | string;

const encoder = new TextEncoder();
const bytes = (value: Value): Bytes => (typeof value === 'string' ? encoder.encode(value) : value);

/** The path a call takes to the replicas (the embedded endpoint, or a TCP connection). */
export type CallPath = (ns: string, op: TreeOp) => Promise<CallOutcome>;

/** The path a watch takes (the shell's watch registry); throws a HaretError when it cannot open one. */
export type WatchPath = (ns: string, spec: WatchSpec) => WatchStream;

export type WatchOptions = {
  /** Also the subtree under the path (default: the node itself only). */
  readonly recursive?: boolean;
  /** Start after this op (a read's `op`, or the last op seen); default: the serving replica's commit. */
  readonly fromOp?: number;
  /** Carry the bytes of created and changed blobs (default false: kinds, paths and versions only). */
  readonly values?: boolean;
};

export type CreateOptions = {
  /** A lease id, or anything with one (a kept-alive lease). */
  readonly lease?: number | { readonly id: number };
  readonly sequential?: boolean;
};

// ---- coordination (src/coord implements it; the core only declares its shape) ---------------

/**
 * `grantLease` options. `keepAliveMs` (default ttlMs / 3) is the keep-alive period; `marginMs`
 * (default max(ttlMs / 10, 50)) is how long before the service could first expire the lease the
 * client gives it up: `lost` fires at (send time of the last successful keep-alive) + ttlMs - marginMs.
 */
export type LeaseOptions = { readonly ttlMs: number; readonly keepAliveMs?: number; readonly marginMs?: number };

/**
 * A lease kept alive by the client. `lost` resolves (never rejects) exactly once, before the
 * service could have expired the lease: code `timeout` (no keep-alive succeeded in time),
 * `no_such_lease` / `lease_not_owned` (the service says it is gone), `stopped` (revoked by
 * `revoke()`, or the client was closed), or the error that made keeping it alive impossible.
 */
export interface KeptLease {
  readonly id: number;
  readonly ttlMs: number;
  readonly lost: Promise<HaretError>;
  /** True until `lost` fires. */
  readonly alive: boolean;
  /** Ends the lease now (its ephemeral nodes go in the same op); idempotent. */
  revoke(): Promise<void>;
}

/** What the lock, election and semaphore share: whose lease holds the node, and how long to wait. */
export type QueueOptions = {
  /** The lease that holds our node (not revoked on release); default: one of `ttlMs` made for our node (a lock takes it from the client's pool and gives it back at release; the other recipes revoke it). */
  readonly lease?: KeptLease;
  /** TTL of the lease made when none is given (default 10 000 ms). */
  readonly ttlMs?: number;
  /** Give up (HaretError `timeout`, executed false, nothing left behind) after this long; default: wait while the lease lives. */
  readonly timeoutMs?: number;
};

export type LockOptions = QueueOptions & {
  /** Stored in our lock node (then its version is 1, and `guard()` says so). */
  readonly value?: Value;
};

/**
 * A held node of a lock, leadership or permit. `token` is the op of the read that first showed
 * it holding: for a lock or a leadership it strictly increases from one holder to the next.
 * `lost` resolves (never rejects) exactly once: the lease's loss, the node deleted by someone
 * else (`does_not_exist`), or `stopped` after release.
 */
export interface HeldNode {
  readonly token: number;
  /** Our node. */
  readonly path: string;
  readonly lost: Promise<HaretError>;
  /**
   * A multi_cas guard that holds only while our node exists unchanged:
   * `db.multiCas([held.guard()], ops)` applies `ops` only while we still hold (fencing).
   */
  guard(): Guard;
}

export interface HeldLock extends HeldNode {
  /** Deletes our node; a lease made for it goes back to the client's pool (revoked if the delete fails). Idempotent. */
  release(): Promise<void>;
}

export type Leader = { readonly value: Uint8Array; readonly token: number; readonly path: string };

/** Our leadership; `guard()` expects version 1 (the announcement written into our candidate node). */
export interface Leadership extends HeldNode {
  /** The value we campaigned with. */
  readonly value: Uint8Array;
  /** Steps down: our candidate node is deleted and the next candidate leads; idempotent. */
  resign(): Promise<void>;
}

export type ElectionOptions = QueueOptions;

export interface Election {
  /** Resolves once we lead (one campaign at a time per Election). */
  campaign(value: Value): Promise<Leadership>;
  /** Resigns the leadership, or withdraws a campaign still waiting (it rejects with `stopped`). */
  resign(): Promise<void>;
  /** The lowest candidate once it announced itself (wrote its token and value), or null. */
  leader(): Promise<Leader | null>;
  /** The current leader (or null) at once, then every change; `break` ends it. */
  observe(): AsyncIterable<Leader | null>;
}

export type BarrierOptions = QueueOptions;

export interface Barrier {
  /** Joins; resolves once at least `count` parties have joined. Once per Barrier. */
  enter(): Promise<void>;
  /** Removes our member node (and revokes the lease made for it); idempotent. */
  leave(): Promise<void>;
}

export type SemaphoreOptions = QueueOptions;

export interface Permit extends HeldNode {
  release(): Promise<void>;
}

export interface Semaphore {
  /** Resolves once our node is among the first `permits` (fair: in the order of arrival). */
  acquire(): Promise<Permit>;
}

/** The coordination recipes over one NamespaceClient (src/coord's `coordinationFor` makes them). */
export interface Coordination {
  grantLease(options: LeaseOptions): Promise<KeptLease>;
  lock(path: string, options?: LockOptions): Promise<HeldLock>;
  withLock<T>(path: string, fn: (held: HeldLock) => Promise<T> | T, options?: LockOptions): Promise<T>;
  election(path: string, options?: ElectionOptions): Election;
  barrier(path: string, count: number, options?: BarrierOptions): Barrier;
  semaphore(path: string, permits: number, options?: SemaphoreOptions): Semaphore;
}

/** Makes the coordination layer of a client (injected by the shell: the core does not know src/coord). */
export type CoordinationFactory = (db: NamespaceClient) => Coordination;

export class NamespaceClient {
  readonly namespace: string;
  readonly #call: CallPath;
  readonly #limits: TreeLimits;
  readonly #watch: WatchPath | undefined;
  readonly #coordinationFactory: CoordinationFactory | undefined;
  /** Made on first use, then kept: every lease of this client shares its keep-alive batches. */
  #coordination: Coordination | undefined;

  constructor(namespace: string, call: CallPath, limits: TreeLimits, watch?: WatchPath, coordination?: CoordinationFactory) {
    this.namespace = namespace;
    this.#call = call;
    this.#limits = limits;
    this.#watch = watch;
    this.#coordinationFactory = coordination;
  }

  /** Runs any operation; resolves with its result, rejects with a HaretError. */
  execute(op: TreeOp): Promise<Committed<OpResult>> {
    return this.#run(op, settle);
  }

  /**
   * Validates `op`, sends it and maps its outcome with `then`: one promise per call besides the
   * call path's own (async functions here cost two more, and a microtask turn each). Never
   * throws: every failure is a rejection, as from an async function.
   */
  #run<R>(op: TreeOp, then: (outcome: CallOutcome) => R): Promise<R> {
    const checked = validateOp(op, this.#limits);
    if (!checked.ok) return Promise.reject(HaretError.fromTree(checked.error, false));
    let outcome: Promise<CallOutcome>;
    try {
      outcome = this.#call(this.namespace, checked.op);
    } catch (error: unknown) {
      return Promise.reject(error);
    }
    return outcome.then(then);
  }

  /** Like `execute`, but resolves with the raw outcome (the prompt prints every kind). */
  async raw(op: TreeOp): Promise<CallOutcome> {
    const checked = validateOp(op, this.#limits);
    if (!checked.ok) return { type: 'rejected', outcome: { type: 'error', error: checked.error } };
    return this.#call(this.namespace, checked.op);
  }

  /**
   * Creates a node (and any missing parent directories). `lease`: an ephemeral node, deleted
   * when that lease ends (not a directory). `sequential`: the name made is `path` followed by a
   * zero-padded 10-digit counter unique and increasing within the parent; the result's `path`.
   */
  create(path: string, nodeType: NodeType, options: CreateOptions = {}): Promise<ResultOf<'ok'>> {
    const { lease, sequential } = options;
    const leaseId = typeof lease === 'object' && lease !== null ? lease.id : lease;
    // Fields added in place rather than spread in: an object literal with a spread costs
    // ~0.5-2 µs on Node 20's V8 (see `withPosition`).
    const op: { type: 'create'; path: string; nodeType: NodeType; lease?: number; sequential?: boolean } = { type: 'create', path, nodeType };
    if (leaseId !== undefined) op.lease = leaseId;
    if (sequential !== undefined) op.sequential = sequential;
    return this.#expect(op, 'ok');
  }
  /** A lease of `ttlMs` (bare: nothing keeps it alive; see the coordination layer's `grantLease`). */
  leaseGrant(ttlMs: number): Promise<ResultOf<'lease'>> {
    return this.#expect({ type: 'lease_grant', ttlMs }, 'lease');
  }
  /** Restarts the TTL of each lease named; `alive[i]` false: lease `ids[i]` is gone (or not this client's). */
  leaseKeepAlive(ids: readonly number[]): Promise<ResultOf<'lease_kept'>> {
    return this.#expect({ type: 'lease_keepalive', ids }, 'lease_kept');
  }
  /** Ends a lease now; its ephemeral nodes are deleted in the same op (`nodes`: how many). */
  leaseRevoke(id: number): Promise<ResultOf<'lease'>> {
    return this.#expect({ type: 'lease_revoke', id }, 'lease');
  }
  delete(path: string): Promise<ResultOf<'ok'>> {
    return this.#expect({ type: 'delete', path }, 'ok');
  }
  list(path: string, recursive = false): Promise<ResultOf<'list'>> {
    return this.#expect({ type: 'list', path, recursive }, 'list');
  }
  stat(path: string): Promise<ResultOf<'stat'>> {
    return this.#expect({ type: 'stat', path }, 'stat');
  }
  blobPut(path: string, value: Value): Promise<ResultOf<'ok'>> {
    return this.#expect({ type: 'blob_put', path, value: bytes(value) }, 'ok');
  }
  blobGet(path: string): Promise<ResultOf<'blob'>> {
    return this.#expect({ type: 'blob_get', path }, 'blob');
  }
  blobSize(path: string): Promise<ResultOf<'count'>> {
    return this.#expect({ type: 'blob_size', path }, 'count');
  }
  queuePush(path: string, value: Value): Promise<ResultOf<'ok'>> {
    return this.#expect({ type: 'queue_push', path, value: bytes(value) }, 'ok');
  }
  queuePop(path: string): Promise<ResultOf<'element'>> {
    return this.#expect({ type: 'queue_pop', path }, 'element');
  }
  queueFront(path: string): Promise<ResultOf<'element'>> {
    return this.#expect({ type: 'queue_front', path }, 'element');
  }
  queueBack(path: string): Promise<ResultOf<'element'>> {
    return this.#expect({ type: 'queue_back', path }, 'element');
  }
  queueLen(path: string): Promise<ResultOf<'count'>> {
    return this.#expect({ type: 'queue_len', path }, 'count');
  }
  setInsert(path: string, value: Value): Promise<ResultOf<'bool'>> {
    return this.#expect({ type: 'set_insert', path, value: bytes(value) }, 'bool');
  }
  setRemove(path: string, value: Value): Promise<ResultOf<'bool'>> {
    return this.#expect({ type: 'set_remove', path, value: bytes(value) }, 'bool');
  }
  setContains(path: string, value: Value): Promise<ResultOf<'bool'>> {
    return this.#expect({ type: 'set_contains', path, value: bytes(value) }, 'bool');
  }
  /** Union of the sets at `paths` and the literal `sets`. */
  setUnion(paths: readonly string[], sets: readonly (readonly Value[])[] = []): Promise<ResultOf<'set'>> {
    return this.#expect({ type: 'set_union', paths, sets: sets.map((set) => set.map(bytes)) }, 'set');
  }
  setIntersection(path1: string, path2: string): Promise<ResultOf<'set'>> {
    return this.#expect({ type: 'set_intersection', path1, path2 }, 'set');
  }
  /** path1 − path2 (argument order kept). */
  setDifference(path1: string, path2: string): Promise<ResultOf<'set'>> {
    return this.#expect({ type: 'set_difference', path1, path2 }, 'set');
  }
  setSymmetricDifference(path1: string, path2: string): Promise<ResultOf<'set'>> {
    return this.#expect({ type: 'set_symmetric_difference', path1, path2 }, 'set');
  }
  setIsSubset(path: string, other: SetOperand | string): Promise<ResultOf<'answer'>> {
    return this.#expect({ type: 'set_is_subset', path, other: operand(other) }, 'answer');
  }
  setIsSuperset(path: string, other: SetOperand | string): Promise<ResultOf<'answer'>> {
    return this.#expect({ type: 'set_is_superset', path, other: operand(other) }, 'answer');
  }
  /** Atomic: every guard holds and every op succeeds, or nothing changes (cas_failed / the op's error). */
  multiCas(guards: readonly Guard[], ops: readonly SimpleOp[]): Promise<ResultOf<'txn'>> {
    return this.#expect({ type: 'multi_cas', guards, ops }, 'txn');
  }

  /**
   * Watches `path` (with `recursive`, its subtree): an async iterable of batches, each the net
   * change of one committed op, in op order, exactly once, across replica failovers. The first
   * batch is `start` (the op the watch starts after: `fromOp`, or the serving replica's commit);
   * `progress` batches say nothing changed through their op. Ends with a HaretError (compacted,
   * future, lagging, invalid_request, unavailable, stopped) or, after `cancel()` or a `break`,
   * normally. A malformed path or fromOp throws at once.
   */
  watch(path: string, options: WatchOptions = {}): WatchStream {
    const pathError = checkPath(path, this.#limits);
    if (pathError !== null) throw HaretError.fromTree(pathError, false);
    const { recursive = false, values = false, fromOp } = options;
    if (typeof recursive !== 'boolean') throw invalid('watch option recursive must be a boolean');
    if (typeof values !== 'boolean') throw invalid('watch option values must be a boolean');
    if (fromOp !== undefined && (typeof fromOp !== 'number' || !Number.isSafeInteger(fromOp) || fromOp < 0 || fromOp > protocolNumberMax)) {
      throw invalid(`watch option fromOp must be an integer from 0 to 2^48, got ${String(fromOp)}`);
    }
    if (this.#watch === undefined) throw new HaretError('unavailable', 'watches are not available on this client', false);
    return this.#watch(this.namespace, { path, recursive, fromOp: fromOp ?? null, values });
  }

  // ---- coordination recipes (src/coord/README.md) ----------------------------------------

  /** A lease kept alive by this client until `revoke()` or loss (see KeptLease). */
  async grantLease(options: LeaseOptions): Promise<KeptLease> {
    return this.#coordinate().grantLease(options);
  }
  /** A fair lock: resolves once held (see HeldLock, and `guard()` for fenced writes). */
  async lock(path: string, options: LockOptions = {}): Promise<HeldLock> {
    return this.#coordinate().lock(path, options);
  }
  /** Runs `fn` while holding the lock at `path`; always releases. */
  async withLock<T>(path: string, fn: (held: HeldLock) => Promise<T> | T, options: LockOptions = {}): Promise<T> {
    return this.#coordinate().withLock(path, fn, options);
  }
  /** A leader election among the candidates under `path`. */
  election(path: string, options: ElectionOptions = {}): Election {
    return this.#coordinate().election(path, options);
  }
  /** A barrier at `path` that opens once `count` parties entered. */
  barrier(path: string, count: number, options: BarrierOptions = {}): Barrier {
    return this.#coordinate().barrier(path, count, options);
  }
  /** A fair counting semaphore of `permits` at `path`. */
  semaphore(path: string, permits: number, options: SemaphoreOptions = {}): Semaphore {
    return this.#coordinate().semaphore(path, permits, options);
  }

  #coordinate(): Coordination {
    if (this.#coordination === undefined) {
      if (this.#coordinationFactory === undefined) throw new HaretError('unavailable', 'coordination recipes are not available on this client', false);
      this.#coordination = this.#coordinationFactory(this);
    }
    return this.#coordination;
  }

  #expect<T extends OpResult['type']>(op: TreeOp, type: T): Promise<ResultOf<T>> {
    // The typed methods run through `execute`, and code may wrap it on an instance (the recipes
    // benchmark counts keep-alives so): then they call the wrapper, as always. Otherwise
    // `execute`'s own work is done here, in the same single `then`. (The callbacks are inline
    // arrows: under tsx a named one costs a `__name` call, a defineProperty, per call.)
    if (this.execute !== executeMethod) return this.execute(op).then((result) => expected(result, type, op));
    return this.#run(op, (outcome) => expected(settle(outcome), type, op));
  }
}

/** `result` as the result type a typed method expects, else an `internal` HaretError (our bug). */
function expected<T extends OpResult['type']>(result: Committed<OpResult>, type: T, op: TreeOp): ResultOf<T> {
  if (result.type !== type) throw new HaretError('internal', `expected a ${type} result for ${op.type}, got ${result.type}`, true);
  return result as ResultOf<T>;
}

/** `NamespaceClient.prototype.execute`, to tell it from a wrapper set on an instance. */
const executeMethod = NamespaceClient.prototype.execute;

function invalid(reason: string): HaretError {
  return HaretError.fromTree(treeErrors.invalidRequest(reason), false);
}

function operand(other: SetOperand | string): SetOperand {
  return typeof other === 'string' ? { type: 'path', path: other } : other;
}

/**
 * `{ ...result, epoch, view, op }`, built without the spread. On Node 20's V8 (11.3) an object
 * literal that spreads an object and then adds properties costs 0.4-2.4 µs (measured here:
 * `{ ...o, a }` ~0.4 µs, this one 1.2-2.4 µs; ~9-14% of the main thread's busy time in the
 * runtime benchmark's profile), while `Object.assign` into a fresh object and three stores
 * take ~40 ns. Same own properties, same order. `Object.assign` sets where a spread defines,
 * which differs only for an own `__proto__` key (it would set the prototype): such an object
 * takes the spread.
 */
function withPosition(result: OpResult, epoch: number, view: number, op: number): Committed<OpResult> {
  if (Object.hasOwn(result, '__proto__')) return { ...result, epoch, view, op };
  const committed = Object.assign({}, result) as OpResult & { epoch: number; view: number; op: number };
  committed.epoch = epoch;
  committed.view = view;
  committed.op = op;
  return committed;
}

/** A proxy outcome as a result or a thrown HaretError. */
export function settle(outcome: CallOutcome): Committed<OpResult> {
  switch (outcome.type) {
    case 'done': {
      if (outcome.outcome.type === 'error') throw HaretError.fromTree(outcome.outcome.error, true, outcome.outcome.at);
      return withPosition(outcome.outcome, outcome.epoch, outcome.view, outcome.op);
    }
    case 'rejected':
      if (outcome.outcome.type === 'error') throw HaretError.fromTree(outcome.outcome.error, false, outcome.outcome.at);
      throw new HaretError('internal', 'a rejected request came back without an error', false);
    case 'timeout':
      throw new HaretError('timeout', 'no answer from the cluster in time; the op may or may not have executed', 'maybe');
    case 'session_expired':
      throw new HaretError(
        'session_expired',
        outcome.executed === false
          ? 'the cluster does not know the session (expired or evicted); the op did not execute'
          : 'the cluster evicted the session while the op was being retried; an earlier attempt may have executed',
        outcome.executed,
      );
    case 'refused':
      throw new HaretError(outcome.reason, outcome.message, outcome.executed);
    case 'stale_request':
      throw new HaretError('stale_request', `the session had already executed request ${outcome.lastRequestNum}: another client uses this client id; the op may or may not have executed`, 'maybe');
    case 'overloaded':
      throw new HaretError('overloaded', 'too many calls waiting; the op was not sent', false);
    case 'unknown_namespace':
      throw new HaretError('unknown_namespace', `no namespace ${outcome.ns} on this node`, false);
    case 'invalid_call':
      throw new HaretError('invalid_request', outcome.reason, false);
    default:
      return assertNever(outcome, 'proxy outcome');
  }
}
