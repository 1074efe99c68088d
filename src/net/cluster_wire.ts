/**
 * The messages of the cluster link (src/net/cluster_link.ts) and their validation.
 *
 * Every frame payload is ONE msgpack value written by the runtime's msgpack codec
 * (`makeCodec('msgpack')`, runtime/codec.ts), so a batch is packed once, with its record
 * definitions, straight into the payload: no second encoding of the envelopes inside an outer
 * message. A frame is a map with a string tag `t`:
 *
 *   hello   {t, version, node, info}   dialler -> acceptor, first frame on a connection
 *   welcome {t, version, node, info}   acceptor -> dialler, the answer to hello
 *   batch   {t, b: Envelope[]}         dialler -> acceptor, after welcome
 *   ping    {t}                        dialler -> acceptor, when nothing else was sent
 *   error   {t, code, message}         either way, just before the sender closes
 *
 * Decoding never throws: bytes from the network either become a frame or a reason.
 */

import type { Codec } from '../../runtime/codec.ts';
import { isEnvelope, type Envelope, type EnvelopeBatch } from '../../runtime/envelope.ts';

export const clusterProtocolVersion = 1;

/** Node names: what `node::actor` ids and file names can carry. */
const nodeNamePattern = /^[A-Za-z0-9._-]{1,64}$/;
export const infoEntriesMax = 16;
export const infoCharsMax = 1024;

/** Largest hello or welcome payload: 16 entries of two 1,024-char strings, up to 3 bytes a char, with room. */
export const handshakeBytesMax = 256 * 1024;

export type Info = Readonly<Record<string, string>>;

export type ClusterErrorCode = 'malformed' | 'unsupported_version' | 'frame_too_large' | 'handshake_timeout' | 'overloaded';

export type HelloFrame = { readonly t: 'hello'; readonly version: number; readonly node: string; readonly info: Info };
export type WelcomeFrame = { readonly t: 'welcome'; readonly version: number; readonly node: string; readonly info: Info };
export type BatchFrame = { readonly t: 'batch'; readonly b: readonly Envelope[] };
export type PingFrame = { readonly t: 'ping' };
export type ErrorFrame = { readonly t: 'error'; readonly code: string; readonly message: string };
export type ClusterFrame = HelloFrame | WelcomeFrame | BatchFrame | PingFrame | ErrorFrame;

export type Decoded =
  /** `malformed`: items of a batch that were not envelopes and were left out. */
  | { readonly ok: true; readonly frame: ClusterFrame; readonly malformed: number }
  | { readonly ok: false; readonly code: ClusterErrorCode; readonly message: string };

export function isNodeName(value: unknown): value is string {
  return typeof value === 'string' && nodeNamePattern.test(value);
}

/** Returns a reason, or null when `info` is a record of at most 16 short strings. */
export function checkInfo(info: unknown): string | null {
  if (typeof info !== 'object' || info === null || Array.isArray(info)) return 'info must be a record of strings';
  const entries = Object.entries(info);
  if (entries.length > infoEntriesMax) return `info may hold at most ${infoEntriesMax} entries`;
  for (const [key, value] of entries) {
    if (typeof value !== 'string') return `info ${key} is not a string`;
    if (key.length > infoCharsMax || value.length > infoCharsMax) return `info entries are at most ${infoCharsMax} chars`;
  }
  return null;
}

/**
 * The payload of one frame. Throws when the codec cannot pack the frame (the caller drops and
 * counts). The codec's parameter is typed as a batch because that is what the runtime posts,
 * but it packs any plain value.
 */
export function encodeClusterFrame(codec: Codec, frame: ClusterFrame): Uint8Array {
  const { data } = codec.encode(frame as unknown as EnvelopeBatch);
  if (!(data instanceof Uint8Array)) throw new TypeError('the cluster link needs the msgpack codec');
  return data;
}

export function decodeClusterFrame(codec: Codec, payload: Uint8Array): Decoded {
  let value: unknown;
  try {
    value = codec.decode(payload);
  } catch (error) {
    return bad(`undecodable frame: ${error instanceof Error ? error.message : String(error)}`);
  }
  const fields = recordOf(value);
  if (fields === null) return bad('a frame must be a map');
  switch (fields['t']) {
    case 'hello':
    case 'welcome': {
      if (fields['version'] !== clusterProtocolVersion) {
        return { ok: false, code: 'unsupported_version', message: `protocol version ${String(fields['version'])}, this node speaks ${clusterProtocolVersion}` };
      }
      const node = fields['node'];
      if (!isNodeName(node)) return bad('node must be a name of 1-64 letters, digits, ".", "_" or "-"');
      const info = recordOf(fields['info']);
      const problem = checkInfo(info);
      if (problem !== null) return bad(problem);
      return { ok: true, frame: { t: fields['t'], version: clusterProtocolVersion, node, info: { ...(info as Info) } }, malformed: 0 };
    }
    case 'batch': {
      const items = fields['b'];
      if (!Array.isArray(items)) return bad('a batch must carry an array');
      // One bad item does not spoil the batch: the protocols above retry whatever is lost.
      const envelopes = items.filter(isEnvelope);
      return { ok: true, frame: { t: 'batch', b: envelopes }, malformed: items.length - envelopes.length };
    }
    case 'ping':
      return { ok: true, frame: { t: 'ping' }, malformed: 0 };
    case 'error': {
      const code = fields['code'];
      const message = fields['message'];
      return { ok: true, frame: { t: 'error', code: typeof code === 'string' ? code : '', message: typeof message === 'string' ? message : '' }, malformed: 0 };
    }
    default:
      return bad(`unknown frame type ${typeof fields['t'] === 'string' ? fields['t'] : typeof fields['t']}`);
  }
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
      if (value === null || ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date) return true;
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

function bad(message: string): Decoded {
  return { ok: false, code: 'malformed', message };
}

/**
 * The fields of a decoded map. The runtime codec writes objects as msgpack records, which
 * decode as objects; a plain msgpack map (another writer) decodes as a Map.
 */
function recordOf(value: unknown): Record<string, unknown> | null {
  if (value instanceof Map) {
    // No prototype: a key "__proto__" from the network stays a plain key.
    const fields: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [key, item] of value) if (typeof key === 'string') fields[key] = item;
    return fields;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) return null;
  return value as Record<string, unknown>;
}
