/**
 * Tree operations and their results as plain data (DATA_MODEL.md "Operations").
 *
 * Everything here is a discriminated union on `type`, made only of strings, numbers,
 * booleans, arrays, plain objects and Uint8Array, so an operation can sit in a log entry,
 * cross a worker boundary by structured clone and go over the wire as msgpack unchanged.
 * Byte strings (blob values, queue and set elements) are always Uint8Array.
 */

import type { TreeError } from './errors.ts';
import type { NodeType } from './node_type.ts';

export type Bytes = Uint8Array;

/** The second operand of isSubset / isSuperset: another set by path, or a literal set. */
export type SetOperand =
  | { readonly type: 'path'; readonly path: string }
  | { readonly type: 'literal'; readonly members: readonly Bytes[] };

// ---- reads: never change the tree or any version ----------------------------------------

export type ListOp = { readonly type: 'list'; readonly path: string; readonly recursive: boolean };
export type StatOp = { readonly type: 'stat'; readonly path: string };
export type BlobGetOp = { readonly type: 'blob_get'; readonly path: string };
export type BlobSizeOp = { readonly type: 'blob_size'; readonly path: string };
export type QueueFrontOp = { readonly type: 'queue_front'; readonly path: string };
export type QueueBackOp = { readonly type: 'queue_back'; readonly path: string };
export type QueueLenOp = { readonly type: 'queue_len'; readonly path: string };
export type SetContainsOp = { readonly type: 'set_contains'; readonly path: string; readonly value: Bytes };
export type SetUnionOp = {
  readonly type: 'set_union';
  readonly paths: readonly string[];
  readonly sets: readonly (readonly Bytes[])[];
};
/** Binary set algebra; argument order is kept: difference is path1 − path2. */
export type SetBinaryOp = {
  readonly type: 'set_intersection' | 'set_difference' | 'set_symmetric_difference';
  readonly path1: string;
  readonly path2: string;
};
export type SetCompareOp = {
  readonly type: 'set_is_subset' | 'set_is_superset';
  readonly path: string;
  readonly other: SetOperand;
};

export type ReadOp =
  | ListOp
  | StatOp
  | BlobGetOp
  | BlobSizeOp
  | QueueFrontOp
  | QueueBackOp
  | QueueLenOp
  | SetContainsOp
  | SetUnionOp
  | SetBinaryOp
  | SetCompareOp;

// ---- writes ----------------------------------------------------------------------------

/**
 * `lease`: an ephemeral node, deleted with its lease (src/tree/leases.ts); never a directory,
 * so it never has children (ZooKeeper's rule). `sequential`: the name made is `path` followed
 * by a zero-padded 10-digit counter, unique and increasing within the parent, returned as the
 * result's `path`. Both are absent (never false or null) in the canonical op when not used.
 */
export type CreateOp = {
  readonly type: 'create';
  readonly path: string;
  readonly nodeType: NodeType;
  readonly lease?: number;
  readonly sequential?: boolean;
};
export type DeleteOp = { readonly type: 'delete'; readonly path: string };
export type BlobPutOp = { readonly type: 'blob_put'; readonly path: string; readonly value: Bytes };
export type QueuePushOp = { readonly type: 'queue_push'; readonly path: string; readonly value: Bytes };
export type QueuePopOp = { readonly type: 'queue_pop'; readonly path: string };
export type SetInsertOp = { readonly type: 'set_insert'; readonly path: string; readonly value: Bytes };
export type SetRemoveOp = { readonly type: 'set_remove'; readonly path: string; readonly value: Bytes };

export type WriteOp = CreateOp | DeleteOp | BlobPutOp | QueuePushOp | QueuePopOp | SetInsertOp | SetRemoveOp;

/** Any single operation; these may appear inside a transaction. */
export type SimpleOp = ReadOp | WriteOp;

// ---- leases (src/tree/leases.ts): never inside a transaction --------------------------------

/** A lease of `ttlMs`, owned by the requesting client (the client id's host prefix). */
export type LeaseGrantOp = { readonly type: 'lease_grant'; readonly ttlMs: number };
/** Restarts the TTL of each of `ids` that is alive and the requester's. */
export type LeaseKeepAliveOp = { readonly type: 'lease_keepalive'; readonly ids: readonly number[] };
/** Ends the lease now: its ephemeral nodes are deleted in this op. */
export type LeaseRevokeOp = { readonly type: 'lease_revoke'; readonly id: number };

export type LeaseOp = LeaseGrantOp | LeaseKeepAliveOp | LeaseRevokeOp;

export const leaseOpTypes = ['lease_grant', 'lease_keepalive', 'lease_revoke'] as const satisfies readonly LeaseOp['type'][];

export function isLeaseOp(op: TreeOp): op is LeaseOp {
  return op.type === 'lease_grant' || op.type === 'lease_keepalive' || op.type === 'lease_revoke';
}

export type Guard = { readonly path: string; readonly version: number };

/**
 * An atomic, isolated transaction: every guard is checked against the tree as it is before
 * the transaction, then the ops apply in order (reads see earlier writes of the same
 * transaction); any failure aborts the whole transaction and leaves the tree unchanged.
 */
export type MultiCasOp = {
  readonly type: 'multi_cas';
  readonly guards: readonly Guard[];
  readonly ops: readonly SimpleOp[];
};

export type TreeOp = SimpleOp | MultiCasOp | LeaseOp;
export type TreeOpType = TreeOp['type'];

export const readOpTypes = [
  'list',
  'stat',
  'blob_get',
  'blob_size',
  'queue_front',
  'queue_back',
  'queue_len',
  'set_contains',
  'set_union',
  'set_intersection',
  'set_difference',
  'set_symmetric_difference',
  'set_is_subset',
  'set_is_superset',
] as const satisfies readonly ReadOp['type'][];

export const writeOpTypes = [
  'create',
  'delete',
  'blob_put',
  'queue_push',
  'queue_pop',
  'set_insert',
  'set_remove',
] as const satisfies readonly WriteOp['type'][];

/** A set, not the list: every request applied asks (`isWriteOp`), and a list is searched in order. */
const readOpTypeSet: ReadonlySet<string> = new Set<string>(readOpTypes);

export function isReadOp(op: TreeOp): op is ReadOp {
  return readOpTypeSet.has(op.type);
}

/** True when the op can change the state (a transaction counts if any of its ops can; every lease op does). */
export function isWriteOp(op: TreeOp): boolean {
  if (op.type !== 'multi_cas') return !readOpTypeSet.has(op.type);
  for (const inner of op.ops) if (!readOpTypeSet.has(inner.type)) return true;
  return false;
}

// ---- results -----------------------------------------------------------------------------

export type ListEntry = {
  readonly name: string;
  /** Absolute path of the entry. */
  readonly path: string;
  readonly nodeType: NodeType;
  readonly version: number;
};

export type OpResult =
  /**
   * create (the new node's version; `path`, the name made, only for a sequential create),
   * delete (the deleted node's last version), blob_put, queue_push.
   */
  | { readonly type: 'ok'; readonly version: number; readonly path?: string }
  /** lease_grant (the new lease), lease_revoke (the lease ended; `nodes`: ephemeral nodes deleted, 0 for a grant). */
  | { readonly type: 'lease'; readonly id: number; readonly ttlMs: number; readonly nodes: number }
  /** lease_keepalive: per id asked, in order, true when it was alive and is renewed. */
  | { readonly type: 'lease_kept'; readonly alive: readonly boolean[] }
  /** blob_get. */
  | { readonly type: 'blob'; readonly value: Bytes; readonly version: number }
  /** queue_pop, queue_front, queue_back: null when the queue is empty. */
  | { readonly type: 'element'; readonly value: Bytes | null; readonly version: number }
  /** blob_size (bytes), queue_len (elements). */
  | { readonly type: 'count'; readonly count: number; readonly version: number }
  /** set_insert (inserted?), set_remove (was present?), set_contains; version of the set. */
  | { readonly type: 'bool'; readonly value: boolean; readonly version: number }
  /** set_is_subset, set_is_superset: computed over several nodes, so no single version. */
  | { readonly type: 'answer'; readonly value: boolean }
  /** set algebra: members in ascending byte order. */
  | { readonly type: 'set'; readonly members: readonly Bytes[] }
  /** list: directory entries in ascending name order (recursive: depth-first pre-order). */
  | { readonly type: 'list'; readonly entries: readonly ListEntry[]; readonly version: number }
  /** stat: size is bytes for a blob, elements for a queue or set, children for a directory. */
  | { readonly type: 'stat'; readonly nodeType: NodeType; readonly version: number; readonly size: number }
  /** multi_cas: one result per op, in order. */
  | { readonly type: 'txn'; readonly results: readonly OpResult[] };

/**
 * A failed operation. In a transaction `at` is the index of the op that failed; it is
 * absent when a guard failed or the failure was not in a transaction.
 */
export type OpFailure = { readonly type: 'error'; readonly error: TreeError; readonly at?: number };

export type OpOutcome = OpResult | OpFailure;
