/**
 * How the prompt shows results: one string per call result, no trailing newline.
 *
 * Pure (no I/O), so the prompt, `haret cli` over TCP and the tests render alike. Values are
 * shown in the prompt's own input syntax (bare word, quoted text or 0x-hex) so that what is
 * printed can be pasted back into a command unchanged.
 */

import type { CallResult } from '../client/io.ts';
import { HaretError } from '../client/errors.ts';
import { assertNever } from '../base/assert.ts';
import { describeTreeError } from '../tree/errors.ts';
import type { NodeType } from '../tree/node_type.ts';
import type { Bytes, ListEntry, OpFailure, OpOutcome, OpResult } from '../tree/ops.ts';
import type { WatchEvent } from '../watch/messages.ts';
import type { WatchCommand } from './commands.ts';

// fatal: invalid UTF-8 is shown as hex rather than with replacement characters that would hide
// bytes; ignoreBOM: a leading U+FEFF is content, and stripping it would hide a byte too.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Characters that would garble the terminal or hide content (tab, LF and CR are escaped instead). */
const unprintable = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029\p{Co}\p{Cn}]/u;

/** Text that reads back as itself when typed bare: no spaces, quotes, braces, ';' or 0x prefix. */
const bareSafe = /^(?!0x)[^\s;"'{#][^\s;]*$/u;

function hex(bytes: Bytes): string {
  let out = '0x';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}

/**
 * Bytes as UTF-8 text when they decode and print cleanly, else 0x-hex. Text is bare when it
 * reads back as itself, otherwise quoted: single quotes when that needs no escapes (JSON reads
 * better), double quotes with escapes otherwise.
 */
export function formatBytes(bytes: Bytes): string {
  if (bytes.length === 0) return '""';
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return hex(bytes);
  }
  if (unprintable.test(text)) return hex(bytes);
  if (bareSafe.test(text)) return text;
  if (text.includes('"') && !/['\t\n\r]/.test(text)) return `'${text}'`;
  const escaped = text.replace(/[\\"\t\n\r]/g, (c) => {
    switch (c) {
      case '\t':
        return '\\t';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      default:
        return `\\${c}`;
    }
  });
  return `"${escaped}"`;
}

const plural = (count: number, one: string, many: string): string => `${count} ${count === 1 ? one : many}`;

/** What `stat`'s size counts, by node type (src/tree/README.md). */
function sizeUnit(nodeType: NodeType, size: number): string {
  switch (nodeType) {
    case 'blob':
      return plural(size, 'byte', 'bytes');
    case 'queue':
      return plural(size, 'element', 'elements');
    case 'set':
      return plural(size, 'member', 'members');
    case 'directory':
      return plural(size, 'child', 'children');
    default:
      return assertNever(nodeType, 'node type');
  }
}

/** Entries as aligned columns: type, version (right-aligned), path. */
function formatEntries(entries: readonly ListEntry[]): string[] {
  const typeWidth = Math.max(...entries.map((entry) => entry.nodeType.length));
  const versionWidth = Math.max(...entries.map((entry) => `v${entry.version}`.length));
  return entries.map((entry) => `  ${entry.nodeType.padEnd(typeWidth)}  ${`v${entry.version}`.padStart(versionWidth)}  ${entry.path}`);
}

/** One op's successful result; multi-line for lists, sets and transactions. */
export function formatOpResult(result: OpResult): string {
  switch (result.type) {
    case 'ok':
      return result.path === undefined ? `ok · version ${result.version}` : `created ${result.path} · version ${result.version}`;
    case 'lease':
      return `lease ${result.id} · ttl ${result.ttlMs} ms${result.nodes > 0 ? ` · ${plural(result.nodes, 'node', 'nodes')} deleted` : ''}`;
    case 'lease_kept':
      return result.alive.map((alive) => (alive ? 'alive' : 'gone')).join(' ');
    case 'blob':
      return `${formatBytes(result.value)} · version ${result.version}`;
    case 'element':
      return `${result.value === null ? '(empty queue)' : formatBytes(result.value)} · version ${result.version}`;
    case 'count':
      return `${result.count} · version ${result.version}`;
    case 'bool':
      return `${result.value} · version ${result.version}`;
    case 'answer':
      return `${result.value}`;
    case 'set':
      if (result.members.length === 0) return '{} (empty set)';
      return [plural(result.members.length, 'member', 'members'), ...result.members.map((member) => `  ${formatBytes(member)}`)].join('\n');
    case 'list':
      if (result.entries.length === 0) return `(empty directory) · version ${result.version}`;
      return [`${plural(result.entries.length, 'entry', 'entries')} · directory version ${result.version}`, ...formatEntries(result.entries)].join('\n');
    case 'stat':
      return `${result.nodeType} · version ${result.version} · size ${sizeUnit(result.nodeType, result.size)}`;
    case 'txn': {
      if (result.results.length === 0) return 'ok · transaction with no ops';
      // One line per op, numbered by index like an error's `at`; continuation lines of a
      // multi-line result are indented under their op.
      const width = `[${result.results.length - 1}]`.length;
      return result.results
        .map((inner, index) => {
          const label = `[${index}]`.padEnd(width);
          const [first, ...rest] = formatOpResult(inner).split('\n');
          return [`${label} ${first ?? ''}`, ...rest.map((line) => `${' '.repeat(width)} ${line}`)].join('\n');
        })
        .join('\n');
    }
    default:
      return assertNever(result, 'op result');
  }
}

/** A tree error: the human sentence plus the stable code, and which transaction op failed. */
export function formatFailure(failure: OpFailure): string {
  const where = failure.at === undefined ? 'error' : `error in transaction op [${failure.at}]`;
  return `${where}: ${describeTreeError(failure.error)} (${failure.error.code})`;
}

export function formatOutcome(outcome: OpOutcome): string {
  return outcome.type === 'error' ? formatFailure(outcome) : formatOpResult(outcome);
}

/**
 * A call's result. A 'done' result ends with where it ran (the log entry that committed it),
 * which is what a user needs to reason about ordering across clients; the epoch is shown only
 * once reconfiguration has moved it off 0, to keep the common line short.
 */
export function formatResult(result: CallResult): string {
  switch (result.type) {
    case 'done': {
      const epoch = result.epoch === 0 ? '' : `epoch ${result.epoch} · `;
      return `${formatOutcome(result.outcome)}\n${epoch}view ${result.view} · op ${result.op}`;
    }
    case 'rejected':
      return `rejected before the log, so not executed: ${formatOutcome(result.outcome)}`;
    case 'timeout':
      return 'timeout: no answer in time; the operation may or may not have executed (read before retrying)';
    case 'session_expired':
      return result.executed === false
        ? 'session expired: the cluster does not know this session; the operation did not execute'
        : 'session expired while retrying: an earlier attempt may have executed (read before retrying)';
    case 'refused':
      return `refused (${result.reason}): ${result.message}; ${result.executed === true ? 'it executed' : result.executed === false ? 'the operation did not execute' : 'an earlier attempt may have executed'}`;
    case 'stale_request':
      return `stale request: the cluster had executed request ${result.lastRequestNum} of this session (its client id is used elsewhere); the operation may or may not have executed`;
    case 'overloaded':
      return 'overloaded: too many calls are queued on this session; the operation was not sent';
    default:
      return assertNever(result, 'call result');
  }
}

/** Anything thrown or rejected (a transport failure, a typed error, a bug), as one line. */
export function formatError(error: unknown): string {
  return `error: ${describeError(error)}`;
}

/** An error without the `error: ` prefix: a HaretError's message and stable code, else what is known. */
function describeError(error: unknown): string {
  if (error instanceof HaretError) return `${error.message === '' ? '(no message)' : error.message} (${error.code})`;
  if (error instanceof Error) {
    const name = error.name !== '' && error.name !== 'Error' ? `${error.name}: ` : '';
    return `${name}${error.message === '' ? '(no message)' : error.message}`;
  }
  try {
    return typeof error === 'string' ? error : JSON.stringify(error) ?? String(error);
  } catch {
    // JSON.stringify throws on cycles and BigInt; the prompt must still print something.
    return Object.prototype.toString.call(error);
  }
}

// ---- watches -------------------------------------------------------------------------------

/** The first line of a watch, once the serving replica said where it starts. */
export function formatWatchStart(watch: WatchCommand, op: number): string {
  const how = [watch.recursive ? 'recursive' : '', watch.values ? 'with values' : ''].filter((word) => word !== '');
  return `watching ${watch.path}${how.length === 0 ? '' : ` (${how.join(', ')})`} after op ${op}; Ctrl-C to stop`;
}

/**
 * One changed node: `op 123  changed  /a/b  blob  v4  value`. The op leads so that the lines
 * of one transaction read as one group; the kind is padded so paths line up.
 */
export function formatWatchEvent(op: number, event: WatchEvent): string {
  const line = `op ${op}  ${event.kind.padEnd(7)}  ${event.path}  ${event.nodeType}  v${event.version}`;
  if (event.value instanceof Uint8Array) return `${line}  ${formatBytes(event.value)}`;
  if (event.value === null || event.valueOmitted === true) return `${line}  (value too large to send; get it)`;
  return line;
}

/** A progress notice (printed with --progress only): nothing changed up to `op`. */
export function formatWatchProgress(op: number): string {
  return `op ${op}  (no change through here)`;
}

/** The watch ended because Ctrl-C stopped it; says how to resume without losing anything. */
export function formatWatchStopped(lastOp: number | null): string {
  return lastOp === null ? 'watch stopped' : `watch stopped after op ${lastOp} (watch again with --from ${lastOp} to resume)`;
}

/**
 * Why a watch ended: its code and message, and for the codes that concern positions, what to
 * do next with the ops the error carries (compacted: which `--from` can still be served).
 */
export function formatWatchError(error: unknown): string {
  if (!(error instanceof HaretError)) return formatError(error);
  const head = `watch ended: ${error.code}: ${error.message === '' ? '(no message)' : error.message}`;
  const oldest = error.details?.oldestOp ?? null;
  const current = error.details?.currentOp ?? null;
  const last = error.details?.lastOp ?? null;
  switch (error.code) {
    case 'compacted': {
      const kept = oldest === null ? 'older ops are no longer kept' : `history is kept only after op ${oldest}`;
      const now = current === null ? '' : `, the namespace is at op ${current}`;
      const from = current ?? oldest;
      const hint = from === null ? 'read again and watch without --from' : `read again and watch with --from ${from}`;
      return `${head}\n  ${kept}${now}: ${hint}${oldest !== null && oldest !== from ? ` (or --from ${oldest} for what is still kept)` : ''}`;
    }
    case 'future':
      return current === null ? head : `${head}\n  the namespace is at op ${current}: watch with --from ${current} or less, or without --from`;
    case 'lagging':
      return last === null ? head : `${head}\n  received through op ${last}: watch again with --from ${last} to resume`;
    default:
      return head;
  }
}

// ---- coordination: leases, locks, elections --------------------------------------------------

/** A lease the prompt keeps alive, as `lease list` shows it. */
export type KeptLeaseLine = { readonly id: number; readonly ttlMs: number; readonly lost: unknown | null };

export function formatLeaseGranted(id: number, ttlMs: number): string {
  return `lease ${id} granted · ttl ${ttlMs} ms · kept alive by this prompt until lease revoke ${id} or quit`;
}

/** Printed when a lease the prompt kept alive ended anyway (expired while unreachable, revoked elsewhere). */
export function formatLeaseLost(id: number, why: unknown): string {
  return `lease ${id} lost: ${describeError(why)}; its ephemeral nodes are gone or about to go`;
}

export function formatLeaseRevoked(id: number): string {
  return `lease ${id} revoked; its ephemeral nodes are deleted`;
}

export function formatLeaseList(leases: readonly KeptLeaseLine[]): string {
  if (leases.length === 0) return 'no leases kept alive by this prompt (lease grant TTL_MS makes one)';
  return leases.map((lease) => `  lease ${lease.id}  ttl ${lease.ttlMs} ms  ${lease.lost === null ? 'alive' : `lost: ${describeError(lease.lost)}`}`).join('\n');
}

/** A keep-alive's result, one line per id asked (the bare op result lists alive/gone without ids). */
export function formatKeepAlive(ids: readonly number[], result: CallResult): string {
  if (result.type !== 'done' || result.outcome.type !== 'lease_kept') return formatResult(result);
  const { alive } = result.outcome;
  const lines = ids.map((id, index) => `lease ${id}  ${alive[index] === true ? 'alive' : 'gone (expired, revoked, or not this client\'s)'}`);
  const [, position] = formatResult(result).split('\n');
  return [...lines, ...(position === undefined ? [] : [position])].join('\n');
}

export function formatLockWaiting(path: string): string {
  return `waiting for the lock ${path}; Ctrl-C to give up`;
}

export function formatLockHeld(path: string, token: number): string {
  return `holding ${path} token ${token}; Ctrl-C to release`;
}

export function formatLockLost(path: string, why: unknown): string {
  return `lost the lock ${path}: ${describeError(why)}`;
}

export function formatCampaigning(path: string, value: Bytes): string {
  return `campaigning for ${path} as ${formatBytes(value)}; Ctrl-C to withdraw`;
}

export function formatElected(path: string, token: number): string {
  return `leader of ${path} token ${token}; Ctrl-C to resign`;
}

export function formatLeadershipLost(path: string, why: unknown): string {
  return `lost the leadership of ${path}: ${describeError(why)}`;
}

/** The current leader as `leader PATH` prints it; its value in the prompt's input syntax. */
export function formatLeader(leader: { readonly value: Bytes; readonly token: number } | null): string {
  return leader === null ? 'no leader' : `leader ${formatBytes(leader.value)} · token ${leader.token}`;
}
