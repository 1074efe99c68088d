/**
 * Byte format of one log record (issue 13, "Storage"). Pure: no I/O.
 *
 *   offset  size  field
 *   0       4     payload length, u32 big-endian (bounded by recordBytesMax when read)
 *   4       4     CRC-32C, u32 big-endian, over bytes 0..3, then 8..15, then the payload
 *   8       8     record sequence number, u64 big-endian (1, 2, 3, ... without gaps)
 *   16      len   payload (opaque to the log; the caller encodes its persist records)
 *
 * Why a sequence number in every record: the checksum proves the bytes are a record, not that
 * they are the record expected here. A stale record left in a reused block, or a segment that
 * survived a truncation it should not have, has a valid checksum but the wrong number; the
 * reader checks each number is exactly previous + 1, so such a record is never applied.
 * Why the CRC covers the length and the number: a flipped bit in either must be detected too.
 */
import CRC32C from 'crc-32/crc32c.js';

export const RECORD_HEADER_BYTES = 16;

/** u64 numbers are held as JS numbers; anything above 2^53 - 1 read from disk is damage. */
export const SEQ_MAX = Number.MAX_SAFE_INTEGER;

export function crc32c(parts: readonly Uint8Array[]): number {
  let crc = 0;
  for (const part of parts) crc = CRC32C.buf(part, crc);
  return crc >>> 0;
}

export interface RecordToEncode {
  readonly seq: number;
  readonly payload: Uint8Array;
}

/** Encodes records back to back into one buffer (one write for a whole group commit). */
export function encodeRecords(records: readonly RecordToEncode[]): Uint8Array {
  let total = 0;
  for (const r of records) total += RECORD_HEADER_BYTES + r.payload.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let pos = 0;
  for (const r of records) {
    view.setUint32(pos, r.payload.length);
    view.setBigUint64(pos + 8, BigInt(r.seq));
    out.set(r.payload, pos + RECORD_HEADER_BYTES);
    const crc = crc32c([
      out.subarray(pos, pos + 4),
      out.subarray(pos + 8, pos + RECORD_HEADER_BYTES),
      out.subarray(pos + RECORD_HEADER_BYTES, pos + RECORD_HEADER_BYTES + r.payload.length),
    ]);
    view.setUint32(pos + 4, crc);
    pos += RECORD_HEADER_BYTES + r.payload.length;
  }
  return out;
}

/** What the reader finds at one position. Bytes from disk never throw: every case is a value. */
export type DecodeResult =
  | { readonly type: 'record'; readonly seq: number; readonly payload: Uint8Array; readonly end: number }
  /** Exactly at the end of the bytes: no more records. */
  | { readonly type: 'end' }
  /** The bytes stop inside a record (or the length cannot be a record): a torn write if at the tail. */
  | { readonly type: 'incomplete'; readonly reason: string }
  /** A whole record whose checksum or sequence number is wrong. */
  | { readonly type: 'bad'; readonly reason: string; readonly end: number };

/**
 * Decodes the record at `pos` of `bytes` (which hold the file from some point to its end).
 * `expectedSeq` null accepts any number (used when hunting for valid records after a bad one).
 */
export function decodeRecordAt(bytes: Uint8Array, pos: number, expectedSeq: number | null, recordBytesMax: number): DecodeResult {
  const remaining = bytes.length - pos;
  if (remaining === 0) return { type: 'end' };
  if (remaining < RECORD_HEADER_BYTES) return { type: 'incomplete', reason: `${remaining} bytes, shorter than a record header` };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(pos);
  // Bound the length before using it: a garbage length must never drive an allocation or a read.
  if (length > recordBytesMax) return { type: 'incomplete', reason: `length ${length} above recordBytesMax ${recordBytesMax}` };
  if (RECORD_HEADER_BYTES + length > remaining) return { type: 'incomplete', reason: `length ${length} runs past the end of the file` };
  const end = pos + RECORD_HEADER_BYTES + length;
  const stored = view.getUint32(pos + 4);
  const computed = crc32c([bytes.subarray(pos, pos + 4), bytes.subarray(pos + 8, pos + RECORD_HEADER_BYTES), bytes.subarray(pos + RECORD_HEADER_BYTES, end)]);
  if (stored !== computed) return { type: 'bad', reason: `checksum mismatch (stored ${stored}, computed ${computed})`, end };
  const seqBig = view.getBigUint64(pos + 8);
  if (seqBig > BigInt(SEQ_MAX)) return { type: 'bad', reason: `sequence number ${seqBig} out of range`, end };
  const seq = Number(seqBig);
  if (expectedSeq !== null && seq !== expectedSeq) return { type: 'bad', reason: `sequence number ${seq}, expected ${expectedSeq}`, end };
  return { type: 'record', seq, payload: bytes.subarray(pos + RECORD_HEADER_BYTES, end), end };
}

/**
 * True if a valid record with a number in [minSeq, minSeq + span] starts anywhere in
 * bytes[from..]. Used to tell a torn tail (nothing valid after the bad bytes: a crash during
 * the last write) from damage in the middle (valid records follow: the disk lost data we had
 * synced). The number filter keeps the scan cheap and makes a false match vanishingly rare.
 */
export function validRecordFollows(bytes: Uint8Array, from: number, minSeq: number, recordBytesMax: number): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const span = Math.floor((bytes.length - from) / RECORD_HEADER_BYTES) + 1;
  for (let pos = from; pos + RECORD_HEADER_BYTES <= bytes.length; pos++) {
    // Plain numbers, not BigInt: this loop may visit every byte of a segment.
    const seq = view.getUint32(pos + 8) * 0x1_0000_0000 + view.getUint32(pos + 12);
    if (seq < minSeq || seq > minSeq + span) continue;
    const r = decodeRecordAt(bytes, pos, null, recordBytesMax);
    if (r.type === 'record') return true;
  }
  return false;
}

/** Segment file names: log-<first sequence number, 20 digits>.seg, so they sort by name. */
export function segmentName(firstSeq: number): string {
  return `log-${String(firstSeq).padStart(20, '0')}.seg`;
}

export function parseSegmentName(name: string): number | null {
  const m = /^log-(\d{20})\.seg$/.exec(name);
  if (m === null || m[1] === undefined) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n >= 1 ? n : null;
}

/** The truncation intent file: u64 BE sequence number, u32 BE CRC-32C of those 8 bytes. */
export const INTENT_BYTES = 12;

export function encodeIntent(seq: number): Uint8Array {
  const out = new Uint8Array(INTENT_BYTES);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(seq));
  view.setUint32(8, crc32c([out.subarray(0, 8)]));
  return out;
}

export function decodeIntent(bytes: Uint8Array): number | null {
  if (bytes.length !== INTENT_BYTES) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8) !== crc32c([bytes.subarray(0, 8)])) return null;
  const seq = view.getBigUint64(0);
  return seq > BigInt(SEQ_MAX) ? null : Number(seq);
}
