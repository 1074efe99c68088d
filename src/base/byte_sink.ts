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

export class ByteSink {
  #bytes: Uint8Array;
  #length = 0;

  constructor(initial = initialBytes) {
    this.#bytes = new Uint8Array(Math.max(16, initial));
  }

  get length(): number {
    return this.#length;
  }

  /** The bytes written so far, as a view (valid until the next write). */
  view(start = 0, end = this.#length): Uint8Array {
    assert(start >= 0 && start <= end && end <= this.#length, `sink view ${start}..${end} of ${this.#length}`);
    return this.#bytes.subarray(start, end);
  }

  /** The bytes written so far, in a buffer of exactly that size (one copy). */
  toBytes(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }

  write(piece: Uint8Array): void {
    this.#reserve(piece.byteLength);
    this.#bytes.set(piece, this.#length);
    this.#length += piece.byteLength;
  }

  writeByte(value: number): void {
    this.#reserve(1);
    this.#bytes[this.#length++] = value & 0xff;
  }

  /** Overwrites 4 bytes at `at` with `value`, big-endian (a checksum reserved earlier). */
  setUint32(at: number, value: number): void {
    assert(at >= 0 && at + 4 <= this.#length, `sink setUint32 at ${at} of ${this.#length}`);
    this.#bytes[at] = (value >>> 24) & 0xff;
    this.#bytes[at + 1] = (value >>> 16) & 0xff;
    this.#bytes[at + 2] = (value >>> 8) & 0xff;
    this.#bytes[at + 3] = value & 0xff;
  }

  writeUint32(value: number): void {
    this.#reserve(4);
    this.#length += 4;
    this.setUint32(this.#length - 4, value);
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

  #reserve(more: number): void {
    const needed = this.#length + more;
    if (needed <= this.#bytes.byteLength) return;
    let capacity = this.#bytes.byteLength * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
  }
}
