/**
 * The TCP client API on 127.0.0.1 ephemeral ports: the client library gives the same typed
 * client as the embedding API, many requests in flight on one connection, writes exactly once
 * through a primary kill, and bad bytes get a typed error and a clean close while the node
 * keeps serving everyone else.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { FrameDecoder } from '../../src/api/frame.ts';
import { decodeNodeMessage, defaultWireLimits, encodeClientFrame, type NodeMessage } from '../../src/api/wire.ts';
import { connect } from '../../src/net/index.ts';
import { HaretError, startNode, type HaretNode } from '../../src/node/index.ts';

const decoder = new TextDecoder();
const packr = new Packr({ useRecords: false });

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

/** Sends raw bytes, collects the node's frames until it closes the socket (or `ms` passes). */
function rawExchange(port: number, bytes: Uint8Array, ms = 3000): Promise<{ messages: NodeMessage[]; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    const frames = new FrameDecoder({ frameBytesMax: defaultWireLimits.frameBytesMax });
    const messages: NodeMessage[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ messages, closed: false });
    }, ms);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      for (const event of frames.push(chunk)) {
        if (event.type === 'frame') {
          const decoded = decodeNodeMessage(event.payload);
          if (decoded.ok) messages.push(decoded.message);
        }
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ messages, closed: true });
    });
  });
}

describe('net: TCP client API and client library', function () {
  this.timeout(120_000);
  let node: HaretNode;
  let port: number;

  before(async () => {
    node = await startNode({ logLevel: 'silent', clientApi: { port: 0 }, name: 'test-node' });
    port = node.clientApiAddress?.port ?? 0;
  });

  after(async () => {
    await node.stop();
  });

  it('serves the typed client over TCP: every result with its view and op', async () => {
    const remote = await connect([`127.0.0.1:${port}`]);
    try {
      expect(remote.node).to.equal('test-node');
      expect(remote.namespaces).to.deep.equal(['default']);
      const db = remote.client('default');
      await db.create('/remote', 'directory');
      await db.create('/remote/blob', 'blob');
      const put = await db.blobPut('/remote/blob', 'over tcp');
      expect(put.version).to.equal(1);
      const got = await db.blobGet('/remote/blob');
      expect(decoder.decode(got.value)).to.equal('over tcp');
      expect(got.op).to.be.greaterThan(0);
      const missing = await db.blobGet('/remote/nope').catch((e: unknown) => e);
      expect(missing).to.be.instanceOf(HaretError).with.property('code', 'does_not_exist');
      expect(() => remote.client('nope')).to.throw(HaretError);
    } finally {
      await remote.close();
    }
  });

  it('keeps many requests in flight on one connection, each answered once', async () => {
    const remote = await connect([`127.0.0.1:${port}`]);
    try {
      const db = remote.client();
      await db.create('/q', 'queue');
      await Promise.all(Array.from({ length: 300 }, (_, i) => db.queuePush('/q', `v${i}`)));
      const len = await db.queueLen('/q');
      expect(len.count).to.equal(300);
    } finally {
      await remote.close();
    }
  });

  it('answers garbage with a typed error and a clean close, and keeps serving others', async () => {
    const notHello = await rawExchange(port, encodeClientFrame({ type: 'ping', id: 1 }));
    expect(notHello.closed).to.equal(true);
    expect(notHello.messages[0]).to.deep.include({ type: 'error', code: 'malformed' });
    const oversized = await rawExchange(port, new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    expect(oversized.closed).to.equal(true);
    expect(oversized.messages[0]).to.deep.include({ type: 'error', code: 'frame_too_large' });
    const junk = await rawExchange(port, new Uint8Array([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]), 1000);
    expect(junk.messages[0]).to.deep.include({ type: 'error', code: 'malformed' });
    const hello = encodeClientFrame({ type: 'hello', version: 1 });
    const badOp = encodeClientFrame({ type: 'request', id: 7, ns: 'default', replica: 0, clientId: 'x1', requestNum: 1, op: { type: 'tree', op: { type: 'blob_put', path: 'no-slash', value: new Uint8Array(1) } } } as never);
    const both = new Uint8Array(hello.length + badOp.length);
    both.set(hello);
    both.set(badOp, hello.length);
    const rejected = await rawExchange(port, both, 1500);
    expect(rejected.messages[0]).to.deep.include({ type: 'welcome' });
    expect(rejected.messages[1]).to.deep.include({ type: 'error', id: 7, code: 'malformed' });
    const remote = await connect([`127.0.0.1:${port}`]);
    try {
      await remote.client().create('/still-serving', 'blob');
    } finally {
      await remote.close();
    }
  });

  it('survives a fuzz of the client port: random bytes, truncated and oversized frames, wrong types, unknown ops', async () => {
    const hello = encodeClientFrame({ type: 'hello', version: 1 });
    const valid = encodeClientFrame({ type: 'request', id: 1, ns: 'default', replica: 0, clientId: 'fz1', requestNum: 0, op: { type: 'register' } });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 512 }),
          fc.uint8Array({ maxLength: 64 }).map((tail) => concat(hello, tail)),
          fc.nat({ max: valid.length - 1 }).map((cut) => concat(hello, valid.subarray(0, cut))),
          fc.anything().map((value) => concat(hello, frame(packr.pack(value)))),
          fc.record({ type: fc.constantFrom('request', 'ping', 'list_namespaces', 'bogus'), id: fc.anything(), ns: fc.anything(), op: fc.anything() }).map((value) => concat(hello, frame(packr.pack(value)))),
          fc.integer({ min: defaultWireLimits.frameBytesMax + 1, max: 2 ** 32 - 1 }).map((length) => {
            const prefix = new Uint8Array(4);
            new DataView(prefix.buffer).setUint32(0, length);
            return concat(hello, prefix);
          }),
        ),
        async (bytes) => {
          const result = await rawExchange(port, bytes, 300);
          // Whatever came back is typed: a welcome, an answer, a pong, namespaces or an error.
          for (const message of result.messages) expect(['welcome', 'error', 'pong', 'namespaces', 'answer']).to.include(message.type);
        },
      ),
      { numRuns: 40 },
    );
    const remote = await connect([`127.0.0.1:${port}`]);
    try {
      const put = await remote.client().create('/after-fuzz', 'blob');
      expect(put.type).to.equal('ok');
    } finally {
      await remote.close();
    }
    const { actors } = await node.status();
    expect(actors.every((a) => a.restarts === 0)).to.equal(true);
  });

  it('reconnects after its connection is cut and retries in-flight writes exactly once', async () => {
    // A relay in front of the node whose connections the test can cut at will.
    const upstreams = new Set<Socket>();
    const downstreams = new Set<Socket>();
    const relay = createServer((down) => {
      const up = tcpConnect(port, '127.0.0.1');
      downstreams.add(down);
      upstreams.add(up);
      down.pipe(up);
      up.pipe(down);
      const end = (): void => {
        down.destroy();
        up.destroy();
        downstreams.delete(down);
        upstreams.delete(up);
      };
      down.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const relayPort = (relay.address() as { port: number }).port;
    const remote = await connect([`127.0.0.1:${relayPort}`]);
    try {
      const db = remote.client();
      await db.create('/cut', 'queue');
      let acked = 0;
      const work = Promise.all(
        Array.from({ length: 10 }, async (_, k) => {
          for (let i = 0; i < 30; i += 1) {
            await db.queuePush('/cut', `${k}-${i}`);
            acked += 1;
          }
        }),
      );
      for (const cutAt of [50, 150]) {
        while (acked < cutAt) await new Promise((resolve) => setTimeout(resolve, 5));
        for (const socket of [...downstreams, ...upstreams]) socket.destroy();
      }
      await work;
      const seen: string[] = [];
      for (;;) {
        const popped = await db.queuePop('/cut');
        if (popped.value === null) break;
        seen.push(decoder.decode(popped.value));
      }
      expect(seen).to.have.length(300);
      expect(new Set(seen).size).to.equal(300);
    } finally {
      await remote.close();
      for (const socket of [...downstreams, ...upstreams]) socket.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
  });

  it('writes exactly once through a primary kill: retried pushes are answered from the client table', async () => {
    const remote = await connect([`127.0.0.1:${port}`]);
    try {
      const db = remote.client();
      await db.create('/once', 'queue');
      let acked = 0;
      const work = Promise.all(
        Array.from({ length: 20 }, async (_, k) => {
          for (let i = 0; i < 30; i += 1) {
            await db.queuePush('/once', `${k}-${i}`);
            acked += 1;
          }
        }),
      );
      while (acked < 100) await new Promise((resolve) => setTimeout(resolve, 10));
      const primary = await node.primaryOf('default');
      await node.faults.terminate(node.replicaId('default', primary ?? 0));
      await work;
      const seen: string[] = [];
      for (;;) {
        const popped = await db.queuePop('/once');
        if (popped.value === null) break;
        seen.push(decoder.decode(popped.value));
      }
      expect(seen).to.have.length(600);
      expect(new Set(seen).size).to.equal(600);
    } finally {
      await remote.close();
    }
  });
});
