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

export class NamespaceClient {
  readonly namespace: string;
  readonly #call: CallPath;
  readonly #limits: TreeLimits;
  readonly #watch: WatchPath | undefined;

  constructor(namespace: string, call: CallPath, limits: TreeLimits, watch?: WatchPath) {
    this.namespace = namespace;
    this.#call = call;
    this.#limits = limits;
    this.#watch = watch;
  }

  /** Runs any operation; resolves with its result, rejects with a HaretError. */
  async execute(op: TreeOp): Promise<Committed<OpResult>> {
    const checked = validateOp(op, this.#limits);
    if (!checked.ok) throw HaretError.fromTree(checked.error, false);
    const outcome = await this.#call(this.namespace, checked.op);
    return settle(outcome);
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
    const op: TreeOp = {
      type: 'create',
      path,
      nodeType,
      ...(leaseId === undefined ? {} : { lease: leaseId }),
      ...(sequential === undefined ? {} : { sequential }),
    };
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

  async #expect<T extends OpResult['type']>(op: TreeOp, type: T): Promise<ResultOf<T>> {
    const result = await this.execute(op);
    if (result.type !== type) throw new HaretError('internal', `expected a ${type} result for ${op.type}, got ${result.type}`, true);
    return result as ResultOf<T>;
  }
}

function invalid(reason: string): HaretError {
  return HaretError.fromTree(treeErrors.invalidRequest(reason), false);
}

function operand(other: SetOperand | string): SetOperand {
  return typeof other === 'string' ? { type: 'path', path: other } : other;
}

/** A proxy outcome as a result or a thrown HaretError. */
export function settle(outcome: CallOutcome): Committed<OpResult> {
  switch (outcome.type) {
    case 'done': {
      const position: LogPosition = { epoch: outcome.epoch, view: outcome.view, op: outcome.op };
      if (outcome.outcome.type === 'error') throw HaretError.fromTree(outcome.outcome.error, true, outcome.outcome.at);
      return { ...outcome.outcome, ...position };
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
