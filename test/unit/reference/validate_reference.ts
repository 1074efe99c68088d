/**
 * FROZEN REFERENCE: a verbatim copy of src/tree/validate.ts, src/tree/path.ts (the helpers it
 * uses) and src/base/fields.ts as they were at commit bfbba3e, before validateOp's fast path.
 * test/unit/tree_validate_fast.test.ts checks that the live validateOp gives exactly the
 * same result as this one on generated valid and hostile input. Do not edit to match the
 * live code: a difference is what the test is for.
 */
/**
 * Validation of untrusted operations: whatever arrives from msgpack, a structured clone or an
 * embedding application becomes either a well-formed `TreeOp` or a typed `TreeError`.
 *
 * This is the gate in front of the log: a request over a static limit or of the wrong shape
 * must be refused here, before it is replicated, because `applyOp` trusts its input. So the
 * validator
 * - never throws: hostile getters and Proxies end as `invalid_request`, never as a crash of
 *   the actor that called it;
 * - reads each field of the input exactly once, as an own property, and builds a new,
 *   canonical object from what it read, so a getter cannot show one value to the check and
 *   another to the log, a polluted `Object.prototype` cannot supply a field, and unknown
 *   fields never reach the log;
 * - is cheap, because it runs for every client request: no serialisation, no byte copies
 *   (values are kept by reference, as everywhere in the tree), and work bounded by the limits.
 */

import { assertNever } from '../../../src/base/assert.ts';
import { FieldReader, at, byteLengthOf, isCounter, isPlainObject, objectWords, type Fields } from './fields_reference.ts';
import { treeErrors, type TreeError } from '../../../src/tree/errors.ts';
import { defaultTreeLimits, protocolNumberMax, type TreeLimits } from '../../../src/base/limits.ts';
import { isNodeType, nodeTypes, type NodeType } from '../../../src/tree/node_type.ts';
import {
  leaseOpTypes,
  readOpTypes,
  writeOpTypes,
  type CreateOp,
  type LeaseOp,
  type Bytes,
  type Guard,
  type MultiCasOp,
  type SetOperand,
  type SetUnionOp,
  type SimpleOp,
  type TreeOp,
  type TreeOpType,
} from '../../../src/tree/ops.ts';
import { checkPath, utf8Length } from './path_reference.ts';

export type ValidationResult = { readonly ok: true; readonly op: TreeOp } | { readonly ok: false; readonly error: TreeError };

/**
 * Validates untrusted input as a tree operation. Never throws.
 *
 * Errors: `invalid_request` for a wrong shape (not a plain object, unknown type, missing or
 * mistyped field, nested transaction), `bad_path` / `too_large` from `checkPath` for a path,
 * `too_large` for a value, a transaction, a union or the whole request over its limit.
 */
export function validateOp(input: unknown, limits: TreeLimits = defaultTreeLimits): ValidationResult {
  try {
    const budget: Budget = { limits, bytes: 0 };
    return { ok: true, op: readOp(input, budget) };
  } catch (thrown: unknown) {
    const error = Rejection.errorOf(thrown);
    if (error !== undefined) return { ok: false, error };
    // A getter, a Proxy trap or our own bug threw. The thrown value may itself be hostile,
    // so it is not inspected at all.
    return { ok: false, error: treeErrors.invalidRequest('operation could not be read (a property access threw)') };
  }
}

// ---- unwinding ----------------------------------------------------------------------------

/**
 * Carries a rejection from deep inside the validator up to `validateOp`, which turns it into a
 * result; it never escapes. Not an `Error`, so throwing it captures no stack trace. Private to
 * this module, so input cannot forge one.
 */
class Rejection {
  readonly #error: TreeError;
  constructor(error: TreeError) {
    this.#error = error;
  }

  /**
   * The error a thrown Rejection carries, else undefined. A private-field brand check, not
   * `instanceof`: a hostile getter may throw a Proxy, and `instanceof` would run its
   * getPrototypeOf trap, which may throw again, this time out of the catch block.
   */
  static errorOf(thrown: unknown): TreeError | undefined {
    return typeof thrown === 'object' && thrown !== null && #error in thrown ? thrown.#error : undefined;
  }
}

function reject(error: TreeError): never {
  throw new Rejection(error);
}

function invalid(reason: string): never {
  return reject(treeErrors.invalidRequest(reason));
}

// ---- request size -------------------------------------------------------------------------

/** Estimated encoding overhead of one op, one guard or one literal set member. */
const itemOverheadBytes = 16;

/**
 * The running estimate of the request's encoded size. Charged as fields are read, so an
 * oversized request is refused as soon as it crosses the limit, without reading the rest.
 */
type Budget = { readonly limits: TreeLimits; bytes: number };

function charge(budget: Budget, bytes: number): void {
  budget.bytes += bytes;
  if (budget.bytes > budget.limits.requestBytesMax) reject(treeErrors.tooLarge('request_bytes', budget.limits.requestBytesMax));
}

// ---- shapes -------------------------------------------------------------------------------

/** Every field is read through the shared kit (own fields only); its refusals are `invalid_request`. */
const read = new FieldReader(invalid, objectWords);

/**
 * A record, as the kit defines one (a plain object, `Object.create(null)` too), refused in the
 * tree's own words, which clients see: what arrived instead (`got null`, `got an array`), or
 * that an object of another kind (a class instance, a Map, a Date) is not a plain one.
 */
function readObject(value: unknown, label: string): Fields {
  if (isPlainObject(value)) return value;
  if (typeof value !== 'object' || value === null) {
    return invalid(`${label} must be an object, got ${value === null ? 'null' : typeof value}`);
  }
  if (Array.isArray(value)) return invalid(`${label} must be an object, got an array`);
  return invalid(`${label} must be a plain object`);
}

/** A string that is a canonical path within the limits; its bytes count toward the request. */
function readPathValue(value: unknown, label: string, budget: Budget): string {
  const path = read.stringValue(value, label);
  const error = checkPath(path, budget.limits);
  if (error !== null) reject(error);
  charge(budget, utf8Length(path));
  return path;
}

function readPath(fields: Fields, key: string, prefix: string, budget: Budget): string {
  return readPathValue(read.required(fields, key, prefix), at(prefix, key), budget);
}

// ---- bytes --------------------------------------------------------------------------------

/**
 * A byte string within `valueBytesMax`, kept by reference; its bytes count toward the request.
 * The kit brand-checks it and measures its true length; over the limit is `too_large`, not
 * the kit's `invalid_request`, so the limit is checked here.
 */
function readBytesValue(value: unknown, label: string, budget: Budget): Bytes {
  const bytes = read.bytesValue(value, label);
  const length = byteLengthOf(bytes);
  if (length > budget.limits.valueBytesMax) reject(treeErrors.tooLarge('value_bytes', budget.limits.valueBytesMax));
  charge(budget, length);
  return bytes;
}

function readBytes(fields: Fields, key: string, prefix: string, budget: Budget): Bytes {
  return readBytesValue(read.required(fields, key, prefix), at(prefix, key), budget);
}

/** A literal set: each member is a byte string and costs the per-member overhead too. */
function readMembers(value: unknown, label: string, budget: Budget): Bytes[] {
  const members = read.arrayValue(value, label);
  const count = members.length;
  const result: Bytes[] = [];
  for (let i = 0; i < count; i++) {
    charge(budget, itemOverheadBytes);
    result.push(readBytesValue(members[i], `${label}[${i}]`, budget));
  }
  return result;
}

// ---- operations ---------------------------------------------------------------------------

const treeOpTypes: ReadonlySet<string> = new Set<string>([...readOpTypes, ...writeOpTypes, ...leaseOpTypes, 'multi_cas']);

function isTreeOpType(value: string): value is TreeOpType {
  return treeOpTypes.has(value);
}

function readType(fields: Fields, prefix: string): TreeOpType {
  const type = read.string(fields, 'type', prefix);
  if (!isTreeOpType(type)) {
    const where = prefix === '' ? '' : `${prefix}: `;
    return invalid(`${where}unknown operation type ${JSON.stringify(type.slice(0, 64))}`);
  }
  return type;
}

/** The top level: any operation, a transaction included. */
function readOp(input: unknown, budget: Budget): TreeOp {
  const fields = readObject(input, 'operation');
  const type = readType(fields, '');
  charge(budget, itemOverheadBytes);
  if (type === 'multi_cas') return readMultiCas(fields, budget);
  if (type === 'lease_grant' || type === 'lease_keepalive' || type === 'lease_revoke') return readLeaseOp(fields, type, budget);
  return readSimpleOp(fields, type, '', budget);
}

/** Lease ops (top level only). TTL bounds are the namespace's limits; ids are lease numbers. */
function readLeaseOp(fields: Fields, type: LeaseOp['type'], budget: Budget): LeaseOp {
  const { limits } = budget;
  switch (type) {
    case 'lease_grant': {
      const ttlMs = read.required(fields, 'ttlMs', '');
      if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < limits.leaseTtlMinMs || ttlMs > limits.leaseTtlMaxMs) {
        return invalid(`ttlMs must be an integer from ${limits.leaseTtlMinMs} to ${limits.leaseTtlMaxMs}`);
      }
      return { type, ttlMs };
    }
    case 'lease_keepalive': {
      const ids = read.array(fields, 'ids', '');
      if (ids.length === 0) return invalid('ids must name at least one lease');
      if (ids.length > limits.keepAliveIdsMax) reject(treeErrors.tooLarge('keepalive_ids', limits.keepAliveIdsMax));
      const valid: number[] = [];
      for (let i = 0; i < ids.length; i++) valid.push(readLeaseIdValue(ids[i], `ids[${i}]`));
      charge(budget, 8 * valid.length);
      return { type, ids: valid };
    }
    case 'lease_revoke':
      return { type, id: readLeaseIdValue(read.required(fields, 'id', ''), 'id') };
    default:
      return assertNever(type, 'lease op type');
  }
}

/** Lease ids are positive protocol-sized integers (the namespace numbers them from 1). */
function readLeaseIdValue(value: unknown, label: string): number {
  if (!isCounter(value) || value < 1 || value > protocolNumberMax) return invalid(`${label} must be a lease id (an integer from 1 to 2^48)`);
  return value;
}

/** create's options: both absent from the canonical op unless used. */
function readCreate(fields: Fields, prefix: string, budget: Budget): CreateOp {
  const path = readPath(fields, 'path', prefix, budget);
  const nodeType = readNodeType(fields, prefix);
  const leaseValue = read.optional(fields, 'lease');
  const sequentialValue = read.optional(fields, 'sequential');
  const sequential = sequentialValue === undefined || sequentialValue === null ? false : read.booleanValue(sequentialValue, at(prefix, 'sequential'));
  if (sequential && path === '/') return invalid(`${at(prefix, 'path')}: a sequential create needs a name prefix below the root`);
  if (leaseValue === undefined || leaseValue === null) return sequential ? { type: 'create', path, nodeType, sequential } : { type: 'create', path, nodeType };
  const lease = readLeaseIdValue(leaseValue, at(prefix, 'lease'));
  if (nodeType === 'directory') return invalid(`${at(prefix, 'nodeType')}: an ephemeral node cannot be a directory (it could never have children)`);
  return sequential ? { type: 'create', path, nodeType, lease, sequential } : { type: 'create', path, nodeType, lease };
}

/**
 * One non-transaction operation, rebuilt field by field in the order of its type in ops.ts.
 * `prefix` locates it in error reasons (`ops[2]` inside a transaction).
 */
function readSimpleOp(fields: Fields, type: SimpleOp['type'], prefix: string, budget: Budget): SimpleOp {
  switch (type) {
    case 'list':
      return { type, path: readPath(fields, 'path', prefix, budget), recursive: readRecursive(fields, prefix) };
    case 'stat':
    case 'blob_get':
    case 'blob_size':
    case 'queue_front':
    case 'queue_back':
    case 'queue_len':
    case 'delete':
    case 'queue_pop':
      return { type, path: readPath(fields, 'path', prefix, budget) };
    case 'set_contains':
    case 'blob_put':
    case 'queue_push':
    case 'set_insert':
    case 'set_remove':
      return { type, path: readPath(fields, 'path', prefix, budget), value: readBytes(fields, 'value', prefix, budget) };
    case 'create':
      return readCreate(fields, prefix, budget);
    case 'set_union':
      return readSetUnion(fields, prefix, budget);
    case 'set_intersection':
    case 'set_difference':
    case 'set_symmetric_difference':
      return {
        type,
        path1: readPath(fields, 'path1', prefix, budget),
        path2: readPath(fields, 'path2', prefix, budget),
      };
    case 'set_is_subset':
    case 'set_is_superset':
      return { type, path: readPath(fields, 'path', prefix, budget), other: readSetOperand(fields, prefix, budget) };
    default:
      return assertNever(type, 'operation type');
  }
}

/**
 * Optional on the wire: absent, undefined or nil (docs/protocol.md section 4: nil means
 * absent) is false; explicit in the canonical op.
 */
function readRecursive(fields: Fields, prefix: string): boolean {
  const recursive = read.optional(fields, 'recursive');
  if (recursive === undefined || recursive === null) return false;
  return read.booleanValue(recursive, at(prefix, 'recursive'));
}

function readNodeType(fields: Fields, prefix: string): NodeType {
  const nodeType = read.required(fields, 'nodeType', prefix);
  if (!isNodeType(nodeType)) return invalid(`${at(prefix, 'nodeType')} must be one of ${nodeTypes.join(', ')}`);
  return nodeType;
}

/** Operand count is checked before any operand is read, so a huge union costs nothing. */
function readSetUnion(fields: Fields, prefix: string, budget: Budget): SetUnionOp {
  const paths = read.array(fields, 'paths', prefix);
  const sets = read.array(fields, 'sets', prefix);
  const pathCount = paths.length;
  const setCount = sets.length;
  if (pathCount + setCount > budget.limits.unionOperandsMax) {
    reject(treeErrors.tooLarge('union_operands', budget.limits.unionOperandsMax));
  }
  const pathsLabel = at(prefix, 'paths');
  const setsLabel = at(prefix, 'sets');
  const validPaths: string[] = [];
  for (let i = 0; i < pathCount; i++) validPaths.push(readPathValue(paths[i], `${pathsLabel}[${i}]`, budget));
  const validSets: Bytes[][] = [];
  for (let i = 0; i < setCount; i++) validSets.push(readMembers(sets[i], `${setsLabel}[${i}]`, budget));
  return { type: 'set_union', paths: validPaths, sets: validSets };
}

function readSetOperand(fields: Fields, prefix: string, budget: Budget): SetOperand {
  const label = at(prefix, 'other');
  const operand = readObject(read.required(fields, 'other', prefix), label);
  const type = read.required(operand, 'type', label);
  if (type === 'path') return { type, path: readPath(operand, 'path', label, budget) };
  if (type === 'literal') {
    return { type, members: readMembers(read.required(operand, 'members', label), at(label, 'members'), budget) };
  }
  return invalid(`${at(label, 'type')} must be "path" or "literal"`);
}

// ---- transactions -------------------------------------------------------------------------

/** Counts are checked before any guard or op is read, so a huge transaction costs nothing. */
function readMultiCas(fields: Fields, budget: Budget): MultiCasOp {
  const guards = read.array(fields, 'guards', '');
  const ops = read.array(fields, 'ops', '');
  const guardCount = guards.length;
  const opCount = ops.length;
  if (guardCount > budget.limits.txnGuardsMax) reject(treeErrors.tooLarge('txn_guards', budget.limits.txnGuardsMax));
  if (opCount > budget.limits.txnOpsMax) reject(treeErrors.tooLarge('txn_ops', budget.limits.txnOpsMax));
  const validGuards: Guard[] = [];
  for (let i = 0; i < guardCount; i++) validGuards.push(readGuard(guards[i], `guards[${i}]`, budget));
  const validOps: SimpleOp[] = [];
  for (let i = 0; i < opCount; i++) validOps.push(readInnerOp(ops[i], `ops[${i}]`, budget));
  return { type: 'multi_cas', guards: validGuards, ops: validOps };
}

function readGuard(value: unknown, label: string, budget: Budget): Guard {
  const fields = readObject(value, label);
  charge(budget, itemOverheadBytes);
  return { path: readPath(fields, 'path', label, budget), version: readVersion(fields, label) };
}

/**
 * Versions are the kit's counters (non-negative safe integers); -0 is folded to 0 so the
 * logged op is canonical. The refusal keeps the tree's wording, which clients already see.
 */
function readVersion(fields: Fields, prefix: string): number {
  const version = read.required(fields, 'version', prefix);
  if (!isCounter(version)) return invalid(`${at(prefix, 'version')} must be a non-negative safe integer`);
  return version + 0;
}

/** An op inside a transaction: any operation but another transaction. */
function readInnerOp(value: unknown, label: string, budget: Budget): SimpleOp {
  const fields = readObject(value, label);
  const type = readType(fields, label);
  if (type === 'multi_cas') return invalid(`${label}: transactions do not nest`);
  if (type === 'lease_grant' || type === 'lease_keepalive' || type === 'lease_revoke') return invalid(`${label}: lease operations cannot be part of a transaction`);
  charge(budget, itemOverheadBytes);
  return readSimpleOp(fields, type, label, budget);
}
