/**
 * Results in the two script-friendly forms of `haret cli -o`: a JSON object per result, and
 * the bare value. (The human form is src/cli/format.ts.)
 *
 * JSON: every object has `ok` and `command` (the line as typed). Bytes, wherever they appear
 * (a blob's value, a queue element, set members, watch values), are base64 strings: lossless
 * for any bytes, and `jq -r .result.value | base64 -d` gives them back. `-o value` is the way
 * to get text as text.
 *
 * Pure: no I/O. What to print where is src/cli/output.ts.
 */

import { HaretError } from '../client/errors.ts';
import type { CallResult } from '../client/io.ts';
import { assertNever } from '../base/assert.ts';
import { describeTreeError } from '../tree/errors.ts';
import type { Bytes, OpFailure, OpResult } from '../tree/ops.ts';
import type { WatchEvent } from '../watch/messages.ts';

export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };
export type JsonObject = { readonly [key: string]: Json };

export function base64(bytes: Bytes): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** An op's result with its bytes in base64 (the shape of OpResult otherwise). */
export function opResultJson(result: OpResult): JsonObject {
  switch (result.type) {
    case 'ok':
      return result.path === undefined ? { type: 'ok', version: result.version } : { type: 'ok', version: result.version, path: result.path };
    case 'lease':
      return { type: 'lease', id: result.id, ttlMs: result.ttlMs, nodes: result.nodes };
    case 'lease_kept':
      return { type: 'lease_kept', alive: [...result.alive] };
    case 'blob':
      return { type: 'blob', value: base64(result.value), version: result.version };
    case 'element':
      return { type: 'element', value: result.value === null ? null : base64(result.value), version: result.version };
    case 'count':
      return { type: 'count', count: result.count, version: result.version };
    case 'bool':
      return { type: 'bool', value: result.value, version: result.version };
    case 'answer':
      return { type: 'answer', value: result.value };
    case 'set':
      return { type: 'set', members: result.members.map(base64) };
    case 'list':
      return { type: 'list', entries: result.entries.map((entry) => ({ name: entry.name, path: entry.path, nodeType: entry.nodeType, version: entry.version })), version: result.version };
    case 'stat':
      return { type: 'stat', nodeType: result.nodeType, version: result.version, size: result.size };
    case 'txn':
      return { type: 'txn', results: result.results.map(opResultJson) };
    default:
      return assertNever(result, 'op result');
  }
}

/** A tree error: its code, the sentence, its own fields (path, expected, ...) and the failed op of a transaction. */
function failureJson(failure: OpFailure): JsonObject {
  const { code, ...fields } = failure.error;
  return { code, message: describeTreeError(failure.error), ...(fields as JsonObject), ...(failure.at === undefined ? {} : { at: failure.at }) };
}

/** A call's result as one JSON object. `executed` says whether a failed call may have run. */
export function callResultJson(command: string, result: CallResult): JsonObject {
  const failed = (error: JsonObject, executed: boolean | 'maybe'): JsonObject => ({ ok: false, command, error, executed });
  switch (result.type) {
    case 'done': {
      const where = { epoch: result.epoch, view: result.view, op: result.op };
      if (result.outcome.type === 'error') return { ok: false, command, error: failureJson(result.outcome), ...where };
      return { ok: true, command, result: opResultJson(result.outcome), ...where };
    }
    case 'rejected':
      return failed(result.outcome.type === 'error' ? failureJson(result.outcome) : { code: 'rejected', message: 'rejected before the log' }, false);
    case 'timeout':
      return failed({ code: 'timeout', message: 'no answer in time; the operation may or may not have executed' }, 'maybe');
    case 'session_expired':
      return failed({ code: 'session_expired', message: 'the cluster does not know this session' }, result.executed);
    case 'refused':
      return failed({ code: result.reason, message: result.message }, result.executed);
    case 'stale_request':
      return failed({ code: 'stale_request', message: `the cluster had executed request ${result.lastRequestNum} of this session` }, 'maybe');
    case 'overloaded':
      return failed({ code: 'overloaded', message: 'too many calls are queued on this session' }, false);
    default:
      return assertNever(result, 'call result');
  }
}

/** Anything thrown: a HaretError's code, message and what it says about execution; else code `error`. */
export function errorJson(error: unknown): JsonObject {
  if (error instanceof HaretError) {
    const details = error.details === undefined ? {} : (Object.fromEntries(Object.entries(error.details).filter(([, value]) => value !== undefined)) as JsonObject);
    return { code: error.code, message: error.message, executed: error.executed, ...details };
  }
  return { code: 'error', message: error instanceof Error ? error.message : String(error) };
}

/** A watch event; `value` only when the watch asked for values (null: too large to send). */
export function watchEventJson(op: number, event: WatchEvent): JsonObject {
  const value = event.value instanceof Uint8Array ? { value: base64(event.value) } : event.value === null || event.valueOmitted === true ? { value: null } : {};
  return { op, kind: event.kind, path: event.path, nodeType: event.nodeType, version: event.version, ...value };
}

const utf8 = new TextEncoder();

/**
 * What `-o value` prints for a successful result: one chunk per line (bytes as they are,
 * numbers and words as text); null for a failure (printed to stderr instead).
 *
 * blob, element: the bytes (an empty queue: an empty line); count: the number; bool, answer:
 * true or false; ok: the version, or the name made by a sequential create; lease: its id;
 * keep-alive: alive or gone per id; set: each member; list: each path; stat: type, version and
 * size; transaction: the values of its ops in order.
 */
export function resultValueLines(result: CallResult): Bytes[] | null {
  if (result.type !== 'done' || result.outcome.type === 'error') return null;
  return opValueLines(result.outcome);
}

function opValueLines(result: OpResult): Bytes[] {
  const text = (value: string | number | boolean): Bytes => utf8.encode(String(value));
  switch (result.type) {
    case 'ok':
      return [text(result.path ?? result.version)];
    case 'lease':
      return [text(result.id)];
    case 'lease_kept':
      return result.alive.map((alive) => text(alive ? 'alive' : 'gone'));
    case 'blob':
      return [result.value];
    case 'element':
      return [result.value ?? new Uint8Array()];
    case 'count':
      return [text(result.count)];
    case 'bool':
    case 'answer':
      return [text(result.value)];
    case 'set':
      return [...result.members];
    case 'list':
      return result.entries.map((entry) => text(entry.path));
    case 'stat':
      return [text(`${result.nodeType} ${result.version} ${result.size}`)];
    case 'txn':
      return result.results.flatMap(opValueLines);
    default:
      return assertNever(result, 'op result');
  }
}
