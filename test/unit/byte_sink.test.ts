/**
 * ByteSink (src/base/byte_sink.ts) against a plain array of bytes: any sequence of writes, with
 * chunks small enough that writes, headers, checksums and views straddle their boundaries, gives
 * the same bytes, length and views; and a large sink grows without copying what it holds.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { ByteSink } from '../../src/base/byte_sink.ts';

type Op =
  | { readonly t: 'write'; readonly bytes: Uint8Array }
  | { readonly t: 'byte'; readonly value: number }
  | { readonly t: 'u32'; readonly value: number }
  | { readonly t: 'array'; readonly count: number }
  | { readonly t: 'bin'; readonly length: number }
  | { readonly t: 'set'; readonly at: number; readonly value: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('write' as const), bytes: fc.uint8Array({ maxLength: 120 }) }),
  fc.record({ t: fc.constant('byte' as const), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ t: fc.constant('u32' as const), value: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  fc.record({ t: fc.constant('array' as const), count: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 0xffff_ffff })) }),
  fc.record({ t: fc.constant('bin' as const), length: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 0xffff_ffff })) }),
  // `at` is a fraction (in thousandths) of the length so far, resolved when the op runs: spread
  // evenly, where doubles would cluster at 0 and 1 and miss the chunks in between.
  fc.record({ t: fc.constant('set' as const), at: fc.integer({ min: 0, max: 1000 }), value: fc.integer({ min: 0, max: 0xffff_ffff }) }),
);

const u32 = (value: number): number[] => [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];

/** What each op appends to (or changes in) the reference. */
function apply(reference: number[], step: Op): void {
  switch (step.t) {
    case 'write':
      reference.push(...step.bytes);
      return;
    case 'byte':
      reference.push(step.value);
      return;
    case 'u32':
      reference.push(...u32(step.value));
      return;
    case 'array':
      if (step.count < 0x10) reference.push(0x90 | step.count);
      else if (step.count < 0x10000) reference.push(0xdc, step.count >> 8, step.count & 0xff);
      else reference.push(0xdd, ...u32(step.count));
      return;
    case 'bin':
      if (step.length < 0x100) reference.push(0xc4, step.length);
      else if (step.length < 0x10000) reference.push(0xc5, step.length >> 8, step.length & 0xff);
      else reference.push(0xc6, ...u32(step.length));
      return;
    case 'set': {
      if (reference.length < 4) return;
      const at = Math.floor((step.at / 1000) * (reference.length - 4));
      reference.splice(at, 4, ...u32(step.value));
      return;
    }
    default: {
      const never: never = step;
      throw new Error(`unknown op ${String(never)}`);
    }
  }
}

function run(sink: ByteSink, step: Op): void {
  switch (step.t) {
    case 'write':
      sink.write(step.bytes);
      return;
    case 'byte':
      sink.writeByte(step.value);
      return;
    case 'u32':
      sink.writeUint32(step.value);
      return;
    case 'array':
      sink.writeArrayHeader(step.count);
      return;
    case 'bin':
      sink.writeBinHeader(step.length);
      return;
    case 'set':
      if (sink.length < 4) return;
      sink.setUint32(Math.floor((step.at / 1000) * (sink.length - 4)), step.value);
      return;
    default: {
      const never: never = step;
      throw new Error(`unknown op ${String(never)}`);
    }
  }
}

describe('ByteSink', () => {
  it('property: any writes, with chunks of 16-48 bytes, give the bytes, length and views of a plain array', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 10, maxLength: 100 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 16, max: 48 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 })), { maxLength: 12 }), (ops, initial, chunk, cuts) => {
        const sink = new ByteSink(initial, chunk);
        const reference: number[] = [];
        for (const step of ops) {
          run(sink, step);
          apply(reference, step);
          expect(sink.length).to.equal(reference.length);
        }
        expect(Array.from(sink.toBytes())).to.deep.equal(reference);
        expect(Array.from(sink.view())).to.deep.equal(reference);
        for (const [x, y] of cuts) {
          const start = Math.floor((Math.min(x, y) / 1000) * reference.length);
          const end = Math.floor((Math.max(x, y) / 1000) * reference.length);
          expect(Array.from(sink.view(start, end))).to.deep.equal(reference.slice(start, end));
        }
      }),
      { numRuns: 400 },
    );
  });

  it('grows a large sink by chunks: 20 MB of writes never copy what it already holds', () => {
    const sink = new ByteSink();
    const piece = new Uint8Array(16 * 1024).map((_, i) => i % 253);
    for (let i = 0; i < 128; i++) sink.write(piece);
    // 2 MiB in: the first chunk is full. A view of its start is taken now...
    const early = sink.view(0, 4);
    for (let i = 128; i < 1_280; i++) sink.write(piece);
    // ...and after 18 MB more it still shows the sink's own bytes: had growing copied them into
    // a larger buffer (as doubling does), it would show a stale copy.
    sink.setUint32(0, 0xdeadbeef);
    expect(Array.from(early)).to.deep.equal([0xde, 0xad, 0xbe, 0xef]);
    expect(sink.length).to.equal(1_280 * 16 * 1024);
    const bytes = sink.toBytes();
    expect(bytes.byteLength).to.equal(sink.length);
    expect(Array.from(bytes.subarray(0, 4))).to.deep.equal([0xde, 0xad, 0xbe, 0xef]);
    for (const at of [4, 16 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 5, bytes.byteLength - 1]) expect(bytes[at]).to.equal((at % (16 * 1024)) % 253);
    // A view across a chunk boundary is a copy with the right bytes.
    const across = sink.view(1024 * 1024 - 3, 1024 * 1024 + 3);
    expect(Array.from(across)).to.deep.equal(Array.from(bytes.subarray(1024 * 1024 - 3, 1024 * 1024 + 3)));
  });
});
