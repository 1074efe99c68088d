/**
 * Framing of the client protocol (docs/protocol.md "Framing"): every message is one frame, a
 * 4-byte big-endian unsigned payload length followed by that many payload bytes.
 *
 * Pure: bytes in, events out. The socket code owns the connection and closes it when the
 * decoder reports an error; the decoder only guarantees that it never holds more than it was
 * allowed to and that a hostile length prefix costs nothing.
 */

import { assert } from '../base/assert.ts';

/** Bytes of the length prefix. */
export const frameHeaderBytes = 4;

/** The largest length the prefix can express (2^32 - 1). */
export const frameLengthLimit = 0xffff_ffff;

export type FrameLimits = {
  /** Largest accepted payload, in bytes (the prefix is not counted). */
  readonly frameBytesMax: number;
};

export type FrameErrorCode = 'frame_too_large' | 'empty_frame';

export type FrameEvent =
  | { readonly type: 'frame'; readonly payload: Uint8Array }
  | { readonly type: 'error'; readonly code: FrameErrorCode; readonly message: string };

/** Returns a reason, or null when the limits are usable. */
export function validateFrameLimits(limits: FrameLimits): string | null {
  const max = limits.frameBytesMax;
  if (!Number.isSafeInteger(max) || max < 1 || max > frameLengthLimit) {
    return `frameBytesMax must be an integer in 1..${frameLengthLimit}`;
  }
  return null;
}

/**
 * One frame: prefix and payload in a fresh buffer, so the caller can hand it to a socket and
 * forget it. An empty payload is our bug (no message encodes to zero bytes), so it asserts.
 */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const length = payload.byteLength;
  assert(length > 0, 'a frame payload must not be empty');
  assert(length <= frameLengthLimit, `a frame payload of ${length} bytes does not fit the length prefix`);
  const frame = new Uint8Array(frameHeaderBytes + length);
  writeLength(frame, length);
  frame.set(payload, frameHeaderBytes);
  return frame;
}

function writeLength(target: Uint8Array, length: number): void {
  target[0] = (length >>> 24) & 0xff;
  target[1] = (length >>> 16) & 0xff;
  target[2] = (length >>> 8) & 0xff;
  target[3] = length & 0xff;
}

/**
 * Incremental decoder for one connection's byte stream.
 *
 * - Chunks may split a frame at any byte, and one chunk may hold many frames.
 * - The length is checked as soon as the 4 prefix bytes are in, before any payload byte is
 *   kept: an oversized prefix yields `frame_too_large` at once. A zero length yields
 *   `empty_frame` (no message encodes to nothing, and answering each 4-byte empty frame with
 *   an error frame would let a peer amplify its traffic). Either error is final: the decoder
 *   discards what it holds and ignores all further input, because after a bad prefix the
 *   stream can no longer be trusted to be aligned on frames; the connection is to be closed.
 * - Memory follows what has actually arrived, not what the prefix announced: an incomplete
 *   payload is held as copies of the pieces received so far and joined once complete, so a
 *   peer announcing a 4 MiB frame and sending 4 bytes of it costs 4 bytes, not 4 MiB. It
 *   never holds more than frameBytesMax + 4 bytes.
 * - Every payload is a fresh buffer: it never aliases a pushed chunk, so the caller may reuse
 *   its read buffers and a retained payload does not pin a large socket chunk.
 */
export class FrameDecoder {
  #frameBytesMax: number;
  /** Prefix bytes received of the current frame (0..4). */
  readonly #header = new Uint8Array(frameHeaderBytes);
  #headerFilled = 0;
  /** Length of the current frame's payload, once its prefix is complete; else -1. */
  #payloadLength = -1;
  /** Copies of the current payload's bytes received so far, in order. */
  #pieces: Uint8Array[] = [];
  #piecesBytes = 0;
  #failed = false;

  constructor(limits: FrameLimits) {
    const problem = validateFrameLimits(limits);
    if (problem !== null) throw new RangeError(problem);
    this.#frameBytesMax = limits.frameBytesMax;
  }

  /**
   * Changes the limit for the frames that follow (the node accepts only small frames until a
   * connection has said hello). A frame already announced keeps the limit it was checked against.
   */
  setFrameBytesMax(frameBytesMax: number): void {
    const problem = validateFrameLimits({ frameBytesMax });
    if (problem !== null) throw new RangeError(problem);
    this.#frameBytesMax = frameBytesMax;
  }

  /** True once an error was reported; from then on `push` returns no events. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Bytes held for an incomplete frame (prefix and payload); at most frameBytesMax + 4. */
  get bufferedBytes(): number {
    return this.#headerFilled + this.#piecesBytes;
  }

  push(chunk: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    if (this.#failed) return events;
    let offset = 0;
    const end = chunk.byteLength;
    while (offset < end) {
      if (this.#payloadLength < 0) {
        // Fill the prefix, possibly across chunks.
        const take = Math.min(frameHeaderBytes - this.#headerFilled, end - offset);
        this.#header.set(chunk.subarray(offset, offset + take), this.#headerFilled);
        this.#headerFilled += take;
        offset += take;
        if (this.#headerFilled < frameHeaderBytes) break;
        const length = readLength(this.#header);
        const error = this.#check(length);
        if (error !== null) {
          events.push(error);
          this.#fail();
          return events;
        }
        this.#payloadLength = length;
        continue;
      }
      const missing = this.#payloadLength - this.#piecesBytes;
      const available = end - offset;
      if (this.#pieces.length === 0 && available >= missing) {
        // The whole payload is in this chunk: one copy, no joining (the common case).
        events.push({ type: 'frame', payload: copy(chunk, offset, missing) });
        offset += missing;
        this.#reset();
        continue;
      }
      const take = Math.min(missing, available);
      // A copy, not a view: the caller may reuse the chunk once push returns.
      this.#pieces.push(copy(chunk, offset, take));
      this.#piecesBytes += take;
      offset += take;
      if (this.#piecesBytes === this.#payloadLength) {
        events.push({ type: 'frame', payload: join(this.#pieces, this.#piecesBytes) });
        this.#reset();
      }
    }
    return events;
  }

  #check(length: number): FrameEvent | null {
    if (length === 0) return { type: 'error', code: 'empty_frame', message: 'a frame must carry at least one byte' };
    if (length > this.#frameBytesMax) {
      return {
        type: 'error',
        code: 'frame_too_large',
        message: `frame of ${length} bytes exceeds the limit of ${this.#frameBytesMax}`,
      };
    }
    return null;
  }

  #reset(): void {
    this.#headerFilled = 0;
    this.#payloadLength = -1;
    this.#pieces = [];
    this.#piecesBytes = 0;
  }

  #fail(): void {
    this.#reset();
    this.#failed = true;
  }
}

function readLength(header: Uint8Array): number {
  // `>>> 0` keeps the top bit as magnitude: lengths are unsigned.
  return (((header[0] ?? 0) << 24) | ((header[1] ?? 0) << 16) | ((header[2] ?? 0) << 8) | (header[3] ?? 0)) >>> 0;
}

/**
 * A plain Uint8Array copy of `length` bytes at `offset`. Not `chunk.slice`: on a Node Buffer
 * (what sockets deliver) `slice` returns a view of the same memory, not a copy.
 */
function copy(chunk: Uint8Array, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  out.set(chunk.subarray(offset, offset + length));
  return out;
}

function join(pieces: readonly Uint8Array[], total: number): Uint8Array {
  const first = pieces[0];
  // A payload that arrived in one piece was already copied when it was kept.
  if (pieces.length === 1 && first !== undefined) return first;
  const out = new Uint8Array(total);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.byteLength;
  }
  return out;
}
