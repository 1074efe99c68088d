/**
 * The client wire protocol (docs/protocol.md): the messages a client and a node exchange over
 * TCP, and their msgpack codec. Pure: shared by the node's server and the client library.
 *
 * Each direction has a decoder that trusts nothing. The node must survive any bytes a client
 * sends, and the client library must not trust a node either (a bug or a stranger on the port
 * must not crash it). A decoder
 * - never throws: msgpack errors, wrong types, unknown types and limits all end as a typed
 *   `{ ok: false, error }`, with the message's `id` when it could be read, so the sender can
 *   tell which of its requests failed;
 * - returns a fresh, normalised object: the fields of the message's type and nothing else,
 *   optional fields absent rather than undefined, and byte strings as plain Uint8Array copies
 *   (not Node Buffers, not views of the payload), so a decoded value may be kept in the tree
 *   or the client table without pinning the frame it came in;
 * - is bounded by the payload: the frame limit bounds what msgpack can produce, and tree ops
 *   are checked against the tree's limits by `validateOp`, the same gate as the replicas'.
 */

import { Packr } from 'msgpackr';
import { assertNever } from '../base/assert.ts';
import { FieldReader, at, isCounter, isPlainObject, msgpackWords, own, type Fields } from '../base/fields.ts';
import { describeTreeError, type LimitName, type TreeError } from '../tree/errors.ts';
import { defaultTreeLimits, protocolNumberMax, validateTreeLimits, type TreeLimits } from '../base/limits.ts';
import { isNodeType, nodeTypes, type NodeType } from '../tree/node_type.ts';
import type { Bytes, ListEntry, OpFailure, OpOutcome, OpResult } from '../tree/ops.ts';
import { validateOp } from '../tree/validate.ts';
import { checkPath } from '../tree/path.ts';
import type { TreeChangeKind } from '../tree/events.ts';
import type { Busy, ClientAnswer, NotPrimary, Reply, ReplyBody, RequestOp } from '../vr/messages.ts';
import { watchMessageEventsMax, type WatchEndReason, type WatchEnded, type WatchEvent, type WatchEvents, type WatchProgress } from '../watch/messages.ts';
import { encodeFrame, frameLengthLimit } from './frame.ts';
import { invalidText } from './msgpack_text.ts';

// ---- version and limits -------------------------------------------------------------------

/** The one protocol version this codec speaks; `hello` and `welcome` carry it. */
export const protocolVersion = 1;
export type ProtocolVersion = typeof protocolVersion;

/** A connection's limits; each namespace has its own tree limits (NamespaceShape). */
export type WireLimits = {
  /** Largest frame payload accepted, in bytes, in either direction. */
  readonly frameBytesMax: number;
  /** Messages one connection may have in flight at the node; past it, `too_many_in_flight`. */
  readonly inFlightMax: number;
};

/** What a decoder must know of a namespace to check a request for it. */
export type NamespaceShape = {
  /** Replicas in the namespace's group (a request names one by index). */
  readonly replicas: number;
  /** Its tree's limits: a request's op is checked against them before it goes anywhere. */
  readonly tree: TreeLimits;
};

/** The namespaces a node serves, by name; undefined for one it does not. */
export type NamespaceLookup = (ns: string) => NamespaceShape | undefined;

/** A namespace as `welcome` and `namespaces` describe it to clients. */
export type NamespaceInfo = { readonly name: string; readonly replicas: number; readonly limits: TreeLimits };

/**
 * Room for a request's envelope (type, id, namespace, client id up to 256 characters, request
 * number, op and field names) beyond what the tree counts in `requestBytesMax`, which charges
 * only 16 bytes per op or guard. A full multi_cas of 128 ops and 128 guards needs ~10 KiB of
 * field names and headers; 64 KiB leaves room to spare.
 */
export const frameMarginBytes = 64 * 1024;

/** The smallest frame limit that carries any request every one of these trees accepts. */
export function frameBytesFor(trees: readonly TreeLimits[]): number {
  let largest = defaultTreeLimits.requestBytesMax;
  for (const tree of trees) largest = Math.max(largest, tree.requestBytesMax);
  return Math.min(largest + frameMarginBytes, frameLengthLimit);
}

/** frameBytesMax 4 MiB + 64 KiB (4,259,840), inFlightMax 1024. */
export const defaultWireLimits: WireLimits = { frameBytesMax: frameBytesFor([defaultTreeLimits]), inFlightMax: 1024 };

/**
 * Frames before `hello` is accepted: the largest hello (a 256-character client name and a
 * 1024-character token, 3 UTF-8 bytes a character at worst, and the field names) is under
 * 4 KiB, so a peer that has not said hello cannot make the node hold more than this per
 * connection.
 */
export const helloFrameBytesMax = 4096;

/** Checks limits once, at configuration time; `trees` are the namespaces' tree limits. Returns a reason or null. */
export function validateWireLimits(limits: WireLimits, trees: readonly TreeLimits[] = []): string | null {
  const { frameBytesMax, inFlightMax } = limits;
  if (!Number.isSafeInteger(frameBytesMax) || frameBytesMax < helloFrameBytesMax || frameBytesMax > frameLengthLimit) {
    return `frameBytesMax must be an integer in ${helloFrameBytesMax}..${frameLengthLimit}`;
  }
  for (const tree of trees) {
    const treeProblem = validateTreeLimits(tree);
    if (treeProblem !== null) return `tree ${treeProblem}`;
    // Otherwise a request the tree accepts could not be sent at all.
    if (frameBytesMax < tree.requestBytesMax) return 'frameBytesMax must be at least every tree.requestBytesMax';
  }
  if (!Number.isSafeInteger(inFlightMax) || inFlightMax < 1 || inFlightMax > 1_000_000) return 'inFlightMax must be an integer in 1..1000000';
  return null;
}

// ---- messages -----------------------------------------------------------------------------

/** Client ids are 1..256 characters, as the replicas' client table requires (src/vr/validate.ts). */
export const clientIdLengthMax = 256;
/** Names of a client (hello) or a node (welcome): a label for logs, at most 256 characters. */
export const nameLengthMax = 256;
/** An auth token in `hello`: 1 to 1024 characters (docs/protocol.md section "Authentication"). */
export const tokenLengthMax = 1024;
/** A node address in a redirect (`host:port`). */
export const addressLengthMax = 1024;
/** Namespace names, as the node's options require. */
export const namespaceNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function isNamespaceName(value: unknown): value is string {
  return typeof value === 'string' && namespaceNamePattern.test(value);
}

/**
 * Opens a connection; the first message a client sends. `token`: the node's auth token, when
 * the node is configured with one (a missing or wrong token is answered `unauthenticated`).
 */
export type HelloMessage = { readonly type: 'hello'; readonly version: ProtocolVersion; readonly client?: string; readonly token?: string };
export type ListNamespacesMessage = { readonly type: 'list_namespaces'; readonly id: number };
/**
 * A VR request (src/vr/messages.ts `Request`) addressed to a namespace. The client owns the
 * session (client id and request numbers), so a retry of the same request number, through
 * this node or another, is executed at most once: the replicas' client table answers it.
 */
export type RequestMessage = {
  readonly type: 'request';
  readonly id: number;
  readonly ns: string;
  /** Index of the replica of `ns` to deliver it to (the client's guess of the primary). */
  readonly replica: number;
  readonly clientId: string;
  readonly requestNum: number;
  readonly op: RequestOp;
};
export type PingMessage = { readonly type: 'ping'; readonly id: number };

// Watches (docs/protocol.md section "Watches"). No `id`: a watch is named by the client's
// `watchId`, and what the node sends about it (events, progress, its end) carries that id.

/** A client's watch id: 1..64 printable ASCII characters (no space), unique among its open watches on the connection. */
export const clientWatchIdCharsMax = 64;
export const clientWatchIdPattern = /^[\x21-\x7e]{1,64}$/;

export function isClientWatchId(value: unknown): value is string {
  return typeof value === 'string' && clientWatchIdPattern.test(value);
}

/** Starts a watch at replica `replica` of `ns`; `fromOp` null: after that replica's commit. */
export type WatchSubscribeMessage = {
  readonly type: 'watch_subscribe';
  readonly ns: string;
  readonly replica: number;
  readonly watchId: string;
  readonly path: string;
  readonly recursive: boolean;
  readonly fromOp: number | null;
  readonly values: boolean;
};
/** Everything through `through` was received (flow control and liveness). */
export type WatchAckMessage = { readonly type: 'watch_ack'; readonly ns: string; readonly replica: number; readonly watchId: string; readonly through: number };
/** Ends a watch; nothing more is sent for it. */
export type WatchCancelMessage = { readonly type: 'watch_cancel'; readonly ns: string; readonly replica: number; readonly watchId: string };
export type ClientWatchMessage = WatchSubscribeMessage | WatchAckMessage | WatchCancelMessage;

export type ClientMessage = HelloMessage | ListNamespacesMessage | RequestMessage | PingMessage | ClientWatchMessage;
export type ClientMessageType = ClientMessage['type'];

export type WelcomeMessage = {
  readonly type: 'welcome';
  readonly version: ProtocolVersion;
  readonly node: string;
  readonly namespaces: readonly NamespaceInfo[];
  /** The node's frame limit (both directions). */
  readonly frameBytesMax: number;
  /** Messages in flight per connection. */
  readonly inFlightMax: number;
  /** The node answers every request within this many milliseconds (`timeout` at the latest). */
  readonly requestTimeoutMs: number;
};
export type NamespacesMessage = { readonly type: 'namespaces'; readonly id: number; readonly namespaces: readonly NamespaceInfo[] };
/** A replica's answer, unchanged: reply, not_primary or busy, with epoch, view and request number. */
export type AnswerMessage = { readonly type: 'answer'; readonly id: number; readonly ns: string; readonly answer: ClientAnswer };
/**
 * The node reaches none of the namespace's replicas (its links to their nodes are down);
 * `address` is where the node hosting replica `replica` serves clients, when known. Nothing ran.
 */
export type RedirectMessage = {
  readonly type: 'redirect';
  readonly id: number;
  readonly ns: string;
  readonly replica: number;
  readonly address: string | null;
};
export type PongMessage = { readonly type: 'pong'; readonly id: number };

export const errorCodes = [
  'malformed',
  'unsupported_version',
  'unknown_namespace',
  'frame_too_large',
  'empty_frame',
  'too_many_in_flight',
  'session_busy',
  'superseded',
  'overloaded',
  'shutting_down',
  'timeout',
  'internal',
  'unauthenticated',
  /** The namespace cannot serve (more than f replicas lost or with failing disks): not forwarded. */
  'unavailable',
] as const;
export type WireErrorCode = (typeof errorCodes)[number];

/** `id` is null when the error concerns the connection, not one request. */
export type WireError = { readonly id: number | null; readonly code: WireErrorCode; readonly message: string };
export type ErrorMessage = { readonly type: 'error' } & WireError;

/**
 * What the node sends about a watch: the replica's notices (src/watch/messages.ts), field for
 * field, with the client's own `watchId`.
 */
export type WatchEventsMessage = WatchEvents;
export type WatchProgressMessage = WatchProgress;
export type WatchEndedMessage = WatchEnded;
export type NodeWatchMessage = WatchEventsMessage | WatchProgressMessage | WatchEndedMessage;

export type NodeMessage =
  | WelcomeMessage
  | NamespacesMessage
  | AnswerMessage
  | RedirectMessage
  | PongMessage
  | ErrorMessage
  | NodeWatchMessage;
export type NodeMessageType = NodeMessage['type'];

/**
 * A watch message that could not be decoded but whose type and `watchId` could be read: the
 * node answers a bad `watch_subscribe` with `watch_ended {reason: invalid}` for that id.
 */
export type WatchRef = { readonly type: ClientWatchMessage['type']; readonly watchId: string };

export type DecodeResult<M> =
  | { readonly ok: true; readonly message: M }
  | { readonly ok: false; readonly error: WireError; readonly watch?: WatchRef };

export const clientMessageTypes = ['hello', 'list_namespaces', 'request', 'ping', 'watch_subscribe', 'watch_ack', 'watch_cancel'] as const satisfies readonly ClientMessageType[];
export const nodeMessageTypes = [
  'welcome',
  'namespaces',
  'answer',
  'redirect',
  'pong',
  'error',
  'watch_events',
  'watch_progress',
  'watch_ended',
] as const satisfies readonly NodeMessageType[];
const clientWatchMessageTypes = ['watch_subscribe', 'watch_ack', 'watch_cancel'] as const satisfies readonly ClientWatchMessage['type'][];

// Compile-time completeness: each list names every member of its union (adding a message type
// without listing it here fails the build instead of making the decoder refuse it).
type Missing<All extends string, Listed extends string> = [Exclude<All, Listed>] extends [never] ? true : Exclude<All, Listed>;
const clientTypesComplete: Missing<ClientMessageType, (typeof clientMessageTypes)[number]> = true;
const nodeTypesComplete: Missing<NodeMessageType, (typeof nodeMessageTypes)[number]> = true;
void clientTypesComplete;
void nodeTypesComplete;

// ---- encoding -----------------------------------------------------------------------------

/**
 * Plain msgpack any implementation reads: maps with string keys (no records), no extension
 * types (`moreTypes: false`), byte strings as `bin`, a map's size in its smallest header
 * (`variableMapSize`). Decoding: `copyBuffers` gives each `bin` its own memory (a plain
 * Uint8Array when the source is one, see `unpack`), and 64-bit integers become numbers, which
 * the readers below accept only when they are safe integers.
 */
const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  bundleStrings: false,
  variableMapSize: true,
  copyBuffers: true,
  int64AsType: 'number',
  // Never written by us (exactOptionalPropertyTypes), but should a JavaScript caller leave an
  // undefined field, nil is what other implementations understand, not msgpackr's extension.
  encodeUndefinedAsNil: true,
});

export function encodeClientMessage(message: ClientMessage): Uint8Array {
  return copyOut(pack(message));
}

export function encodeNodeMessage(message: NodeMessage): Uint8Array {
  return copyOut(pack(message));
}

/** The message as one frame, with a single copy of the packed bytes. */
export function encodeClientFrame(message: ClientMessage): Uint8Array {
  return encodeFrame(pack(message));
}

export function encodeNodeFrame(message: NodeMessage): Uint8Array {
  return encodeFrame(pack(message));
}

/** A view into msgpackr's shared output buffer: valid until the next pack, so copy or frame it at once. */
function pack(message: ClientMessage | NodeMessage): Uint8Array {
  return packr.pack(widen(message));
}

function copyOut(packed: Uint8Array): Uint8Array {
  const out = new Uint8Array(packed.byteLength);
  out.set(packed);
  return out;
}

/**
 * msgpackr writes an integer beyond 32 bits as a float64, which a client in a typed language
 * may refuse where it expects an integer (a version or op number after 2^32 writes). Such
 * integers are handed to it as BigInt instead, which it writes as int64. The walk shares
 * every subtree it leaves unchanged, so the common message is not copied at all.
 */
function widen(value: unknown): unknown {
  if (typeof value === 'number') {
    return Number.isInteger(value) && (value > 0xffff_ffff || value < -0x8000_0000) ? BigInt(value) : value;
  }
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const widened = widen(item);
      if (widened !== item) {
        out ??= value.slice();
        out[i] = widened;
      }
    }
    return out ?? value;
  }
  const fields = value as Readonly<Record<string, unknown>>;
  let out: Record<string, unknown> | null = null;
  for (const key of Object.keys(fields)) {
    const item = fields[key];
    const widened = widen(item);
    if (widened !== item) {
      out ??= { ...fields };
      out[key] = widened;
    }
  }
  return out ?? value;
}

// ---- decoding: entry points ---------------------------------------------------------------

/**
 * A client's message. A request is checked against its namespace (`namespaces`): the replica
 * index against the group's size and the op against the namespace's own tree limits; a
 * namespace the node does not serve is `unknown_namespace`.
 */
export function decodeClientMessage(payload: Uint8Array, namespaces: NamespaceLookup): DecodeResult<ClientMessage> {
  return decode(payload, (value) => readClientMessage(value, namespaces), peekWatch);
}

/** A node's message. Answers are bounded by the frame limit the caller's frame decoder enforces. */
export function decodeNodeMessage(payload: Uint8Array): DecodeResult<NodeMessage> {
  return decode(payload, readNodeMessage);
}

function decode<M>(payload: Uint8Array, read: (value: unknown) => M, peek: (value: unknown) => WatchRef | null = () => null): DecodeResult<M> {
  let value: unknown;
  try {
    value = unpack(payload);
  } catch (thrown: unknown) {
    return { ok: false, error: { id: null, code: 'malformed', message: `payload is not one msgpack value: ${errorText(thrown)}` } };
  }
  const id = peekId(value);
  // msgpack decoders replace (or mangle) invalid UTF-8 instead of refusing it, so `/v/\xff`
  // and `/v/\xfe` would name one node: text is checked against the raw bytes.
  const badText = invalidText(payload);
  if (badText !== null) return decodeFailed({ id, code: 'malformed', message: badText }, value, peek);
  try {
    return { ok: true, message: read(value) };
  } catch (thrown: unknown) {
    const rejection = Rejection.of(thrown);
    if (rejection !== undefined) return decodeFailed({ id, code: rejection.code, message: rejection.message }, value, peek);
    // Our bug or an exhausted stack (deep nesting): still an answer, never a crash.
    return decodeFailed({ id, code: 'malformed', message: 'message could not be read' }, value, peek);
  }
}

/**
 * A refusal of a decoded `value`; a watch message's names its watch when the watch id itself
 * is readable. Module-level, not a closure made per message: decode runs for every frame, and
 * under tsx each named closure cost a defineProperty call (2-4% of a client's CPU, profiled).
 */
function decodeFailed<M>(error: WireError, value: unknown, peek: (value: unknown) => WatchRef | null): DecodeResult<M> {
  const watch = error.code === 'malformed' || error.code === 'unknown_namespace' ? peek(value) : null;
  return watch === null ? { ok: false, error } : { ok: false, error, watch };
}

/**
 * Exactly one msgpack value filling the payload (msgpackr throws on trailing bytes). The
 * payload is viewed as a plain Uint8Array: with `copyBuffers`, msgpackr copies each `bin`
 * with the source's own constructor, so a Buffer source would give Buffers. The view is ours,
 * too, so msgpackr's cached DataView lands on it and not on the caller's object.
 */
function unpack(payload: Uint8Array): unknown {
  const source = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
  return packr.unpack(source) as unknown;
}

function errorText(thrown: unknown): string {
  // msgpackr's messages may quote up to 100 characters of data; keep errors short regardless.
  return thrown instanceof Error ? String(thrown.message).slice(0, 120) : 'unreadable';
}

/** A watch message's type and watch id, if both are valid, so that even a malformed subscribe can be answered. */
function peekWatch(value: unknown): WatchRef | null {
  try {
    if (!isPlainObject(value)) return null;
    const type = own(value, 'type');
    const watchId = own(value, 'watchId');
    if (typeof type !== 'string' || !(clientWatchMessageTypes as readonly string[]).includes(type) || !isClientWatchId(watchId)) return null;
    return { type: type as WatchRef['type'], watchId };
  } catch {
    return null;
  }
}

/** The message's id, if it has a valid one, so that even a malformed request's error can name it. */
function peekId(value: unknown): number | null {
  try {
    if (!isPlainObject(value)) return null;
    const id = own(value, 'id');
    return isCounter(id) && id <= protocolNumberMax ? id + 0 : null;
  } catch {
    return null;
  }
}

// ---- decoding: unwinding and field readers ------------------------------------------------

/**
 * Carries a refusal from deep inside a reader up to `decode`. Not an Error (no stack trace to
 * capture); recognised by a private-field brand, which decoded data cannot forge.
 */
class Rejection {
  readonly #code: WireErrorCode;
  readonly #message: string;
  constructor(code: WireErrorCode, message: string) {
    this.#code = code;
    this.#message = message;
  }

  static of(thrown: unknown): { code: WireErrorCode; message: string } | undefined {
    return typeof thrown === 'object' && thrown !== null && #code in thrown ? { code: thrown.#code, message: thrown.#message } : undefined;
  }
}

function malformed(message: string): never {
  throw new Rejection('malformed', message);
}

/**
 * Every field is read through the shared kit (plain maps, own fields, bounded numbers and
 * strings, brand-checked bins), in msgpack's words; its refusals are `malformed`.
 */
const read = new FieldReader(malformed, msgpackWords);

/**
 * A protocol number from outside (ids, request numbers): a non-negative integer of at most
 * `protocolNumberMax` (src/base/limits.ts), so no huge number can reach a replica's state.
 */
function protocolNumber(fields: Fields, key: string, label: string): number {
  return read.integer(fields, key, label, 0, protocolNumberMax);
}

function id(fields: Fields): number {
  return protocolNumber(fields, 'id', '');
}

function namespaceName(fields: Fields, key: string, label: string): string {
  const value = read.required(fields, key, label);
  if (!isNamespaceName(value)) {
    return malformed(`${at(label, key)} must be a namespace name (1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit)`);
  }
  return value;
}

/** Namespaces a node may describe in one message (a node serves far fewer). */
export const namespacesPerMessageMax = 4096;

function namespaceList(fields: Fields, key: string, label: string): NamespaceInfo[] {
  const values = read.array(fields, key, label, namespacesPerMessageMax);
  const listLabel = at(label, key);
  const infos: NamespaceInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < values.length; i++) {
    const itemLabel = `${listLabel}[${i}]`;
    const item = read.record(values[i], itemLabel);
    const name = namespaceName(item, 'name', itemLabel);
    if (names.has(name)) malformed(`${itemLabel}.name ${name} is listed twice`);
    names.add(name);
    const replicas = positive(item, 'replicas', itemLabel);
    if (replicas % 2 !== 1 || replicas > replicasMax) malformed(`${itemLabel}.replicas must be odd and at most ${replicasMax}`);
    infos.push({ name, replicas, limits: treeLimits(read.required(item, 'limits', itemLabel), at(itemLabel, 'limits')) });
  }
  return infos;
}

/** The most replicas a namespace may have (src/vr/config.ts). */
const replicasMax = 31;

const treeLimitNames = [
  'valueBytesMax',
  'pathBytesMax',
  'pathDepthMax',
  'componentBytesMax',
  'collectionElementsMax',
  'directoryChildrenMax',
  'txnOpsMax',
  'txnGuardsMax',
  'unionOperandsMax',
  'requestBytesMax',
  'listEntriesMax',
  'leaseTtlMinMs',
  'leaseTtlMaxMs',
  'leasesMax',
  'leasesPerClientMax',
  'leaseNodesMax',
  'keepAliveIdsMax',
  'sequenceMax',
] as const satisfies readonly (keyof TreeLimits)[];
const treeLimitNamesComplete: Missing<keyof TreeLimits, (typeof treeLimitNames)[number]> = true;
void treeLimitNamesComplete;

function treeLimits(value: unknown, label: string): TreeLimits {
  const fields = read.record(value, label);
  const limits = {} as Record<(typeof treeLimitNames)[number], number>;
  for (const name of treeLimitNames) limits[name] = positive(fields, name, label);
  const problem = validateTreeLimits(limits);
  if (problem !== null) malformed(`${label}: ${problem}`);
  return limits;
}

function positive(fields: Fields, key: string, label: string): number {
  const value = read.counter(fields, key, label);
  if (value === 0) malformed(`${at(label, key)} must be positive`);
  return value;
}

function version(fields: Fields): ProtocolVersion {
  const value = read.counter(fields, 'version', '');
  if (value !== protocolVersion) throw new Rejection('unsupported_version', `protocol version ${value} is not supported; this side speaks ${protocolVersion}`);
  return protocolVersion;
}

/** Optional fields may be absent or nil (docs/protocol.md: nil means absent); both are undefined. */
function optional(fields: Fields, key: string): unknown {
  const value = read.optional(fields, key);
  return value === null ? undefined : value;
}

// ---- client -> node -----------------------------------------------------------------------

function readClientMessage(value: unknown, namespaces: NamespaceLookup): ClientMessage {
  const fields = read.record(value, 'message');
  const type = read.oneOf(fields, 'type', '', clientMessageTypes);
  switch (type) {
    case 'hello': {
      const v = version(fields);
      const client = optional(fields, 'client');
      const token = optional(fields, 'token');
      return {
        type,
        version: v,
        ...(client === undefined ? {} : { client: read.stringValue(client, 'client', 0, nameLengthMax) }),
        ...(token === undefined ? {} : { token: read.stringValue(token, 'token', 1, tokenLengthMax) }),
      };
    }
    case 'list_namespaces':
    case 'ping':
      return { type, id: id(fields) };
    case 'request':
      return readRequest(fields, namespaces);
    case 'watch_subscribe':
    case 'watch_ack':
    case 'watch_cancel':
      return readClientWatch(type, fields, namespaces);
    default:
      return assertNever(type, 'client message type');
  }
}

/**
 * A watch message. Its namespace must be served here and its replica index in range; a
 * subscribe's path is checked against the namespace's own tree limits (a path no op could
 * name is refused before it costs a replica anything).
 */
function readClientWatch(type: ClientWatchMessage['type'], fields: Fields, namespaces: NamespaceLookup): ClientWatchMessage {
  const watchId = clientWatchId(fields);
  const ns = namespaceName(fields, 'ns', '');
  const shape = namespaces(ns);
  if (shape === undefined) throw new Rejection('unknown_namespace', `no namespace ${ns} on this node`);
  const replica = read.counter(fields, 'replica', '');
  if (replica >= shape.replicas) malformed(`replica ${replica} is not an index of namespace ${ns}'s ${shape.replicas} replicas`);
  switch (type) {
    case 'watch_subscribe': {
      const path = read.string(fields, 'path', '');
      const pathError = checkPath(path, shape.tree);
      if (pathError !== null) malformed(`path: ${describeTreeError(pathError)}`);
      const fromOp = optional(fields, 'fromOp');
      return {
        type,
        ns,
        replica,
        watchId,
        path,
        recursive: optionalFlag(fields, 'recursive'),
        fromOp: fromOp === undefined ? null : read.integerValue(fromOp, 'fromOp', 0, protocolNumberMax),
        values: optionalFlag(fields, 'values'),
      };
    }
    case 'watch_ack':
      return { type, ns, replica, watchId, through: protocolNumber(fields, 'through', '') };
    case 'watch_cancel':
      return { type, ns, replica, watchId };
    default:
      return assertNever(type, 'watch message type');
  }
}

function clientWatchId(fields: Fields): string {
  const value = read.required(fields, 'watchId', '');
  if (!isClientWatchId(value)) return malformed(`watchId must be 1..${clientWatchIdCharsMax} printable ASCII characters without spaces`);
  return value;
}

/** An optional boolean, false when absent or nil. */
function optionalFlag(fields: Fields, key: string): boolean {
  const value = optional(fields, key);
  return value === undefined ? false : read.booleanValue(value, key);
}

function readRequest(fields: Fields, namespaces: NamespaceLookup): RequestMessage {
  const requestId = id(fields);
  const ns = namespaceName(fields, 'ns', '');
  const shape = namespaces(ns);
  if (shape === undefined) throw new Rejection('unknown_namespace', `no namespace ${ns} on this node`);
  const replica = read.counter(fields, 'replica', '');
  if (replica >= shape.replicas) malformed(`replica ${replica} is not an index of namespace ${ns}'s ${shape.replicas} replicas`);
  const clientId = read.string(fields, 'clientId', '', 1, clientIdLengthMax);
  const requestNum = protocolNumber(fields, 'requestNum', '');
  const op = read.record(read.required(fields, 'op', ''), 'op');
  const opType = read.oneOf(op, 'type', 'op', ['register', 'tree'] as const);
  switch (opType) {
    case 'register':
      // The replicas reserve request number 0 for register (src/vr/validate.ts); refusing here
      // gives the client an answer instead of a silent drop by the replicas.
      if (requestNum !== 0) malformed('register must use requestNum 0');
      return { type: 'request', id: requestId, ns, replica, clientId, requestNum, op: { type: 'register' } };
    case 'tree': {
      if (requestNum === 0) malformed('requestNum 0 is reserved for register');
      // The same gate as the primary's, before the request costs the node anything more.
      const validated = validateOp(own(op, 'op'), shape.tree);
      if (!validated.ok) malformed(`op.op: ${describeTreeError(validated.error)}`);
      return { type: 'request', id: requestId, ns, replica, clientId, requestNum, op: { type: 'tree', op: validated.op } };
    }
    default:
      return assertNever(opType, 'request op type');
  }
}

// ---- node -> client -----------------------------------------------------------------------

function readNodeMessage(value: unknown): NodeMessage {
  const fields = read.record(value, 'message');
  const type = read.oneOf(fields, 'type', '', nodeMessageTypes);
  switch (type) {
    case 'welcome':
      return {
        type,
        version: version(fields),
        node: read.string(fields, 'node', '', 1, nameLengthMax),
        namespaces: namespaceList(fields, 'namespaces', ''),
        frameBytesMax: positive(fields, 'frameBytesMax', ''),
        inFlightMax: positive(fields, 'inFlightMax', ''),
        requestTimeoutMs: positive(fields, 'requestTimeoutMs', ''),
      };
    case 'namespaces':
      return { type, id: id(fields), namespaces: namespaceList(fields, 'namespaces', '') };
    case 'answer':
      return { type, id: id(fields), ns: namespaceName(fields, 'ns', ''), answer: readClientAnswer(read.required(fields, 'answer', ''), 'answer') };
    case 'redirect': {
      const address = optional(fields, 'address');
      return {
        type,
        id: id(fields),
        ns: namespaceName(fields, 'ns', ''),
        replica: read.counter(fields, 'replica', ''),
        address: address === undefined ? null : read.stringValue(address, 'address', 1, addressLengthMax),
      };
    }
    case 'pong':
      return { type, id: id(fields) };
    case 'watch_events':
      return {
        type,
        watchId: clientWatchId(fields),
        seq: noticeSeq(fields),
        op: protocolNumber(fields, 'op', ''),
        events: read.array(fields, 'events', '', watchMessageEventsMax).map((event, i) => readWatchEvent(event, `events[${i}]`)),
        more: read.boolean(fields, 'more', ''),
      };
    case 'watch_progress':
      return { type, watchId: clientWatchId(fields), seq: noticeSeq(fields), through: protocolNumber(fields, 'through', '') };
    case 'watch_ended':
      return {
        type,
        watchId: clientWatchId(fields),
        seq: noticeSeq(fields),
        reason: read.oneOf(fields, 'reason', '', watchEndReasons),
        oldestOp: protocolNumber(fields, 'oldestOp', ''),
        currentOp: protocolNumber(fields, 'currentOp', ''),
        message: read.string(fields, 'message', ''),
      };
    case 'error': {
      const errorId = optional(fields, 'id');
      return {
        type,
        id: errorId === undefined ? null : read.integerValue(errorId, 'id', 0, protocolNumberMax),
        code: read.oneOf(fields, 'code', '', errorCodes),
        message: read.string(fields, 'message', ''),
      };
    }
    default:
      return assertNever(type, 'node message type');
  }
}

/** A watch notice's number in its subscription (src/watch/messages.ts): 1 or more, at most `protocolNumberMax`. */
function noticeSeq(fields: Fields): number {
  return read.integer(fields, 'seq', '', 1, protocolNumberMax);
}

export const watchEndReasons = ['compacted', 'future', 'lagging', 'idle', 'not_serving', 'too_many', 'invalid'] as const satisfies readonly WatchEndReason[];
const watchEndReasonsComplete: Missing<WatchEndReason, (typeof watchEndReasons)[number]> = true;
void watchEndReasonsComplete;

const changeKinds = ['created', 'changed', 'deleted'] as const satisfies readonly TreeChangeKind[];
const changeKindsComplete: Missing<TreeChangeKind, (typeof changeKinds)[number]> = true;
void changeKindsComplete;

/**
 * Paths in events are checked for their form only: the client may not know the namespace's
 * limits (a node may send events of a namespace this connection was not welcomed with), and
 * the frame limit bounds their size.
 */
const eventPathLimits: TreeLimits = { ...defaultTreeLimits, pathBytesMax: Number.MAX_SAFE_INTEGER, pathDepthMax: Number.MAX_SAFE_INTEGER, componentBytesMax: Number.MAX_SAFE_INTEGER };

/**
 * One event. A value comes only with a blob that was created or changed: `value` its bytes,
 * or `valueOmitted: true` (and `value` nil or absent) when they were over the watch's cap.
 */
function readWatchEvent(value: unknown, label: string): WatchEvent {
  const fields = read.record(value, label);
  const kind = read.oneOf(fields, 'kind', label, changeKinds);
  const path = read.string(fields, 'path', label);
  const pathError = checkPath(path, eventPathLimits);
  if (pathError !== null) malformed(`${at(label, 'path')}: ${describeTreeError(pathError)}`);
  const nodeType = readNodeType(fields, label);
  const version = protocolNumber(fields, 'version', label);
  const bytes = optional(fields, 'value');
  const omittedField = optional(fields, 'valueOmitted');
  const omitted = omittedField === undefined ? false : read.booleanValue(omittedField, at(label, 'valueOmitted'));
  const event: WatchEvent = { kind, path, nodeType, version };
  if (bytes === undefined && !omitted) return event;
  if (nodeType !== 'blob' || kind === 'deleted') malformed(`${label}: only a created or changed blob carries a value`);
  if (omitted) {
    if (bytes !== undefined) malformed(`${label}: value and valueOmitted together`);
    return { ...event, value: null, valueOmitted: true };
  }
  return { ...event, value: read.bytesValue(bytes, at(label, 'value')) };
}

/** The replica's answer (src/vr/messages.ts), rebuilt field by field in the order of its type. */
function readClientAnswer(value: unknown, label: string): ClientAnswer {
  const fields = read.record(value, label);
  const type = read.oneOf(fields, 'type', label, ['reply', 'not_primary', 'busy'] as const);
  const epoch = read.counter(fields, 'epoch', label);
  const view = read.counter(fields, 'view', label);
  switch (type) {
    case 'reply': {
      const reply: Reply = {
        type,
        epoch,
        view,
        op: read.counter(fields, 'op', label),
        clientId: read.string(fields, 'clientId', label, 1, clientIdLengthMax),
        requestNum: read.counter(fields, 'requestNum', label),
        body: readReplyBody(read.required(fields, 'body', label), at(label, 'body')),
      };
      return reply;
    }
    case 'not_primary': {
      const notPrimary: NotPrimary = {
        type,
        epoch,
        view,
        primary: read.counter(fields, 'primary', label),
        clientId: read.string(fields, 'clientId', label, 1, clientIdLengthMax),
        requestNum: read.counter(fields, 'requestNum', label),
      };
      return notPrimary;
    }
    case 'busy': {
      const busy: Busy = {
        type,
        epoch,
        view,
        retryAfterTicks: read.counter(fields, 'retryAfterTicks', label),
        clientId: read.string(fields, 'clientId', label, 1, clientIdLengthMax),
        requestNum: read.counter(fields, 'requestNum', label),
      };
      return busy;
    }
    default:
      return assertNever(type, 'client answer type');
  }
}

const replyBodyTypes = ['registered', 'tree', 'session_expired', 'rejected', 'stale_request'] as const satisfies readonly ReplyBody['type'][];

function readReplyBody(value: unknown, label: string): ReplyBody {
  const fields = read.record(value, label);
  const type = read.oneOf(fields, 'type', label, replyBodyTypes);
  switch (type) {
    case 'registered':
      return { type, isNew: read.boolean(fields, 'isNew', label), lastRequestNum: read.counter(fields, 'lastRequestNum', label) };
    case 'tree':
    case 'rejected':
      return { type, outcome: readOutcome(read.required(fields, 'outcome', label), at(label, 'outcome')) };
    case 'session_expired':
      return { type };
    case 'stale_request':
      return { type, lastRequestNum: read.counter(fields, 'lastRequestNum', label) };
    default:
      return assertNever(type, 'reply body type');
  }
}

const opResultTypes = ['ok', 'blob', 'element', 'count', 'bool', 'answer', 'set', 'list', 'stat', 'txn', 'lease', 'lease_kept'] as const satisfies readonly OpResult['type'][];
const resultTypesComplete: Missing<OpResult['type'], (typeof opResultTypes)[number]> = true;
void resultTypesComplete;

function readOutcome(value: unknown, label: string): OpOutcome {
  const fields = read.record(value, label);
  if (own(fields, 'type') === 'error') return readFailure(fields, label);
  return readResult(fields, label, true);
}

function readFailure(fields: Fields, label: string): OpFailure {
  const error = readTreeError(read.required(fields, 'error', label), at(label, 'error'));
  const index = optional(fields, 'at');
  if (index === undefined) return { type: 'error', error };
  return { type: 'error', error, at: read.counterValue(index, at(label, 'at')) };
}

/** `txn` results hold the results of simple ops, which are never transactions: one level only. */
function readResult(fields: Fields, label: string, allowTxn: boolean): OpResult {
  const type = read.oneOf(fields, 'type', label, opResultTypes);
  switch (type) {
    case 'ok': {
      // `path` only for a sequential create: the name it made.
      const path = optional(fields, 'path');
      const version = read.counter(fields, 'version', label);
      return path === undefined ? { type, version } : { type, version, path: read.stringValue(path, at(label, 'path')) };
    }
    case 'lease':
      return { type, id: read.counter(fields, 'id', label), ttlMs: read.counter(fields, 'ttlMs', label), nodes: read.counter(fields, 'nodes', label) };
    case 'lease_kept': {
      const alive = read.array(fields, 'alive', label);
      const aliveLabel = at(label, 'alive');
      return { type, alive: alive.map((flag, i) => read.booleanValue(flag, `${aliveLabel}[${i}]`)) };
    }
    case 'blob':
      return { type, value: read.bytes(fields, 'value', label), version: read.counter(fields, 'version', label) };
    case 'element': {
      // Required, but nil is a value here: the queue was empty.
      const element = read.required(fields, 'value', label);
      const elementValue = element === null ? null : read.bytesValue(element, at(label, 'value'));
      return { type, value: elementValue, version: read.counter(fields, 'version', label) };
    }
    case 'count':
      return { type, count: read.counter(fields, 'count', label), version: read.counter(fields, 'version', label) };
    case 'bool':
      return { type, value: read.boolean(fields, 'value', label), version: read.counter(fields, 'version', label) };
    case 'answer':
      return { type, value: read.boolean(fields, 'value', label) };
    case 'set': {
      const members = read.array(fields, 'members', label);
      const membersLabel = at(label, 'members');
      return { type, members: members.map((member, i) => read.bytesValue(member, `${membersLabel}[${i}]`)) };
    }
    case 'list': {
      const entries = read.array(fields, 'entries', label);
      const entriesLabel = at(label, 'entries');
      return {
        type,
        entries: entries.map((entry, i) => readListEntry(entry, `${entriesLabel}[${i}]`)),
        version: read.counter(fields, 'version', label),
      };
    }
    case 'stat':
      return {
        type,
        nodeType: readNodeType(fields, label),
        version: read.counter(fields, 'version', label),
        size: read.counter(fields, 'size', label),
      };
    case 'txn': {
      if (!allowTxn) malformed(`${label}: transaction results do not nest`);
      const results = read.array(fields, 'results', label);
      const resultsLabel = at(label, 'results');
      return {
        type,
        results: results.map((result, i) => readResult(read.record(result, `${resultsLabel}[${i}]`), `${resultsLabel}[${i}]`, false)),
      };
    }
    default:
      return assertNever(type, 'op result type');
  }
}

function readNodeType(fields: Fields, label: string): NodeType {
  const value = read.required(fields, 'nodeType', label);
  if (!isNodeType(value)) return malformed(`${at(label, 'nodeType')} must be one of ${nodeTypes.join(', ')}`);
  return value;
}

function readListEntry(value: unknown, label: string): ListEntry {
  const fields = read.record(value, label);
  return {
    name: read.string(fields, 'name', label),
    path: read.string(fields, 'path', label),
    nodeType: readNodeType(fields, label),
    version: read.counter(fields, 'version', label),
  };
}

const treeErrorCodes = [
  'already_exists',
  'does_not_exist',
  'wrong_type',
  'not_a_directory',
  'bad_path',
  'cannot_delete_root',
  'cas_failed',
  'too_large',
  'invalid_request',
  'no_such_lease',
  'lease_not_owned',
] as const satisfies readonly TreeError['code'][];
const treeErrorCodesComplete: Missing<TreeError['code'], (typeof treeErrorCodes)[number]> = true;
void treeErrorCodesComplete;

export const limitNames = [
  'value_bytes',
  'path_bytes',
  'path_depth',
  'component_bytes',
  'collection_elements',
  'txn_ops',
  'txn_guards',
  'union_operands',
  'request_bytes',
  'list_entries',
  'directory_children',
  'leases',
  'leases_per_client',
  'lease_nodes',
  'keepalive_ids',
  'sequence',
] as const satisfies readonly LimitName[];
const limitNamesComplete: Missing<LimitName, (typeof limitNames)[number]> = true;
void limitNamesComplete;

function readTreeError(value: unknown, label: string): TreeError {
  const fields = read.record(value, label);
  const code = read.oneOf(fields, 'code', label, treeErrorCodes);
  switch (code) {
    case 'already_exists':
    case 'does_not_exist':
    case 'not_a_directory':
      return { code, path: read.string(fields, 'path', label) };
    case 'wrong_type':
      return { code, path: read.string(fields, 'path', label), actual: readActualType(fields, label) };
    case 'bad_path':
    case 'invalid_request':
      return { code, reason: read.string(fields, 'reason', label) };
    case 'cannot_delete_root':
      return { code };
    case 'no_such_lease':
    case 'lease_not_owned':
      return { code, id: read.counter(fields, 'id', label) };
    case 'cas_failed': {
      // Required, but nil is a value here: the node did not exist.
      const actual = read.required(fields, 'actual', label);
      return {
        code,
        path: read.string(fields, 'path', label),
        expected: read.counter(fields, 'expected', label),
        actual: actual === null ? null : read.counterValue(actual, at(label, 'actual')),
      };
    }
    case 'too_large':
      return { code, what: read.oneOf(fields, 'what', label, limitNames), limit: read.counter(fields, 'limit', label) };
    default:
      return assertNever(code, 'tree error code');
  }
}

function readActualType(fields: Fields, label: string): NodeType {
  const value = read.required(fields, 'actual', label);
  if (!isNodeType(value)) return malformed(`${at(label, 'actual')} must be one of ${nodeTypes.join(', ')}`);
  return value;
}
