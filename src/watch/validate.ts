/**
 * Untrusted input of the watch hub: the hub's limits (checked once, at configuration) and the
 * requests subscribers send (checked on every message). A request comes from another actor,
 * a TCP peer by way of the node's server, or a simulated watcher: anything at all may arrive,
 * so parsing reads each field once into a plain value, tolerates getters that throw, and
 * answers a typed verdict instead of throwing.
 */

import { assertNever } from '../base/assert.ts';
import { protocolNumberMax, type TreeLimits } from '../base/limits.ts';
import { checkPath } from '../tree/path.ts';
import { describeTreeError } from '../tree/errors.ts';
import { watchIdCharsMax } from './messages.ts';

export type WatchHubLimits = {
  /** Ops retained for resumption (only ops that changed the tree are stored). */
  readonly historyOpsMax: number;
  /** Estimated bytes retained (events + values). */
  readonly historyBytesMax: number;
  /** Watches served by this replica (held ones included). */
  readonly watchesMax: number;
  /** Unacknowledged estimated bytes per watch. */
  readonly bufferBytesMax: number;
  /** Blob value cap per event; larger values travel as `value: null, valueOmitted: true`. */
  readonly valueBytesMax: number;
  /** Ticks without any notice after which a watch gets a progress notice. */
  readonly progressTicks: number;
  /** Ticks without an acknowledgement after which a watch ends `idle`. */
  readonly idleTicks: number;
};

export const defaultWatchHubLimits: WatchHubLimits = {
  historyOpsMax: 100_000,
  historyBytesMax: 16 * 1024 * 1024,
  watchesMax: 10_000,
  bufferBytesMax: 1024 * 1024,
  valueBytesMax: 64 * 1024,
  progressTicks: 50,
  idleTicks: 1_500,
};

/** Returns a reason, or null when the limits can be used. */
export function validateWatchHubLimits(limits: WatchHubLimits): string | null {
  for (const name of Object.keys(defaultWatchHubLimits) as (keyof WatchHubLimits)[]) {
    const value: unknown = (limits as Record<string, unknown>)[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      return `watch limits.${name} must be a positive integer`;
    }
  }
  // A subscriber acknowledges each progress notice, so a quiet but healthy watch refreshes its
  // idle timer every progressTicks: the idle bound must leave room for that round trip.
  if (limits.idleTicks <= limits.progressTicks) return 'watch limits.idleTicks must exceed limits.progressTicks';
  return null;
}

/** A subscribe request whose every field was checked. */
export type ParsedSubscribe = {
  readonly type: 'watch_subscribe';
  readonly watchId: string;
  readonly path: string;
  readonly recursive: boolean;
  readonly fromOp: number | null;
  readonly values: boolean;
};

/**
 * The verdict on one untrusted message:
 * - a well-formed request;
 * - `invalid` with a usable watchId (the hub answers watch_ended `invalid` for a subscribe);
 * - `drop`: nothing to answer to (no usable watchId, or not a watch request at all).
 */
export type ParsedRequest =
  | ParsedSubscribe
  | { readonly type: 'watch_ack'; readonly watchId: string; readonly through: number }
  | { readonly type: 'watch_cancel'; readonly watchId: string }
  | { readonly type: 'invalid'; readonly request: 'watch_subscribe' | 'watch_ack' | 'watch_cancel'; readonly watchId: string; readonly reason: string }
  | { readonly type: 'drop'; readonly reason: string };

export function parseWatchRequest(message: unknown, treeLimits: TreeLimits): ParsedRequest {
  try {
    return parse(message, treeLimits);
  } catch {
    // Only a hostile object (a throwing getter or proxy) gets here: plain data cannot throw.
    return { type: 'drop', reason: 'unreadable message' };
  }
}

function parse(message: unknown, treeLimits: TreeLimits): ParsedRequest {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return { type: 'drop', reason: 'not an object' };
  const fields = message as Record<string, unknown>;
  const type = fields['type'];
  if (type !== 'watch_subscribe' && type !== 'watch_ack' && type !== 'watch_cancel') return { type: 'drop', reason: 'not a watch request' };
  const watchId = fields['watchId'];
  if (!isUsableWatchId(watchId)) return { type: 'drop', reason: 'unusable watchId' };
  const invalid = (reason: string): ParsedRequest => ({ type: 'invalid', request: type, watchId, reason });
  switch (type) {
    case 'watch_cancel':
      return { type, watchId };
    case 'watch_ack': {
      const through = fields['through'];
      if (!isProtocolNumber(through)) return invalid('through must be an integer in [0, 2^48]');
      return { type, watchId, through };
    }
    case 'watch_subscribe': {
      const path = fields['path'];
      const recursive = fields['recursive'];
      const values = fields['values'];
      const fromOp = fields['fromOp'];
      const pathError = checkPath(path, treeLimits);
      if (pathError !== null) return invalid(`bad path: ${describeTreeError(pathError)}`);
      if (typeof recursive !== 'boolean') return invalid('recursive must be a boolean');
      if (typeof values !== 'boolean') return invalid('values must be a boolean');
      if (fromOp !== null && !isProtocolNumber(fromOp)) return invalid('fromOp must be null or an integer in [0, 2^48]');
      return { type, watchId, path: path as string, recursive, fromOp, values };
    }
    default:
      return assertNever(type, 'watch request type');
  }
}

function isUsableWatchId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= watchIdCharsMax;
}

function isProtocolNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= protocolNumberMax;
}
