/**
 * Checkpoint files (issue 13, "Storage"): the image the core already encodes (tree and client
 * table, src/vr/checkpoint.ts) stored so that a crash at any point leaves either the previous
 * checkpoint or the new one, complete, never a mix.
 *
 * Write protocol: `checkpoint-<op>.tmp` is written and fdatasynced, renamed to
 * `checkpoint-<op>.ckpt` (atomic), the directory is fsynced (the rename is durable), and only
 * then are older `.ckpt` files deleted. A crash before the rename leaves a `.tmp` that the next
 * read deletes; a crash after it leaves both checkpoints, the newer one valid.
 *
 * File layout (integers big-endian):
 *
 *   offset  size  field
 *   0       8     magic "HARETCK1" (ASCII)
 *   8       4     u32 format version (CHECKPOINT_FORMAT = 1)
 *   12      8     u64 op (must equal the <op> in the file name)
 *   20      8     u64 payload length n (must equal file size - 32, <= maxBytes)
 *   28      4     u32 CRC-32C over bytes [0, 28) followed by the n payload bytes
 *   32      n     payload (opaque here: the core's checkpoint image)
 *
 * The CRC covers the header too (not only the payload), so a flipped op or length is caught
 * even when it happens to stay in bounds.
 *
 * Retention: only the newest checkpoint is kept (KEEP_DEFAULT = 1). The issue deletes log
 * segments wholly below the latest checkpoint, so an older checkpoint could not be replayed
 * forward anyway; a replica whose newest checkpoint is damaged recovers from its peers
 * (issue 13, "damaged beyond its last checkpoint"). `keep: 2` is available if segment deletion
 * is ever bounded by the older one instead.
 */

import CRC32C from 'crc-32/crc32c.js';
import { join } from 'node:path';
import { assert, assertNever } from '../../src/base/assert.ts';
import { toStorageError, writeFileAtomically, type FileSystem, type StorageFileHandle } from './fs.ts';

export const CHECKPOINT_MAGIC = 'HARETCK1';
export const CHECKPOINT_FORMAT = 1;
export const CHECKPOINT_HEADER_BYTES = 32;
export const KEEP_DEFAULT = 1;
/** Largest payload read back unless the caller says otherwise: a bound on memory, not a format limit. */
export const CHECKPOINT_MAX_BYTES_DEFAULT = 512 * 1024 * 1024;

const MAGIC_BYTES = new TextEncoder().encode(CHECKPOINT_MAGIC);
const CKPT_NAME = /^checkpoint-(0|[1-9][0-9]{0,15})\.ckpt$/;
const TMP_NAME = /^checkpoint-(0|[1-9][0-9]{0,15})\.tmp$/;

export function checkpointFileName(op: number): string {
  return `checkpoint-${op}.ckpt`;
}

export function encodeCheckpointFile(op: number, payload: Uint8Array, version = CHECKPOINT_FORMAT): Uint8Array {
  assert(Number.isSafeInteger(op) && op >= 0, `checkpoint op ${op} out of range`);
  const out = new Uint8Array(CHECKPOINT_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  out.set(MAGIC_BYTES, 0);
  view.setUint32(8, version);
  view.setBigUint64(12, BigInt(op));
  view.setBigUint64(20, BigInt(payload.length));
  out.set(payload, CHECKPOINT_HEADER_BYTES);
  const crc = CRC32C.buf(payload, CRC32C.buf(out.subarray(0, 28))) >>> 0;
  view.setUint32(28, crc);
  return out;
}

export interface CheckpointWriteOptions {
  /** How many newest `.ckpt` files survive a write (>= 1). */
  readonly keep?: number;
}

/** Writes the checkpoint for `op` durably, then deletes older ones. Rejects with a StorageError on I/O failure. */
export async function writeCheckpoint(
  fs: FileSystem,
  dir: string,
  op: number,
  payload: Uint8Array,
  options: CheckpointWriteOptions = {},
): Promise<{ readonly path: string; readonly deleted: readonly string[] }> {
  const keep = options.keep ?? KEEP_DEFAULT;
  assert(Number.isSafeInteger(keep) && keep >= 1, `checkpoint keep ${keep} must be at least 1`);
  const bytes = encodeCheckpointFile(op, payload);
  const tmp = join(dir, `checkpoint-${op}.tmp`);
  const path = join(dir, checkpointFileName(op));
  await writeFileAtomically(fs, dir, tmp, path, bytes);
  // The new checkpoint is durable under its final name: only now may older ones go.
  const deleted: string[] = [];
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    throw toStorageError(error, dir, 'listing');
  }
  const ops = names.flatMap((name) => {
    const m = CKPT_NAME.exec(name);
    return m?.[1] === undefined ? [] : [Number(m[1])];
  });
  ops.sort((a, b) => b - a);
  // Never delete the file just written, even if a (bogus) higher-op file sits beside it.
  const doomed = ops.filter((o) => o !== op).slice(Math.max(0, keep - 1)).filter((o) => o < op);
  for (const o of doomed) {
    const p = join(dir, checkpointFileName(o));
    try {
      await fs.unlink(p);
    } catch (error) {
      const e = toStorageError(error, p, 'deleting');
      if (e.code !== 'ENOENT') throw e;
    }
    deleted.push(p);
  }
  if (deleted.length > 0) {
    try {
      await fs.fsyncDir(dir);
    } catch (error) {
      throw toStorageError(error, dir, 'syncing');
    }
  }
  return { path, deleted };
}

export interface InvalidCheckpoint {
  readonly path: string;
  readonly reason: string;
}

export type CheckpointRead =
  | { readonly kind: 'none'; readonly invalid: readonly InvalidCheckpoint[]; readonly removedTemporary: readonly string[] }
  | {
      readonly kind: 'valid';
      readonly path: string;
      readonly op: number;
      readonly payload: Uint8Array;
      /** Newer files that failed validation and were skipped (reported, not deleted: evidence for the operator). */
      readonly invalid: readonly InvalidCheckpoint[];
      readonly removedTemporary: readonly string[];
    }
  /** The newest checkpoint file was written by a newer on-disk format: refuse to start. */
  | { readonly kind: 'newer_format'; readonly path: string; readonly version: number };

export interface CheckpointReadOptions {
  readonly maxBytes?: number;
}

/**
 * The newest valid checkpoint in `dir`. Deletes `.tmp` leftovers (never renamed, so never
 * promised anything), skips and reports invalid files, falls back to older valid ones.
 */
export async function readLatestCheckpoint(fs: FileSystem, dir: string, options: CheckpointReadOptions = {}): Promise<CheckpointRead> {
  const maxBytes = options.maxBytes ?? CHECKPOINT_MAX_BYTES_DEFAULT;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    const e = toStorageError(error, dir, 'listing');
    if (e.code === 'ENOENT') return { kind: 'none', invalid: [], removedTemporary: [] };
    throw e;
  }
  const removedTemporary: string[] = [];
  for (const name of names) {
    if (!TMP_NAME.test(name)) continue;
    const p = join(dir, name);
    try {
      await fs.unlink(p);
    } catch (error) {
      const e = toStorageError(error, p, 'deleting');
      if (e.code !== 'ENOENT') throw e;
    }
    removedTemporary.push(p);
  }
  if (removedTemporary.length > 0) {
    try {
      await fs.fsyncDir(dir);
    } catch (error) {
      throw toStorageError(error, dir, 'syncing');
    }
  }
  const ops = names.flatMap((name) => {
    const m = CKPT_NAME.exec(name);
    return m?.[1] === undefined ? [] : [Number(m[1])];
  });
  ops.sort((a, b) => b - a);
  const invalid: InvalidCheckpoint[] = [];
  for (const op of ops) {
    const path = join(dir, checkpointFileName(op));
    const r = await readCheckpointFile(fs, path, op, maxBytes);
    switch (r.kind) {
      case 'valid':
        return { kind: 'valid', path, op, payload: r.payload, invalid, removedTemporary };
      case 'invalid':
        invalid.push({ path, reason: r.reason });
        break;
      case 'newer_format':
        return { kind: 'newer_format', path, version: r.version };
      default:
        return assertNever(r, 'checkpoint file read');
    }
  }
  return { kind: 'none', invalid, removedTemporary };
}

type FileRead =
  | { readonly kind: 'valid'; readonly payload: Uint8Array }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'newer_format'; readonly version: number };

/**
 * Checks a header against the file's size (and the op its name says, when it has one); the op
 * and payload length when they hold. Shared by files read from a replica directory and backups
 * read whole (`decodeCheckpointFile`).
 */
function checkHeader(header: Uint8Array, size: number, expectedOp: number | null, maxBytes: number): Exclude<FileRead, { kind: 'valid' }> | { readonly kind: 'header'; readonly op: number; readonly length: number } {
  if (size < CHECKPOINT_HEADER_BYTES) return { kind: 'invalid', reason: `file of ${size} bytes is shorter than its header` };
  for (let i = 0; i < MAGIC_BYTES.length; i++) {
    if (header[i] !== MAGIC_BYTES[i]) return { kind: 'invalid', reason: 'bad magic' };
  }
  const view = new DataView(header.buffer, header.byteOffset, CHECKPOINT_HEADER_BYTES);
  const version = view.getUint32(8);
  if (version > CHECKPOINT_FORMAT) return { kind: 'newer_format', version };
  if (version !== CHECKPOINT_FORMAT) return { kind: 'invalid', reason: `unknown format version ${version}` };
  const op = view.getBigUint64(12);
  if (expectedOp !== null && op !== BigInt(expectedOp)) return { kind: 'invalid', reason: `header op ${op} does not match the file name` };
  if (op > BigInt(Number.MAX_SAFE_INTEGER)) return { kind: 'invalid', reason: `header op ${op} out of range` };
  const length = view.getBigUint64(20);
  if (length > BigInt(maxBytes)) return { kind: 'invalid', reason: `payload length ${length} exceeds the ${maxBytes}-byte bound` };
  if (length !== BigInt(size - CHECKPOINT_HEADER_BYTES)) {
    return { kind: 'invalid', reason: `payload length ${length} but file holds ${size - CHECKPOINT_HEADER_BYTES} bytes (truncated or extended)` };
  }
  return { kind: 'header', op: Number(op), length: Number(length) };
}

function checksumHolds(header: Uint8Array, payload: Uint8Array): boolean {
  const stored = new DataView(header.buffer, header.byteOffset, CHECKPOINT_HEADER_BYTES).getUint32(28);
  return (CRC32C.buf(payload, CRC32C.buf(header.subarray(0, 28))) >>> 0) === stored;
}

/** A whole checkpoint file held in memory (a backup, issue 13): its op and payload, or why not. */
export function decodeCheckpointFile(bytes: Uint8Array, maxBytes = CHECKPOINT_MAX_BYTES_DEFAULT): Exclude<FileRead, { kind: 'valid' }> | { readonly kind: 'valid'; readonly op: number; readonly payload: Uint8Array } {
  const header = bytes.subarray(0, CHECKPOINT_HEADER_BYTES);
  const checked = checkHeader(header, bytes.length, null, maxBytes);
  if (checked.kind !== 'header') return checked;
  const payload = bytes.subarray(CHECKPOINT_HEADER_BYTES);
  if (!checksumHolds(header, payload)) return { kind: 'invalid', reason: 'checksum mismatch' };
  return { kind: 'valid', op: checked.op, payload };
}

/** Reads and validates one checkpoint file; bounds the size before allocating anything. */
export async function readCheckpointFile(fs: FileSystem, path: string, expectedOp: number, maxBytes: number): Promise<FileRead> {
  let handle: StorageFileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    const e = toStorageError(error, path, 'opening');
    if (e.code === 'ENOENT') return { kind: 'invalid', reason: 'vanished while reading' };
    throw e;
  }
  try {
    const size = await handle.size();
    const header = new Uint8Array(CHECKPOINT_HEADER_BYTES);
    if (size >= CHECKPOINT_HEADER_BYTES && (await readFully(handle, header, 0)) < CHECKPOINT_HEADER_BYTES) return { kind: 'invalid', reason: 'header truncated' };
    const checked = checkHeader(header, size, expectedOp, maxBytes);
    if (checked.kind !== 'header') return checked;
    const payload = new Uint8Array(checked.length);
    if ((await readFully(handle, payload, CHECKPOINT_HEADER_BYTES)) < payload.length) return { kind: 'invalid', reason: 'payload truncated' };
    if (!checksumHolds(header, payload)) return { kind: 'invalid', reason: 'checksum mismatch' };
    return { kind: 'valid', payload };
  } catch (error) {
    throw toStorageError(error, path, 'reading');
  } finally {
    await handle.close();
  }
}

async function readFully(handle: StorageFileHandle, into: Uint8Array, position: number): Promise<number> {
  let got = 0;
  while (got < into.length) {
    const n = await handle.read(into, got, into.length - got, position + got);
    if (n <= 0) break;
    got += n;
  }
  return got;
}
