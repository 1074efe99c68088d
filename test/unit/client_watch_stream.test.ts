/**
 * What the application holds (src/client/watch_stream.ts), the registry that feeds it
 * (src/client/watch_registry.ts) and `NamespaceClient.watch`: buffering, the lagging bound,
 * errors after the buffered batches, cancel and `break`, routing by watch id, limits, closeAll.
 */

import { expect } from 'chai';
import { HaretError } from '../../src/client/errors.ts';
import { NamespaceClient, type WatchPath } from '../../src/client/namespace_client.ts';
import type { WatchBatch, WatchMachineConfig, WatchSpec } from '../../src/client/watch.ts';
import { WatchRegistry } from '../../src/client/watch_registry.ts';
import { WatchStream } from '../../src/client/watch_stream.ts';
import { defaultTreeLimits, protocolNumberMax } from '../../src/base/limits.ts';
import type { WatchEndReason, WatchEvent, WatchNotice, WatchRequest } from '../../src/watch/messages.ts';

// ---- helpers -------------------------------------------------------------------------------

const batch = (op: number, kind: WatchBatch['kind'] = 'events'): WatchBatch => ({ kind, op, events: [] });
const event = (path: string): WatchEvent => ({ kind: 'created', path, nodeType: 'blob', version: 1 });

/** Settles within the current microtask queue, or reports 'pending'. */
async function peek<T>(promise: Promise<T>): Promise<{ value: T } | { error: unknown } | 'pending'> {
  const marker = Symbol('pending');
  const raced = await Promise.race([promise.then((value) => ({ value }), (error: unknown) => ({ error })), new Promise<symbol>((resolve) => setImmediate(() => resolve(marker)))]);
  return raced === marker ? 'pending' : (raced as { value: T } | { error: unknown });
}

async function rejection(promise: Promise<unknown>): Promise<HaretError> {
  const settled = await peek(promise);
  if (settled === 'pending' || !('error' in settled)) throw new Error(`expected a rejection, got ${JSON.stringify(settled)}`);
  expect(settled.error).to.be.instanceOf(HaretError);
  return settled.error as HaretError;
}

function makeStream(max = 3): { stream: WatchStream; sink: ReturnType<typeof WatchStream.create>['sink']; cancels: string[] } {
  const cancels: string[] = [];
  const { stream, sink } = WatchStream.create(max, (why) => cancels.push(why));
  return { stream, sink, cancels };
}

// ---- the stream ----------------------------------------------------------------------------

describe('client watch stream', () => {
  it('delivers buffered batches in order, and wakes a waiting next() on a push', async () => {
    const { stream, sink } = makeStream();
    sink.push(batch(1, 'start'));
    sink.push(batch(2));
    const it = stream[Symbol.asyncIterator]();
    expect(stream.buffered).to.equal(2);
    expect(await it.next()).to.deep.equal({ done: false, value: batch(1, 'start') });
    expect(await it.next()).to.deep.equal({ done: false, value: batch(2) });
    const waiting = it.next();
    expect(await peek(waiting)).to.equal('pending');
    sink.push(batch(5, 'progress'));
    expect(await waiting).to.deep.equal({ done: false, value: batch(5, 'progress') });
  });

  it('past bufferedBatchesMax: cancels the watch, then gives the buffered batches and a lagging error with lastOp', async () => {
    const { stream, sink, cancels } = makeStream(3);
    for (const op of [1, 2, 3, 4, 5]) sink.push(batch(op));
    expect(cancels).to.deep.equal(['lagging']);
    expect(stream.ended).to.equal(true);
    const it = stream[Symbol.asyncIterator]();
    const ops = [];
    for (let i = 0; i < 3; i++) {
      const result = await it.next();
      if (result.done === false) ops.push(result.value.op);
    }
    expect(ops).to.deep.equal([1, 2, 3]);
    const error = await rejection(it.next());
    expect(error.code).to.equal('lagging');
    expect(error.details).to.deep.equal({ oldestOp: null, currentOp: null, lastOp: 3 });
    expect(await it.next()).to.deep.equal({ done: true, value: undefined });
    stream.cancel();
    expect(cancels).to.deep.equal(['lagging'], 'cancel after the end sends nothing more');
  });

  it('an error rejects the waiting next() at once; other waiters and later calls are done', async () => {
    const { stream, sink, cancels } = makeStream();
    sink.push(batch(7, 'start'));
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const first = it.next();
    const second = it.next();
    sink.fail(new HaretError('compacted', 'gone', false, null, undefined, { oldestOp: 20, currentOp: 30, lastOp: null }));
    const error = await rejection(first);
    expect(error).to.include({ code: 'compacted', message: 'gone' });
    expect(error.details).to.deep.equal({ oldestOp: 20, currentOp: 30, lastOp: 7 });
    expect(await second).to.deep.equal({ done: true, value: undefined });
    expect(await it.next()).to.deep.equal({ done: true, value: undefined });
    sink.push(batch(8));
    expect(await it.next()).to.deep.equal({ done: true, value: undefined });
    expect(cancels).to.deep.equal([], 'the replica ended it: nothing to cancel');
  });

  it('cancel: done at once, buffer dropped, the registry told once', async () => {
    const { stream, sink, cancels } = makeStream();
    sink.push(batch(1, 'start'));
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const waiting = it.next();
    stream.cancel();
    stream.cancel();
    expect(await waiting).to.deep.equal({ done: true, value: undefined });
    sink.push(batch(2));
    expect(await it.next()).to.deep.equal({ done: true, value: undefined });
    expect(cancels).to.deep.equal(['cancelled']);
  });

  it('a break out of for-await cancels', async () => {
    const { stream, sink, cancels } = makeStream(10);
    for (const op of [1, 2, 3]) sink.push(batch(op));
    const seen: number[] = [];
    for await (const b of stream) {
      seen.push(b.op);
      if (b.op === 2) break;
    }
    expect(seen).to.deep.equal([1, 2]);
    expect(cancels).to.deep.equal(['cancelled']);
    expect(stream.ended).to.equal(true);
  });

  it('finish ends the iteration normally; a bad bound is refused', async () => {
    const { stream, sink } = makeStream();
    sink.push(batch(1));
    sink.finish();
    expect(await stream[Symbol.asyncIterator]().next()).to.deep.equal({ done: true, value: undefined });
    expect(() => WatchStream.create(0, () => {})).to.throw(RangeError);
  });
});

// ---- the registry --------------------------------------------------------------------------

type Sent = { ns: string; replica: number; request: WatchRequest };
const machineConfig: Omit<WatchMachineConfig, 'replicaCount'> = { silenceTicks: 10, retryTicks: 2, giveUpTicks: 1000, ackBytes: 100_000 };
const spec: WatchSpec = { path: '/a', recursive: false, fromOp: null, values: false };

function makeRegistry(limits = { watchesMax: 4, bufferedBatchesMax: 100 }, random = () => 0.7): { registry: WatchRegistry; sent: Sent[] } {
  const sent: Sent[] = [];
  const registry = new WatchRegistry('e', (ns, replica, request) => sent.push({ ns, replica, request }), machineConfig, limits, random);
  return { registry, sent };
}

/** Per watch id, the last seq a replica gave (notices are numbered 1, 2, ... per subscription); reset for each test. */
const seqs = new Map<string, number>();
const nextSeq = (watchId: string): number => {
  const seq = (seqs.get(watchId) ?? 0) + 1;
  seqs.set(watchId, seq);
  return seq;
};
const progress = (watchId: string, through: number): WatchNotice => ({ type: 'watch_progress', watchId, seq: nextSeq(watchId), through });
const events = (watchId: string, op: number, list: readonly WatchEvent[]): WatchNotice => ({ type: 'watch_events', watchId, seq: nextSeq(watchId), op, events: list, more: false });
const ended = (watchId: string, reason: WatchEndReason, oldestOp = 0, currentOp = 0): WatchNotice => ({ type: 'watch_ended', watchId, seq: nextSeq(watchId), reason, oldestOp, currentOp, message: reason });

async function take(stream: WatchStream, n: number): Promise<WatchBatch[]> {
  const it = stream[Symbol.asyncIterator]();
  const out: WatchBatch[] = [];
  for (let i = 0; i < n; i++) {
    const result = await it.next();
    if (result.done === true) break;
    out.push(result.value);
  }
  return out;
}

describe('client watch registry', () => {
  beforeEach(() => seqs.clear());

  it('opens watches with ids prefix.n.attempt at the replica drawn, and routes notices to each', async () => {
    const { registry, sent } = makeRegistry();
    const one = registry.open('ns1', 3, spec);
    const two = registry.open('ns2', 5, { ...spec, path: '/b', fromOp: 4 });
    expect(sent).to.deep.equal([
      { ns: 'ns1', replica: 2, request: { type: 'watch_subscribe', watchId: 'e.1.1', path: '/a', recursive: false, fromOp: null, values: false } },
      { ns: 'ns2', replica: 3, request: { type: 'watch_subscribe', watchId: 'e.2.1', path: '/b', recursive: false, fromOp: 4, values: false } },
    ]);
    registry.receive(progress('e.2.1', 4));
    registry.receive(progress('e.1.1', 10));
    registry.receive(events('e.1.1', 11, [event('/a')]));
    registry.receive(events('e.2.1', 5, [event('/b')]));
    expect(await take(one, 2)).to.deep.equal([
      { kind: 'start', op: 10, events: [] },
      { kind: 'events', op: 11, events: [event('/a')] },
    ]);
    expect(await take(two, 2)).to.deep.equal([
      { kind: 'start', op: 4, events: [] },
      { kind: 'events', op: 5, events: [event('/b')] },
    ]);
    // Acks went to the serving replica, for each start.
    expect(sent.slice(2).map((s) => [s.ns, s.replica, s.request.type, s.request.watchId])).to.deep.equal([
      ['ns2', 3, 'watch_ack', 'e.2.1'],
      ['ns1', 2, 'watch_ack', 'e.1.1'],
    ]);
    expect(registry.openCount).to.equal(2);
    expect(registry.stats()).to.include({ open: 2, opened: 2, notices: 4, unknownNotices: 0, delivered: 4 });
  });

  it('identical watches share one subscription once it started: the joiner starts at its position and gets every later batch', async () => {
    const { registry, sent } = makeRegistry({ watchesMax: 8, bufferedBatchesMax: 100 });
    const first = registry.open('ns', 3, spec);
    // Not started yet: an identical watch asking the same start (none) joins; one asking another fromOp does not.
    const early = registry.open('ns', 3, spec);
    const other = registry.open('ns', 3, { ...spec, fromOp: 3 });
    expect(sent.filter((s) => s.request.type === 'watch_subscribe').map((s) => s.request.watchId)).to.deep.equal(['e.1.1', 'e.2.1']);
    other.cancel();
    registry.receive(progress('e.1.1', 10));
    registry.receive(events('e.1.1', 11, [event('/a')]));
    sent.length = 0;
    const joiner = registry.open('ns', 3, spec);
    const atPosition = registry.open('ns', 3, { ...spec, fromOp: 11 });
    const elsewhere = registry.open('ns', 3, { ...spec, fromOp: 5 });
    const valued = registry.open('ns', 3, { ...spec, values: true });
    expect(sent.map((s) => [s.request.type, s.request.watchId])).to.deep.equal([
      ['watch_subscribe', 'e.3.1'],
      ['watch_subscribe', 'e.4.1'],
    ]);
    expect(registry.openCount).to.equal(6);
    expect(registry.subscriptionCount).to.equal(3);
    expect(registry.stats()).to.include({ joined: 3, open: 6, subscriptions: 3 });
    registry.receive(events('e.1.1', 13, [event('/a')]));
    for (const stream of [first, early]) {
      expect(await take(stream, 3)).to.deep.equal([
        { kind: 'start', op: 10, events: [] },
        { kind: 'events', op: 11, events: [event('/a')] },
        { kind: 'events', op: 13, events: [event('/a')] },
      ]);
    }
    for (const stream of [joiner, atPosition]) {
      expect(await take(stream, 2)).to.deep.equal([
        { kind: 'start', op: 11, events: [] },
        { kind: 'events', op: 13, events: [event('/a')] },
      ]);
    }
    // Leaving keeps the subscription while a watch remains; the last one cancels it at its replica.
    sent.length = 0;
    first.cancel();
    joiner.cancel();
    early.cancel();
    expect(sent).to.deep.equal([]);
    atPosition.cancel();
    expect(sent.map((s) => [s.request.type, s.request.watchId])).to.deep.equal([['watch_cancel', 'e.1.1']]);
    for (const stream of [elsewhere, valued]) stream.cancel();
    expect(registry.openCount).to.equal(0);
    expect(registry.subscriptionCount).to.equal(0);
  });

  it('a shared subscription: one watch overflowing ends only it (lagging); an error ends every watch of it', async () => {
    const { registry } = makeRegistry({ watchesMax: 8, bufferedBatchesMax: 2 });
    const slow = registry.open('ns', 3, spec);
    registry.receive(progress('e.1.1', 10));
    const fast = registry.open('ns', 3, spec);
    const fastIt = fast[Symbol.asyncIterator]();
    expect((await fastIt.next()).value).to.deep.equal({ kind: 'start', op: 10, events: [] });
    // slow holds its start and never reads: the second batch overflows it (2 buffered).
    registry.receive(events('e.1.1', 11, [event('/a')]));
    expect((await fastIt.next()).value).to.deep.equal({ kind: 'events', op: 11, events: [event('/a')] });
    registry.receive(events('e.1.1', 12, [event('/a')]));
    expect((await fastIt.next()).value).to.deep.equal({ kind: 'events', op: 12, events: [event('/a')] });
    const slowIt = slow[Symbol.asyncIterator]();
    await slowIt.next();
    await slowIt.next();
    expect((await rejection(slowIt.next())).code).to.equal('lagging');
    expect(registry.openCount).to.equal(1);
    expect(registry.subscriptionCount).to.equal(1);
    const another = registry.open('ns', 3, spec);
    registry.receive(ended('e.1.1', 'invalid'));
    expect((await rejection(fastIt.next())).code).to.equal('invalid_request');
    const anotherIt = another[Symbol.asyncIterator]();
    expect((await anotherIt.next()).value).to.deep.equal({ kind: 'start', op: 12, events: [] });
    expect((await rejection(anotherIt.next())).code).to.equal('invalid_request');
    expect(registry.openCount).to.equal(0);
  });

  it('counts and drops notices of no open watch', () => {
    const { registry } = makeRegistry();
    registry.open('ns', 3, spec);
    for (const watchId of ['x.1.1', 'e.9.1', 'e.1', 'e.01.1', 'e..1', 'e.1x.1', 'ee.1.1']) registry.receive(progress(watchId, 3));
    expect(registry.stats()).to.include({ notices: 7, unknownNotices: 7, delivered: 0 });
  });

  it('tick drives failover: a silent replica is cancelled and the next one subscribed', () => {
    const { registry, sent } = makeRegistry();
    registry.open('ns', 3, spec);
    registry.receive(progress('e.1.1', 10));
    sent.length = 0;
    for (let i = 0; i < machineConfig.silenceTicks; i++) registry.tick();
    expect(sent).to.deep.equal([
      { ns: 'ns', replica: 2, request: { type: 'watch_cancel', watchId: 'e.1.1' } },
      { ns: 'ns', replica: 0, request: { type: 'watch_subscribe', watchId: 'e.1.2', path: '/a', recursive: false, fromOp: 10, values: false } },
    ]);
  });

  it('watchesMax: the next open throws too_many_watches, and succeeds once a watch ended', () => {
    const { registry } = makeRegistry({ watchesMax: 2, bufferedBatchesMax: 10 });
    const first = registry.open('ns', 3, spec);
    registry.open('ns', 3, spec);
    expect(() => registry.open('ns', 3, spec))
      .to.throw(HaretError)
      .with.property('code', 'too_many_watches');
    first.cancel();
    expect(registry.openCount).to.equal(1);
    expect(() => registry.open('ns', 3, spec)).not.to.throw();
  });

  it('a machine error ends the stream with a typed HaretError (invalid as invalid_request) and frees the id', async () => {
    const { registry } = makeRegistry();
    const compacted = registry.open('ns', 1, { ...spec, fromOp: 2 });
    const invalid = registry.open('ns', 1, spec);
    registry.receive(ended('e.1.1', 'compacted', 50, 80));
    registry.receive(ended('e.2.1', 'invalid'));
    const error = await rejection(compacted[Symbol.asyncIterator]().next());
    expect(error.code).to.equal('compacted');
    expect(error.details).to.deep.equal({ oldestOp: 50, currentOp: 80, lastOp: null });
    expect((await rejection(invalid[Symbol.asyncIterator]().next())).code).to.equal('invalid_request');
    expect(registry.openCount).to.equal(0);
    registry.receive(progress('e.1.1', 60));
    expect(registry.stats()).to.deep.include({ unknownNotices: 1, failed: { compacted: 1, invalid: 1 } });
  });

  it('cancel from the application sends watch_cancel to the serving replica', () => {
    const { registry, sent } = makeRegistry();
    const stream = registry.open('ns', 3, spec);
    registry.receive(progress('e.1.1', 1));
    sent.length = 0;
    stream.cancel();
    expect(sent).to.deep.equal([{ ns: 'ns', replica: 2, request: { type: 'watch_cancel', watchId: 'e.1.1' } }]);
    expect(registry.stats()).to.include({ open: 0, cancelled: 1 });
  });

  it('a consumer too slow for bufferedBatchesMax: the stream ends lagging and the watch is cancelled, nothing sent after', async () => {
    const { registry, sent } = makeRegistry({ watchesMax: 4, bufferedBatchesMax: 2 });
    const stream = registry.open('ns', 3, spec);
    registry.receive(progress('e.1.1', 1)); // start (buffered: 1)
    registry.receive(events('e.1.1', 2, [event('/a')])); // buffered: 2
    sent.length = 0;
    registry.receive(progress('e.1.1', 3)); // overflow: no room for this progress
    expect(sent).to.deep.equal([{ ns: 'ns', replica: 2, request: { type: 'watch_cancel', watchId: 'e.1.1' } }]);
    registry.receive(progress('e.1.1', 4));
    registry.tick();
    expect(sent).to.have.length(1);
    expect((await take(stream, 2)).map((b) => b.op)).to.deep.equal([1, 2]);
    const error = await rejection(stream[Symbol.asyncIterator]().next());
    expect(error.code).to.equal('lagging');
    expect(error.details?.lastOp).to.equal(2);
    expect(registry.stats()).to.deep.include({ open: 0, cancelled: 0, failed: { lagging: 1 } });
  });

  it('closeAll: every stream ends with the reason (or quietly), and later opens throw it', async () => {
    const { registry, sent } = makeRegistry();
    const one = registry.open('ns', 3, spec);
    const two = registry.open('ns', 3, spec);
    registry.receive(progress('e.1.1', 5));
    sent.length = 0;
    const stopped = new HaretError('stopped', 'the node stopped', false);
    registry.closeAll(stopped);
    expect(sent).to.deep.equal([]);
    expect(await take(one, 1)).to.deep.equal([{ kind: 'start', op: 5, events: [] }]);
    const error = await rejection(one[Symbol.asyncIterator]().next());
    expect(error).to.include({ code: 'stopped', message: 'the node stopped' });
    expect(error.details?.lastOp).to.equal(5);
    // two joined one's subscription before it started, so it started with it.
    expect(await take(two, 1)).to.deep.equal([{ kind: 'start', op: 5, events: [] }]);
    expect((await rejection(two[Symbol.asyncIterator]().next())).code).to.equal('stopped');
    expect(() => registry.open('ns', 3, spec)).to.throw(HaretError, 'the node stopped');
    registry.tick();
    expect(sent).to.deep.equal([]);

    const quiet = makeRegistry();
    const three = quiet.registry.open('ns', 3, spec);
    quiet.registry.closeAll(null);
    expect(await three[Symbol.asyncIterator]().next()).to.deep.equal({ done: true, value: undefined });
    expect(() => quiet.registry.open('ns', 3, spec)).to.throw(HaretError).with.property('code', 'stopped');
  });

  it('a for-await consumer sees the batches as they come, and its break cancels the watch', async () => {
    const { registry, sent } = makeRegistry();
    const stream = registry.open('ns', 3, spec);
    const seen: WatchBatch[] = [];
    const consumer = (async () => {
      for await (const b of stream) {
        seen.push(b);
        if (b.op >= 3) break;
      }
    })();
    registry.receive(progress('e.1.1', 1));
    await peek(Promise.resolve());
    registry.receive(events('e.1.1', 2, [event('/a')]));
    registry.receive(events('e.1.1', 3, [event('/a')]));
    await consumer;
    expect(seen.map((b) => [b.kind, b.op])).to.deep.equal([
      ['start', 1],
      ['events', 2],
      ['events', 3],
    ]);
    expect(sent.at(-1)).to.deep.equal({ ns: 'ns', replica: 2, request: { type: 'watch_cancel', watchId: 'e.1.1' } });
    expect(registry.openCount).to.equal(0);
  });

  it('refuses a bad id prefix or limits', () => {
    expect(() => new WatchRegistry('a.b', () => {}, machineConfig, { watchesMax: 1, bufferedBatchesMax: 1 }, () => 0)).to.throw(RangeError);
    expect(() => new WatchRegistry('a', () => {}, machineConfig, { watchesMax: 0, bufferedBatchesMax: 1 }, () => 0)).to.throw(RangeError);
  });
});

// ---- NamespaceClient.watch -------------------------------------------------------------------

describe('NamespaceClient.watch', () => {
  const noCall = () => Promise.reject(new Error('no calls here'));

  function client(): { nc: NamespaceClient; opened: { ns: string; spec: WatchSpec }[] } {
    const opened: { ns: string; spec: WatchSpec }[] = [];
    const watch: WatchPath = (ns, s) => {
      opened.push({ ns, spec: s });
      return WatchStream.create(1, () => {}).stream;
    };
    return { nc: new NamespaceClient('cfg', noCall, defaultTreeLimits, watch), opened };
  }

  it('passes the namespace and the spec, with defaults', () => {
    const { nc, opened } = client();
    expect(nc.watch('/a')).to.be.instanceOf(WatchStream);
    nc.watch('/a/b', { recursive: true, fromOp: 0, values: true });
    nc.watch('/', { fromOp: protocolNumberMax });
    expect(opened).to.deep.equal([
      { ns: 'cfg', spec: { path: '/a', recursive: false, fromOp: null, values: false } },
      { ns: 'cfg', spec: { path: '/a/b', recursive: true, fromOp: 0, values: true } },
      { ns: 'cfg', spec: { path: '/', recursive: false, fromOp: protocolNumberMax, values: false } },
    ]);
  });

  it('throws at once on a bad path or fromOp, opening nothing', () => {
    const { nc, opened } = client();
    const code = (f: () => unknown): string => {
      try {
        f();
      } catch (error) {
        expect(error).to.be.instanceOf(HaretError);
        expect((error as HaretError).executed).to.equal(false);
        return (error as HaretError).code;
      }
      return 'no error';
    };
    expect(code(() => nc.watch('a'))).to.equal('bad_path');
    expect(code(() => nc.watch('/a/'))).to.equal('bad_path');
    expect(code(() => nc.watch('/' + 'x'.repeat(2000)))).to.equal('too_large');
    for (const fromOp of [-1, 1.5, protocolNumberMax + 1, Number.NaN, '3' as unknown as number]) {
      expect(code(() => nc.watch('/a', { fromOp })), String(fromOp)).to.equal('invalid_request');
    }
    expect(code(() => nc.watch('/a', { recursive: 'yes' as unknown as boolean }))).to.equal('invalid_request');
    expect(opened).to.deep.equal([]);
  });

  it('without a watch path (an older shell): unavailable; the three-argument constructor still works', async () => {
    const nc = new NamespaceClient('cfg', () => Promise.resolve({ type: 'overloaded' }), defaultTreeLimits);
    expect(() => nc.watch('/a'))
      .to.throw(HaretError, /not available/)
      .with.property('code', 'unavailable');
    const error = await nc.stat('/a').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(HaretError).with.property('code', 'overloaded');
  });
});
