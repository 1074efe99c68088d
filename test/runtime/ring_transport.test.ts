/**
 * The ring transport (runtime/ring_transport.ts): routing and batching like the port router,
 * batches above the record limit on the port in their place, a full ring holding batches back
 * without losing or reordering any, bytes that round-trip, malformed and unencodable input
 * counted and dropped; and between real threads, main <-> worker and worker <-> worker.
 */

import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { makeCodec } from '../../runtime/codec.ts';
import type { ActorId, Envelope } from '../../runtime/envelope.ts';
import { transportKind } from '../../runtime/mesh.ts';
import { RingWriter } from '../../runtime/ring.ts';
import { tagBatch, tagOnPort, type RingLinkEnd } from '../../runtime/ring_link.ts';
import { defaultRingTransportConfig, makeRingTransportKind, ringTransport, type RingTransportStats } from '../../runtime/ring_transport.ts';
import { portTransport } from '../../runtime/router.ts';
import type { PeerLink, Transport, TransportKind } from '../../runtime/transport.ts';
import { eventually, Probe } from './helpers.ts';
import { startRingEcho } from './ring_echo.ts';

const codec = makeCodec('msgpack');

type Pair = { readonly a: Transport; readonly b: Transport; readonly atB: Envelope[][]; readonly close: () => void };

/** Two transports on this thread, `a` and `b`, linked by one ring link of `kind`; actor `x` lives on b. */
function linked(kind: TransportKind): Pair {
  const directory = new Map<ActorId, string>([
    ['x', 'b'],
    ['y', 'a'],
  ]);
  const atB: Envelope[][] = [];
  const a = kind.create('a', directory, codec, () => undefined);
  const b = kind.create('b', directory, codec, (batch) => atB.push([...batch]));
  const [endA, endB] = kind.pair();
  a.setPeer('b', endA);
  b.setPeer('a', endB);
  return {
    a,
    b,
    atB,
    close: () => {
      a.close();
      b.close();
    },
  };
}

const stats = (transport: Transport): RingTransportStats => transport.stats() as RingTransportStats;
const delivered = (pair: Pair): unknown[] => pair.atB.flat().map((e) => e.msg);

/** A small ring (4 KiB, records up to 1 KiB) so that tests reach its limits quickly. */
const smallRing = makeRingTransportKind({ ...defaultRingTransportConfig({}), ringBytes: 4096, maxRecordBytes: 1024 });

describe('runtime: ring transport on one thread', function () {
  this.timeout(20_000);

  it('is chosen by name, and refuses a link another transport made (and the port transport refuses a ring link)', () => {
    expect(transportKind('ring')).to.equal(ringTransport);
    expect(transportKind('port')).to.equal(portTransport);
    expect(() => transportKind('pigeon' as never)).to.throw(RangeError);
    const ring = ringTransport.create('me', new Map(), codec, () => undefined);
    const [p1, p2] = portTransport.pair();
    expect(() => ring.setPeer('peer', p1)).to.throw(TypeError, /not a ring link/);
    expect(() => ringTransport.transferList(p1)).to.throw(TypeError);
    const [r1, r2] = ringTransport.pair();
    expect(() => portTransport.create('me', new Map(), codec, () => undefined).setPeer('peer', r1)).to.throw(TypeError);
    // Only the port moves; the rings are shared.
    const moved = ringTransport.transferList(r1);
    expect(moved).to.have.length(1);
    expect(moved[0]).to.equal((r1 as RingLinkEnd).port);
    for (const end of [p1, p2, r1, r2] as (PeerLink & { port: { close(): void } })[]) end.port.close();
    ring.close();
  });

  it('sends everything queued for one thread in one turn as one batch, delivers local envelopes at flush, and keeps bytes intact', async () => {
    const pair = linked(ringTransport);
    try {
      for (let i = 0; i < 500; i += 1) pair.a.send({ from: 'y', to: 'x', msg: { i, bytes: new Uint8Array([i & 0xff, 1, 2]) } });
      pair.a.flush();
      await eventually('500 delivered', () => delivered(pair).length === 500);
      expect(pair.atB).to.have.length(1);
      expect(stats(pair.a)).to.include({ posts: 1, envelopesOut: 500, portPosts: 0 });
      expect(stats(pair.b)).to.include({ envelopesIn: 500, malformed: 0 });
      const msgs = delivered(pair) as { i: number; bytes: Uint8Array }[];
      expect(msgs.map((m) => m.i)).to.deep.equal(Array.from({ length: 500 }, (_, i) => i));
      expect(msgs[300]?.bytes).to.be.instanceOf(Uint8Array);
      expect([...(msgs[300]?.bytes ?? [])]).to.deep.equal([300 & 0xff, 1, 2]);
      // An envelope for this thread is delivered at flush, not sent.
      const local: unknown[] = [];
      const solo = ringTransport.create('a', new Map([['y', 'a']]), codec, (batch) => local.push(...batch.map((e) => e.msg)));
      solo.send({ from: 'y', to: 'y', msg: 'self' });
      expect(local).to.deep.equal([]);
      solo.flush();
      expect(local).to.deep.equal(['self']);
      solo.close();
    } finally {
      pair.close();
    }
  });

  it('sends a batch above the record limit on the port, in its place: batches of every size arrive in order, bytes intact', async () => {
    const pair = linked(smallRing);
    try {
      let n = 0;
      const sizes = [1, 200, 3, 1, 50, 1, 400, 2];
      for (const count of sizes) {
        for (let i = 0; i < count; i += 1) {
          pair.a.send({ from: 'y', to: 'x', msg: { n, blob: new Uint8Array(20).fill(n & 0xff) } });
          n += 1;
        }
        pair.a.flush();
        // Let the reader run between some batches, not others.
        if (count % 2 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await eventually('all delivered', () => delivered(pair).length === n);
      const msgs = delivered(pair) as { n: number; blob: Uint8Array }[];
      expect(msgs.map((m) => m.n)).to.deep.equal(Array.from({ length: n }, (_, i) => i));
      expect(msgs.every((m) => m.blob.length === 20 && m.blob.every((byte) => byte === (m.n & 0xff)))).to.equal(true);
      const sent = stats(pair.a);
      expect(sent.portPosts).to.be.at.least(3);
      expect(sent.posts).to.equal(sizes.length);
      expect(stats(pair.b).malformed).to.equal(0);
    } finally {
      pair.close();
    }
  });

  it('a reader that meets a port marker delivers nothing after it until the port message comes, however late', async () => {
    const got: unknown[] = [];
    const b = ringTransport.create('b', new Map([['x', 'b']]), codec, (batch) => got.push(...batch.map((e) => e.msg)));
    const [endA, endB] = ringTransport.pair() as readonly [RingLinkEnd, RingLinkEnd];
    b.setPeer('a', endB);
    const writer = new RingWriter(endA.tx);
    const packr = new Packr({ useRecords: true, moreTypes: false });
    try {
      writer.tryWrite(packr.pack([{ from: 'p', to: 'x', msg: 'first' }]), tagBatch);
      writer.tryWrite(new Uint8Array(0), tagOnPort);
      writer.tryWrite(packr.pack([{ from: 'p', to: 'x', msg: 'third' }]), tagBatch);
      await eventually('first', () => got.length === 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(got).to.deep.equal(['first']);
      const late = new Uint8Array(packr.pack([{ from: 'p', to: 'x', msg: 'second' }]));
      endA.port.postMessage(late, [late.buffer]);
      await eventually('all three', () => got.length === 3);
      expect(got).to.deep.equal(['first', 'second', 'third']);
    } finally {
      b.close();
      endA.port.close();
    }
  });

  it('a full ring holds batches back (nothing lost, nothing reordered) and writes them once the reader frees space', async () => {
    const pair = linked(smallRing);
    const sendBatch = (from: number, count: number): void => {
      for (let j = 0; j < count; j += 1) pair.a.send({ from: 'y', to: 'x', msg: { n: from + j, pad: 'abcdefghijklmnopqrst' } });
      pair.a.flush();
    };
    try {
      // Six records of 760 bytes in one turn: five fill the 4 KiB ring, the sixth waits and then
      // goes through the ring too.
      for (let i = 0; i < 6; i += 1) sendBatch(i * 25, 25);
      expect(stats(pair.a).ringFull).to.equal(1);
      await eventually('150 delivered', () => delivered(pair).length === 150);
      expect(stats(pair.a)).to.include({ posts: 6, portPosts: 0 });
      // 300 flushes in one turn: what waits behind the full ring grows past a record and leaves
      // on the port, still in its place.
      for (let i = 0; i < 300; i += 1) sendBatch(150 + i * 20, 20);
      expect(stats(pair.a).ringFull).to.equal(2);
      await eventually('all 6150 delivered', () => delivered(pair).length === 6150);
      expect((delivered(pair) as { n: number }[]).map((m) => m.n)).to.deep.equal(Array.from({ length: 6150 }, (_, i) => i));
      expect(stats(pair.a)).to.include({ unroutable: 0, envelopesOut: 6150 });
      expect(stats(pair.a).portPosts).to.be.at.least(1);
    } finally {
      pair.close();
    }
  });

  it('counts and drops malformed records and port messages, and envelopes msgpackr cannot encode, delivering the rest', async () => {
    const kind = ringTransport;
    const got: unknown[] = [];
    const b = kind.create('b', new Map([['x', 'b']]), codec, (batch) => got.push(...batch.map((e) => e.msg)));
    const [endA, endB] = kind.pair() as readonly [RingLinkEnd, RingLinkEnd];
    b.setPeer('a', endB);
    const writer = new RingWriter(endA.tx);
    const packr = new Packr({ useRecords: true, moreTypes: false });
    try {
      writer.tryWrite(new Uint8Array([0xc1, 0xc1, 0xc1]), tagBatch); // not msgpack
      writer.tryWrite(packr.pack(42), tagBatch); // not an array
      writer.tryWrite(packr.pack([{ nonsense: true }, { from: 'p', to: 'x', msg: 1 }]), tagBatch); // one bad item
      writer.tryWrite(new Uint8Array(4), 77); // unknown tag
      writer.tryWrite(new Uint8Array(0), tagOnPort);
      endA.port.postMessage('not bytes');
      writer.tryWrite(packr.pack([{ from: 'p', to: 'x', msg: 2 }]), tagBatch); // waits behind the port message
      await eventually('the two good envelopes', () => got.length === 2);
      expect(got).to.deep.equal([1, 2]);
      expect(b.stats().malformed).to.equal(5);

      const a = kind.create('a', new Map([['x', 'b']]), codec, () => undefined);
      const [toB, fromA] = kind.pair();
      a.setPeer('b', toB);
      b.setPeer('a', fromA);
      a.send({ from: 'y', to: 'x', msg: 3 });
      a.send({ from: 'y', to: 'x', msg: { bad: Symbol('no') } });
      a.send({ from: 'y', to: 'x', msg: 4 });
      a.flush();
      await eventually('3 and 4', () => got.length === 4);
      expect(got.slice(2)).to.deep.equal([3, 4]);
      expect(a.stats()).to.include({ unencodable: 1, envelopesOut: 2 });
      a.close();
    } finally {
      b.close();
      endA.port.close();
    }
  });

  it('the host forwards envelopes for another thread, hands batches for other nodes to their sink, and takes batches from outside', async () => {
    // a believes x lives on the host (a stale directory); the host knows it is on b.
    const atB: unknown[] = [];
    const remote: Envelope[][] = [];
    const a = ringTransport.create('a', new Map([['x', 'host']]), codec, () => undefined);
    const host = ringTransport.create('host', new Map([['x', 'b']]), codec, () => undefined, { forward: true, resolve: (actor) => (actor.startsWith('far::') ? 'node:far' : undefined) });
    const b = ringTransport.create('b', new Map([['x', 'b']]), codec, (batch) => atB.push(...batch.map((e) => e.msg)));
    const [aToHost, hostToA] = ringTransport.pair();
    const [hostToB, bToHost] = ringTransport.pair();
    a.setPeer('host', aToHost);
    host.setPeer('a', hostToA);
    host.setPeer('b', hostToB);
    b.setPeer('host', bToHost);
    host.setSink('node:far', (batch) => remote.push([...batch]));
    try {
      a.send({ from: 'y', to: 'x', msg: 'relayed' });
      a.flush();
      await eventually('relayed to b', () => atB.length === 1);
      expect(atB).to.deep.equal(['relayed']);
      expect(host.stats()).to.include({ forwarded: 1, envelopesIn: 0 });
      host.send({ from: 'h', to: 'far::z', msg: 'away' });
      host.receiveBatch([{ from: 'far::z', to: 'x', msg: 'from afar' }]);
      host.flush();
      expect(remote).to.deep.equal([[{ from: 'h', to: 'far::z', msg: 'away' }]]);
      await eventually('from afar at b', () => atB.length === 2);
      expect(atB[1]).to.equal('from afar');
      host.dropSink('node:far');
      host.send({ from: 'h', to: 'far::z', msg: 'lost' });
      host.flush();
      expect(host.stats().unroutable).to.equal(1);
    } finally {
      a.close();
      host.close();
      b.close();
    }
  });

  it('after dropPeer the link is abandoned: the peer finds its rings closed and counts what it sends as unroutable', async () => {
    const pair = linked(ringTransport);
    try {
      pair.a.send({ from: 'y', to: 'x', msg: 'before' });
      pair.a.flush();
      await eventually('before', () => delivered(pair).length === 1);
      pair.b.dropPeer('a');
      pair.a.send({ from: 'y', to: 'x', msg: 'after' });
      pair.a.flush();
      expect(pair.a.stats().unroutable).to.equal(1);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(delivered(pair)).to.deep.equal(['before']);
    } finally {
      pair.close();
    }
  });
});

type Pong = { type: 'pong'; n: number; by: string };
const pongs = (messages: readonly unknown[]): Pong[] => messages.filter((m): m is Pong => (m as Pong).type === 'pong');


describe('runtime: ring transport between threads', function () {
  this.timeout(30_000);

  it('main <-> worker and worker <-> worker: delivers, batches a burst into few records', async () => {
    const probe = new Probe();
    const system = await startRingEcho(probe);
    try {
      system.send({ from: 'host/probe', to: 'a', msg: { type: 'ping', n: 1 } });
      system.send({ from: 'host/probe', to: 'a', msg: { type: 'forward', to: 'b', n: 2 } });
      await probe.until('two pongs', (m) => pongs(m).length === 2);
      expect(pongs(probe.messages).map((p) => [p.n, p.by])).to.have.deep.members([
        [1, 'A'],
        [2, 'B'],
      ]);
      system.send({ from: 'host/probe', to: 'a', msg: { type: 'burst', count: 1000 } });
      await probe.until('the burst', (m) => pongs(m).length === 1002);
      const a = (await system.status()).find((w) => w.name === 'w1');
      expect(a?.detail?.router.envelopesOut).to.equal(1003);
      expect(a?.detail?.router.posts).to.be.at.most(4);
      expect((a?.detail?.router as RingTransportStats | undefined)?.portPosts).to.equal(0);
    } finally {
      await system.stop();
    }
  });

  it('a worker sends batches above the record limit on the port and small ones in the ring: the host gets them all, in order', async () => {
    // A plain list, not a Probe: a probe re-checks its predicate over every message on each push.
    const received: Pong[] = [];
    const system = await startRingEcho(new Probe(), {
      hostActors: [{ id: 'host/probe', factory: () => ({ receive: (batch) => batch.forEach((e) => received.push(e.msg as Pong)) }), init: null }],
    });
    try {
      // 20,000 pongs are ~500 KB packed, above the default 256 KiB record limit.
      const counts = [5, 20_000, 5, 20_000, 5];
      for (const count of counts) {
        system.send({ from: 'host/probe', to: 'a', msg: { type: 'burst', count } });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const total = counts.reduce((sum, c) => sum + c, 0);
      await eventually('every pong', () => received.length === total);
      // Runs of n = 0, 1, 2, ... one per burst, in the order of the bursts.
      const runs: number[] = [];
      let expected = 0;
      for (const pong of received) {
        if (pong.n === 0) {
          runs.push(0);
          expected = 0;
        }
        expect(pong.n).to.equal(expected);
        expected += 1;
        runs[runs.length - 1] = (runs.at(-1) ?? 0) + 1;
      }
      expect(runs).to.deep.equal(counts);
      const a = (await system.status()).find((w) => w.name === 'w1')?.detail?.router as RingTransportStats | undefined;
      expect(a?.portPosts).to.be.at.least(1);
      expect(a?.unencodable).to.equal(0);
    } finally {
      await system.stop();
    }
  });
});
