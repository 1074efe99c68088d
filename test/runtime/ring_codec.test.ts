/**
 * The ring's binary record layout (runtime/ring_codec.ts): every hot message comes back equal
 * through its fixed layout, everything else through the generic msgpack entry; actor ids are
 * interned per link direction and a record's definitions count only once it is published; a
 * truncated, flipped or foreign record is malformed as a whole, never a throw; and over a ring
 * link both layouts deliver, a malformed record delivering nothing of itself.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { isDeepStrictEqual } from 'node:util';
import type { Tick } from '../../actors/messages.ts';
import { makeCodec } from '../../runtime/codec.ts';
import { isEnvelope, type ActorId, type Envelope } from '../../runtime/envelope.ts';
import { RingWriter } from '../../runtime/ring.ts';
import { RecordDecoder, RecordEncoder, internedIdsMax } from '../../runtime/ring_codec.ts';
import { tagRecord, type RingLinkEnd } from '../../runtime/ring_link.ts';
import { defaultRingTransportConfig, makeRingTransportKind, validateRingTransportConfig, type RingTransportStats } from '../../runtime/ring_transport.ts';
import type { Transport, TransportKind } from '../../runtime/transport.ts';
import type { Busy, Commit, NotPrimary, Prepare, PrepareOk, ReadRound, ReadRoundOk, Reply, Request } from '../../src/vr/messages.ts';
import { eventually } from './helpers.ts';

type HotMessage = Request | Reply | Prepare | PrepareOk | Commit | ReadRound | ReadRoundOk | NotPrimary | Busy | Tick;

const put = (path: string, size: number, fill: number): Request['op'] => ({ type: 'tree', op: { type: 'blob_put', path, value: new Uint8Array(size).fill(fill) } });

/** One message of every hot type, shaped as the core builds it (a type missing here fails to compile). */
const samples: { readonly [T in HotMessage['type']]: Extract<HotMessage, { type: T }> } = {
  request: { type: 'request', clientId: 'c0ffee.7', requestNum: 12, op: put('/b7', 100, 7) },
  reply: { type: 'reply', epoch: 0, view: 3, op: 41, clientId: 'c0ffee.7', requestNum: 12, body: { type: 'tree', outcome: { type: 'blob', value: new Uint8Array([1, 2, 3]), version: 3 } } },
  prepare: {
    type: 'prepare',
    epoch: 1,
    view: 3,
    replica: 0,
    op: 41,
    commit: 40,
    entry: {
      op: 41,
      view: 3,
      requests: [
        { type: 'request', clientId: '', requestNum: 0, op: { type: 'lease_clock', elapsedTicks: 5, through: 39 } },
        { type: 'request', clientId: 'c0ffee.7', requestNum: 12, op: put('/b7', 100, 7) },
        { type: 'request', clientId: 'c0ffee.8', requestNum: 0, op: { type: 'register' } },
      ],
    },
    globalMinAccept: 38,
  },
  prepare_ok: { type: 'prepare_ok', epoch: 1, view: 3, replica: 2, op: 41 },
  commit: { type: 'commit', epoch: 1, view: 3, replica: 0, commit: 41, globalMinAccept: 38 },
  read_round: { type: 'read_round', epoch: 1, view: 3, replica: 0, round: 9 },
  read_round_ok: { type: 'read_round_ok', epoch: 1, view: 3, replica: 1, round: 9 },
  not_primary: { type: 'not_primary', epoch: 1, view: 3, clientId: 'c0ffee.7', requestNum: 12, primary: 0 },
  busy: { type: 'busy', epoch: 1, view: 3, clientId: 'c0ffee.7', requestNum: 12, retryAfterTicks: 2 },
  tick: { type: 'tick' },
};

const envelope = (msg: unknown, from: ActorId = 'ns/r0', to: ActorId = 'ns/r1'): Envelope => ({ from, to, msg });

/** Encodes and publishes one batch (private memory), returning a copy of its bytes. */
function publish(encoder: RecordEncoder, batch: readonly Envelope[]): Uint8Array {
  const bytes = encoder.pack(batch, null).slice();
  encoder.published();
  return bytes;
}

function roundTrip(batch: readonly Envelope[]): { readonly decoded: Envelope[] | null; readonly hot: number; readonly generic: number } {
  const encoder = new RecordEncoder();
  const decoded = new RecordDecoder().decode(publish(encoder, batch));
  return { decoded, ...encoder.counts };
}

/** What the msgpack layout (and so the generic entry) makes of a value. */
const packr = new Packr({ useRecords: true, moreTypes: false, copyBuffers: true });
const viaMsgpack = (value: unknown): unknown => packr.unpack(packr.pack(value));

describe('runtime: ring record codec', function () {
  this.timeout(60_000);

  it('every hot message round-trips through its fixed layout: byte values, unicode client ids, numbers past 2^32 and non-integers', () => {
    const hot: Envelope[] = Object.values(samples).map((msg) => envelope(msg));
    const { decoded, generic } = roundTrip(hot);
    expect(generic).to.equal(0);
    expect(decoded).to.deep.equal(hot);
    const prepare = decoded?.find((e) => (e.msg as HotMessage).type === 'prepare')?.msg as Prepare;
    const blob = prepare.entry.requests[1]?.op;
    expect(blob?.type === 'tree' && blob.op.type === 'blob_put' && blob.op.value).to.be.instanceOf(Uint8Array);

    const wide: Envelope[] = [
      envelope({ ...samples.prepare_ok, view: 2 ** 40, op: 2 ** 53 - 1 }),
      envelope({ ...samples.commit, commit: 2 ** 32 }),
      envelope({ ...samples.reply, epoch: -1, op: 0.5, clientId: 'ünï😀\uFEFF-κλειδί' }),
      envelope({ ...samples.read_round, round: -0 }),
      envelope({ ...samples.busy, retryAfterTicks: Number.POSITIVE_INFINITY, requestNum: Number.NaN }),
      envelope({ ...samples.prepare, entry: { ...samples.prepare.entry, view: 2 ** 40 } }, '\uFEFFnœud/r0', 'ns/r1'),
      envelope({ ...samples.request, clientId: '😀'.repeat(100), requestNum: 2 ** 33 }),
    ];
    const back = roundTrip(wide);
    expect(back.generic).to.equal(0);
    expect(back.decoded).to.deep.equal(wide);
    expect(Object.is((back.decoded?.[3]?.msg as ReadRound).round, -0)).to.equal(true);
  });

  it('keeps the core\'s other field order for a reply hot too (nothing reads key order), and an empty batch is an empty record', () => {
    const base = { epoch: 0, view: 3, clientId: 'c.1', requestNum: 4 };
    const reordered = envelope({ type: 'reply', ...base, op: 0, body: { type: 'session_expired' } });
    const { decoded, hot } = roundTrip([reordered]);
    expect(hot).to.equal(1);
    expect(decoded).to.deep.equal([reordered]);
    expect(roundTrip([]).decoded).to.deep.equal([]);
  });

  it('anything that is not exactly a hot shape goes generic and comes back as the msgpack layout would bring it', () => {
    class Ok {
      readonly type = 'prepare_ok';
      readonly epoch = 0;
      readonly view = 1;
      readonly replica = 2;
      readonly op = 3;
    }
    const generic: Envelope[] = [
      { from: 'host', to: 'ns/r0', msg: null, control: true },
      envelope({ ...samples.prepare_ok, extra: 1 }),
      envelope({ type: 'prepare_ok', epoch: 0, view: 1, replica: 2 }),
      envelope({ ...samples.commit, commit: '41' }),
      envelope({ type: 'request', clientId: 'c', requestNum: 1, opp: 1 }),
      envelope({ ...samples.prepare, entry: { ...samples.prepare.entry, requests: [{ ...samples.request, type: 'reply' }] } }),
      envelope({ ...samples.prepare, entry: { ...samples.prepare.entry, requests: 'none' } }),
      envelope(new Ok()),
      envelope({ type: 'do_view_change', epoch: 0, view: 2, replica: 1, lastNormalView: 1, op: 3, commit: 2, logStart: 0, entries: [samples.prepare.entry], checkpoint: { op: 0, snapshot: new Uint8Array([1, 2, 3]) } }),
      envelope({ type: 'call', callId: 1, ns: 'ns', op: { type: 'stat', path: '/' } }),
      envelope('just a string'),
      envelope({ type: 'tick', at: 1 }),
    ];
    const { decoded, hot } = roundTrip(generic);
    expect(hot).to.equal(0);
    expect(decoded).to.deep.equal(viaMsgpack(generic));
    // An op or body of any value, undefined included, is still the hot shape: msgpack carries it.
    const undefinedOp = [envelope({ ...samples.request, op: undefined })];
    expect(roundTrip(undefinedOp)).to.deep.include({ hot: 1, decoded: undefinedOp });
    // A lone surrogate cannot be utf8: such a client id, or actor id, leaves the fixed layout too.
    const lone = [envelope({ ...samples.not_primary, clientId: 'c\uD800' }), envelope(samples.tick, 'a\uDC00', 'b')];
    const back = roundTrip(lone);
    expect(back.hot).to.equal(0);
    expect(back.decoded).to.deep.equal(viaMsgpack(lone));
  });

  it('property: batches mixing hot and generic messages, over many records of one link, come back equal and in order', () => {
    // Plain objects, as the core builds them (fast-check also makes null-prototype ones, which go generic).
    const rec = <T,>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> => fc.record(model, { noNullPrototype: true });
    const num = fc.oneof(fc.nat(), fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.constantFrom(2 ** 32, 2 ** 40, 2 ** 53 - 1, -1, 0.25, -0));
    const text = fc.oneof(fc.string({ maxLength: 24 }), fc.string({ maxLength: 80, unit: 'grapheme' }));
    const leaf = fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 48 }), fc.double({ noNaN: true }).filter((x) => !Object.is(x, -0)));
    const opaque = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 3, noNullPrototype: true })),
    })).value;
    const request = rec({ type: fc.constant('request'), clientId: text, requestNum: num, op: opaque });
    const message = fc.oneof(
      request,
      rec({ type: fc.constant('reply'), epoch: num, view: num, op: num, clientId: text, requestNum: num, body: opaque }),
      rec({ type: fc.constant('prepare'), epoch: num, view: num, replica: num, op: num, commit: num, entry: rec({ op: num, view: num, requests: fc.array(request, { maxLength: 6 }) }), globalMinAccept: num }),
      rec({ type: fc.constant('prepare_ok'), epoch: num, view: num, replica: num, op: num }),
      rec({ type: fc.constant('commit'), epoch: num, view: num, replica: num, commit: num, globalMinAccept: num }),
      rec({ type: fc.constantFrom('read_round', 'read_round_ok'), epoch: num, view: num, replica: num, round: num }),
      rec({ type: fc.constant('not_primary'), epoch: num, view: num, clientId: text, requestNum: num, primary: num }),
      rec({ type: fc.constant('busy'), epoch: num, view: num, clientId: text, requestNum: num, retryAfterTicks: num }),
      fc.constant({ type: 'tick' }),
      rec({ type: fc.constantFrom('start_view_change', 'pong'), n: opaque }),
    );
    const actor = fc.oneof(fc.constantFrom('ns/r0', 'ns/r1', 'ns/r2', 'proxy', 'timer', 'host/api'), text);
    const envelopeArb = fc.oneof(
      { weight: 9, arbitrary: rec({ from: actor, to: actor, msg: message }) },
      { weight: 1, arbitrary: rec({ from: actor, to: actor, msg: opaque, control: fc.constant(true as const) }) },
    );
    // Each record: encoded into no room, a small one or a large one; sometimes encoded once
    // and not published first (a full ring), then encoded again.
    const step = rec({ batch: fc.array(envelopeArb, { maxLength: 12 }), room: fc.constantFrom(0, 64, 1 << 16), dropFirst: fc.boolean() });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 12 }), (steps, idsMax) => {
        const encoder = new RecordEncoder(idsMax);
        const decoder = new RecordDecoder(idsMax);
        for (const { batch, room, dropFirst } of steps) {
          const target = room === 0 ? null : new Uint8Array(new SharedArrayBuffer(room));
          if (dropFirst) encoder.pack(batch, target);
          const bytes = encoder.pack(batch, target).slice();
          encoder.published();
          const decoded = decoder.decode(bytes);
          if (!isDeepStrictEqual(decoded, batch)) expect(decoded).to.deep.equal(batch);
        }
        expect(decoder.internedIds).to.equal(encoder.internedIds);
        expect(decoder.internedIds).to.be.at.most(idsMax);
      }),
      { numRuns: 150 },
    );
  });

  it('a record encoded into a room too small for it is encoded again into private memory, byte for byte the same', () => {
    const batch = Array.from({ length: 40 }, (_, i) => envelope({ ...samples.request, requestNum: i, op: put(`/b${i}`, 100, i) }, 'proxy', 'ns/r0'));
    const encoder = new RecordEncoder();
    const room = new Uint8Array(new SharedArrayBuffer(4096), 256, 512);
    const fromRoom = encoder.pack(batch, room).slice();
    const fromScratch = encoder.pack(batch, null).slice();
    expect(fromRoom).to.deep.equal(fromScratch);
    const big = new Uint8Array(new SharedArrayBuffer(64 * 1024), 256);
    const inPlace = encoder.pack(batch, big);
    expect(inPlace.buffer).to.equal(big.buffer);
    expect(inPlace.byteOffset).to.equal(big.byteOffset);
    expect(inPlace.slice()).to.deep.equal(fromScratch);
  });

  it('every truncation of a valid record is malformed, and a malformed record leaves the reader\'s table as it was', () => {
    const batch = [...Object.values(samples).map((msg) => envelope(msg, 'ns/r0', 'proxy')), { from: 'host', to: 'x', msg: 1, control: true as const }];
    const record = publish(new RecordEncoder(), batch);
    const decoder = new RecordDecoder();
    for (let length = 0; length < record.byteLength; length += 1) {
      expect(decoder.decode(record.subarray(0, length)), `truncated to ${length} bytes`).to.equal(null);
    }
    expect(decoder.internedIds).to.equal(0);
    expect(decoder.decode(record)).to.deep.equal(batch);
    expect(decoder.internedIds).to.equal(2);
  });

  it('random byte flips and random bytes give malformed or a batch of envelopes, never a throw', () => {
    const batch = [...Object.values(samples).map((msg) => envelope(msg)), envelope({ type: 'start_view_change', epoch: 0, view: 4, replica: 1 })];
    const record = publish(new RecordEncoder(), batch);
    let malformed = 0;
    fc.assert(
      fc.property(fc.array(fc.record({ at: fc.nat(record.byteLength - 1), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 3 }), (flips) => {
        const damaged = record.slice();
        for (const { at, xor } of flips) damaged[at] = (damaged[at] as number) ^ xor;
        const decoded = new RecordDecoder().decode(damaged);
        if (decoded === null) malformed += 1;
        else expect(decoded.every((e) => isEnvelope(e))).to.equal(true);
      }),
      { numRuns: 2000 },
    );
    // Many flips land in a number or a byte value and give another legal batch; most do not.
    expect(malformed).to.be.above(500);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const decoded = new RecordDecoder().decode(bytes);
        expect(decoded === null || decoded.every((e) => isEnvelope(e))).to.equal(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('interns ids up to its bound and writes the rest inline; a reader that missed a definition finds the record malformed', () => {
    const encoder = new RecordEncoder();
    const decoder = new RecordDecoder();
    const ids = Array.from({ length: internedIdsMax + 900 }, (_, i) => `ns${i}/r${i % 3}`);
    for (let start = 0; start < ids.length; start += 500) {
      const batch = ids.slice(start, start + 500).map((id, i) => envelope({ ...samples.prepare_ok, op: start + i }, id, 'ns0/r0'));
      expect(decoder.decode(publish(encoder, batch))).to.deep.equal(batch);
    }
    expect(encoder.internedIds).to.equal(internedIdsMax);
    expect(decoder.internedIds).to.equal(internedIdsMax);
    // Known ids travel as two bytes, ids past the bound inline: both still decode.
    const id = (i: number): string => ids.at(i) as string;
    const again = [envelope(samples.tick, id(0), id(1)), envelope(samples.tick, id(-1), id(2))];
    const record = publish(encoder, again);
    expect(decoder.decode(record)).to.deep.equal(again);
    expect(record.byteLength).to.be.below(60);
    // A reader that did not read the definitions (another link's) cannot resolve the indexes.
    expect(new RecordDecoder().decode(record)).to.equal(null);
  });

  it('a record that was not published does not count: its ids are defined again by the next one', () => {
    const encoder = new RecordEncoder();
    const decoder = new RecordDecoder();
    const first = [envelope(samples.commit, 'ns/r0', 'ns/r1')];
    encoder.pack(first, null); // a ring found full: never published
    expect(encoder.internedIds).to.equal(0);
    const second = [envelope(samples.prepare_ok, 'ns/r1', 'ns/r0')];
    expect(decoder.decode(publish(encoder, second))).to.deep.equal(second);
    expect(decoder.decode(publish(encoder, first))).to.deep.equal(first);
    expect(encoder.internedIds).to.equal(2);
  });

  it('decoded byte values own their memory: nothing keeps the record (or a ring) alive', () => {
    const batch = [envelope(samples.request), envelope({ type: 'blob', bytes: new Uint8Array([9, 8, 7]) })];
    const record = publish(new RecordEncoder(), batch);
    const decoded = new RecordDecoder().decode(record);
    const values = [((decoded?.[0]?.msg as Request).op as { op: { value: Uint8Array } }).op.value, (decoded?.[1]?.msg as { bytes: Uint8Array }).bytes];
    for (const value of values) {
      expect(value.buffer).to.not.equal(record.buffer);
      expect(value.buffer.byteLength).to.equal(value.byteLength);
    }
  });
});

/** Two transports of `kind` on this thread, a and b, linked; actor `x` lives on b. */
function linked(kind: TransportKind): { readonly a: Transport; readonly b: Transport; readonly got: Envelope[]; readonly relink: () => Transport } {
  const directory = new Map<ActorId, string>([['x', 'b']]);
  const codec = makeCodec('msgpack');
  const got: Envelope[] = [];
  const b = kind.create('b', directory, codec, (batch) => got.push(...batch));
  const connect = (): Transport => {
    const a = kind.create('a', directory, codec, () => undefined);
    const [endA, endB] = kind.pair();
    a.setPeer('b', endA);
    b.setPeer('a', endB);
    return a;
  };
  return { a: connect(), b, got, relink: connect };
}

const stats = (transport: Transport): RingTransportStats => transport.stats() as RingTransportStats;

describe('runtime: ring transport with the binary layout', function () {
  this.timeout(20_000);

  const binary = makeRingTransportKind({ ...defaultRingTransportConfig({}), layout: 'binary' });
  const msgpack = makeRingTransportKind({ ...defaultRingTransportConfig({}), layout: 'msgpack' });

  it('is the default, chosen by HARET_RING_LAYOUT, and validated', () => {
    expect(defaultRingTransportConfig({}).layout).to.equal('binary');
    expect(defaultRingTransportConfig({ HARET_RING_LAYOUT: 'msgpack' }).layout).to.equal('msgpack');
    expect(validateRingTransportConfig({ ...defaultRingTransportConfig({}), layout: 'json' as never })).to.match(/layout/);
    expect(() => makeRingTransportKind({ ...defaultRingTransportConfig({}), layout: 'json' as never })).to.throw(RangeError);
  });

  it('both layouts deliver the same batches in order; the binary one writes hot messages in their layout', async () => {
    for (const kind of [binary, msgpack]) {
      const { a, b, got } = linked(kind);
      try {
        const sent: Envelope[] = [];
        for (let round = 0; round < 20; round += 1) {
          for (const msg of [...Object.values(samples), { type: 'pong', n: round }]) {
            const e = envelope(msg, 'y', 'x');
            sent.push(e);
            a.send(e);
          }
          a.flush();
        }
        await eventually('all delivered', () => got.length === sent.length);
        expect(got).to.deep.equal(sent);
        const s = stats(a);
        expect(stats(b).malformed).to.equal(0);
        if (kind === binary) expect(s).to.include({ hotEnvelopes: 200, genericEnvelopes: 20 });
        else expect(s).to.include({ hotEnvelopes: 0, genericEnvelopes: 0 });
      } finally {
        a.close();
        b.close();
      }
    }
  });

  it('a malformed binary record is dropped whole and counted; later records still arrive', async () => {
    const got: Envelope[] = [];
    const b = binary.create('b', new Map([['x', 'b']]), makeCodec('msgpack'), (batch) => got.push(...batch));
    const [endA, endB] = binary.pair() as readonly [RingLinkEnd, RingLinkEnd];
    b.setPeer('a', endB);
    const writer = new RingWriter(endA.tx);
    const encoder = new RecordEncoder();
    try {
      const good = [envelope(samples.prepare_ok, 'p', 'x'), envelope(samples.tick, 'p', 'x')];
      const record = publish(encoder, good);
      writer.tryWrite(record.subarray(0, record.byteLength - 1), tagRecord); // truncated: defines p and x, then breaks off
      writer.tryWrite(publish(new RecordEncoder(), good), tagRecord); // a whole record, its own definitions
      await eventually('the whole record', () => got.length === 2);
      expect(got).to.deep.equal(good);
      expect(stats(b).malformed).to.equal(1);
    } finally {
      b.close();
      endA.port.close();
    }
  });

  it('a peer restarted on a fresh link starts with empty tables on both sides', async () => {
    const { a, b, got, relink } = linked(binary);
    try {
      a.send(envelope(samples.commit, 'y', 'x'));
      a.flush();
      await eventually('first', () => got.length === 1);
      // The peer thread dies; its replacement is linked anew (ring_transport: setPeer drops the old link).
      a.close();
      const fresh = relink();
      try {
        fresh.send(envelope(samples.prepare_ok, 'y', 'x'));
        fresh.send(envelope(samples.commit, 'z', 'x'));
        fresh.flush();
        await eventually('after the restart', () => got.length === 3);
        expect(got.map((e) => [e.from, (e.msg as HotMessage).type])).to.deep.equal([
          ['y', 'commit'],
          ['y', 'prepare_ok'],
          ['z', 'commit'],
        ]);
        expect(stats(b).malformed).to.equal(0);
      } finally {
        fresh.close();
      }
    } finally {
      b.close();
    }
  });
});
