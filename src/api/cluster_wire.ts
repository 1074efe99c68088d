/**
 * The messages of the cluster link (src/net/cluster_link.ts) and their validation. Pure.
 *
 * Every frame payload is ONE msgpack value, packed with records (an object shape is written
 * once per frame and referenced after, the same format as the runtime's msgpack codec), so a
 * batch is packed once, with its record definitions, straight into the payload: no second
 * encoding of the envelopes inside an outer message. A frame is a map with a string tag `t`:
 *
 *   hello     {t, version, node, incarnation, info, nonce?}   dialler -> acceptor, first frame
 *   challenge {t, nonce}                    acceptor -> dialler (secret mode), the answer to hello
 *   proof     {t, mac}                      dialler -> acceptor (secret mode), the answer to challenge
 *   welcome   {t, version, node, info, mac?} acceptor -> dialler, once the dialler is authenticated
 *   batch     {t, b: Envelope[]}            dialler -> acceptor, after welcome
 *   ping      {t}                           dialler -> acceptor, when nothing else was sent
 *   error     {t, code, message}            either way, just before the sender closes
 *
 * The handshake and what each security mode proves is described in src/net/cluster_link.ts;
 * this file only says what the frames hold. `nonce` is 32 random bytes, `mac` an HMAC-SHA256
 * (32 bytes) over a transcript built by `helloTranscript` / `welcomeTranscript` below, so
 * both sides build the same bytes from the same fields.
 *
 * Decoding never throws: bytes from the network either become a frame or a reason. Every
 * number and string is bounded before it is kept, and a relayed envelope is rebuilt from its
 * three fields (anything else a peer put in it, such as a `control` flag, is not carried).
 */

import { Packr } from 'msgpackr';
import { assertNever } from '../base/assert.ts';
import { FieldReader, isPlainObject, msgpackWords, own, type Fields } from '../base/fields.ts';
import { protocolNumberMax } from '../base/limits.ts';

/** 2: the authenticated handshake of issue 12 (incarnation, challenge, proof, mac). */
export const clusterProtocolVersion = 2;
/** Bytes of a handshake nonce and of an HMAC-SHA256. */
export const nonceBytes = 32;
export const macBytes = 32;

/** Node names: what `node::actor` ids and file names can carry. */
const nodeNamePattern = /^[A-Za-z0-9._-]{1,64}$/;
export const nodeNameCharsMax = 64;
export const infoEntriesMax = 16;
export const infoCharsMax = 1024;
/** Actor ids relayed between nodes (`ns/r0`, `a::proxy`): names of at most 64 characters, joined. */
export const actorIdCharsMax = 256;
/** Envelopes in one batch frame; a larger batch is split by the sender. */
export const batchEnvelopesMax = 65_536;
/** An error frame's code and message are cut to these lengths, both ways. */
export const errorCodeCharsMax = 64;
export const errorMessageCharsMax = 200;

/** Largest hello or welcome payload: 16 entries of two 1,024-char strings, up to 3 bytes a char, with room. */
export const handshakeBytesMax = 256 * 1024;

export type Info = Readonly<Record<string, string>>;

/**
 * An envelope as the link carries it. The runtime's Envelope (runtime/envelope.ts) has this
 * shape (plus an optional `control` flag that never crosses nodes), so the two are compatible
 * without the core importing the runtime.
 */
export type RelayedEnvelope = { readonly from: string; readonly to: string; readonly msg: unknown };

/**
 * `unauthenticated`: the peer did not prove who it is (no or a wrong proof, a certificate that
 * does not name it). Once it did: `same_name` when the hello names the receiving node itself
 * (the dialler dialled itself, or two nodes share a name: it stops dialling that address),
 * `refused` when a newer incarnation of the node it names is connected now.
 */
export type ClusterErrorCode = 'malformed' | 'unsupported_version' | 'frame_too_large' | 'handshake_timeout' | 'overloaded' | 'unauthenticated' | 'same_name' | 'refused';

export type HelloFrame = { readonly t: 'hello'; readonly version: number; readonly node: string; readonly incarnation: number; readonly info: Info; readonly nonce?: Uint8Array };
export type ChallengeFrame = { readonly t: 'challenge'; readonly nonce: Uint8Array };
export type ProofFrame = { readonly t: 'proof'; readonly mac: Uint8Array };
export type WelcomeFrame = { readonly t: 'welcome'; readonly version: number; readonly node: string; readonly info: Info; readonly mac?: Uint8Array };
export type BatchFrame = { readonly t: 'batch'; readonly b: readonly RelayedEnvelope[] };
export type PingFrame = { readonly t: 'ping' };
export type ErrorFrame = { readonly t: 'error'; readonly code: string; readonly message: string };
export type ClusterFrame = HelloFrame | ChallengeFrame | ProofFrame | WelcomeFrame | BatchFrame | PingFrame | ErrorFrame;

export type Decoded =
  /** `malformed`: items of a batch that were not envelopes and were left out. */
  | { readonly ok: true; readonly frame: ClusterFrame; readonly malformed: number }
  | { readonly ok: false; readonly code: ClusterErrorCode; readonly message: string };

// Records: like frames pack and unpack 2-3x faster than with a map per object, and each frame
// carries its own definitions, so no state is shared between frames or peers. copyBuffers: a
// byte value decoded from a frame gets its own memory instead of a view that would keep the
// frame alive as long as the tree holds the value. moreTypes off: only what msgpack says.
const packr = new Packr({ useRecords: true, moreTypes: false, copyBuffers: true });

class Rejected extends Error {
  readonly code: ClusterErrorCode;
  constructor(code: ClusterErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

const reader = new FieldReader((message) => {
  throw new Rejected('malformed', message);
}, msgpackWords);

export function isNodeName(value: unknown): value is string {
  return typeof value === 'string' && nodeNamePattern.test(value);
}

/** An actor id a link carries: a string of 1..actorIdCharsMax characters. */
function isActorId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= actorIdCharsMax;
}

/** Returns a reason, or null when `info` is a record of at most 16 short strings. */
export function checkInfo(info: unknown): string | null {
  try {
    readInfo(info, 'info');
    return null;
  } catch (error) {
    if (error instanceof Rejected) return error.message;
    throw error;
  }
}

/**
 * The payload of one frame, in memory of its own (a frame may wait in an outbox). Throws when
 * msgpack cannot pack the frame (the caller drops and counts).
 */
export function encodeClusterFrame(frame: ClusterFrame): Uint8Array {
  const packed = packr.pack(frame);
  const owned = new Uint8Array(packed.byteLength);
  owned.set(packed);
  return owned;
}

export function decodeClusterFrame(payload: Uint8Array): Decoded {
  let value: unknown;
  try {
    value = packr.unpack(payload);
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    return { ok: false, code: 'malformed', message: `undecodable frame: ${text.slice(0, errorMessageCharsMax)}` };
  }
  try {
    return readFrame(value);
  } catch (error) {
    if (error instanceof Rejected) return { ok: false, code: error.code, message: error.message };
    throw error;
  }
}

const frameTypes = ['hello', 'challenge', 'proof', 'welcome', 'batch', 'ping', 'error'] as const;

function readFrame(value: unknown): Decoded {
  const fields = reader.record(fieldsOf(value), 'a frame');
  const t = reader.oneOf(fields, 't', '', frameTypes);
  switch (t) {
    case 'hello': {
      readVersion(fields);
      const node = readNodeName(fields);
      const incarnation = reader.integer(fields, 'incarnation', '', 0, protocolNumberMax);
      const info = readInfo(reader.required(fields, 'info', ''), 'info');
      const nonce = reader.optional(fields, 'nonce');
      return { ok: true, frame: { t, version: clusterProtocolVersion, node, incarnation, info, ...(nonce === undefined ? {} : { nonce: exactBytes(nonce, 'nonce', nonceBytes) }) }, malformed: 0 };
    }
    case 'welcome': {
      readVersion(fields);
      const node = readNodeName(fields);
      const info = readInfo(reader.required(fields, 'info', ''), 'info');
      const mac = reader.optional(fields, 'mac');
      return { ok: true, frame: { t, version: clusterProtocolVersion, node, info, ...(mac === undefined ? {} : { mac: exactBytes(mac, 'mac', macBytes) }) }, malformed: 0 };
    }
    case 'challenge':
      return { ok: true, frame: { t, nonce: exactBytes(reader.required(fields, 'nonce', ''), 'nonce', nonceBytes) }, malformed: 0 };
    case 'proof':
      return { ok: true, frame: { t, mac: exactBytes(reader.required(fields, 'mac', ''), 'mac', macBytes) }, malformed: 0 };
    case 'batch': {
      const items = reader.array(fields, 'b', '', batchEnvelopesMax);
      // One bad item does not spoil the batch: the protocols above retry whatever is lost.
      const envelopes: RelayedEnvelope[] = [];
      for (const item of items) {
        const envelope = envelopeOf(item);
        if (envelope !== null) envelopes.push(envelope);
      }
      return { ok: true, frame: { t, b: envelopes }, malformed: items.length - envelopes.length };
    }
    case 'ping':
      return { ok: true, frame: { t }, malformed: 0 };
    case 'error': {
      // The peer is closing: what it says is kept for the record, cut short, never refused.
      const code = own(fields, 'code');
      const message = own(fields, 'message');
      return { ok: true, frame: { t, code: typeof code === 'string' ? code.slice(0, errorCodeCharsMax) : '', message: typeof message === 'string' ? message.slice(0, errorMessageCharsMax) : '' }, malformed: 0 };
    }
    default:
      return assertNever(t, 'cluster frame type');
  }
}

function readVersion(fields: Fields): void {
  const version = own(fields, 'version');
  if (version !== clusterProtocolVersion) {
    const shown = typeof version === 'number' ? String(version) : typeof version;
    throw new Rejected('unsupported_version', `protocol version ${shown}, this node speaks ${clusterProtocolVersion}`);
  }
}

function readNodeName(fields: Fields): string {
  const node = reader.string(fields, 'node', '', 1, nodeNameCharsMax);
  if (!isNodeName(node)) return reader.fail('node must be a name of 1-64 letters, digits, ".", "_" or "-"');
  return node;
}

/** Bytes of exactly `length`, as a plain Uint8Array of their own. */
function exactBytes(value: unknown, label: string, length: number): Uint8Array {
  const bytes = reader.bytesValue(value, label, length);
  if (bytes.byteLength !== length) return reader.fail(`${label} must be ${length} bytes`);
  return Uint8Array.from(bytes);
}

const textEncoder = new TextEncoder();

/**
 * What the dialler's proof MACs (secret mode): a label, its own name and incarnation, then the
 * dialler's and the acceptor's nonces. Names hold no newline (isNodeName), nonces have a fixed
 * length, so the fields cannot be shifted into one another. The label differs from the
 * welcome's, so a MAC computed as one role is never accepted as the other.
 */
export function helloTranscript(dialler: string, incarnation: number, diallerNonce: Uint8Array, acceptorNonce: Uint8Array): Uint8Array {
  return transcript(`haret-cluster-v${clusterProtocolVersion} hello\n${dialler}\n${incarnation}\n`, diallerNonce, acceptorNonce);
}

/** What the acceptor's welcome MACs (secret mode): a label, both names, both nonces; binds the acceptor's name. */
export function welcomeTranscript(dialler: string, acceptor: string, diallerNonce: Uint8Array, acceptorNonce: Uint8Array): Uint8Array {
  return transcript(`haret-cluster-v${clusterProtocolVersion} welcome\n${dialler}\n${acceptor}\n`, diallerNonce, acceptorNonce);
}

function transcript(head: string, first: Uint8Array, second: Uint8Array): Uint8Array {
  const text = textEncoder.encode(head);
  const out = new Uint8Array(text.byteLength + first.byteLength + second.byteLength);
  out.set(text, 0);
  out.set(first, text.byteLength);
  out.set(second, text.byteLength + first.byteLength);
  return out;
}

/** At most 16 entries, keys and values strings of at most 1,024 characters; a fresh object. */
function readInfo(value: unknown, label: string): Info {
  const fields = reader.record(fieldsOf(value), label);
  const keys = Object.keys(fields);
  if (keys.length > infoEntriesMax) return reader.fail(`${label} may hold at most ${infoEntriesMax} entries`);
  const entries: [string, string][] = [];
  for (const key of keys) {
    if (key.length > infoCharsMax) return reader.fail(`${label} keys are at most ${infoCharsMax} characters`);
    entries.push([key, reader.string(fields, key, label, 0, infoCharsMax)]);
  }
  // fromEntries defines own properties: a key "__proto__" stays a key.
  return Object.fromEntries(entries);
}

/** A relayed envelope rebuilt from its fields, or null when the item is not one. */
function envelopeOf(value: unknown): RelayedEnvelope | null {
  if (!isPlainObject(value) || !Object.hasOwn(value, 'msg')) return null;
  const from = own(value, 'from');
  const to = own(value, 'to');
  if (!isActorId(from) || !isActorId(to)) return null;
  return { from, to, msg: value['msg'] };
}

/** True when the link can carry `envelope`: an envelope's shape, and a message msgpack carries faithfully. */
export function isRelayable(envelope: unknown): envelope is RelayedEnvelope {
  if (typeof envelope !== 'object' || envelope === null) return false;
  const fields = envelope as Fields;
  return isActorId(own(fields, 'from')) && isActorId(own(fields, 'to')) && Object.hasOwn(fields, 'msg') && isPlainData(fields['msg']);
}

/**
 * True when msgpack carries `value` faithfully. msgpackr writes a function as undefined
 * without a word, so an envelope holding one would arrive changed; those are refused here.
 * Byte arrays are not walked (checkpoint images are large); a cycle or a depth beyond
 * `depthMax` is refused (the packer would overflow its stack on either).
 */
export function isPlainData(value: unknown, depthMax = 1000): boolean {
  return plain(value, depthMax, new Set());
}

function plain(value: unknown, depth: number, ancestors: Set<object>): boolean {
  switch (typeof value) {
    case 'function':
    case 'symbol':
      return false;
    case 'object': {
      // Byte arrays and timestamps are msgpack leaves (the tag check keeps the core free of the clock's name).
      if (value === null || ArrayBuffer.isView(value) || value instanceof ArrayBuffer || Object.prototype.toString.call(value) === '[object Date]') return true;
      if (depth <= 0 || ancestors.has(value)) return false;
      ancestors.add(value);
      const items: Iterable<unknown> = Array.isArray(value) || value instanceof Set ? value : value instanceof Map ? [...value.keys(), ...value.values()] : Object.values(value);
      let ok = true;
      for (const item of items) {
        if (!plain(item, depth - 1, ancestors)) {
          ok = false;
          break;
        }
      }
      ancestors.delete(value);
      return ok;
    }
    default:
      return true;
  }
}

/**
 * A decoded map as fields. Objects are written as msgpack records, which decode as objects; a
 * plain msgpack map (another writer) decodes as a Map, whose string keys become the fields of
 * an object without prototype (a key "__proto__" from the network stays a plain key). Anything
 * else is returned as is for the reader to refuse.
 */
function fieldsOf(value: unknown): unknown {
  if (!(value instanceof Map)) return value;
  const fields: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [key, item] of value) if (typeof key === 'string') fields[key] = item;
  return fields;
}
