/**
 * Shape checks for everything a replica receives. A message from a peer or a client is
 * untrusted data: a malformed one is traced and dropped (DESIGN.md convention 6), never
 * allowed to reach a handler where it could trip an assertion. Returns a reason, or null.
 *
 * Fields are read through the shared reader kit (src/base/fields.ts): records are plain
 * objects, fields are own properties, snapshots are brand-checked byte strings, and every
 * protocol number (view, op, commit, epoch, lastNormalView, globalMinAccept, logStart, a
 * checkpoint's op, nonce, committed, request number) is a non-negative integer no larger than
 * `protocolNumberMax` (2^48, src/base/limits.ts; README rule 17). A number beyond it is
 * malformed input, never a state: a forged start_view_change at view 2^53-1 used to be
 * accepted, and the next view change could not move forward (2^53 + 1 === 2^53), so the
 * survivors failed an invariant and lost the group (issue 12).
 *
 * A failed check throws a `Refusal` up to `validateMessage`, which returns its reason, so each
 * check reads as a straight line instead of a chain of `?? null` results.
 */

import { FieldReader, at, objectWords, own, type Fields } from '../base/fields.ts';
import { assertNever } from '../base/assert.ts';
import { protocolNumberMax, type TreeLimits } from '../base/limits.ts';
import { validateOp } from '../tree/validate.ts';
import { leaseClockTicksMax, primaryOf, type ReplicaConfig } from './config.ts';
import type { PeerMessageType } from './messages.ts';

const clientIdMax = 256;

export function validateMessage(message: unknown, config: ReplicaConfig, self: number): string | null {
  try {
    checkMessage(message, config, self);
    return null;
  } catch (thrown: unknown) {
    // Anything but our own refusal is a getter or Proxy trap that threw (or our bug); the
    // thrown value may itself be hostile, so it is not inspected.
    return Refusal.reasonOf(thrown) ?? 'message could not be read';
  }
}

/**
 * A log entry read back from a replica's own storage (issue 13): files are outside input like
 * any message, so an entry is checked as a prepare's would be before it can reach the machine.
 * `op` is the op replay expects; null when the entry is well formed.
 */
export function validateStoredEntry(entry: unknown, op: number, limits: TreeLimits): string | null {
  try {
    checkLogEntry(entry, op, protocolNumberMax, limits);
    return null;
  } catch (thrown: unknown) {
    return Refusal.reasonOf(thrown) ?? 'stored entry could not be read';
  }
}

// ---- unwinding ----------------------------------------------------------------------------

/**
 * Carries a reason from deep inside a check up to `validateMessage`; it never escapes. Not an
 * Error (no stack trace to capture); recognised by a private-field brand, which neither a
 * message nor a Proxy it holds can forge or trap.
 */
class Refusal {
  readonly #reason: string;
  constructor(reason: string) {
    this.#reason = reason;
  }

  static reasonOf(thrown: unknown): string | undefined {
    return typeof thrown === 'object' && thrown !== null && #reason in thrown ? thrown.#reason : undefined;
  }
}

function refuse(reason: string): never {
  throw new Refusal(reason);
}

const read = new FieldReader(refuse, objectWords);

// ---- messages -----------------------------------------------------------------------------

const peerMessageTypes = [
  'prepare',
  'prepare_ok',
  'commit',
  'read_round',
  'read_round_ok',
  'start_view_change',
  'do_view_change',
  'start_view',
  'recovery',
  'recovery_response',
  'get_state',
  'new_state',
] as const satisfies readonly PeerMessageType[];
// Compile-time completeness: a peer message type added to messages.ts but not listed here
// fails the build instead of being refused by every replica.
type Unlisted = Exclude<PeerMessageType, (typeof peerMessageTypes)[number]>;
const peerTypesComplete: [Unlisted] extends [never] ? true : Unlisted = true;
void peerTypesComplete;

function isPeerMessageType(value: unknown): value is PeerMessageType {
  return (peerMessageTypes as readonly unknown[]).includes(value);
}

function checkMessage(message: unknown, config: ReplicaConfig, self: number): void {
  const m = read.record(message, 'message');
  const type = own(m, 'type');
  if (type === 'request') {
    checkRequest(m);
    return;
  }
  // Cut, so a huge type cannot make a huge trace line.
  if (!isPeerMessageType(type)) refuse(`unknown message type ${JSON.stringify(String(type).slice(0, 40))}`);
  const { replica } = counters(m, type, ['epoch', 'replica']);
  if (replica >= config.replicaCount) refuse(`replica ${replica} out of range`);
  if (replica === self) refuse('message from self');
  checkPeer(m, type, replica, config);
}

function checkPeer(m: Fields, type: PeerMessageType, replica: number, config: ReplicaConfig): void {
  const limits = config.treeLimits;
  switch (type) {
    case 'prepare': {
      const { view, op, commit } = counters(m, type, ['view', 'op', 'commit', 'globalMinAccept']);
      fromPrimaryOfView(type, view, replica, config);
      checkLogEntry(read.optional(m, 'entry'), op, view, limits);
      if (commit >= op) refuse('prepare commit must be below its op');
      return;
    }
    case 'prepare_ok':
      counters(m, type, ['view', 'op']);
      return;
    case 'commit':
      fromPrimaryOfView(type, counters(m, type, ['view', 'commit', 'globalMinAccept']).view, replica, config);
      return;
    case 'read_round':
      fromPrimaryOfView(type, counters(m, type, ['view', 'round']).view, replica, config);
      return;
    case 'read_round_ok':
      counters(m, type, ['view', 'round']);
      return;
    case 'start_view_change':
      counters(m, type, ['view']);
      return;
    case 'do_view_change': {
      const { view, lastNormalView, op, commit } = counters(m, type, ['view', 'lastNormalView', 'op', 'commit']);
      if (lastNormalView > view) refuse('lastNormalView beyond view');
      if (primaryOf(view, config) === replica) refuse('do_view_change from the would-be primary itself');
      checkSuffix(m, type, view, op, commit, limits);
      return;
    }
    case 'start_view': {
      const { view, op, commit } = counters(m, type, ['view', 'op', 'commit']);
      fromPrimaryOfView(type, view, replica, config);
      checkSuffix(m, type, view, op, commit, limits);
      return;
    }
    case 'recovery':
      counters(m, type, ['nonce', 'committed']);
      return;
    case 'recovery_response': {
      const { view } = counters(m, type, ['view', 'nonce']);
      checkRecoveryState(read.required(m, 'state', type), at(type, 'state'), view, limits);
      return;
    }
    case 'get_state':
      counters(m, type, ['view', 'op']);
      read.boolean(m, 'whole', type);
      return;
    case 'new_state': {
      const { view, op, commit } = counters(m, type, ['view', 'op', 'commit']);
      read.boolean(m, 'whole', type);
      checkSuffix(m, type, view, op, commit, limits);
      return;
    }
    default:
      return assertNever(type, 'peer message type');
  }
}

/** Reads the named protocol numbers in order (the first bad one is refused), each exactly once. */
function counters<const K extends string>(m: Fields, label: string, names: readonly K[]): Record<K, number> {
  const values = {} as Record<K, number>;
  for (const name of names) values[name] = protocolNumber(m, name, label);
  return values;
}

/**
 * A protocol number: a non-negative safe integer (the reader's own check, so a string or
 * 2^53 is named as such) and at most `protocolNumberMax`, so that no arithmetic a handler does
 * on it (view + 1, logStart + i + 1) can reach the edge of exact doubles.
 */
function protocolNumber(fields: Fields, key: string, label: string): number {
  const value = read.counter(fields, key, label);
  if (value > protocolNumberMax) refuse(`${at(label, key)} ${value} is beyond the protocol maximum 2^48`);
  return value;
}

function fromPrimaryOfView(type: PeerMessageType, view: number, replica: number, config: ReplicaConfig): void {
  if (primaryOf(view, config) !== replica) refuse(`${type} from a replica that is not the primary of its view`);
}

/**
 * A client request, alone or inside a log entry; returns its op record. Its tree op is not
 * checked here: the primary validates it and answers a typed rejection.
 */
function checkRequest(m: Fields, inLog = false): Fields {
  const op = read.recordField(m, 'op', 'request');
  const opType = own(op, 'type');
  if (opType === 'lease_clock') {
    // README rule 21: only a primary makes these, so only a log entry may hold one.
    if (!inLog) refuse('request.op.type lease_clock is made by a primary, never sent');
    if (own(m, 'clientId') !== '' || own(m, 'requestNum') !== 0) refuse('a lease_clock request has client id "" and request number 0');
    const elapsed = own(op, 'elapsedTicks');
    if (typeof elapsed !== 'number' || !Number.isSafeInteger(elapsed) || elapsed < 1 || elapsed > leaseClockTicksMax) refuse('lease_clock elapsedTicks out of range');
    protocolNumber(op, 'through', 'lease_clock');
    return op;
  }
  read.string(m, 'clientId', 'request', 1, clientIdMax);
  const requestNum = protocolNumber(m, 'requestNum', 'request');
  if (opType === 'register') {
    if (requestNum !== 0) refuse('register must use request number 0');
  } else if (opType === 'tree') {
    if (requestNum === 0) refuse('request number 0 is reserved for register');
  } else {
    refuse('request.op.type must be register, tree or (in a log entry) lease_clock');
  }
  return op;
}

// ---- log suffixes -------------------------------------------------------------------------

/**
 * Entries reach the state machine, so their tree ops must be well formed, within the group's
 * own limits (`config.treeLimits`, which the primary checked them against): against the
 * defaults, a namespace configured for larger values would see every backup refuse its
 * prepares forever.
 */
function checkLogEntry(value: unknown, op: number, view: number, limits: TreeLimits): void {
  const entry = read.record(value, 'log entry');
  const entryOp = own(entry, 'op');
  if (entryOp !== op) refuse(`log entry op ${String(entryOp).slice(0, 40)} where ${op} was expected`);
  const entryView = protocolNumber(entry, 'view', 'log entry');
  if (entryView > view) refuse('log entry view is beyond its message view');
  const requests = read.array(entry, 'requests', 'log entry');
  if (requests.length === 0) refuse('log entry has no requests');
  for (const request of requests) {
    const requestOp = checkRequest(read.record(request, 'log entry request'), true);
    if (own(requestOp, 'type') === 'lease_clock' && (own(requestOp, 'through') as number) >= op) refuse('lease_clock through must be before its own entry');
    if (own(requestOp, 'type') === 'tree' && !validateOp(own(requestOp, 'op'), limits).ok) refuse('log entry holds a malformed tree op');
  }
}

/**
 * A log suffix: `op` = logStart + entries, commit ≤ op, a checkpoint (if any) at logStart.
 * `fields` is the message, or the state of a recovery_response; `op` and `commit` were read.
 */
function checkSuffix(fields: Fields, label: string, view: number, op: number, commit: number, limits: TreeLimits): void {
  const logStart = protocolNumber(fields, 'logStart', label);
  const entries = read.array(fields, 'entries', label);
  for (let i = 0; i < entries.length; i++) checkLogEntry(entries[i], logStart + i + 1, view, limits);
  const checkpointOp = readCheckpoint(read.required(fields, 'checkpoint', label), at(label, 'checkpoint'));
  if (op !== logStart + entries.length) refuse('suffix op does not match logStart + entries');
  if (commit > op) refuse('suffix commit beyond op');
  if (checkpointOp !== null && checkpointOp !== logStart) refuse('suffix checkpoint is not at logStart');
}

/** A checkpoint image or null (none); returns the op it was taken at. */
function readCheckpoint(value: unknown, label: string): number | null {
  if (value === null) return null;
  const image = read.record(value, label);
  const op = protocolNumber(image, 'op', label);
  read.bytes(image, 'snapshot', label);
  return op;
}

function checkRecoveryState(value: unknown, label: string, view: number, limits: TreeLimits): void {
  if (value === null) return;
  const state = read.record(value, label);
  const { op, commit } = counters(state, label, ['op', 'commit']);
  checkSuffix(state, label, view, op, commit, limits);
}
