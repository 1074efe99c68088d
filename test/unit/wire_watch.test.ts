/**
 * The watch messages of the client wire protocol (src/api/wire.ts, docs/protocol.md
 * "Watches"): every message round-trips, every malformed field is a typed refusal (never a
 * throw), a bad subscribe still names its watch so the node can answer it, the limits hold
 * at their edges, and the worked example's frames are the encoder's bytes.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';

import { FrameDecoder } from '../../src/api/frame.ts';
import {
  clientMessageTypes,
  clientWatchIdCharsMax,
  decodeClientMessage,
  decodeNodeMessage,
  encodeClientFrame,
  encodeNodeFrame,
  encodeNodeMessage,
  errorCodes,
  nodeMessageTypes,
  watchEndReasons,
  type ClientMessage,
  type ClientWatchMessage,
  type DecodeResult,
  type NamespaceLookup,
  type NodeMessage,
  type NodeWatchMessage,
  type WireError,
} from '../../src/api/wire.ts';
import { defaultTreeLimits, protocolNumberMax } from '../../src/base/limits.ts';
import { nodeTypes } from '../../src/tree/node_type.ts';
import { watchMessageEventsMax, type WatchEvent } from '../../src/watch/messages.ts';

const runs = 500;
/** `default` and `small` exist (3 replicas); `small` has tiny path limits. */
const smallTree = { ...defaultTreeLimits, pathBytesMax: 16, pathDepthMax: 2, componentBytesMax: 8 };
const namespaces: NamespaceLookup = (ns) => (ns === 'default' ? { replicas: 3, tree: defaultTreeLimits } : ns === 'small' ? { replicas: 3, tree: smallTree } : undefined);

const raw = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const pack = (value: unknown): Uint8Array => new Uint8Array(raw.pack(value));

function okMessage<M>(result: DecodeResult<M>): M {
  if (!result.ok) return expect.fail(`expected a message, got ${JSON.stringify(result.error)}`);
  return result.message;
}

function refusal<M>(result: DecodeResult<M>): Extract<DecodeResult<M>, { ok: false }> {
  if (result.ok) return expect.fail(`expected a refusal, got ${JSON.stringify(result.message)}`);
  expectTypedError(result.error);
  return result;
}

function expectTypedError(error: WireError): void {
  expect(errorCodes).to.include(error.code);
  expect(error.message).to.be.a('string').and.not.equal('');
}

// ---- arbitraries --------------------------------------------------------------------------

const watchIdArb = fc.string({ minLength: 1, maxLength: clientWatchIdCharsMax, unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)) });
const componentArb = fc.string({ minLength: 1, maxLength: 6, unit: fc.constantFrom('a', 'b', '0', '_', '-', 'é', '日') });
const pathArb = fc.array(componentArb, { maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
const opArb = fc.oneof(fc.nat({ max: 1000 }), fc.integer({ min: 0, max: protocolNumberMax }));
const replicaArb = fc.nat({ max: 2 });
const seqArb = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: protocolNumberMax }));

const subscribeArb: fc.Arbitrary<ClientWatchMessage> = fc.record({
  type: fc.constant('watch_subscribe' as const),
  ns: fc.constant('default'),
  replica: replicaArb,
  watchId: watchIdArb,
  path: pathArb,
  recursive: fc.boolean(),
  fromOp: fc.option(opArb, { nil: null }),
  values: fc.boolean(),
});
const ackArb: fc.Arbitrary<ClientWatchMessage> = fc.record({ type: fc.constant('watch_ack' as const), ns: fc.constant('default'), replica: replicaArb, watchId: watchIdArb, through: opArb });
const cancelArb: fc.Arbitrary<ClientWatchMessage> = fc.record({ type: fc.constant('watch_cancel' as const), ns: fc.constant('default'), replica: replicaArb, watchId: watchIdArb });
const clientWatchArb = fc.oneof(subscribeArb, ackArb, cancelArb);

const plainEventArb: fc.Arbitrary<WatchEvent> = fc.record({
  kind: fc.constantFrom('created' as const, 'changed' as const, 'deleted' as const),
  path: pathArb,
  nodeType: fc.constantFrom(...nodeTypes),
  version: opArb,
});
const blobValueEventArb: fc.Arbitrary<WatchEvent> = fc.oneof(
  fc.record({ kind: fc.constantFrom('created' as const, 'changed' as const), path: pathArb, nodeType: fc.constant('blob' as const), version: opArb, value: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ kind: fc.constantFrom('created' as const, 'changed' as const), path: pathArb, nodeType: fc.constant('blob' as const), version: opArb, value: fc.constant(null), valueOmitted: fc.constant(true) }),
);
const eventArb = fc.oneof(plainEventArb, blobValueEventArb);
const nodeWatchArb: fc.Arbitrary<NodeWatchMessage> = fc.oneof(
  fc.record({ type: fc.constant('watch_events' as const), watchId: watchIdArb, seq: seqArb, op: opArb, events: fc.array(eventArb, { maxLength: 5 }), more: fc.boolean() }),
  fc.record({ type: fc.constant('watch_progress' as const), watchId: watchIdArb, seq: seqArb, through: opArb }),
  fc.record({
    type: fc.constant('watch_ended' as const),
    watchId: watchIdArb,
    seq: seqArb,
    reason: fc.constantFrom(...watchEndReasons),
    oldestOp: opArb,
    currentOp: opArb,
    message: fc.string({ maxLength: 40 }),
  }),
);

// ---- round trips --------------------------------------------------------------------------

describe('wire: watch messages', () => {
  it('lists the six watch messages among the message types', () => {
    expect(clientMessageTypes).to.include.members(['watch_subscribe', 'watch_ack', 'watch_cancel']);
    expect(nodeMessageTypes).to.include.members(['watch_events', 'watch_progress', 'watch_ended']);
    expect([...watchEndReasons].sort()).to.deep.equal(['compacted', 'future', 'idle', 'invalid', 'lagging', 'not_serving', 'too_many']);
  });

  it('client -> node: every watch message round-trips through its frame', () => {
    fc.assert(
      fc.property(clientWatchArb, (message) => {
        const frame = encodeClientFrame(message);
        const payloads = new FrameDecoder({ frameBytesMax: 1 << 20 }).push(frame);
        expect(payloads).to.have.length(1);
        const payload = payloads[0];
        if (payload?.type !== 'frame') return expect.fail('no frame');
        expect(okMessage(decodeClientMessage(payload.payload, namespaces))).to.deep.equal(message);
      }),
      { numRuns: runs },
    );
  });

  it('node -> client: every watch notice round-trips, byte strings as plain Uint8Array copies', () => {
    fc.assert(
      fc.property(nodeWatchArb, (message) => {
        const bytes = encodeNodeMessage(message);
        const decoded = okMessage(decodeNodeMessage(bytes));
        expect(decoded).to.deep.equal(message);
        if (decoded.type !== 'watch_events') return;
        for (const event of decoded.events) {
          if (event.value instanceof Uint8Array) {
            expect(Object.getPrototypeOf(event.value)).to.equal(Uint8Array.prototype);
            expect(event.value.buffer).to.not.equal(bytes.buffer);
          }
        }
      }),
      { numRuns: runs },
    );
  });

  it('subscribe: fromOp, recursive and values may be absent or nil (null, false, false)', () => {
    for (const extra of [{}, { fromOp: null, recursive: null, values: null }]) {
      const decoded = okMessage(decodeClientMessage(pack({ type: 'watch_subscribe', ns: 'default', replica: 1, watchId: 'w', path: '/a', ...extra }), namespaces));
      expect(decoded).to.deep.equal({ type: 'watch_subscribe', ns: 'default', replica: 1, watchId: 'w', path: '/a', recursive: false, fromOp: null, values: false });
    }
  });

  it('drops unknown fields and normalises -0 and integer-valued floats', () => {
    const decoded = okMessage(decodeClientMessage(pack({ type: 'watch_ack', ns: 'default', replica: -0, watchId: 'w', through: 7.0, extra: 'x' }), namespaces));
    expect(decoded).to.deep.equal({ type: 'watch_ack', ns: 'default', replica: 0, watchId: 'w', through: 7 });
    expect(Object.is((decoded as { replica: number }).replica, 0)).to.equal(true);
    const events = okMessage(decodeNodeMessage(pack({ type: 'watch_events', watchId: 'w', seq: 4.0, op: 3, more: false, events: [{ kind: 'changed', path: '/', nodeType: 'directory', version: 2, valueOmitted: false, junk: 1 }] })));
    expect(events).to.deep.equal({ type: 'watch_events', watchId: 'w', seq: 4, op: 3, more: false, events: [{ kind: 'changed', path: '/', nodeType: 'directory', version: 2 }] });
  });

  // ---- refusals ---------------------------------------------------------------------------

  /** Values that are wrong for every field of a watch message, whatever its type. */
  const wrongEverywhere: readonly unknown[] = [-1, 1.5, 2 ** 53, 2n ** 64n - 1n, true, [], {}, Uint8Array.from([1])];

  it('client -> node: every wrong-typed field is a typed refusal; a bad subscribe still names its watch', () => {
    fc.assert(
      fc.property(clientWatchArb, fc.nat(), fc.constantFrom(...wrongEverywhere), (message, pick, bad) => {
        const keys = Object.keys(message).filter((key) => key !== 'type');
        const key = keys[pick % keys.length] as string;
        if ((key === 'recursive' || key === 'values') && typeof bad === 'boolean') return;
        const mutated = { ...message, [key]: bad };
        const result = refusal(decodeClientMessage(pack(mutated), namespaces));
        expect(result.error.code).to.equal('malformed');
        expect(result.error.id).to.equal(null);
        if (key === 'watchId') expect(result.watch).to.equal(undefined);
        else expect(result.watch).to.deep.equal({ type: message.type, watchId: message.watchId });
      }),
      { numRuns: runs },
    );
  });

  it('node -> client: every wrong-typed field is a typed refusal', () => {
    fc.assert(
      fc.property(nodeWatchArb, fc.nat(), fc.constantFrom(...wrongEverywhere, 'not a reason', null), (message, pick, bad) => {
        const keys = Object.keys(message).filter((key) => key !== 'type');
        const key = keys[pick % keys.length] as string;
        if (key === 'message' && typeof bad === 'string') return; // any text is a message
        if (key === 'more' && typeof bad === 'boolean') return;
        if (key === 'events' && Array.isArray(bad) && bad.length === 0) return;
        const result = refusal(decodeNodeMessage(pack({ ...message, [key]: bad })));
        expect(result.error.code).to.equal('malformed');
        expect(result.watch).to.equal(undefined);
      }),
      { numRuns: runs },
    );
  });

  it('a missing required field is a typed refusal', () => {
    const messages: readonly [ClientMessage | NodeMessage, 'client' | 'node', readonly string[]][] = [
      [{ type: 'watch_subscribe', ns: 'default', replica: 0, watchId: 'w', path: '/a', recursive: true, fromOp: 3, values: false }, 'client', ['ns', 'replica', 'watchId', 'path']],
      [{ type: 'watch_ack', ns: 'default', replica: 0, watchId: 'w', through: 3 }, 'client', ['ns', 'replica', 'watchId', 'through']],
      [{ type: 'watch_cancel', ns: 'default', replica: 0, watchId: 'w' }, 'client', ['ns', 'replica', 'watchId']],
      [{ type: 'watch_events', watchId: 'w', seq: 2, op: 3, events: [], more: false }, 'node', ['watchId', 'seq', 'op', 'events', 'more']],
      [{ type: 'watch_progress', watchId: 'w', seq: 1, through: 3 }, 'node', ['watchId', 'seq', 'through']],
      [{ type: 'watch_ended', watchId: 'w', seq: 5, reason: 'idle', oldestOp: 1, currentOp: 2, message: '' }, 'node', ['watchId', 'seq', 'reason', 'oldestOp', 'currentOp', 'message']],
    ];
    for (const [message, from, required] of messages) {
      for (const key of required) {
        const without: Record<string, unknown> = { ...message };
        delete without[key];
        const result = from === 'client' ? refusal(decodeClientMessage(pack(without), namespaces)) : refusal(decodeNodeMessage(pack(without)));
        expect(result.error.message, `${message.type} without ${key}`).to.include(key);
      }
    }
  });

  it('watch ids: 1..64 printable ASCII characters, no space', () => {
    const subscribe = (watchId: unknown): DecodeResult<ClientMessage> => decodeClientMessage(pack({ type: 'watch_subscribe', ns: 'default', replica: 0, watchId, path: '/' }), namespaces);
    expect(okMessage(subscribe('x'.repeat(64)))).to.include({ watchId: 'x'.repeat(64) });
    expect(okMessage(subscribe('!~.0'))).to.include({ watchId: '!~.0' });
    for (const bad of ['', 'x'.repeat(65), 'a b', 'é', 'a\n', 'a\u0000']) {
      const result = refusal(subscribe(bad));
      expect(result.error.code).to.equal('malformed');
      expect(result.watch).to.equal(undefined);
    }
    const notice = (watchId: unknown): DecodeResult<NodeMessage> => decodeNodeMessage(pack({ type: 'watch_progress', watchId, seq: 1, through: 1 }));
    expect(okMessage(notice('x'.repeat(64)))).to.include({ watchId: 'x'.repeat(64) });
    refusal(notice('x'.repeat(65)));
    refusal(notice(''));
  });

  it('subscribe: unknown namespace, replica index out of range, bad path and absurd fromOp are refused, naming the watch', () => {
    const base = { type: 'watch_subscribe', ns: 'default', replica: 0, watchId: 'w.1.1', path: '/a', recursive: false, fromOp: null, values: false };
    const cases: readonly [Record<string, unknown>, string, string][] = [
      [{ ns: 'nope' }, 'unknown_namespace', 'nope'],
      [{ ns: 'bad name!' }, 'malformed', 'namespace'],
      [{ replica: 3 }, 'malformed', 'replica 3'],
      [{ replica: 99 }, 'malformed', 'replica 99'],
      [{ path: 'relative' }, 'malformed', 'absolute'],
      [{ path: '/a/' }, 'malformed', 'path'],
      [{ path: '/a/../b' }, 'malformed', 'path'],
      [{ path: '/a\u0000b' }, 'malformed', 'NUL'],
      [{ path: `/${'x'.repeat(1025)}` }, 'malformed', 'path_bytes'],
      [{ ns: 'small', path: '/abcdefghi' }, 'malformed', 'component_bytes'],
      [{ ns: 'small', path: '/a/b/c' }, 'malformed', 'path_depth'],
      [{ ns: 'small', path: '/abcdefg/abcdefg/x' }, 'malformed', 'path_bytes'],
      [{ fromOp: protocolNumberMax + 1 }, 'malformed', 'fromOp'],
      [{ fromOp: -1 }, 'malformed', 'fromOp'],
      [{ fromOp: 2 ** 60 }, 'malformed', 'fromOp'],
      [{ recursive: 'yes' }, 'malformed', 'recursive'],
      [{ values: 1 }, 'malformed', 'values'],
    ];
    for (const [change, code, text] of cases) {
      const result = refusal(decodeClientMessage(pack({ ...base, ...change }), namespaces));
      expect(result.error.code, JSON.stringify(change)).to.equal(code);
      expect(result.error.message, JSON.stringify(change)).to.include(text);
      expect(result.watch, JSON.stringify(change)).to.deep.equal({ type: 'watch_subscribe', watchId: 'w.1.1' });
    }
    // The limits' edges are accepted.
    expect(okMessage(decodeClientMessage(pack({ ...base, fromOp: protocolNumberMax }), namespaces))).to.include({ fromOp: protocolNumberMax });
    expect(okMessage(decodeClientMessage(pack({ ...base, replica: 2 }), namespaces))).to.include({ replica: 2 });
    expect(okMessage(decodeClientMessage(pack({ ...base, path: `/${'x'.repeat(255)}/${'y'.repeat(255)}` }), namespaces))).to.include({ type: 'watch_subscribe' });
    expect(okMessage(decodeClientMessage(pack({ ...base, ns: 'small', path: '/abcdefg/abcdefg' }), namespaces))).to.include({ path: '/abcdefg/abcdefg' });
  });

  it('ack and cancel: numbers bounded by protocolNumberMax, namespace and replica checked', () => {
    const ack = (change: Record<string, unknown>): DecodeResult<ClientMessage> => decodeClientMessage(pack({ type: 'watch_ack', ns: 'default', replica: 0, watchId: 'w', through: 5, ...change }), namespaces);
    expect(okMessage(ack({ through: protocolNumberMax }))).to.include({ through: protocolNumberMax });
    expect(refusal(ack({ through: protocolNumberMax + 1 })).watch).to.deep.equal({ type: 'watch_ack', watchId: 'w' });
    expect(refusal(ack({ ns: 'nope' })).error.code).to.equal('unknown_namespace');
    expect(refusal(ack({ replica: 3 })).error.code).to.equal('malformed');
    const cancel = refusal(decodeClientMessage(pack({ type: 'watch_cancel', ns: 'default', replica: 7, watchId: 'w' }), namespaces));
    expect(cancel.watch).to.deep.equal({ type: 'watch_cancel', watchId: 'w' });
  });

  it('events: at most watchMessageEventsMax per message, numbers bounded, paths well formed', () => {
    const event = { kind: 'changed', path: '/a', nodeType: 'blob', version: 1 };
    const events = (list: unknown[], change: Record<string, unknown> = {}): DecodeResult<NodeMessage> => decodeNodeMessage(pack({ type: 'watch_events', watchId: 'w', seq: 1, op: 9, events: list, more: false, ...change }));
    expect(okMessage(events(Array.from({ length: watchMessageEventsMax }, () => event)))).to.have.property('events').with.length(watchMessageEventsMax);
    expect(refusal(events(Array.from({ length: watchMessageEventsMax + 1 }, () => event))).error.message).to.include(`at most ${watchMessageEventsMax}`);
    expect(okMessage(events([event], { op: protocolNumberMax }))).to.include({ op: protocolNumberMax });
    refusal(events([event], { op: protocolNumberMax + 1 }));
    refusal(decodeNodeMessage(pack({ type: 'watch_progress', watchId: 'w', seq: 1, through: protocolNumberMax + 1 })));
    refusal(decodeNodeMessage(pack({ type: 'watch_ended', watchId: 'w', seq: 1, reason: 'idle', oldestOp: protocolNumberMax + 1, currentOp: 0, message: '' })));
    refusal(decodeNodeMessage(pack({ type: 'watch_ended', watchId: 'w', seq: 1, reason: 'idle', oldestOp: 0, currentOp: protocolNumberMax + 1, message: '' })));
    const bad: readonly Record<string, unknown>[] = [
      { kind: 'renamed' },
      { nodeType: 'file' },
      { path: 'a' },
      { path: '/a/' },
      { path: '/a//b' },
      { path: '/..' },
      { path: 7 },
      { version: protocolNumberMax + 1 },
      { version: -1 },
      // A value only for a created or changed blob, and never both a value and valueOmitted.
      { nodeType: 'queue', value: Uint8Array.from([1]) },
      { nodeType: 'directory', valueOmitted: true },
      { kind: 'deleted', value: Uint8Array.from([1]) },
      { kind: 'deleted', valueOmitted: true },
      { value: Uint8Array.from([1]), valueOmitted: true },
      { value: 'text' },
      { valueOmitted: 'yes' },
    ];
    for (const change of bad) refusal(events([event, { ...event, ...change }]));
    for (const item of [null, 1, 'event', [], [event]]) refusal(events([item]));
  });

  it('seq: a positive integer of at most protocolNumberMax in every notice', () => {
    const notices: readonly Record<string, unknown>[] = [
      { type: 'watch_events', watchId: 'w', op: 9, events: [], more: false },
      { type: 'watch_progress', watchId: 'w', through: 9 },
      { type: 'watch_ended', watchId: 'w', reason: 'idle', oldestOp: 0, currentOp: 9, message: '' },
    ];
    for (const notice of notices) {
      for (const seq of [1, 2, protocolNumberMax]) expect(okMessage(decodeNodeMessage(pack({ ...notice, seq }))), `${String(notice['type'])} ${seq}`).to.include({ seq });
      for (const seq of [0, -0, -1, 1.5, protocolNumberMax + 1, 2 ** 53, Number.NaN, '1', null, true]) {
        const result = refusal(decodeNodeMessage(pack({ ...notice, seq })));
        expect(result.error.message, `${String(notice['type'])} ${String(seq)}`).to.include('seq');
      }
    }
  });

  it('garbage never throws: random maps of watch types decode or refuse', () => {
    const anyValue = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 10 }), fc.uint8Array({ maxLength: 4 }), fc.array(fc.nat(), { maxLength: 3 }));
    fc.assert(
      fc.property(
        fc.constantFrom('watch_subscribe', 'watch_ack', 'watch_cancel', 'watch_events', 'watch_progress', 'watch_ended'),
        fc.dictionary(fc.constantFrom('ns', 'replica', 'watchId', 'path', 'recursive', 'fromOp', 'values', 'through', 'op', 'events', 'more', 'reason', 'oldestOp', 'currentOp', 'message', 'seq'), anyValue),
        (type, fields) => {
          const payload = pack({ ...fields, type });
          for (const result of [decodeClientMessage(payload, namespaces), decodeNodeMessage(payload)] as DecodeResult<unknown>[]) {
            if (!result.ok) expectTypedError(result.error);
          }
        },
      ),
      { numRuns: runs },
    );
  });
});

// ---- the worked example of docs/protocol.md "Watches" ------------------------------------

describe('docs/protocol.md watch example', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../docs/protocol.md', import.meta.url)), 'utf8');
  const blocks = new Map<string, Uint8Array>();
  for (const match of doc.matchAll(/<!-- watch-frame: (\w+) -->\s*```\n([\s\S]*?)```/g)) {
    blocks.set(match[1] ?? '', Uint8Array.from(Buffer.from((match[2] ?? '').replace(/\s+/g, ''), 'hex')));
  }
  const on = new TextEncoder().encode('on');
  const expected: readonly [string, 'client' | 'node', ClientMessage | NodeMessage][] = [
    ['subscribe', 'client', { type: 'watch_subscribe', ns: 'default', replica: 1, watchId: 'w1', path: '/config', recursive: true, fromOp: null, values: true }],
    ['start', 'node', { type: 'watch_progress', watchId: 'w1', seq: 1, through: 7 }],
    [
      'events',
      'node',
      {
        type: 'watch_events',
        watchId: 'w1',
        seq: 2,
        op: 9,
        events: [
          { kind: 'changed', path: '/config', nodeType: 'directory', version: 4 },
          { kind: 'created', path: '/config/db', nodeType: 'blob', version: 1, value: on },
        ],
        more: false,
      },
    ],
    ['ack', 'client', { type: 'watch_ack', ns: 'default', replica: 1, watchId: 'w1', through: 9 }],
    ['progress', 'node', { type: 'watch_progress', watchId: 'w1', seq: 3, through: 12 }],
    ['cancel', 'client', { type: 'watch_cancel', ns: 'default', replica: 1, watchId: 'w1' }],
    ['resume', 'client', { type: 'watch_subscribe', ns: 'default', replica: 2, watchId: 'w2', path: '/config', recursive: true, fromOp: 12, values: true }],
    ['compacted', 'node', { type: 'watch_ended', watchId: 'w2', seq: 1, reason: 'compacted', oldestOp: 40, currentOp: 95, message: 'op 12 is compacted' }],
  ];

  it('has every frame of the exchange, in order', () => {
    expect([...blocks.keys()]).to.deep.equal(expected.map(([name]) => name));
  });

  for (const [name, from, message] of expected) {
    it(`${name}: the bytes in the doc are the encoder's, and decode back`, () => {
      const documented = blocks.get(name);
      if (documented === undefined) return expect.fail(`no watch frame ${name} in docs/protocol.md`);
      const encoded = from === 'client' ? encodeClientFrame(message as ClientMessage) : encodeNodeFrame(message as NodeMessage);
      expect(Buffer.from(documented).toString('hex')).to.equal(Buffer.from(encoded).toString('hex'));
      const payload = documented.subarray(4);
      const decoded: DecodeResult<ClientMessage | NodeMessage> = from === 'client' ? decodeClientMessage(payload, namespaces) : decodeNodeMessage(payload);
      expect(okMessage(decoded)).to.deep.equal(message);
    });
  }
});
