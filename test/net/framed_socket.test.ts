/**
 * The one framed-connection helper (src/net/framed_socket.ts) over real sockets: frames in
 * any chunking, a limit that changes after hello, the hello deadline, last words, write
 * backpressure and close-once.
 */

import { expect } from 'chai';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder } from '../../src/api/frame.ts';
import { FramedSocket, type CloseReason, type FramedSocketHandlers, type FramedSocketOptions } from '../../src/net/framed_socket.ts';

type Pair = {
  readonly framed: FramedSocket;
  /** The raw peer: writes what it is told, collects the frames it gets. */
  readonly peer: Socket;
  readonly frames: Uint8Array[];
  readonly peerFrames: Uint8Array[];
  readonly closes: CloseReason[];
  readonly peerClosed: Promise<void>;
};

const servers: Server[] = [];
const peers: Socket[] = [];

/** A FramedSocket on the accepting side of a fresh connection, and its raw peer. */
async function pair(options: FramedSocketOptions, handlers: Partial<FramedSocketHandlers> = {}): Promise<Pair> {
  const frames: Uint8Array[] = [];
  const closes: CloseReason[] = [];
  let framed: FramedSocket | null = null;
  const accepted = new Promise<FramedSocket>((resolve) => {
    const server = createServer((socket) => {
      framed = new FramedSocket(socket, options, {
        onFrame: (payload) => frames.push(payload),
        onClose: (reason) => closes.push(reason),
        ...handlers,
      });
      resolve(framed);
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
  });
  await new Promise((resolve) => setImmediate(resolve));
  const port = (servers[servers.length - 1]?.address() as { port: number }).port;
  const peer = tcpConnect(port, '127.0.0.1');
  peers.push(peer);
  const peerFrames: Uint8Array[] = [];
  const decoder = new FrameDecoder({ frameBytesMax: 1 << 24 });
  peer.on('data', (chunk: Buffer) => {
    for (const event of decoder.push(chunk)) if (event.type === 'frame') peerFrames.push(event.payload);
  });
  peer.on('error', () => undefined);
  const peerClosed = new Promise<void>((resolve) => peer.once('close', () => resolve()));
  return { framed: await accepted, peer, frames, peerFrames, closes, peerClosed };
}

async function waitFor(what: string, condition: () => boolean, ms = 3000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('net: the framed socket helper', function () {
  this.timeout(20_000);

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.destroy();
    await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  });

  it('delivers frames split at any byte, and the limit can grow after hello', async () => {
    const { framed, peer, frames } = await pair({ frameBytesMax: 8 });
    const bytes = new Uint8Array([...encodeFrame(new Uint8Array([1, 2, 3])), ...encodeFrame(new Uint8Array([4]))]);
    for (const byte of bytes) peer.write(new Uint8Array([byte]));
    await waitFor('two frames', () => frames.length === 2);
    expect(frames.map((f) => [...f])).to.deep.equal([[1, 2, 3], [4]]);
    framed.setFrameBytesMax(1024);
    peer.write(encodeFrame(new Uint8Array(100).fill(9)));
    await waitFor('a larger frame', () => frames.length === 3);
    expect(frames[2]?.byteLength).to.equal(100);
  });

  it('a frame over the limit reaches onFrameError once, and nothing after it is delivered', async () => {
    const errors: string[] = [];
    const { peer, frames, closes } = await pair({ frameBytesMax: 8 }, { onFrameError: (code) => errors.push(code) });
    peer.write(new Uint8Array([...encodeFrame(new Uint8Array([1])), 0, 0, 0, 9, ...encodeFrame(new Uint8Array([2]))]));
    await waitFor('the error', () => errors.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(errors).to.deep.equal(['frame_too_large']);
    expect(frames.map((f) => [...f])).to.deep.equal([[1]]);
    expect(closes).to.deep.equal([]);
  });

  it('without onFrameError a bad prefix closes the connection, with cause frame_error', async () => {
    const { peer, closes } = await pair({ frameBytesMax: 8 });
    peer.write(new Uint8Array([0, 0, 0, 0]));
    await waitFor('the close', () => closes.length === 1);
    expect(closes[0]?.cause).to.equal('frame_error');
  });

  it('the hello deadline fires unless helloDone is called', async () => {
    const timedOut = await pair({ frameBytesMax: 8, helloTimeoutMs: 100 });
    await waitFor('the hello timeout', () => timedOut.closes.length === 1);
    expect(timedOut.closes[0]?.cause).to.equal('hello_timeout');
    const greeted = await pair({ frameBytesMax: 8, helloTimeoutMs: 100 });
    greeted.framed.helloDone();
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(greeted.closes).to.deep.equal([]);
    expect(greeted.framed.isOpen).to.equal(true);
  });

  it('hasMoreInput says whether bytes already arrived behind the frame being handled', async () => {
    const seen: boolean[] = [];
    let framed: FramedSocket | null = null;
    const made = await pair({ frameBytesMax: 64 }, { onFrame: () => seen.push(framed?.hasMoreInput ?? false) });
    framed = made.framed;
    made.peer.write(encodeFrame(new Uint8Array([1])));
    await waitFor('one frame', () => seen.length === 1);
    made.peer.write(new Uint8Array([...encodeFrame(new Uint8Array([2])), ...encodeFrame(new Uint8Array([3])), 0, 0]));
    await waitFor('three frames', () => seen.length === 3);
    expect(seen).to.deep.equal([false, true, true]);
  });

  it('last words: the frame arrives, nothing more is delivered or written, and the socket closes once', async () => {
    const { framed, peer, frames, peerFrames, closes, peerClosed } = await pair({ frameBytesMax: 64 });
    framed.lastWords(encodeFrame(new Uint8Array([7])), 1_000);
    framed.lastWords(encodeFrame(new Uint8Array([8])), 1_000);
    expect(framed.write(encodeFrame(new Uint8Array([9])))).to.equal('closed');
    peer.write(encodeFrame(new Uint8Array([1])));
    await peerClosed;
    await waitFor('the close', () => closes.length === 1);
    framed.destroy();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(peerFrames.map((f) => [...f])).to.deep.equal([[7]]);
    expect(frames).to.deep.equal([]);
    expect(closes).to.have.length(1);
    expect(closes[0]?.cause).to.equal('last_words');
  });

  it('last words to a peer that never closes: destroyed after the grace period', async () => {
    const { framed, peer, closes } = await pair({ frameBytesMax: 64 });
    // A peer that does not read never sees our end, so it never closes its side.
    peer.pause();
    const started = performance.now();
    framed.lastWords(encodeFrame(new Uint8Array([7])), 200);
    await waitFor('the close', () => closes.length === 1);
    expect(performance.now() - started).to.be.below(1_000);
  });

  it('backpressure: past the soft bound reading pauses, and resumes once the peer drains what was written', async () => {
    const drains: number[] = [];
    const { framed, peer, frames, peerFrames } = await pair({ frameBytesMax: 64, writeBufferBytesMax: 64 * 1024, writeBufferHardBytesMax: 1 << 30 }, { onDrain: () => drains.push(1) });
    peer.pause();
    // The kernel takes the first megabytes; what it does not take waits in the socket. Frames
    // of one turn leave together at its end (the socket is corked meanwhile, and counted as
    // unsent): one frame per turn here, each below the soft bound.
    const chunk = encodeFrame(new Uint8Array(16 * 1024));
    const outcomes: string[] = [];
    for (let i = 0; i < 1024 && framed.writableLength <= 256 * 1024; i += 1) {
      outcomes.push(framed.write(chunk));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(outcomes.filter((outcome) => outcome === 'paused')).to.have.length(1);
    expect(outcomes).to.not.include('overflow');
    // Not read while paused: the peer's frame waits.
    peer.write(encodeFrame(new Uint8Array([5])));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(frames).to.deep.equal([]);
    peer.resume();
    await waitFor('the peer to read everything', () => peerFrames.length === outcomes.length);
    await waitFor('the drain', () => drains.length >= 1);
    await waitFor('the frame read after the drain', () => frames.length === 1);
    expect(framed.isOpen).to.equal(true);
  });

  it('backpressure: past the hard bound the connection is destroyed', async () => {
    const { framed, peer, closes } = await pair({ frameBytesMax: 64, writeBufferBytesMax: 64 * 1024, writeBufferHardBytesMax: 8 * 1024 * 1024 });
    peer.pause();
    const chunk = encodeFrame(new Uint8Array(64 * 1024));
    const outcomes = new Set<string>();
    for (let i = 0; i < 400 && framed.isOpen; i += 1) outcomes.add(framed.write(chunk));
    expect(outcomes.has('paused')).to.equal(true);
    expect(outcomes.has('overflow')).to.equal(true);
    await waitFor('the close', () => closes.length === 1);
    expect(closes[0]?.cause).to.equal('write_overflow');
  });

  it('frames written in one turn leave in one write: the peer receives them in one chunk', async () => {
    const { framed, peer } = await pair({ frameBytesMax: 64 });
    const chunks: number[] = [];
    peer.on('data', (data: Buffer) => chunks.push(data.length));
    for (let i = 0; i < 50; i += 1) framed.write(encodeFrame(new Uint8Array([i])));
    await waitFor('the frames', () => chunks.reduce((a, b) => a + b, 0) === 50 * 5);
    expect(chunks).to.have.length(1);
  });

  it('flushWrites sends what the turn wrote at once, before the turn ends; later writes of the turn are corked again and leave together', async () => {
    const { framed, peer } = await pair({ frameBytesMax: 64 });
    const chunks: number[] = [];
    peer.on('data', (data: Buffer) => chunks.push(data.length));
    for (let i = 0; i < 10; i += 1) framed.write(encodeFrame(new Uint8Array([i])));
    expect(framed.writableLength, 'corked: held for the end of the turn').to.equal(50);
    framed.flushWrites();
    // Handed to the kernel within this turn: nothing is left in the socket's buffer.
    expect(framed.writableLength).to.equal(0);
    for (let i = 0; i < 10; i += 1) framed.write(encodeFrame(new Uint8Array([i])));
    expect(framed.writableLength).to.equal(50);
    await waitFor('the frames', () => chunks.reduce((a, b) => a + b, 0) === 20 * 5);
    expect(framed.writableLength).to.equal(0);
    framed.flushWrites();
    expect(chunks.length).to.be.at.most(2);
  });

  it('destroy is close-once: one onClose, with the first reason', async () => {
    const { framed, closes } = await pair({ frameBytesMax: 64 });
    framed.destroy('local', 'first');
    framed.destroy('idle', 'second');
    framed.lastWords(encodeFrame(new Uint8Array([1])), 10);
    const reason = await framed.closed;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(reason).to.deep.equal({ cause: 'local', message: 'first' });
    expect(closes).to.deep.equal([reason]);
  });
});
