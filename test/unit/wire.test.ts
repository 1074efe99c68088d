/**
 * The client wire protocol (src/api/frame.ts, src/api/wire.ts, docs/protocol.md): framing on
 * any chunking, limits before buffering, a codec that round-trips every message and answers
 * anything else with a typed error, never a throw.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';

import { encodeFrame, FrameDecoder, frameHeaderBytes, type FrameEvent } from '../../src/api/frame.ts';
import {
  clientMessageTypes,
  decodeClientMessage,
  decodeNodeMessage,
  defaultWireLimits,
  encodeClientFrame,
  encodeClientMessage,
  encodeNodeFrame,
  encodeNodeMessage,
  errorCodes,
  frameBytesFor,
  frameMarginBytes,
  helloFrameBytesMax,
  limitNames,
  nodeMessageTypes,
  validateWireLimits,
  type ClientMessage,
  type DecodeResult,
  type NamespaceInfo,
  type NamespaceLookup,
  type NodeMessage,
  type WireError,
} from '../../src/api/wire.ts';
import { describeTreeError, type TreeError } from '../../src/tree/errors.ts';
import { defaultTreeLimits, protocolNumberMax } from '../../src/base/limits.ts';
import { nodeTypes, type NodeType } from '../../src/tree/node_type.ts';
import type { Guard, ListEntry, OpFailure, OpOutcome, OpResult, SetOperand, SimpleOp, TreeOp } from '../../src/tree/ops.ts';
import type { ClientAnswer, ReplyBody, RequestOp } from '../../src/vr/messages.ts';

const limits = defaultWireLimits;
const runs = 1000;
/** Every well-named namespace exists, with 3 replicas and the default tree limits. */
const namespaces: NamespaceLookup = () => ({ replicas: 3, tree: defaultTreeLimits });

/** A third-party view of the bytes: plain msgpack with our conventions, for hand-made payloads. */
const raw = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const pack = (value: unknown): Uint8Array => new Uint8Array(raw.pack(value));

// ---- arbitraries --------------------------------------------------------------------------

const counterArb = fc.oneof(fc.nat({ max: 300 }), fc.maxSafeNat());
const bytesArb = fc.uint8Array({ maxLength: 24 });
const componentArb = fc
  .string({ minLength: 1, maxLength: 8, unit: fc.constantFrom('a', 'b', 'z', '0', '_', '-', '.', 'é', '日', '😀') })
  .filter((c) => c !== '.' && c !== '..');
const pathArb = fc.array(componentArb, { maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
const nodeTypeArb = fc.constantFrom<NodeType>(...nodeTypes);
const textArb = fc.string({ maxLength: 40, unit: 'grapheme' });
const nsArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/);
const clientIdArb = fc.oneof(fc.string({ minLength: 1, maxLength: 256 }), fc.uuid());
/** Ids and request numbers are protocol numbers: at most protocolNumberMax (2^48). */
const protocolNumberArb = fc.oneof(fc.nat({ max: 300 }), fc.integer({ min: 0, max: protocolNumberMax }), fc.constant(protocolNumberMax));
const idArb = protocolNumberArb;

const setOperandArb: fc.Arbitrary<SetOperand> = fc.oneof(
  fc.record({ type: fc.constant('path' as const), path: pathArb }),
  fc.record({ type: fc.constant('literal' as const), members: fc.array(bytesArb, { maxLength: 4 }) }),
);

const simpleOpArb: fc.Arbitrary<SimpleOp> = fc.oneof(
  fc.record({ type: fc.constant('list' as const), path: pathArb, recursive: fc.boolean() }),
  fc.record({
    type: fc.constantFrom('stat' as const, 'blob_get' as const, 'blob_size' as const, 'queue_front' as const, 'queue_back' as const, 'queue_len' as const, 'delete' as const, 'queue_pop' as const),
    path: pathArb,
  }),
  fc.record({
    type: fc.constantFrom('set_contains' as const, 'blob_put' as const, 'queue_push' as const, 'set_insert' as const, 'set_remove' as const),
    path: pathArb,
    value: bytesArb,
  }),
  fc.record({ type: fc.constant('create' as const), path: pathArb, nodeType: nodeTypeArb }),
  fc.record({
    type: fc.constant('set_union' as const),
    paths: fc.array(pathArb, { maxLength: 3 }),
    sets: fc.array(fc.array(bytesArb, { maxLength: 3 }), { maxLength: 3 }),
  }),
  fc.record({
    type: fc.constantFrom('set_intersection' as const, 'set_difference' as const, 'set_symmetric_difference' as const),
    path1: pathArb,
    path2: pathArb,
  }),
  fc.record({ type: fc.constantFrom('set_is_subset' as const, 'set_is_superset' as const), path: pathArb, other: setOperandArb }),
);

const guardArb: fc.Arbitrary<Guard> = fc.record({ path: pathArb, version: counterArb });
const treeOpArb: fc.Arbitrary<TreeOp> = fc.oneof(
  { weight: 4, arbitrary: simpleOpArb },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('multi_cas' as const),
      guards: fc.array(guardArb, { maxLength: 3 }),
      ops: fc.array(simpleOpArb, { maxLength: 4 }),
    }),
  },
);

const requestArb = fc.oneof(
  fc.record({
    type: fc.constant('request' as const),
    id: idArb,
    ns: nsArb,
    replica: fc.nat({ max: 2 }),
    clientId: clientIdArb,
    requestNum: fc.constant(0),
    op: fc.constant<RequestOp>({ type: 'register' }),
  }),
  fc.record({
    type: fc.constant('request' as const),
    id: idArb,
    ns: nsArb,
    replica: fc.nat({ max: 2 }),
    clientId: clientIdArb,
    requestNum: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: protocolNumberMax })),
    op: treeOpArb.map((op): RequestOp => ({ type: 'tree', op })),
  }),
);

const clientMessageArb: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.constant<ClientMessage>({ type: 'hello', version: 1 }),
  fc.record({ type: fc.constant('hello' as const), version: fc.constant(1 as const), client: fc.string({ maxLength: 256 }) }),
  fc.record({ type: fc.constant('hello' as const), version: fc.constant(1 as const), client: fc.string({ maxLength: 256 }), token: fc.string({ minLength: 1, maxLength: 1024 }) }),
  fc.record({ type: fc.constantFrom('list_namespaces' as const, 'ping' as const), id: idArb }),
  requestArb,
);

const treeErrorArb: fc.Arbitrary<TreeError> = fc.oneof(
  fc.record({ code: fc.constantFrom('already_exists' as const, 'does_not_exist' as const, 'not_a_directory' as const), path: pathArb }),
  fc.record({ code: fc.constant('wrong_type' as const), path: pathArb, actual: nodeTypeArb }),
  fc.record({ code: fc.constantFrom('bad_path' as const, 'invalid_request' as const), reason: textArb }),
  fc.constant<TreeError>({ code: 'cannot_delete_root' }),
  fc.record({ code: fc.constant('cas_failed' as const), path: pathArb, expected: counterArb, actual: fc.option(counterArb, { nil: null }) }),
  fc.record({ code: fc.constant('too_large' as const), what: fc.constantFrom(...limitNames), limit: counterArb }),
);

const listEntryArb: fc.Arbitrary<ListEntry> = fc.record({ name: componentArb, path: pathArb, nodeType: nodeTypeArb, version: counterArb });

const simpleResultArb: fc.Arbitrary<OpResult> = fc.oneof(
  fc.record({ type: fc.constant('ok' as const), version: counterArb }),
  fc.record({ type: fc.constant('blob' as const), value: bytesArb, version: counterArb }),
  fc.record({ type: fc.constant('element' as const), value: fc.option(bytesArb, { nil: null }), version: counterArb }),
  fc.record({ type: fc.constant('count' as const), count: counterArb, version: counterArb }),
  fc.record({ type: fc.constant('bool' as const), value: fc.boolean(), version: counterArb }),
  fc.record({ type: fc.constant('answer' as const), value: fc.boolean() }),
  fc.record({ type: fc.constant('set' as const), members: fc.array(bytesArb, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('list' as const), entries: fc.array(listEntryArb, { maxLength: 4 }), version: counterArb }),
  fc.record({ type: fc.constant('stat' as const), nodeType: nodeTypeArb, version: counterArb, size: counterArb }),
);
const opResultArb: fc.Arbitrary<OpResult> = fc.oneof(
  { weight: 4, arbitrary: simpleResultArb },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('txn' as const), results: fc.array(simpleResultArb, { maxLength: 4 }) }) },
);
const failureArb: fc.Arbitrary<OpFailure> = fc.oneof(
  fc.record({ type: fc.constant('error' as const), error: treeErrorArb }),
  fc.record({ type: fc.constant('error' as const), error: treeErrorArb, at: counterArb }),
);
const outcomeArb: fc.Arbitrary<OpOutcome> = fc.oneof(opResultArb, failureArb);

const replyBodyArb: fc.Arbitrary<ReplyBody> = fc.oneof(
  fc.record({ type: fc.constant('registered' as const), isNew: fc.boolean(), lastRequestNum: counterArb }),
  fc.record({ type: fc.constant('tree' as const), outcome: outcomeArb }),
  fc.constant<ReplyBody>({ type: 'session_expired' }),
  fc.record({ type: fc.constant('rejected' as const), outcome: failureArb }),
  fc.record({ type: fc.constant('stale_request' as const), lastRequestNum: counterArb }),
);

const clientAnswerArb: fc.Arbitrary<ClientAnswer> = fc.oneof(
  fc.record({
    type: fc.constant('reply' as const),
    epoch: counterArb,
    view: counterArb,
    op: counterArb,
    clientId: clientIdArb,
    requestNum: counterArb,
    body: replyBodyArb,
  }),
  fc.record({ type: fc.constant('not_primary' as const), epoch: counterArb, view: counterArb, primary: counterArb, clientId: clientIdArb, requestNum: counterArb }),
  fc.record({ type: fc.constant('busy' as const), epoch: counterArb, view: counterArb, retryAfterTicks: counterArb, clientId: clientIdArb, requestNum: counterArb }),
);

const addressArb = fc.oneof(fc.constant('127.0.0.1:7400'), fc.constant('[::1]:7400'), fc.string({ minLength: 1, maxLength: 64 }));

const positiveArb = fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));
const treeLimitsArb = fc
  .record({
    valueBytesMax: positiveArb,
    pathBytesMax: fc.integer({ min: 255, max: 1 << 20 }),
    pathDepthMax: positiveArb,
    componentBytesMax: fc.integer({ min: 1, max: 255 }),
    collectionElementsMax: positiveArb,
    directoryChildrenMax: positiveArb,
    txnOpsMax: positiveArb,
    txnGuardsMax: positiveArb,
    unionOperandsMax: positiveArb,
    requestBytesMax: positiveArb,
    listEntriesMax: positiveArb,
    leaseTtlMinMs: fc.integer({ min: 1, max: 1000 }),
    leaseTtlMaxMs: fc.integer({ min: 1000, max: 1 << 30 }),
    leasesMax: fc.integer({ min: 1000, max: 1 << 30 }),
    leasesPerClientMax: fc.integer({ min: 1, max: 1000 }),
    leaseNodesMax: positiveArb,
    keepAliveIdsMax: positiveArb,
    sequenceMax: fc.integer({ min: 1, max: 9_999_999_999 }),
  });
const namespaceInfosArb: fc.Arbitrary<NamespaceInfo[]> = fc.uniqueArray(
  fc.record({ name: nsArb, replicas: fc.constantFrom(1, 3, 5, 31), limits: treeLimitsArb }),
  { maxLength: 4, selector: (info) => info.name },
);

const nodeMessageArb: fc.Arbitrary<NodeMessage> = fc.oneof(
  fc.record({
    type: fc.constant('welcome' as const),
    version: fc.constant(1 as const),
    node: fc.string({ minLength: 1, maxLength: 256 }),
    namespaces: namespaceInfosArb,
    frameBytesMax: positiveArb,
    inFlightMax: positiveArb,
    requestTimeoutMs: positiveArb,
  }),
  fc.record({ type: fc.constant('namespaces' as const), id: idArb, namespaces: namespaceInfosArb }),
  fc.record({ type: fc.constant('answer' as const), id: idArb, ns: nsArb, answer: clientAnswerArb }),
  fc.record({ type: fc.constant('redirect' as const), id: idArb, ns: nsArb, replica: counterArb, address: fc.option(addressArb, { nil: null }) }),
  fc.record({ type: fc.constant('pong' as const), id: idArb }),
  fc.record({ type: fc.constant('error' as const), id: fc.option(idArb, { nil: null }), code: fc.constantFrom(...errorCodes), message: textArb }),
);

// ---- helpers ------------------------------------------------------------------------------

function okMessage<M>(result: DecodeResult<M>): M {
  if (!result.ok) return expect.fail(`expected a message, got ${JSON.stringify(result.error)}`);
  return result.message;
}

function refused<M>(result: DecodeResult<M>): WireError {
  if (result.ok) return expect.fail(`expected a refusal, got ${JSON.stringify(result.message)}`);
  return result.error;
}

/** A typed error: a known code, an id that is null or a counter, a string message. */
function expectTypedError(error: WireError): void {
  expect(errorCodes).to.include(error.code);
  expect(typeof error.message).to.equal('string');
  if (error.id !== null) expect(Number.isSafeInteger(error.id) && error.id >= 0).to.equal(true);
}

/** Every byte string in the value is a plain Uint8Array (not a Buffer) that does not share `notIn`. */
function expectPlainBytes(value: unknown, notIn: ArrayBufferLike): void {
  if (value instanceof Uint8Array) {
    expect(Object.getPrototypeOf(value)).to.equal(Uint8Array.prototype);
    expect(value.buffer).to.not.equal(notIn);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const item of Object.values(value)) expectPlainBytes(item, notIn);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

function framesOf(events: readonly FrameEvent[]): Uint8Array[] {
  return events.map((event) => {
    if (event.type !== 'frame') return expect.fail(`unexpected ${event.code}`);
    return event.payload;
  });
}

/** Cuts `bytes` at the given offsets (any order, duplicates allowed). */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const point of [...points, bytes.byteLength]) {
    pieces.push(bytes.subarray(from, point));
    from = point;
  }
  return pieces;
}

const prefix = (length: number): Uint8Array => Uint8Array.from([(length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff]);

// ---- framing ------------------------------------------------------------------------------

describe('wire framing (src/api/frame.ts)', () => {
  it('encodes a 4-byte big-endian length before the payload', () => {
    const frame = encodeFrame(Uint8Array.from([7, 8, 9]));
    expect(Array.from(frame)).to.deep.equal([0, 0, 0, 3, 7, 8, 9]);
    const big = encodeFrame(new Uint8Array(0x01_02_03));
    expect(Array.from(big.subarray(0, 4))).to.deep.equal([0, 1, 2, 3]);
  });

  it('refuses to encode an empty payload (our bug, not the peer\'s)', () => {
    expect(() => encodeFrame(new Uint8Array(0))).to.throw(/must not be empty/);
  });

  it('any split of a sequence of frames yields the same payloads, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (payloads, cuts) => {
          const decoder = new FrameDecoder({ frameBytesMax: 300 });
          const received: Uint8Array[] = [];
          for (const piece of split(concat(payloads.map(encodeFrame)), cuts)) {
            received.push(...framesOf(decoder.push(piece)));
            expect(decoder.bufferedBytes).to.be.at.most(300 + frameHeaderBytes);
          }
          expect(received).to.deep.equal(payloads);
          expect(decoder.bufferedBytes).to.equal(0);
        },
      ),
      { numRuns: runs },
    );
  });

  it('one byte at a time, and many frames in one chunk', () => {
    const payloads = [Uint8Array.from([1]), Uint8Array.from([2, 3]), new Uint8Array(1000).fill(4)];
    const stream = concat(payloads.map(encodeFrame));
    const bytewise = new FrameDecoder({ frameBytesMax: 1000 });
    const received: Uint8Array[] = [];
    for (let i = 0; i < stream.byteLength; i++) received.push(...framesOf(bytewise.push(stream.subarray(i, i + 1))));
    expect(received).to.deep.equal(payloads);
    expect(framesOf(new FrameDecoder({ frameBytesMax: 1000 }).push(stream))).to.deep.equal(payloads);
  });

  it('rejects an oversized length as soon as the prefix is in, before any payload arrives', () => {
    const decoder = new FrameDecoder({ frameBytesMax: 1024 });
    expect(decoder.push(prefix(1025).subarray(0, 2))).to.deep.equal([]);
    const events = decoder.push(prefix(1025).subarray(2));
    expect(events).to.have.length(1);
    expect(events[0]).to.include({ type: 'error', code: 'frame_too_large' });
    expect(decoder.failed).to.equal(true);
    expect(decoder.bufferedBytes).to.equal(0);
    // The connection is to be closed: nothing more is decoded, not even valid frames.
    expect(decoder.push(encodeFrame(Uint8Array.from([1])))).to.deep.equal([]);
    expect(decoder.bufferedBytes).to.equal(0);
  });

  it('reports frames decoded before an oversized prefix in the same chunk, then stops', () => {
    const decoder = new FrameDecoder({ frameBytesMax: 8 });
    const events = decoder.push(concat([encodeFrame(Uint8Array.from([5])), prefix(0xffff_ffff), new Uint8Array(8)]));
    expect(events.map((e) => e.type)).to.deep.equal(['frame', 'error']);
  });

  it('a zero length is an empty_frame error and ends the stream', () => {
    const decoder = new FrameDecoder({ frameBytesMax: 1024 });
    const events = decoder.push(concat([prefix(0), encodeFrame(Uint8Array.from([1]))]));
    expect(events).to.have.length(1);
    expect(events[0]).to.include({ type: 'error', code: 'empty_frame' });
    expect(decoder.push(encodeFrame(Uint8Array.from([1])))).to.deep.equal([]);
  });

  it('holds what arrived, not what the prefix announced', () => {
    const decoder = new FrameDecoder({ frameBytesMax: 4 * 1024 * 1024 });
    expect(decoder.push(concat([prefix(4 * 1024 * 1024), new Uint8Array(10)]))).to.deep.equal([]);
    expect(decoder.bufferedBytes).to.equal(14);
  });

  it('payloads are plain copies that do not alias the pushed chunk', () => {
    const chunk = Buffer.from(concat([encodeFrame(Uint8Array.from([1, 2, 3])), encodeFrame(Uint8Array.from([4, 5])), encodeFrame(Uint8Array.from([6, 7])).subarray(0, 5)]));
    const decoder = new FrameDecoder({ frameBytesMax: 16 });
    const [first, second] = framesOf(decoder.push(chunk));
    const [third] = framesOf(decoder.push(Buffer.from([7])));
    chunk.fill(0xee);
    expect(Array.from(first ?? [])).to.deep.equal([1, 2, 3]);
    expect(Array.from(second ?? [])).to.deep.equal([4, 5]);
    expect(Array.from(third ?? [])).to.deep.equal([6, 7]);
    for (const payload of [first, second, third]) {
      expect(Object.getPrototypeOf(payload)).to.equal(Uint8Array.prototype);
      expect(payload?.buffer).to.not.equal(chunk.buffer);
    }
  });

  it('never throws and never holds more than frameBytesMax + 4 on arbitrary input', () => {
    // Streams mixing well-formed frames (some over the limit) with random bytes, cut anywhere.
    const pieceArb = (max: number) =>
      fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 2 * max }).map((p) => concat([prefix(p.byteLength), p])),
        fc.uint8Array({ maxLength: 32 }),
        fc.constant(prefix(0)),
      );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }).chain((max) => fc.tuple(fc.constant(max), fc.array(pieceArb(max), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }))),
        ([max, pieces, cuts]) => {
          const decoder = new FrameDecoder({ frameBytesMax: max });
          let ended = false;
          for (const chunk of split(concat(pieces), cuts)) {
            const events = decoder.push(chunk);
            expect(decoder.bufferedBytes).to.be.at.most(max + frameHeaderBytes);
            if (ended) expect(events).to.deep.equal([]);
            events.forEach((event, i) => {
              if (event.type === 'frame') {
                expect(event.payload.byteLength).to.be.within(1, max);
              } else {
                expect(['frame_too_large', 'empty_frame']).to.include(event.code);
                expect(i).to.equal(events.length - 1);
                ended = true;
              }
            });
            expect(decoder.failed).to.equal(ended);
          }
        },
      ),
      { numRuns: runs },
    );
  });

  it('checks its limit at construction', () => {
    expect(() => new FrameDecoder({ frameBytesMax: 0 })).to.throw(RangeError);
    expect(() => new FrameDecoder({ frameBytesMax: 2 ** 32 })).to.throw(RangeError);
    expect(() => new FrameDecoder({ frameBytesMax: 1.5 })).to.throw(RangeError);
  });
});

// ---- limits -------------------------------------------------------------------------------

describe('wire limits', () => {
  it('defaults: the tree request limit plus a 64 KiB margin, 1024 in flight', () => {
    expect(defaultWireLimits.frameBytesMax).to.equal(defaultTreeLimits.requestBytesMax + 64 * 1024);
    expect(frameMarginBytes).to.equal(64 * 1024);
    expect(defaultWireLimits.inFlightMax).to.equal(1024);
    expect(validateWireLimits(defaultWireLimits, [defaultTreeLimits])).to.equal(null);
  });

  it('the frame fits a request of every namespace: the largest request limit decides', () => {
    const big = { ...defaultTreeLimits, valueBytesMax: 8 << 20, requestBytesMax: 9 << 20 };
    expect(frameBytesFor([defaultTreeLimits, big])).to.equal((9 << 20) + frameMarginBytes);
    expect(frameBytesFor([])).to.equal(defaultWireLimits.frameBytesMax);
  });

  it('refuses unusable limits', () => {
    expect(validateWireLimits({ ...limits, frameBytesMax: 0 })).to.match(/frameBytesMax/);
    expect(validateWireLimits({ ...limits, frameBytesMax: helloFrameBytesMax - 1 })).to.match(/frameBytesMax/);
    expect(validateWireLimits({ ...limits, frameBytesMax: 2 ** 32 })).to.match(/frameBytesMax/);
    expect(validateWireLimits({ ...limits, frameBytesMax: defaultTreeLimits.requestBytesMax - 1 }, [defaultTreeLimits])).to.match(/at least/);
    expect(validateWireLimits({ ...limits, inFlightMax: 0 })).to.match(/inFlightMax/);
    expect(validateWireLimits(limits, [{ ...defaultTreeLimits, valueBytesMax: -1 }])).to.match(/tree/);
  });
});

// ---- codec: round trips -------------------------------------------------------------------

describe('wire codec (src/api/wire.ts): round trips', () => {
  it('every client message survives encode, frame, any chunking, decode', () => {
    fc.assert(
      fc.property(clientMessageArb, fc.array(fc.nat(), { maxLength: 6 }), (message, cuts) => {
        const decoder = new FrameDecoder(limits);
        const payloads = split(encodeClientFrame(message), cuts).flatMap((piece) => framesOf(decoder.push(piece)));
        expect(payloads).to.have.length(1);
        const payload = payloads[0] as Uint8Array;
        expect(payload).to.deep.equal(encodeClientMessage(message));
        const decoded = okMessage(decodeClientMessage(payload, namespaces));
        expect(decoded).to.deep.equal(message);
        expectPlainBytes(decoded, payload.buffer);
      }),
      { numRuns: runs },
    );
  });

  it('every node message survives encode, frame, decode', () => {
    fc.assert(
      fc.property(nodeMessageArb, (message) => {
        const frame = encodeNodeFrame(message);
        const payload = frame.subarray(frameHeaderBytes);
        expect(payload).to.deep.equal(encodeNodeMessage(message));
        const decoded = okMessage(decodeNodeMessage(payload));
        expect(decoded).to.deep.equal(message);
        expectPlainBytes(decoded, frame.buffer);
      }),
      { numRuns: runs },
    );
  });

  it('covers every message type', () => {
    expect(clientMessageTypes).to.have.members(['hello', 'list_namespaces', 'request', 'ping', 'watch_subscribe', 'watch_ack', 'watch_cancel']);
    expect(nodeMessageTypes).to.have.members(['welcome', 'namespaces', 'answer', 'redirect', 'pong', 'error', 'watch_events', 'watch_progress', 'watch_ended']);
  });

  it('writes integers as msgpack integers, 64-bit beyond 2^32 (never as floats)', () => {
    const bytes = encodeClientMessage({ type: 'ping', id: 2 ** 40 });
    expect(Buffer.from(bytes).toString('hex')).to.equal('82a474797065a470696e67a26964d30000010000000000');
    expect(okMessage(decodeClientMessage(bytes, namespaces))).to.deep.equal({ type: 'ping', id: 2 ** 40 });
    // uint64 from another implementation reads the same.
    expect(okMessage(decodeClientMessage(pack({ type: 'ping', id: 5n }), namespaces))).to.deep.equal({ type: 'ping', id: 5 });
  });

  it('accepts a Buffer payload and returns plain Uint8Array copies of its bins', () => {
    const message: ClientMessage = {
      type: 'request',
      id: 1,
      ns: 'default',
      replica: 0,
      clientId: 'c',
      requestNum: 1,
      op: { type: 'tree', op: { type: 'blob_put', path: '/a', value: Uint8Array.from([1, 2, 3]) } },
    };
    const payload = Buffer.from(encodeClientMessage(message));
    const decoded = okMessage(decodeClientMessage(payload, namespaces));
    payload.fill(0);
    expect(decoded).to.deep.equal(message);
    expectPlainBytes(decoded, payload.buffer);
  });

  it('drops unknown fields and treats nil optional fields as absent', () => {
    expect(okMessage(decodeClientMessage(pack({ type: 'ping', id: 3, extra: 'x', nested: { a: 1 } }), namespaces))).to.deep.equal({ type: 'ping', id: 3 });
    expect(okMessage(decodeClientMessage(pack({ type: 'hello', version: 1, client: null }), namespaces))).to.deep.equal({ type: 'hello', version: 1 });
    const op = { type: 'list', path: '/', recursive: true, junk: 1 };
    const decoded = okMessage(decodeClientMessage(pack({ type: 'request', id: 1, ns: 'a', replica: 2, clientId: 'c', requestNum: 4, op: { type: 'tree', op, more: 2 } }), namespaces));
    expect(decoded).to.deep.equal({ type: 'request', id: 1, ns: 'a', replica: 2, clientId: 'c', requestNum: 4, op: { type: 'tree', op: { type: 'list', path: '/', recursive: true } } });
    const listNil = okMessage(decodeClientMessage(pack({ type: 'request', id: 1, ns: 'a', replica: 0, clientId: 'c', requestNum: 4, op: { type: 'tree', op: { type: 'list', path: '/', recursive: null } } }), namespaces));
    expect(listNil).to.deep.include({ op: { type: 'tree', op: { type: 'list', path: '/', recursive: false } } });
    expect(okMessage(decodeNodeMessage(pack({ type: 'redirect', id: 1, ns: 'a', replica: 2 })))).to.deep.equal({ type: 'redirect', id: 1, ns: 'a', replica: 2, address: null });
    const failure = { type: 'error', error: { code: 'cannot_delete_root' }, at: null };
    const answer = { type: 'reply', epoch: 1, view: 2, op: 0, clientId: 'c', requestNum: 1, body: { type: 'rejected', outcome: failure } };
    expect(okMessage(decodeNodeMessage(pack({ type: 'answer', id: 9, ns: 'a', answer })))).to.deep.equal({
      type: 'answer',
      id: 9,
      ns: 'a',
      answer: { ...answer, body: { type: 'rejected', outcome: { type: 'error', error: { code: 'cannot_delete_root' } } } },
    });
  });
});

// ---- codec: hostile input -----------------------------------------------------------------

describe('wire codec: hostile input gets typed errors, never a throw', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        for (const result of [decodeClientMessage(bytes, namespaces), decodeNodeMessage(bytes)]) {
          if (!result.ok) expectTypedError(result.error);
        }
      }),
      { numRuns: runs },
    );
  });

  it('random msgpack values', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withBigInt: true, withTypedArray: true, withSparseArray: true, maxDepth: 4 }), (value) => {
        let bytes: Uint8Array;
        try {
          bytes = pack(value);
        } catch {
          return; // not packable: nothing to send
        }
        for (const result of [decodeClientMessage(bytes, namespaces), decodeNodeMessage(bytes)]) {
          if (!result.ok) expectTypedError(result.error);
        }
      }),
      { numRuns: runs },
    );
  });

  it('every truncation of a valid message is malformed', () => {
    fc.assert(
      fc.property(fc.oneof(clientMessageArb.map(encodeClientMessage), nodeMessageArb.map(encodeNodeMessage)), fc.nat(), (bytes, cut) => {
        const truncated = bytes.subarray(0, cut % bytes.byteLength);
        const results: DecodeResult<ClientMessage | NodeMessage>[] = [decodeClientMessage(truncated, namespaces), decodeNodeMessage(truncated)];
        for (const result of results) {
          const error = refused(result);
          expect(error).to.include({ id: null, code: 'malformed' });
        }
      }),
      { numRuns: runs },
    );
  });

  it('trailing bytes after one value are malformed', () => {
    const bytes = concat([encodeClientMessage({ type: 'ping', id: 1 }), Uint8Array.from([0xc0])]);
    expect(refused(decodeClientMessage(bytes, namespaces))).to.include({ code: 'malformed' });
  });

  const badValues: readonly unknown[] = [-1, 1.5, 2 ** 53, 2n ** 64n - 1n, -(2n ** 63n), true, [], {}, Uint8Array.from([1]), 'not a name!', ''];

  it('a wrong-typed field is malformed, and names the id when the id is readable', () => {
    fc.assert(
      fc.property(fc.oneof(clientMessageArb, nodeMessageArb), fc.nat(), fc.constantFrom(...badValues), (message, pick, bad) => {
        const keys = Object.keys(message).filter((key) => key !== 'type');
        if (keys.length === 0) return;
        const key = keys[pick % keys.length] as string;
        // Values the field legitimately takes are not "wrong".
        if (key === 'client' && typeof bad === 'string') return;
        if (key === 'token' && typeof bad === 'string' && bad !== '') return;
        if (key === 'clientId' && bad === 'not a name!') return;
        if ((key === 'node' || key === 'address') && bad === 'not a name!') return;
        if (key === 'message' && typeof bad === 'string') return;
        if (key === 'namespaces' && Array.isArray(bad)) return; // an empty list is a list
        if (key === 'id' && message.type === 'error') return; // any counter or nil: checked below
        const mutated = { ...message, [key]: bad };
        const result: DecodeResult<ClientMessage | NodeMessage> = clientMessageTypes.includes(message.type as ClientMessage['type'])
          ? decodeClientMessage(pack(mutated), namespaces)
          : decodeNodeMessage(pack(mutated));
        const error = refused(result);
        expectTypedError(error);
        expect(error.code).to.equal(key === 'version' && bad === 2 ? 'unsupported_version' : 'malformed');
        const originalId = (message as { id?: number | null }).id;
        expect(error.id).to.equal(key === 'id' || originalId === undefined ? null : originalId);
      }),
      { numRuns: runs },
    );
  });

  it('an unknown message type is malformed, with its id', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), idArb, (type, id) => {
        if ((clientMessageTypes as readonly string[]).includes(type)) return;
        expect(refused(decodeClientMessage(pack({ type, id }), namespaces))).to.deep.include({ id, code: 'malformed' });
        if ((nodeMessageTypes as readonly string[]).includes(type)) return;
        expect(refused(decodeNodeMessage(pack({ type, id })))).to.deep.include({ id, code: 'malformed' });
      }),
      { numRuns: runs },
    );
  });

  it('non-map payloads and maps without a type are malformed', () => {
    for (const value of [null, 1, 'ping', [], [{ type: 'ping', id: 1 }], Uint8Array.from([1]), { id: 4 }, { type: 7, id: 4 }, new Date(0)]) {
      const error = refused(decodeClientMessage(pack(value), namespaces));
      expect(error.code).to.equal('malformed');
    }
    expect(refused(decodeClientMessage(pack({ id: 4 }), namespaces)).id).to.equal(4);
  });

  it('versions: another integer is unsupported_version, anything else malformed', () => {
    expect(refused(decodeClientMessage(pack({ type: 'hello', version: 2 }), namespaces))).to.include({ id: null, code: 'unsupported_version' });
    expect(refused(decodeClientMessage(pack({ type: 'hello', version: '1' }), namespaces))).to.include({ code: 'malformed' });
    expect(refused(decodeClientMessage(pack({ type: 'hello' }), namespaces))).to.include({ code: 'malformed' });
    expect(refused(decodeNodeMessage(pack({ type: 'welcome', version: 0, node: 'n', namespaces: [] })))).to.include({ code: 'unsupported_version' });
  });

  it('a welcome describes each namespace: odd replica counts, valid tree limits, no name twice', () => {
    const info = { name: 'default', replicas: 3, limits: defaultTreeLimits };
    const welcome = (namespacesField: unknown): unknown => ({ type: 'welcome', version: 1, node: 'n', namespaces: namespacesField, frameBytesMax: 1 << 22, inFlightMax: 1024, requestTimeoutMs: 5000 });
    expect(okMessage(decodeNodeMessage(pack(welcome([info]))))).to.deep.include({ namespaces: [info] });
    for (const bad of [[{ ...info, replicas: 2 }], [{ ...info, replicas: 0 }], [info, info], [{ ...info, limits: { ...defaultTreeLimits, valueBytesMax: 0 } }], [{ ...info, limits: { valueBytesMax: 1 } }], ['default']]) {
      expect(refused(decodeNodeMessage(pack(welcome(bad))))).to.include({ code: 'malformed' });
    }
    expect(refused(decodeNodeMessage(pack({ type: 'welcome', version: 1, node: 'n', namespaces: [] })))).to.include({ code: 'malformed' });
  });

  describe('requests', () => {
    const base = { type: 'request', id: 11, ns: 'default', replica: 0, clientId: 'c1', requestNum: 1, op: { type: 'tree', op: { type: 'stat', path: '/' } } };
    const decodeRequest = (fields: Record<string, unknown>): DecodeResult<ClientMessage> => decodeClientMessage(pack({ ...base, ...fields }), namespaces);

    it('ids, request numbers: non-negative integers of at most protocolNumberMax (2^48)', () => {
      expect(okMessage(decodeRequest({}))).to.deep.include({ id: 11 });
      expect(okMessage(decodeRequest({ id: protocolNumberMax, requestNum: protocolNumberMax }))).to.deep.include({ id: protocolNumberMax, requestNum: protocolNumberMax });
      for (const id of [-1, 0.5, protocolNumberMax + 1, 2 ** 53 - 1, 2 ** 53, 2n ** 64n - 1n, '11', null]) {
        expect(refused(decodeRequest({ id }))).to.include({ id: null, code: 'malformed' });
      }
      for (const requestNum of [-1, 1.5, protocolNumberMax + 1, 2 ** 53 - 1, 2 ** 53, '1', null]) {
        expect(refused(decodeRequest({ requestNum }))).to.include({ id: 11, code: 'malformed' });
      }
      for (const message of [{ type: 'ping', id: protocolNumberMax + 1 }, { type: 'list_namespaces', id: 2 ** 53 - 1 }]) {
        expect(refused(decodeClientMessage(pack(message), namespaces))).to.include({ id: null, code: 'malformed' });
      }
    });

    it('hello may carry a token of 1 to 1024 characters', () => {
      expect(okMessage(decodeClientMessage(pack({ type: 'hello', version: 1, token: 't'.repeat(1024) }), namespaces))).to.deep.equal({ type: 'hello', version: 1, token: 't'.repeat(1024) });
      expect(okMessage(decodeClientMessage(pack({ type: 'hello', version: 1, token: null }), namespaces))).to.deep.equal({ type: 'hello', version: 1 });
      for (const token of ['', 't'.repeat(1025), 5, Uint8Array.from([1]), ['t']]) {
        expect(refused(decodeClientMessage(pack({ type: 'hello', version: 1, token }), namespaces))).to.include({ id: null, code: 'malformed' });
      }
      // The largest hello fits the frame limit before hello.
      const largest = encodeClientFrame({ type: 'hello', version: 1, client: '日'.repeat(256), token: '日'.repeat(1024) });
      expect(largest.byteLength - frameHeaderBytes).to.be.at.most(helloFrameBytesMax);
    });

    it('register uses request number 0, and tree ops never do', () => {
      expect(okMessage(decodeRequest({ requestNum: 0, op: { type: 'register' } }))).to.deep.include({ requestNum: 0, op: { type: 'register' } });
      expect(refused(decodeRequest({ requestNum: 1, op: { type: 'register' } })).message).to.match(/register/);
      expect(refused(decodeRequest({ requestNum: 0 })).message).to.match(/reserved/);
      expect(refused(decodeRequest({ op: { type: 'unregister' } })).code).to.equal('malformed');
    });

    it('client ids are 1..256 characters', () => {
      expect(okMessage(decodeRequest({ clientId: 'x'.repeat(256) }))).to.deep.include({ clientId: 'x'.repeat(256) });
      for (const clientId of ['', 'x'.repeat(257), 5, null, Uint8Array.from([65])]) {
        expect(refused(decodeRequest({ clientId }))).to.include({ id: 11, code: 'malformed' });
      }
    });

    it('namespace names follow the node\'s rule', () => {
      for (const ns of ['a', 'A.b-c_9', 'x'.repeat(64)]) expect(okMessage(decodeRequest({ ns }))).to.deep.include({ ns });
      for (const ns of ['', '-a', '.a', 'a/b', 'a b', 'x'.repeat(65), 'é', 5, null]) {
        expect(refused(decodeRequest({ ns }))).to.include({ id: 11, code: 'malformed' });
      }
    });

    it('tree ops go through validateOp: a bad op is malformed with the tree error\'s description', () => {
      const bad: [unknown, TreeError][] = [
        [{ type: 'blob_put', path: '/a', value: 'text, not bin' }, { code: 'invalid_request', reason: 'value must be a Uint8Array' }],
        [{ type: 'stat', path: 'relative' }, { code: 'bad_path', reason: 'path must be absolute: "relative"' }],
        [{ type: 'fly', path: '/' }, { code: 'invalid_request', reason: 'unknown operation type "fly"' }],
        [{ type: 'multi_cas', guards: [], ops: [{ type: 'multi_cas', guards: [], ops: [] }] }, { code: 'invalid_request', reason: 'ops[0]: transactions do not nest' }],
      ];
      for (const [op, treeError] of bad) {
        const error = refused(decodeRequest({ op: { type: 'tree', op } }));
        expect(error).to.deep.equal({ id: 11, code: 'malformed', message: `op.op: ${describeTreeError(treeError)}` });
      }
    });

    it('each namespace checks requests against its own tree limits', () => {
      const perNamespace: NamespaceLookup = (ns) => ({ replicas: 3, tree: ns === 'small' ? { ...defaultTreeLimits, valueBytesMax: 4 } : { ...defaultTreeLimits, valueBytesMax: 2 << 20 } });
      const put = (ns: string, bytes: number): unknown => ({ ...base, ns, op: { type: 'tree', op: { type: 'blob_put', path: '/a', value: new Uint8Array(bytes) } } });
      const error = refused(decodeClientMessage(pack(put('small', 5)), perNamespace));
      expect(error.message).to.equal(`op.op: ${describeTreeError({ code: 'too_large', what: 'value_bytes', limit: 4 })}`);
      expect(okMessage(decodeClientMessage(pack(put('big', 1536 * 1024)), perNamespace))).to.deep.include({ ns: 'big' });
    });

    it('a namespace the node does not serve is unknown_namespace; a replica index beyond its group is malformed', () => {
      const only: NamespaceLookup = (ns) => (ns === 'default' ? { replicas: 3, tree: defaultTreeLimits } : undefined);
      expect(refused(decodeClientMessage(pack({ ...base, ns: 'other' }), only))).to.include({ id: 11, code: 'unknown_namespace' });
      expect(okMessage(decodeClientMessage(pack({ ...base, replica: 2 }), only))).to.deep.include({ replica: 2 });
      for (const replica of [3, -1, 1.5, '0', null]) {
        expect(refused(decodeClientMessage(pack({ ...base, replica }), only))).to.include({ id: 11, code: 'malformed' });
      }
    });

    it('text must be UTF-8: a path, a client id or a key with invalid bytes is malformed; two invalid paths never name one node', () => {
      // Hand-built msgpack: the encoders only write valid text.
      const str = (bytes: readonly number[]): number[] => [0xa0 | bytes.length, ...bytes];
      const text = (value: string): number[] => str([...Buffer.from(value, 'utf8')]);
      const request = (path: readonly number[], clientId: readonly number[] = text('c1')): Uint8Array =>
        Uint8Array.from([
          0x87, ...text('type'), ...text('request'), ...text('id'), 11, ...text('ns'), ...text('default'), ...text('replica'), 0,
          ...text('clientId'), ...clientId, ...text('requestNum'), 1,
          ...text('op'), 0x82, ...text('type'), ...text('tree'), ...text('op'), 0x82, ...text('type'), ...text('stat'), ...text('path'), ...str(path),
        ]);
      const slash = [0x2f, 0x76, 0x2f];
      expect(okMessage(decodeClientMessage(request([...slash, 0xc3, 0xa9]), namespaces))).to.deep.include({ op: { type: 'tree', op: { type: 'stat', path: '/v/é' } } });
      for (const bad of [[0xff], [0xfe], [0xc3], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
        expect(refused(decodeClientMessage(request([...slash, ...bad]), namespaces))).to.deep.include({ id: 11, code: 'malformed' });
      }
      expect(refused(decodeClientMessage(request([...slash, 0x61], [0x63, 0xff]), namespaces))).to.include({ code: 'malformed' });
      const badKey = Uint8Array.from([0x83, ...text('type'), ...text('ping'), ...text('id'), 1, ...str([0x78, 0xff]), 0xc0]);
      expect(refused(decodeClientMessage(badKey, namespaces))).to.include({ id: 1, code: 'malformed' });
      // A node's text is checked the same way by the client.
      const badNode = Uint8Array.from([0x82, ...text('type'), ...text('pong'), ...str([0x69, 0x64, 0xff]), 1]);
      expect(refused(decodeNodeMessage(badNode))).to.include({ code: 'malformed' });
    });
  });

  describe('answers from a node', () => {
    const reply = { type: 'reply', epoch: 0, view: 0, op: 1, clientId: 'c', requestNum: 1, body: { type: 'tree', outcome: { type: 'ok', version: 1 } } };
    const decodeAnswer = (answer: unknown): DecodeResult<NodeMessage> => decodeNodeMessage(pack({ type: 'answer', id: 3, ns: 'a', answer }));

    it('a well-formed reply decodes', () => {
      expect(okMessage(decodeAnswer(reply))).to.deep.equal({ type: 'answer', id: 3, ns: 'a', answer: reply });
    });

    it('shapes the client library must not trust', () => {
      const bad: unknown[] = [
        { ...reply, body: { type: 'tree', outcome: { type: 'txn', results: [{ type: 'txn', results: [] }] } } },
        { ...reply, body: { type: 'tree', outcome: { type: 'blob', value: 'text', version: 1 } } },
        { ...reply, body: { type: 'tree', outcome: { type: 'element', version: 1 } } },
        { ...reply, body: { type: 'tree', outcome: { type: 'error', error: { code: 'too_large', what: 'everything', limit: 1 } } } },
        { ...reply, body: { type: 'tree', outcome: { type: 'error', error: { code: 'cas_failed', path: '/', expected: 1 } } } },
        { ...reply, body: { type: 'tree', outcome: { type: 'stat', nodeType: 'file', version: 0, size: 0 } } },
        { ...reply, body: { type: 'registered', isNew: 'yes', lastRequestNum: 0 } },
        { ...reply, body: { type: 'mystery' } },
        { ...reply, epoch: -1 },
        { ...reply, clientId: '' },
        { type: 'not_primary', epoch: 0, view: 0, clientId: 'c', requestNum: 1 },
        { type: 'busy', epoch: 0, view: 0, retryAfterTicks: 1.5, clientId: 'c', requestNum: 1 },
        { type: 'prepare', epoch: 0 },
        null,
      ];
      for (const answer of bad) expect(refused(decodeAnswer(answer))).to.include({ id: 3, code: 'malformed' });
    });

    it('error codes are checked, and an error\'s id may be nil', () => {
      expect(okMessage(decodeNodeMessage(pack({ type: 'error', id: null, code: 'overloaded', message: 'too many connections' })))).to.deep.equal({
        type: 'error',
        id: null,
        code: 'overloaded',
        message: 'too many connections',
      });
      expect(refused(decodeNodeMessage(pack({ type: 'error', id: 1, code: 'oops', message: '' })))).to.include({ id: 1, code: 'malformed' });
    });
  });
});

// ---- the worked example of docs/protocol.md ----------------------------------------------

describe('docs/protocol.md worked example', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../docs/protocol.md', import.meta.url)), 'utf8');
  const blocks = new Map<string, Uint8Array>();
  for (const match of doc.matchAll(/<!-- frame: (\w+) -->\s*```\n([\s\S]*?)```/g)) {
    const hex = (match[2] ?? '').replace(/\s+/g, '');
    blocks.set(match[1] ?? '', Uint8Array.from(Buffer.from(hex, 'hex')));
  }

  const session = { ns: 'default', clientId: 'c1' };
  const expected: readonly [string, 'client' | 'node', ClientMessage | NodeMessage][] = [
    ['hello', 'client', { type: 'hello', version: 1, client: 'example' }],
    ['welcome', 'node', { type: 'welcome', version: 1, node: 'n1', namespaces: [{ name: 'default', replicas: 3, limits: defaultTreeLimits }], frameBytesMax: 4_259_840, inFlightMax: 1024, requestTimeoutMs: 5000 }],
    ['register', 'client', { type: 'request', id: 1, ...session, replica: 0, requestNum: 0, op: { type: 'register' } }],
    [
      'registered',
      'node',
      { type: 'answer', id: 1, ns: 'default', answer: { type: 'reply', epoch: 0, view: 0, op: 1, clientId: 'c1', requestNum: 0, body: { type: 'registered', isNew: true, lastRequestNum: 0 } } },
    ],
    [
      'put',
      'client',
      { type: 'request', id: 2, ...session, replica: 0, requestNum: 1, op: { type: 'tree', op: { type: 'blob_put', path: '/greeting', value: Uint8Array.from([0x68, 0x69]) } } },
    ],
    [
      'put_answer',
      'node',
      { type: 'answer', id: 2, ns: 'default', answer: { type: 'reply', epoch: 0, view: 0, op: 3, clientId: 'c1', requestNum: 1, body: { type: 'tree', outcome: { type: 'ok', version: 1 } } } },
    ],
  ];

  it('has every frame of the exchange', () => {
    expect([...blocks.keys()]).to.deep.equal(expected.map(([name]) => name));
  });

  for (const [name, from, message] of expected) {
    it(`${name}: the bytes in the doc are the encoder's, and decode back`, () => {
      const documented = blocks.get(name);
      if (documented === undefined) return expect.fail(`no frame ${name} in docs/protocol.md`);
      const encoded = from === 'client' ? encodeClientFrame(message as ClientMessage) : encodeNodeFrame(message as NodeMessage);
      expect(Buffer.from(documented).toString('hex')).to.equal(Buffer.from(encoded).toString('hex'));
      const payloads = framesOf(new FrameDecoder(limits).push(documented));
      expect(payloads).to.have.length(1);
      const payload = payloads[0] as Uint8Array;
      const decoded: DecodeResult<ClientMessage | NodeMessage> = from === 'client' ? decodeClientMessage(payload, namespaces) : decodeNodeMessage(payload);
      expect(okMessage(decoded)).to.deep.equal(message);
    });
  }
});
