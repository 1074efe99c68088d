/**
 * A growable byte buffer that msgpack pieces are appended to, for encodings written over many
 * turns (a checkpoint image, src/vr/checkpoint_writer.ts). The headers it writes are the ones
 * msgpackr writes for the same lengths (array: fixarray, array16, array32; bin: bin8, bin16,
 * bin32), so pieces packed one at a time and joined with these headers are byte for byte what
 * packing the whole value at once gives; the writer's tests hold it to that.
 *
 * Pure: memory only.
 */

import { assert } from './assert.ts';

const initialBytes = 64 * 1024;
/**
 * Past this size a sink grows by starting a new chunk, not by copying what it holds into a
 * buffer twice as large: a write never copies more than half a chunk. (Doubling a 20 MB tree's
 * sink copied 8-16 MB in one step of a sliced write, a 50 ms stop on the development VM.)
 */
const defaultChunkBytes = 1024 * 1024;

export class ByteSink {
  readonly #chunkBytes: number;
  /** Full chunks, oldest first (each exactly its bytes), and how many bytes they hold in all. */
  readonly #sealed: Uint8Array[] = [];
  #sealedLength = 0;
  /** The chunk being written, and how much of it is used. */
  #bytes: Uint8Array;
  #used = 0;

  constructor(initial = initialBytes, chunkBytes = defaultChunkBytes) {
    assert(Number.isSafeInteger(chunkBytes) && chunkBytes >= 16, `sink chunks of ${chunkBytes} bytes`);
    this.#chunkBytes = chunkBytes;
    this.#bytes = new Uint8Array(Math.max(16, initial));
  }

  get length(): number {
    return this.#sealedLength + this.#used;
  }

  /**
   * The bytes from `start` to `end`: a view when they lie in one chunk (valid until the next
   * write), a copy when they straddle two or more.
   */
  view(start = 0, end = this.length): Uint8Array {
    assert(start >= 0 && start <= end && end <= this.length, `sink view ${start}..${end} of ${this.length}`);
    if (start >= this.#sealedLength) return this.#bytes.subarray(start - this.#sealedLength, end - this.#sealedLength);
    const { index, chunkStart } = this.#sealedChunkAt(start);
    const first = this.#sealed[index] as Uint8Array;
    if (end <= chunkStart + first.byteLength) return first.subarray(start - chunkStart, end - chunkStart);
    const out = new Uint8Array(end - start);
    let filled = 0;
    let at = start - chunkStart;
    for (let i = index; filled < out.byteLength; i++) {
      const chunk = i < this.#sealed.length ? (this.#sealed[i] as Uint8Array) : this.#bytes.subarray(0, this.#used);
      const piece = chunk.subarray(at, Math.min(chunk.byteLength, at + out.byteLength - filled));
      out.set(piece, filled);
      filled += piece.byteLength;
      at = 0;
    }
    return out;
  }

  /** The bytes written so far, in a buffer of exactly that size (one copy). */
  toBytes(): Uint8Array {
    if (this.#sealed.length === 0) return this.#bytes.slice(0, this.#used);
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const chunk of this.#sealed) {
      out.set(chunk, at);
      at += chunk.byteLength;
    }
    out.set(this.#bytes.subarray(0, this.#used), at);
    return out;
  }

  write(piece: Uint8Array): void {
    let from = 0;
    while (from < piece.byteLength) {
      if (this.#used === this.#bytes.byteLength) this.#grow(piece.byteLength - from);
      const take = Math.min(piece.byteLength - from, this.#bytes.byteLength - this.#used);
      this.#bytes.set(piece.subarray(from, from + take), this.#used);
      this.#used += take;
      from += take;
    }
  }

  writeByte(value: number): void {
    if (this.#used === this.#bytes.byteLength) this.#grow(1);
    this.#bytes[this.#used++] = value & 0xff;
  }

  /** Overwrites 4 bytes at `at` with `value`, big-endian (a checksum reserved earlier). */
  setUint32(at: number, value: number): void {
    assert(at >= 0 && at + 4 <= this.length, `sink setUint32 at ${at} of ${this.length}`);
    this.#setByte(at, value >>> 24);
    this.#setByte(at + 1, value >>> 16);
    this.#setByte(at + 2, value >>> 8);
    this.#setByte(at + 3, value);
  }

  writeUint32(value: number): void {
    this.writeByte(value >>> 24);
    this.writeByte(value >>> 16);
    this.writeByte(value >>> 8);
    this.writeByte(value);
  }

  /** Bytes of the msgpack array header for `count` elements (fixarray, array16, array32). */
  static arrayHeaderBytes(count: number): number {
    return count < 0x10 ? 1 : count < 0x10000 ? 3 : 5;
  }

  /** A msgpack array header for `count` elements, as msgpackr writes it. */
  writeArrayHeader(count: number): void {
    assert(Number.isSafeInteger(count) && count >= 0 && count <= 0xffff_ffff, `array of ${count} elements`);
    const bytes = ByteSink.arrayHeaderBytes(count);
    if (bytes === 1) this.writeByte(0x90 | count);
    else if (bytes === 3) {
      this.writeByte(0xdc);
      this.writeByte(count >> 8);
      this.writeByte(count);
    } else {
      this.writeByte(0xdd);
      this.writeUint32(count);
    }
  }

  /** A msgpack bin header for `length` bytes, as msgpackr writes it. */
  writeBinHeader(length: number): void {
    assert(Number.isSafeInteger(length) && length >= 0 && length <= 0xffff_ffff, `bin of ${length} bytes`);
    if (length < 0x100) {
      this.writeByte(0xc4);
      this.writeByte(length);
    } else if (length < 0x10000) {
      this.writeByte(0xc5);
      this.writeByte(length >> 8);
      this.writeByte(length);
    } else {
      this.writeByte(0xc6);
      this.writeUint32(length);
    }
  }

  #setByte(at: number, value: number): void {
    if (at >= this.#sealedLength) {
      this.#bytes[at - this.#sealedLength] = value & 0xff;
      return;
    }
    const { index, chunkStart } = this.#sealedChunkAt(at);
    (this.#sealed[index] as Uint8Array)[at - chunkStart] = value & 0xff;
  }

  /** The sealed chunk holding byte `at` (below `#sealedLength`), and where that chunk begins. */
  #sealedChunkAt(at: number): { readonly index: number; readonly chunkStart: number } {
    let chunkStart = 0;
    for (let index = 0; index < this.#sealed.length; index++) {
      const chunk = this.#sealed[index] as Uint8Array;
      if (at < chunkStart + chunk.byteLength) return { index, chunkStart };
      chunkStart += chunk.byteLength;
    }
    assert(false, `sink offset ${at} is not in a sealed chunk (${this.#sealedLength} sealed)`);
  }

  /**
   * Room for the next write, the current chunk being full: a small chunk doubles (copying at most
   * half a chunk), up to the chunk size; a chunk that size or larger is sealed and a new one begun.
   */
  #grow(more: number): void {
    const capacity = this.#bytes.byteLength;
    if (capacity < this.#chunkBytes) {
      let next = capacity * 2;
      while (next < this.#used + more && next < this.#chunkBytes) next *= 2;
      const grown = new Uint8Array(Math.min(next, this.#chunkBytes));
      grown.set(this.#bytes.subarray(0, this.#used));
      this.#bytes = grown;
      return;
    }
    this.#sealed.push(this.#bytes.subarray(0, this.#used));
    this.#sealedLength += this.#used;
    this.#bytes = new Uint8Array(this.#chunkBytes);
    this.#used = 0;
  }
}
