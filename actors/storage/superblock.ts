/**
 * The superblock: a small checksummed record of what a replica has promised (issue 13,
 * "Storage"), written by alternating copies so that a torn write never destroys the last
 * durable state. The payload is opaque here; the replica (src/vr, PROTOCOL.md "Durability")
 * decides what it holds (view, last normal view, view-change vote) and when it must be durable.
 *
 * File `superblock` in the replica directory, SUPERBLOCK_COPIES fixed-size copies back to back,
 * copy i at byte offset i * SUPERBLOCK_COPY_BYTES. Each copy (all integers big-endian):
 *
 *   offset  size  field
 *   0       8     magic "HARETSB1" (ASCII)
 *   8       4     u32 format version (SUPERBLOCK_FORMAT = 1)
 *   12      8     u64 sequence (>= 1; bounded to Number.MAX_SAFE_INTEGER when read)
 *   20      4     u32 payload length n (<= SUPERBLOCK_PAYLOAD_MAX)
 *   24      n     payload
 *   24+n    4     u32 CRC-32C (Castagnoli) over bytes [0, 24+n)
 *   28+n    ...   zero padding up to SUPERBLOCK_COPY_BYTES
 *
 * Sequence s lives in copy s mod SUPERBLOCK_COPIES; a copy whose sequence does not match its
 * slot is invalid (a misdirected write, or a copy pasted from elsewhere). Because the newest
 * valid copy (sequence s) sits in slot s mod 2, the next write (s + 1) always lands in the other
 * slot: the copy holding the newest durable state is never overwritten, so a write torn at any
 * byte leaves it readable.
 *
 * Why two copies: TigerBeetle keeps an even number of copies (`superblock_copies`, 4 in its
 * quorum fuzzer) and picks the working superblock by quorum over them (superblock_quorums.zig),
 * which also survives a latent sector error in the newest state. Two alternating copies are all
 * torn-write atomicity needs, and every update stays one positional write plus one fdatasync
 * (the superblock is written before promises leave, so its cost is on the latency path). What two
 * copies do not cover is a latent sector error in the newest copy after it was acknowledged:
 * the read then falls back to the previous state. `read()` reports every copy's status so the
 * caller can see that case (the other copy non-empty and invalid) and be cautious; more copies
 * per sequence would be the fix if that ever matters more than one write per update.
 *
 * I/O failures reject with a StorageError (actors/storage/fs.ts); what is read back from disk is
 * never trusted and always ends as a typed result, never an assertion.
 */

import CRC32C from 'crc-32/crc32c.js';
import { join } from 'node:path';
import { assert } from '../../src/base/assert.ts';
import { toStorageError, type FileSystem, type StorageFileHandle } from './fs.ts';

export const SUPERBLOCK_FILE = 'superblock';
export const SUPERBLOCK_MAGIC = 'HARETSB1';
export const SUPERBLOCK_FORMAT = 1;
export const SUPERBLOCK_COPIES = 2;
/** One copy fills a 4 KiB page, the unit a disk writes (no read-modify-write of a neighbour). */
export const SUPERBLOCK_COPY_BYTES = 4096;
const HEADER_BYTES = 24;
const CRC_BYTES = 4;
export const SUPERBLOCK_PAYLOAD_MAX = SUPERBLOCK_COPY_BYTES - HEADER_BYTES - CRC_BYTES;

const MAGIC_BYTES = new TextEncoder().encode(SUPERBLOCK_MAGIC);

/** What one copy slot held when read. */
export type SuperblockCopyStatus =
  | { readonly slot: number; readonly status: 'valid'; readonly sequence: number }
  | { readonly slot: number; readonly status: 'empty' }
  | { readonly slot: number; readonly status: 'invalid'; readonly reason: string }
  | { readonly slot: number; readonly status: 'newer_format'; readonly version: number };

export type SuperblockRead =
  /** No superblock file, or every copy slot all zeros / beyond the end of the file: a fresh replica. */
  | { readonly kind: 'none'; readonly path: string }
  | {
      readonly kind: 'valid';
      readonly path: string;
      readonly sequence: number;
      readonly payload: Uint8Array;
      readonly copies: readonly SuperblockCopyStatus[];
    }
  /** Some copy holds bytes but none is valid: the replica cannot know what it promised. */
  | { readonly kind: 'damaged'; readonly path: string; readonly reason: string; readonly copies: readonly SuperblockCopyStatus[] }
  /** A copy was written by a newer on-disk format: refuse to start rather than misread or overwrite it. */
  | { readonly kind: 'newer_format'; readonly path: string; readonly version: number };

/** Encodes one copy (exported for tests that forge copies). */
export function encodeSuperblockCopy(sequence: number, payload: Uint8Array, version = SUPERBLOCK_FORMAT): Uint8Array {
  assert(Number.isSafeInteger(sequence) && sequence >= 1, `superblock sequence ${sequence} out of range`);
  assert(payload.length <= SUPERBLOCK_PAYLOAD_MAX, `superblock payload of ${payload.length} bytes exceeds ${SUPERBLOCK_PAYLOAD_MAX}`);
  const copy = new Uint8Array(SUPERBLOCK_COPY_BYTES);
  const view = new DataView(copy.buffer);
  copy.set(MAGIC_BYTES, 0);
  view.setUint32(8, version);
  view.setBigUint64(12, BigInt(sequence));
  view.setUint32(20, payload.length);
  copy.set(payload, HEADER_BYTES);
  const end = HEADER_BYTES + payload.length;
  view.setUint32(end, CRC32C.buf(copy.subarray(0, end)) >>> 0);
  return copy;
}

/** Decodes the copy in `slot`; every field is bounded before use. */
export function decodeSuperblockCopy(
  bytes: Uint8Array,
  slot: number,
):
  | Exclude<SuperblockCopyStatus, { readonly status: 'valid' }>
  | { readonly slot: number; readonly status: 'valid'; readonly sequence: number; readonly payload: Uint8Array } {
  if (bytes.every((b) => b === 0)) return { slot, status: 'empty' };
  if (bytes.length < HEADER_BYTES + CRC_BYTES) return { slot, status: 'invalid', reason: 'copy truncated' };
  for (let i = 0; i < MAGIC_BYTES.length; i++) {
    if (bytes[i] !== MAGIC_BYTES[i]) return { slot, status: 'invalid', reason: 'bad magic' };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8);
  // A newer format may lay out the rest differently, so its CRC cannot be checked here: the
  // magic and the version field are the only part every format keeps.
  if (version > SUPERBLOCK_FORMAT) return { slot, status: 'newer_format', version };
  if (version !== SUPERBLOCK_FORMAT) return { slot, status: 'invalid', reason: `unknown format version ${version}` };
  const length = view.getUint32(20);
  if (length > SUPERBLOCK_PAYLOAD_MAX || HEADER_BYTES + length + CRC_BYTES > bytes.length) {
    return { slot, status: 'invalid', reason: `payload length ${length} out of bounds` };
  }
  const end = HEADER_BYTES + length;
  if ((CRC32C.buf(bytes.subarray(0, end)) >>> 0) !== view.getUint32(end)) return { slot, status: 'invalid', reason: 'checksum mismatch' };
  const sequenceBig = view.getBigUint64(12);
  if (sequenceBig < 1n || sequenceBig > BigInt(Number.MAX_SAFE_INTEGER)) {
    return { slot, status: 'invalid', reason: `sequence ${sequenceBig} out of range` };
  }
  const sequence = Number(sequenceBig);
  if (sequence % SUPERBLOCK_COPIES !== slot) return { slot, status: 'invalid', reason: `sequence ${sequence} in the wrong slot` };
  return { slot, status: 'valid', sequence, payload: bytes.slice(HEADER_BYTES, end) };
}

/** Reads every copy of `dir/superblock` and picks the newest valid one. */
export async function readSuperblock(fs: FileSystem, dir: string): Promise<SuperblockRead> {
  const path = join(dir, SUPERBLOCK_FILE);
  let handle: StorageFileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    const e = toStorageError(error, path, 'opening');
    if (e.code === 'ENOENT') return { kind: 'none', path };
    throw e;
  }
  try {
    return await readCopies(handle, path);
  } finally {
    await handle.close();
  }
}

async function readCopies(handle: StorageFileHandle, path: string): Promise<SuperblockRead> {
  const copies: SuperblockCopyStatus[] = [];
  let best: { sequence: number; payload: Uint8Array } | undefined;
  for (let slot = 0; slot < SUPERBLOCK_COPIES; slot++) {
    // Bounded: exactly one copy's bytes, whatever the file's size. Bytes past the end of the
    // file stay zero, so a slot never written reads as empty.
    const bytes = new Uint8Array(SUPERBLOCK_COPY_BYTES);
    let got = 0;
    try {
      while (got < bytes.length) {
        const n = await handle.read(bytes, got, bytes.length - got, slot * SUPERBLOCK_COPY_BYTES + got);
        if (n <= 0) break;
        got += n;
      }
    } catch (error) {
      throw toStorageError(error, path, 'reading');
    }
    const decoded = decodeSuperblockCopy(bytes, slot);
    if (decoded.status === 'newer_format') return { kind: 'newer_format', path, version: decoded.version };
    if (decoded.status === 'valid') {
      copies.push({ slot, status: 'valid', sequence: decoded.sequence });
      if (best === undefined || decoded.sequence > best.sequence) best = { sequence: decoded.sequence, payload: decoded.payload };
    } else {
      copies.push(decoded);
    }
  }
  if (best !== undefined) return { kind: 'valid', path, sequence: best.sequence, payload: best.payload, copies };
  if (copies.every((c) => c.status === 'empty')) return { kind: 'none', path };
  const reasons = copies.map((c) => `copy ${c.slot}: ${c.status === 'invalid' ? c.reason : c.status}`).join('; ');
  return { kind: 'damaged', path, reason: `no valid superblock copy (${reasons})`, copies };
}

export type SuperblockOpen =
  | { readonly kind: 'opened'; readonly superblock: Superblock; readonly found: Exclude<SuperblockRead, { kind: 'newer_format' }> }
  | Extract<SuperblockRead, { kind: 'newer_format' }>;

/**
 * The writer. Keeps the file open and the sequence of the newest durable copy in memory; writes
 * are serialized (a second write waits for the first) so sequences never race.
 */
export class Superblock {
  readonly path: string;
  private sequence: number;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  private readonly handle: StorageFileHandle;

  private constructor(handle: StorageFileHandle, path: string, sequence: number) {
    this.handle = handle;
    this.path = path;
    this.sequence = sequence;
  }

  /**
   * Opens (creating if absent, with its directory entry made durable) and reads the superblock.
   * A newer format is refused without opening for writing. After `damaged`, writes start again
   * at sequence 1: invalid copies are ignored by every read, so no slot needs protecting.
   */
  static async open(fs: FileSystem, dir: string): Promise<SuperblockOpen> {
    const path = join(dir, SUPERBLOCK_FILE);
    let handle: StorageFileHandle;
    try {
      handle = await fs.open(path, 'r+');
    } catch (error) {
      const e = toStorageError(error, path, 'opening');
      if (e.code !== 'ENOENT') throw e;
      try {
        // 'wx' opens write-only, and the reads below need the file readable: create, close,
        // make the new name durable (a crash must not lose it once something is relied upon),
        // then reopen read-write. EEXIST means a concurrent creator won: just open it.
        await fs.open(path, 'wx').then(
          (created) => created.close(),
          (createError: unknown) => {
            if (toStorageError(createError, path, 'creating').code !== 'EEXIST') throw createError;
          },
        );
        await fs.fsyncDir(dir);
        handle = await fs.open(path, 'r+');
      } catch (createError) {
        throw toStorageError(createError, path, 'creating');
      }
    }
    let found: SuperblockRead;
    try {
      found = await readCopies(handle, path);
    } catch (error) {
      await handle.close();
      throw error;
    }
    if (found.kind === 'newer_format') {
      await handle.close();
      return found;
    }
    const sequence = found.kind === 'valid' ? found.sequence : 0;
    return { kind: 'opened', superblock: new Superblock(handle, path, sequence), found };
  }

  /** Sequence of the newest copy known durable (0 before the first write). */
  get durableSequence(): number {
    return this.sequence;
  }

  /**
   * Writes `payload` as sequence + 1 into the slot not holding the newest durable copy and
   * resolves after fdatasync. On failure the in-memory sequence stays put, so a retry rewrites
   * the same slot and the durable copy is still never touched.
   */
  write(payload: Uint8Array): Promise<void> {
    assert(!this.closed, 'superblock written after close');
    assert(payload.length <= SUPERBLOCK_PAYLOAD_MAX, `superblock payload of ${payload.length} bytes exceeds ${SUPERBLOCK_PAYLOAD_MAX}`);
    const copy = payload.slice(); // the caller may reuse its buffer while we wait our turn
    const run = this.queue.then(() => this.writeNow(copy));
    // The queue continues after a failure; each caller sees its own outcome.
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async writeNow(payload: Uint8Array): Promise<void> {
    const next = this.sequence + 1;
    const slot = next % SUPERBLOCK_COPIES;
    assert(slot !== this.sequence % SUPERBLOCK_COPIES || this.sequence === 0, 'superblock write would overwrite the newest copy');
    const bytes = encodeSuperblockCopy(next, payload);
    try {
      await this.handle.write(bytes, slot * SUPERBLOCK_COPY_BYTES);
      await this.handle.datasync();
    } catch (error) {
      throw toStorageError(error, this.path, 'writing');
    }
    this.sequence = next;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.handle.close();
  }
}
