/**
 * The cluster link's codec (src/api/cluster_wire.ts) without sockets: every field from a peer
 * is bounded before it is kept, relayed envelopes are rebuilt from their three fields, and
 * the format is the runtime msgpack codec's, so either side may pack.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { makeCodec } from '../../runtime/codec.ts';
import type { Envelope } from '../../runtime/envelope.ts';
import { actorIdCharsMax, batchEnvelopesMax, checkInfo, decodeClusterFrame, encodeClusterFrame, helloTranscript, isRelayable, welcomeTranscript } from '../../src/api/cluster_wire.ts';

const runtimeCodec = makeCodec('msgpack');
const plain = new Packr({ useRecords: false });

function packed(value: unknown): Uint8Array {
  return runtimeCodec.encode(value as readonly Envelope[]).data as Uint8Array;
}

describe('cluster wire codec', () => {
  it('round-trips every frame, and reads what the runtime codec packs', () => {
    const frames = [
      { t: 'hello', version: 2, node: 'a', incarnation: 3, info: { clientAddress: '127.0.0.1:1' } },
      { t: 'hello', version: 2, node: 'a', incarnation: 0, info: {}, nonce: new Uint8Array(32).fill(1) },
      { t: 'challenge', nonce: new Uint8Array(32).fill(2) },
      { t: 'proof', mac: new Uint8Array(32).fill(3) },
      { t: 'welcome', version: 2, node: 'b.2_x-y', info: {} },
      { t: 'welcome', version: 2, node: 'b', info: {}, mac: new Uint8Array(32).fill(4) },
      { t: 'batch', b: [{ from: 'a::proxy', to: 'ns/r0', msg: { type: 'prepare', bytes: new Uint8Array([1, 2]) } }] },
      { t: 'ping' },
      { t: 'error', code: 'overloaded', message: 'too many connections' },
    ] as const;
    for (const frame of frames) {
      for (const bytes of [encodeClusterFrame(frame), packed(frame)]) {
        const decoded = decodeClusterFrame(bytes);
        expect(decoded.ok, JSON.stringify(frame)).to.equal(true);
        if (decoded.ok) expect(decoded.frame).to.deep.equal(frame);
      }
    }
  });

  it('a relayed envelope keeps only from, to and msg: a peer cannot mark it `control`', () => {
    const decoded = decodeClusterFrame(packed({ t: 'batch', b: [{ from: 'a::x', to: 'y', msg: 1, control: true, extra: 'z' }] }));
    expect(decoded).to.deep.equal({ ok: true, frame: { t: 'batch', b: [{ from: 'a::x', to: 'y', msg: 1 }] }, malformed: 0 });
  });

  it('bounds actor ids, batch sizes, names and info before anything is kept', () => {
    const long = 'x'.repeat(actorIdCharsMax + 1);
    const batch = decodeClusterFrame(packed({ t: 'batch', b: [{ from: long, to: 'y', msg: 1 }, { from: 'x', to: '', msg: 1 }, { from: 'x', to: 'y' }, { from: 'x', to: 'y', msg: null }] }));
    expect(batch).to.deep.equal({ ok: true, frame: { t: 'batch', b: [{ from: 'x', to: 'y', msg: null }] }, malformed: 3 });
    const huge = decodeClusterFrame(plain.pack({ t: 'batch', b: new Array<number>(batchEnvelopesMax + 1).fill(0) }));
    expect(huge).to.include({ ok: false, code: 'malformed' });
    expect(decodeClusterFrame(packed({ t: 'hello', version: 2, node: 'x'.repeat(65), incarnation: 0, info: {} }))).to.include({ ok: false, code: 'malformed' });
    expect(decodeClusterFrame(packed({ t: 'hello', version: 1, node: 'a', incarnation: 0, info: {} }))).to.include({ ok: false, code: 'unsupported_version' });
    expect(decodeClusterFrame(packed({ t: 'hello', version: 3, node: 'a', incarnation: 0, info: {} }))).to.include({ ok: false, code: 'unsupported_version' });
    expect(decodeClusterFrame(packed({ t: 'hello', version: 2, node: 'a', incarnation: 0, info: { ['k'.repeat(1025)]: 'v' } }))).to.include({ ok: false, code: 'malformed' });
    expect(decodeClusterFrame(packed({ t: 'hello', version: 2, node: 'a', incarnation: 0 }))).to.include({ ok: false, code: 'malformed' });
    const error = decodeClusterFrame(packed({ t: 'error', code: 'c'.repeat(500), message: 'm'.repeat(5000) }));
    expect(error.ok && error.frame.t === 'error' ? [error.frame.code.length, error.frame.message.length] : null).to.deep.equal([64, 200]);
    expect(checkInfo({ a: 'b' })).to.equal(null);
    expect(checkInfo({ a: 5 })).to.be.a('string');
    expect(checkInfo(Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])))).to.be.a('string');
  });

  it('a plain msgpack map (another writer) is read as fields, and a "__proto__" key stays a key', () => {
    const map = new Map<unknown, unknown>([
      ['t', 'hello'],
      ['version', 2],
      ['node', 'm'],
      ['incarnation', 0],
      ['info', new Map([['__proto__', 'v']])],
    ]);
    const decoded = decodeClusterFrame(new Packr({ useRecords: true, moreTypes: false }).pack(map));
    expect(decoded.ok && decoded.frame.t).to.equal('hello');
    if (decoded.ok && decoded.frame.t === 'hello') {
      expect(Object.keys(decoded.frame.info)).to.deep.equal(['__proto__']);
      expect(Object.getPrototypeOf(decoded.frame.info)).to.equal(Object.prototype);
    }
  });

  it('nonces and macs are exactly 32 bytes; the two transcripts differ by role and bind every field', () => {
    for (const length of [0, 31, 33]) {
      expect(decodeClusterFrame(packed({ t: 'challenge', nonce: new Uint8Array(length) })), `nonce of ${length}`).to.include({ ok: false, code: 'malformed' });
      expect(decodeClusterFrame(packed({ t: 'proof', mac: new Uint8Array(length) })), `mac of ${length}`).to.include({ ok: false, code: 'malformed' });
      expect(decodeClusterFrame(packed({ t: 'hello', version: 2, node: 'a', incarnation: 0, info: {}, nonce: new Uint8Array(length) }))).to.include({ ok: false, code: 'malformed' });
      expect(decodeClusterFrame(packed({ t: 'welcome', version: 2, node: 'a', info: {}, mac: new Uint8Array(length) }))).to.include({ ok: false, code: 'malformed' });
    }
    expect(decodeClusterFrame(packed({ t: 'challenge', nonce: 'x'.repeat(32) }))).to.include({ ok: false, code: 'malformed' });
    expect(decodeClusterFrame(packed({ t: 'proof' }))).to.include({ ok: false, code: 'malformed' });
    const one = new Uint8Array(32).fill(1);
    const two = new Uint8Array(32).fill(2);
    const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
    const transcripts = [
      helloTranscript('a', 1, one, two),
      helloTranscript('a', 2, one, two),
      helloTranscript('b', 1, one, two),
      helloTranscript('a', 1, two, one),
      welcomeTranscript('a', 'b', one, two),
      welcomeTranscript('b', 'a', one, two),
      welcomeTranscript('a', 'b', two, one),
    ].map(hex);
    expect(new Set(transcripts).size).to.equal(transcripts.length);
  });

  it('isRelayable refuses what msgpack would change or what the receiver would drop', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(isRelayable({ from: 'a', to: 'b', msg: { n: 1, at: new Uint8Array(2) } })).to.equal(true);
    expect(isRelayable({ from: 'a', to: 'b', msg: () => 1 })).to.equal(false);
    expect(isRelayable({ from: 'a', to: 'b', msg: cyclic })).to.equal(false);
    expect(isRelayable({ from: 'a', to: 'b' })).to.equal(false);
    expect(isRelayable({ from: 'x'.repeat(actorIdCharsMax + 1), to: 'b', msg: 1 })).to.equal(false);
    expect(isRelayable(null)).to.equal(false);
  });

  it('never throws on random bytes or arbitrary msgpack', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 256 }), fc.anything().map((value) => new Uint8Array(plain.pack(value))), fc.anything().map((value) => packed({ t: 'batch', b: [value] }))), (bytes) => {
        const decoded = decodeClusterFrame(bytes);
        expect(decoded).to.have.property('ok');
      }),
      { numRuns: 1000 },
    );
  });
});
