/** Checks the options every queueing recipe takes (QueueOptions) and the counts of barriers and semaphores. */

import { HaretError } from '../client/errors.ts';
import type { KeptLease, QueueOptions, Value } from '../client/namespace_client.ts';
import type { Bytes } from '../tree/ops.ts';
import { treeErrors } from '../tree/errors.ts';

/** TTL of the lease a recipe makes when the caller gives none. */
export const defaultTtlMs = 10_000;

export type CheckedQueueOptions = { readonly lease: KeptLease | undefined; readonly ttlMs: number; readonly timeoutMs: number | undefined };

export function invalid(reason: string): HaretError {
  return HaretError.fromTree(treeErrors.invalidRequest(reason), false);
}

export function checkQueueOptions(options: QueueOptions | undefined, what: string): CheckedQueueOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw invalid(`${what} options must be an object`);
  const { lease, ttlMs = defaultTtlMs, timeoutMs } = options ?? {};
  if (lease !== undefined && (typeof lease !== 'object' || lease === null || typeof lease.id !== 'number')) throw invalid(`${what} option lease must be a KeptLease`);
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw invalid(`${what} option ttlMs must be a positive integer, got ${String(ttlMs)}`);
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0)) {
    throw invalid(`${what} option timeoutMs must be a finite number of ms, at least 0, got ${String(timeoutMs)}`);
  }
  return { lease, ttlMs, timeoutMs };
}

export function checkCount(count: number, what: string): void {
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) throw invalid(`${what} must be a positive integer, got ${String(count)}`);
}

const encoder = new TextEncoder();

/** A Value as bytes (a string as UTF-8). */
export function checkValue(value: Value, what: string): Bytes {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  throw invalid(`${what} must be a string or a Uint8Array`);
}
