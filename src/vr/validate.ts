/**
 * Shape checks for everything a replica receives. A message from a peer or a client is
 * untrusted data: a malformed one is traced and dropped (DESIGN.md convention 6), never
 * allowed to reach a handler where it could trip an assertion. Returns a reason, or null.
 */

import type { TreeLimits } from '../base/limits.ts';
import { validateOp } from '../tree/validate.ts';
import { primaryOf, type ReplicaConfig } from './config.ts';
import type { CheckpointImage, LogEntry, Request } from './messages.ts';

type Fields = Record<string, unknown>;

const clientIdMax = 256;

export function validateMessage(message: unknown, config: ReplicaConfig, self: number): string | null {
  try {
    if (typeof message !== 'object' || message === null) return 'message is not an object';
    const m = message as Fields;
    if (m['type'] === 'request') return validateRequest(m);
    const problem = counters(m, ['epoch', 'replica']);
    if (problem !== null) return problem;
    const replica = m['replica'] as number;
    if (replica >= config.replicaCount) return `replica ${replica} out of range`;
    if (replica === self) return 'message from self';
    return validatePeer(m, config);
  } catch {
    return 'message could not be read';
  }
}

function validatePeer(m: Fields, config: ReplicaConfig): string | null {
  switch (m['type']) {
    case 'prepare':
      return (
        counters(m, ['view', 'op', 'commit', 'globalMinAccept']) ??
        fromPrimaryOfView(m, config) ??
        logEntry(m['entry'], m['op'] as number, m['view'] as number, config.treeLimits) ??
        ((m['commit'] as number) >= (m['op'] as number) ? 'prepare commit must be below its op' : null)
      );
    case 'prepare_ok':
      return counters(m, ['view', 'op']);
    case 'commit':
      return counters(m, ['view', 'commit', 'globalMinAccept']) ?? fromPrimaryOfView(m, config);
    case 'start_view_change':
      return counters(m, ['view']);
    case 'do_view_change':
      return (
        counters(m, ['view', 'lastNormalView', 'op', 'commit']) ??
        ((m['lastNormalView'] as number) > (m['view'] as number) ? 'lastNormalView beyond view' : null) ??
        (primaryOf(m['view'] as number, config) === (m['replica'] as number) ? 'do_view_change from the would-be primary itself' : null) ??
        suffix(m, m['view'] as number, config.treeLimits)
      );
    case 'start_view':
      return counters(m, ['view', 'op', 'commit']) ?? fromPrimaryOfView(m, config) ?? suffix(m, m['view'] as number, config.treeLimits);
    case 'recovery':
      return counters(m, ['nonce', 'committed']);
    case 'recovery_response':
      return counters(m, ['view', 'nonce']) ?? recoveryState(m['state'], m['view'] as number, config.treeLimits);
    case 'get_state':
      return counters(m, ['view', 'op']) ?? flag(m, 'whole');
    case 'new_state':
      return counters(m, ['view', 'op', 'commit']) ?? flag(m, 'whole') ?? suffix(m, m['view'] as number, config.treeLimits);
    default:
      return `unknown message type ${JSON.stringify(String(m['type']).slice(0, 40))}`;
  }
}

function counters(m: Fields, names: readonly string[]): string | null {
  for (const name of names) {
    const value = m[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) return `${String(m['type'])}.${name} must be a non-negative integer`;
  }
  return null;
}

function flag(m: Fields, name: string): string | null {
  return typeof m[name] === 'boolean' ? null : `${String(m['type'])}.${name} must be a boolean`;
}

function fromPrimaryOfView(m: Fields, config: ReplicaConfig): string | null {
  return primaryOf(m['view'] as number, config) === m['replica'] ? null : `${String(m['type'])} from a replica that is not the primary of its view`;
}

function validateRequest(m: Fields): string | null {
  const clientId = m['clientId'];
  if (typeof clientId !== 'string' || clientId.length === 0 || clientId.length > clientIdMax) return 'request.clientId must be a string of 1..256 characters';
  const requestNum = m['requestNum'];
  if (typeof requestNum !== 'number' || !Number.isSafeInteger(requestNum) || requestNum < 0) return 'request.requestNum must be a non-negative integer';
  const op = m['op'];
  if (typeof op !== 'object' || op === null) return 'request.op must be an object';
  const opType = (op as Fields)['type'];
  if (opType === 'register') return requestNum === 0 ? null : 'register must use request number 0';
  if (opType !== 'tree') return 'request.op.type must be register or tree';
  if (requestNum === 0) return 'request number 0 is reserved for register';
  // The tree op itself is validated by the primary, which answers a typed rejection.
  return null;
}

/**
 * Entries reach the state machine, so their tree ops must be well formed, within the group's
 * own limits (`config.treeLimits`, which the primary checked them against): against the
 * defaults, a namespace configured for larger values would see every backup refuse its
 * prepares forever.
 */
function logEntry(value: unknown, op: number, view: number, limits: TreeLimits): string | null {
  if (typeof value !== 'object' || value === null) return 'log entry is not an object';
  const entry = value as Fields;
  if (entry['op'] !== op) return `log entry op ${String(entry['op'])} where ${op} was expected`;
  const entryView = entry['view'];
  if (typeof entryView !== 'number' || !Number.isSafeInteger(entryView) || entryView < 0 || entryView > view) return 'log entry view is invalid';
  const requests = entry['requests'];
  if (!Array.isArray(requests) || requests.length === 0) return 'log entry has no requests';
  for (const request of requests as unknown[]) {
    if (typeof request !== 'object' || request === null) return 'log entry request is not an object';
    const problem = validateRequest(request as Fields);
    if (problem !== null) return problem;
    const op = (request as Request).op;
    if (op.type === 'tree' && !validateOp(op.op, limits).ok) return 'log entry holds a malformed tree op';
  }
  return null;
}

function entries(value: unknown, start: number, view: number, limits: TreeLimits): string | null {
  if (!Array.isArray(value)) return 'entries must be an array';
  for (let i = 0; i < value.length; i++) {
    const problem = logEntry(value[i], start + i + 1, view, limits);
    if (problem !== null) return problem;
  }
  return null;
}

function checkpoint(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'object') return 'checkpoint must be an object or null';
  const image = value as CheckpointImage;
  if (!Number.isSafeInteger(image.op) || image.op < 0) return 'checkpoint.op must be a non-negative integer';
  if (!(image.snapshot instanceof Uint8Array)) return 'checkpoint.snapshot must be bytes';
  return null;
}

/** A log suffix: `op` = logStart + entries, commit ≤ op, a checkpoint (if any) at logStart. */
function suffix(m: Fields, view: number, limits: TreeLimits): string | null {
  const problem = counters(m, ['logStart']) ?? entries(m['entries'], m['logStart'] as number, view, limits) ?? checkpoint(m['checkpoint']);
  if (problem !== null) return problem;
  const logStart = m['logStart'] as number;
  if ((m['op'] as number) !== logStart + (m['entries'] as LogEntry[]).length) return 'suffix op does not match logStart + entries';
  if ((m['commit'] as number) > (m['op'] as number)) return 'suffix commit beyond op';
  const image = m['checkpoint'] as CheckpointImage | null;
  if (image !== null && image.op !== logStart) return 'suffix checkpoint is not at logStart';
  return null;
}

function recoveryState(value: unknown, view: number, limits: TreeLimits): string | null {
  if (value === null) return null;
  if (typeof value !== 'object') return 'recovery state must be an object or null';
  return counters({ ...(value as Fields), type: 'recovery_response.state' }, ['op', 'commit']) ?? suffix({ ...(value as Fields), type: 'recovery_response.state' }, view, limits);
}
