/**
 * The identity of a replica directory (issue 13, "Storage"): written once when the directory
 * is created, checked at every start, so that a data directory of another node, another
 * namespace, another replica index or a newer on-disk format is refused with a message naming
 * the file instead of being replayed as if it were ours.
 *
 * File `identity.json`, one line of JSON, keys in this order:
 *
 *   {"format":1,"node":"n1","namespace":"ns","replica":0,"creationId":null,"crc32c":"89abcdef"}
 *
 * JSON, not binary, because an operator reading the refusal will open this file: it must say
 * whose directory it is without tools. `crc32c` is the CRC-32C (8 lower-case hex digits) of the
 * UTF-8 bytes of JSON.stringify of the same object without `crc32c`, keys in the order above
 * (the writer builds the object field by field, so the serialization is canonical). A hand edit
 * or a flipped bit therefore reads as `damaged`. `creationId` is an optional opaque string the
 * caller may use to tell two namespaces of the same name apart (deleted and created again);
 * it is compared only when the caller gives one.
 *
 * Created by writing `identity.json.tmp`, fdatasync, rename, directory fsync: a crash leaves no
 * identity file or a complete one.
 */

import CRC32C from 'crc-32/crc32c.js';
import { dirname, join } from 'node:path';
import { assert, assertNever } from '../../src/base/assert.ts';
import { toStorageError, writeFileAtomically, type FileSystem, type StorageFileHandle } from './fs.ts';

export const IDENTITY_FILE = 'identity.json';
export const IDENTITY_FORMAT = 1;
/** A real identity file is ~150 bytes; anything past this is refused without reading it whole. */
export const IDENTITY_MAX_BYTES = 4096;
const NAME_MAX = 1024;

export interface DirectoryIdentity {
  readonly node: string;
  readonly namespace: string;
  readonly replica: number;
  readonly creationId?: string;
}

export type ClaimRefusal =
  | { readonly kind: 'other_node'; readonly path: string; readonly found: string; readonly message: string }
  | { readonly kind: 'other_namespace'; readonly path: string; readonly found: string; readonly message: string }
  | { readonly kind: 'other_replica'; readonly path: string; readonly found: number; readonly message: string }
  | { readonly kind: 'other_creation'; readonly path: string; readonly found: string | null; readonly message: string }
  | { readonly kind: 'newer_format'; readonly path: string; readonly version: number; readonly message: string }
  | { readonly kind: 'damaged'; readonly path: string; readonly reason: string; readonly message: string }
  /** The directory holds files but no identity: not made by us (or its identity was deleted). */
  | { readonly kind: 'unidentified'; readonly path: string; readonly message: string };

export type ClaimResult =
  | { readonly kind: 'claimed'; readonly path: string; readonly created: boolean; readonly identity: DirectoryIdentity }
  | ClaimRefusal;

/** The canonical body the checksum covers; field order is the format. */
function body(identity: DirectoryIdentity): string {
  return JSON.stringify({
    format: IDENTITY_FORMAT,
    node: identity.node,
    namespace: identity.namespace,
    replica: identity.replica,
    creationId: identity.creationId ?? null,
  });
}

function crcHex(text: string): string {
  return (CRC32C.str(text) >>> 0).toString(16).padStart(8, '0');
}

export function encodeIdentity(identity: DirectoryIdentity): string {
  const text = body(identity);
  return `${text.slice(0, -1)},"crc32c":"${crcHex(text)}"}\n`;
}

type Decoded =
  | { readonly kind: 'ok'; readonly identity: DirectoryIdentity }
  | { readonly kind: 'newer_format'; readonly version: number }
  | { readonly kind: 'damaged'; readonly reason: string };

/** Parses and checks an identity file's text; every field is shape- and bound-checked. */
export function decodeIdentity(text: string): Decoded {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'damaged', reason: 'not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { kind: 'damaged', reason: 'not a JSON object' };
  const o = parsed as Record<string, unknown>;
  // Format first: a newer format may have other fields or checksum them differently.
  if (typeof o['format'] !== 'number' || !Number.isSafeInteger(o['format'])) return { kind: 'damaged', reason: 'format missing or not an integer' };
  if (o['format'] > IDENTITY_FORMAT) return { kind: 'newer_format', version: o['format'] };
  if (o['format'] !== IDENTITY_FORMAT) return { kind: 'damaged', reason: `unknown format ${o['format']}` };
  const keys = Object.keys(o).sort().join(',');
  if (keys !== 'crc32c,creationId,format,namespace,node,replica') return { kind: 'damaged', reason: `unexpected fields ${keys}` };
  const { node, namespace, replica, creationId, crc32c } = o;
  if (typeof node !== 'string' || node.length === 0 || node.length > NAME_MAX) return { kind: 'damaged', reason: 'bad node' };
  if (typeof namespace !== 'string' || namespace.length === 0 || namespace.length > NAME_MAX) return { kind: 'damaged', reason: 'bad namespace' };
  if (typeof replica !== 'number' || !Number.isSafeInteger(replica) || replica < 0 || replica > 255) return { kind: 'damaged', reason: 'bad replica' };
  if (creationId !== null && (typeof creationId !== 'string' || creationId.length > NAME_MAX)) return { kind: 'damaged', reason: 'bad creationId' };
  if (typeof crc32c !== 'string') return { kind: 'damaged', reason: 'bad crc32c' };
  const identity: DirectoryIdentity = { node, namespace, replica, ...(creationId === null ? {} : { creationId }) };
  if (crcHex(body(identity)) !== crc32c) return { kind: 'damaged', reason: 'checksum mismatch' };
  return { kind: 'ok', identity };
}

/**
 * Claims `dir` for `expected`: creates it (and its identity) when missing or empty, otherwise
 * verifies the identity and returns a typed refusal naming the file. I/O failures reject with
 * a StorageError.
 */
export async function claimDirectory(fs: FileSystem, dir: string, expected: DirectoryIdentity): Promise<ClaimResult> {
  assert(expected.node.length > 0 && expected.node.length <= NAME_MAX, 'identity node name out of bounds');
  assert(expected.namespace.length > 0 && expected.namespace.length <= NAME_MAX, 'identity namespace name out of bounds');
  assert(Number.isSafeInteger(expected.replica) && expected.replica >= 0 && expected.replica <= 255, 'identity replica index out of bounds');
  const path = join(dir, IDENTITY_FILE);
  const tmp = `${path}.tmp`;
  let names: string[] | undefined;
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    const e = toStorageError(error, dir, 'listing');
    if (e.code !== 'ENOENT') throw e;
  }
  if (names === undefined) {
    try {
      await fs.mkdir(dir);
      // The new directory's own entry lives in its parent.
      await fs.fsyncDir(dirname(dir));
    } catch (error) {
      throw toStorageError(error, dir, 'creating');
    }
    names = [];
  }
  if (!names.includes(IDENTITY_FILE)) {
    // A leftover .tmp means a crash while creating the identity, before anything else was written.
    const others = names.filter((n) => n !== `${IDENTITY_FILE}.tmp`);
    if (others.length > 0) {
      return {
        kind: 'unidentified',
        path,
        message: `${path} is missing but ${dir} holds ${others.length} other entries (e.g. ${others[0] ?? ''}): not a haret replica directory, or its identity was deleted; refusing to use it`,
      };
    }
    await createIdentity(fs, dir, path, tmp, expected);
    return { kind: 'claimed', path, created: true, identity: expected };
  }
  const read = await readBounded(fs, path);
  if (read.kind === 'too_large') {
    return { kind: 'damaged', path, reason: `larger than ${IDENTITY_MAX_BYTES} bytes`, message: `${path} is damaged: larger than ${IDENTITY_MAX_BYTES} bytes` };
  }
  const decoded = decodeIdentity(read.text);
  switch (decoded.kind) {
    case 'damaged':
      return { kind: 'damaged', path, reason: decoded.reason, message: `${path} is damaged: ${decoded.reason}` };
    case 'newer_format':
      return {
        kind: 'newer_format',
        path,
        version: decoded.version,
        message: `${path} has on-disk format ${decoded.version}, newer than this haret's ${IDENTITY_FORMAT}: upgrade haret to use this directory`,
      };
    case 'ok':
      return compare(path, decoded.identity, expected);
    default:
      return assertNever(decoded, 'identity decode');
  }
}

function compare(path: string, found: DirectoryIdentity, expected: DirectoryIdentity): ClaimResult {
  if (found.node !== expected.node) {
    return { kind: 'other_node', path, found: found.node, message: `${path} belongs to node ${JSON.stringify(found.node)}, not ${JSON.stringify(expected.node)}` };
  }
  if (found.namespace !== expected.namespace) {
    return {
      kind: 'other_namespace',
      path,
      found: found.namespace,
      message: `${path} belongs to namespace ${JSON.stringify(found.namespace)}, not ${JSON.stringify(expected.namespace)}`,
    };
  }
  if (found.replica !== expected.replica) {
    return { kind: 'other_replica', path, found: found.replica, message: `${path} belongs to replica ${found.replica}, not ${expected.replica}` };
  }
  if (expected.creationId !== undefined && found.creationId !== expected.creationId) {
    return {
      kind: 'other_creation',
      path,
      found: found.creationId ?? null,
      message: `${path} belongs to an earlier namespace ${JSON.stringify(found.namespace)} (creation ${JSON.stringify(found.creationId ?? null)}, expected ${JSON.stringify(expected.creationId)})`,
    };
  }
  return { kind: 'claimed', path, created: false, identity: found };
}

async function createIdentity(fs: FileSystem, dir: string, path: string, tmp: string, identity: DirectoryIdentity): Promise<void> {
  await writeFileAtomically(fs, dir, tmp, path, new TextEncoder().encode(encodeIdentity(identity)));
}

async function readBounded(fs: FileSystem, path: string): Promise<{ readonly kind: 'text'; readonly text: string } | { readonly kind: 'too_large' }> {
  let handle: StorageFileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    throw toStorageError(error, path, 'opening');
  }
  try {
    // One byte more than the bound tells "too large" apart from "exactly at the bound".
    const buffer = new Uint8Array(IDENTITY_MAX_BYTES + 1);
    let got = 0;
    while (got < buffer.length) {
      const n = await handle.read(buffer, got, buffer.length - got, got);
      if (n <= 0) break;
      got += n;
    }
    if (got > IDENTITY_MAX_BYTES) return { kind: 'too_large' };
    return { kind: 'text', text: new TextDecoder('utf-8', { fatal: false }).decode(buffer.subarray(0, got)) };
  } catch (error) {
    throw toStorageError(error, path, 'reading');
  } finally {
    await handle.close();
  }
}
