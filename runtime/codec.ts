/**
 * How a batch of envelopes crosses a MessagePort. Two codecs, chosen per node:
 *
 * - `clone`: the batch is posted as is and the platform's structured clone copies it. Measured
 *   here faster between workers (research/limits.md §1: ~0.7 µs per 100-byte message in a batch
 *   of 100 against ~0.8 µs for msgpackr, plus an ArrayBuffer allocation per post).
 * - `msgpack`: the batch is packed into bytes whose buffer is transferred, not copied; the same
 *   bytes could go over TCP. Kept so the runtime benchmark can compare the two in one run.
 */

import { Packr } from 'msgpackr';
import type { EnvelopeBatch } from './envelope.ts';

export type CodecName = 'clone' | 'msgpack';

export type Codec = {
  readonly name: CodecName;
  /** What to post, and what to transfer with it. */
  encode(batch: EnvelopeBatch): { readonly data: unknown; readonly transfer: ArrayBuffer[] };
  /** Back to a batch; throws on bytes that are not one (the caller counts and drops them). */
  decode(data: unknown): unknown;
};

const cloneCodec: Codec = {
  name: 'clone',
  encode: (batch) => ({ data: batch, transfer: [] }),
  decode: (data) => data,
};

function makeMsgpackCodec(): Codec {
  // Records: an object shape is written once per batch and referenced after, so a batch of
  // like messages packs and unpacks 2-3x faster than with a map per object. Each batch carries
  // its own definitions, so threads need no shared state. copyBuffers: a byte value decoded
  // from a batch gets its own memory instead of a view that would keep the batch alive for as
  // long as the tree holds the value.
  const packr = new Packr({ useRecords: true, moreTypes: false, copyBuffers: true });
  return {
    name: 'msgpack',
    encode(batch) {
      const bytes = packr.pack(batch);
      // Copy out of msgpackr's shared buffer into one we own, so it can be transferred.
      const owned = new Uint8Array(bytes.length);
      owned.set(bytes);
      return { data: owned, transfer: [owned.buffer] };
    },
    decode(data) {
      if (!(data instanceof Uint8Array)) throw new TypeError('msgpack batch is not bytes');
      return packr.unpack(data);
    },
  };
}

export function makeCodec(name: CodecName): Codec {
  switch (name) {
    case 'clone':
      return cloneCodec;
    case 'msgpack':
      return makeMsgpackCodec();
    default: {
      const never: never = name;
      throw new RangeError(`unknown codec ${String(never)}`);
    }
  }
}
