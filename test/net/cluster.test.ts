/**
 * Nodes joined by cluster links in one process (each node with its own workers): join,
 * namespaces created across them and served from every node (embedded client and the TCP
 * client library), typed errors for bad admin input, and a cluster port that shrugs off
 * garbage while the namespace keeps serving. With a cluster secret (issue 12): a caller
 * without it gets no join or namespace_created in whatever name it claims, and a member that
 * proved its name still speaks only as its own cluster actor.
 */

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { encodeClusterFrame, decodeClusterFrame, type ClusterFrame } from '../../src/api/cluster_wire.ts';
import { encodeFrame, FrameDecoder } from '../../src/api/frame.ts';
import { ClusterLinks } from '../../src/net/cluster_link.ts';
import type { WelcomeMessage } from '../../src/api/wire.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../src/net/index.ts';
import { ClusterError } from '../../src/api/admin_wire.ts';
import { loadRecord } from '../../src/node/cluster_store.ts';
import { startNode, type HaretNode } from '../../src/node/index.ts';
import { eventually } from '../runtime/helpers.ts';
import { RawClient, register } from './raw_client.ts';


/** Writes raw bytes to a port and resolves when the peer closes (or after `ms`). */
function sendGarbage(port: number, bytes: Uint8Array, ms = 3_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, ms);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('cluster: nodes joined by cluster links', function () {
  this.timeout(120_000);
  const nodes: HaretNode[] = [];
  let dir = '';
  /** The node whose death a test caused (restarted by the next). */
  let doomedIndex = -1;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'haret-cluster-inproc-'));
    for (const name of ['a', 'b', 'c']) {
      nodes.push(await startNode({ name, namespaces: [], cluster: { port: 0 }, dataDir: join(dir, name), clientApi: { port: 0 }, logLevel: 'silent' }));
    }
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  const node = (i: number): HaretNode => nodes[i] as HaretNode;
  const cluster = (i: number) => {
    const api = node(i).cluster;
    if (api === null) throw new Error('no cluster API');
    return api;
  };

  it('joins three nodes: every member learns every other, with its addresses, and records them', async () => {
    expect(await cluster(1).join(cluster(0).address)).to.deep.equal({ node: 'a' });
    expect(await cluster(2).join(cluster(1).address)).to.deep.equal({ node: 'b' });
    await eventually('three members everywhere, links up', () => [0, 1, 2].every((i) => cluster(i).status().members.length === 3 && cluster(i).status().members.every((m) => m.link !== 'down')), 20_000);
    const members = cluster(2).status().members;
    expect(members.map((m) => m.name).sort()).to.deep.equal(['a', 'b', 'c']);
    expect(members.find((m) => m.name === 'a')?.clientAddress).to.match(/^127\.0\.0\.1:\d+$/);
    const record = loadRecord(join(dir, 'c'));
    expect(record?.members.map((m) => m.name).sort()).to.deep.equal(['a', 'b', 'c']);
  });

  it('creates a namespace across the three nodes; each node serves it and sees the others\' writes', async () => {
    // A client connected before the namespace exists learns of it by asking again.
    const address = node(2).clientApiAddress;
    const early = await connect([`${address?.host}:${address?.port}`]);
    expect(early.namespaces).to.deep.equal([]);
    const created = await cluster(0).createNamespace('shared');
    await eventually('node c to list shared', async () => (await early.refreshNamespaces()).includes('shared'), 20_000);
    expect(early.namespaces).to.deep.equal(['shared']);
    await early.close();
    expect([...created.nodes].sort()).to.deep.equal(['a', 'b', 'c']);
    await eventually('every node serving shared', () => nodes.every((n) => n.namespaces.includes('shared')), 20_000);
    const a = node(0).client('shared');
    const b = node(1).client('shared');
    const c = node(2).client('shared');
    await eventually('a first write', async () => (await a.create('/x', 'blob').catch(() => null)) !== null, 30_000);
    const put = await b.blobPut('/x', 'from b');
    const got = await c.blobGet('/x');
    expect(new TextDecoder().decode(got.value ?? new Uint8Array())).to.equal('from b');
    expect(got.version).to.equal(put.version);
    // Exactly one normal primary, and every node agrees which replica it is.
    const primaries = await Promise.all(nodes.map((n) => n.primaryOf('shared')));
    expect(new Set(primaries).size).to.equal(1);
    for (let i = 0; i < 20; i += 1) await [a, b, c][i % 3]?.queuePush('/x-queue', `v${i}`).catch(async () => {
      await a.create('/x-queue', 'queue').catch(() => null);
      await [a, b, c][i % 3]?.queuePush('/x-queue', `v${i}`);
    });
    expect((await c.queueLen('/x-queue')).count).to.equal(20);
    const record = loadRecord(join(dir, 'b'));
    expect(record?.namespaces).to.deep.equal([created]);
  });

  it('serves a cluster namespace to the client library through any node', async () => {
    for (let i = 0; i < 3; i += 1) {
      const address = node(i).clientApiAddress;
      const remote = await connect([`${address?.host}:${address?.port}`]);
      try {
        const client = remote.client('shared');
        await client.blobPut('/x', `through ${i}`);
        const got = await client.blobGet('/x');
        expect(new TextDecoder().decode(got.value ?? new Uint8Array())).to.equal(`through ${i}`);
      } finally {
        await remote.close();
      }
    }
  });

  it('refuses a duplicate namespace, an unknown node and a bad replica count with typed errors', async () => {
    const refused = async (promise: Promise<unknown>): Promise<string> => {
      try {
        await promise;
      } catch (error) {
        expect(error).to.be.instanceOf(ClusterError);
        return (error as ClusterError).code;
      }
      throw new Error('expected a ClusterError');
    };
    expect(await refused(cluster(1).createNamespace('shared'))).to.equal('namespace_exists');
    expect(await refused(cluster(1).createNamespace('other', { nodes: ['a', 'zz'] }))).to.equal('unknown_node');
    expect(await refused(cluster(1).createNamespace('other', { replicas: 2 }))).to.equal('invalid');
    expect(await refused(cluster(1).createNamespace('bad name!'))).to.equal('invalid');
  });

  it('closes cluster-port connections that send garbage, and keeps serving', async () => {
    const port = Number(cluster(0).address.split(':')[1]);
    const oversized = new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    const noise = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251);
    const helloLike = new Uint8Array([0, 0, 0, 3, 0x93, 1, 2]);
    for (const bytes of [oversized, noise, helloLike]) expect(await sendGarbage(port, bytes, 8_000)).to.equal(true);
    const client = node(2).client('shared');
    await client.blobPut('/x', 'after garbage');
    expect(new TextDecoder().decode((await node(0).client('shared').blobGet('/x')).value ?? new Uint8Array())).to.equal('after garbage');
  });

  it('a request in flight to the primary when its node dies is answered by the node the client is on (within requestTimeoutMs), and the library\'s write completes on the new primary', async () => {
    const hosts = cluster(0).status().namespaces.find((ns) => ns.name === 'shared')?.nodes ?? [];
    const primary = await node(0).primaryOf('shared');
    expect(primary).to.be.a('number');
    const doomed = nodes.findIndex((n) => n.options.name === hosts[primary as number]);
    doomedIndex = doomed;
    const survivor = node((doomed + 1) % 3);
    const port = survivor.clientApiAddress?.port ?? 0;
    const { client, welcome } = await RawClient.open(port);
    const remote = await connect([`127.0.0.1:${port}`]);
    try {
      expect(welcome.namespaces.find((ns) => ns.name === 'shared')?.replicas).to.equal(3);
      await remote.client('shared').blobPut('/x', 'before the death');
      // The primary's node goes away; 10 ms later a register is sent to the replica it hosted.
      const death = node(doomed).stop();
      await new Promise((resolve) => setTimeout(resolve, 10));
      const sent = performance.now();
      client.send(register(1, 'orphan-1', primary as number, 'shared'));
      const answer = await client.answerTo(1, welcome.requestTimeoutMs + 3_000);
      expect(answer.atMs - sent).to.be.below(welcome.requestTimeoutMs + 1_000);
      expect(['answer', 'error', 'redirect']).to.include(answer.message.type);
      if (answer.message.type === 'error') expect(answer.message.code).to.equal('timeout');
      const put = await remote.client('shared').blobPut('/x', 'after the death');
      expect(put.view).to.be.greaterThan(0);
      await death;
    } finally {
      client.destroy();
      await remote.close();
    }
  });

  it('a node restarting from its data directory welcomes clients only once it serves its namespaces again: the first welcome lists them', async () => {
    // The node stopped by the previous test, restarted on a client port known in advance.
    expect(doomedIndex).to.be.at.least(0);
    const restartName = node(doomedIndex).options.name;
    const port = await freePort();
    const restarting = startNode({ name: restartName, namespaces: [], cluster: { port: 0 }, dataDir: join(dir, restartName), clientApi: { port }, logLevel: 'silent' });
    let first: RawClient | null = null;
    let welcome: WelcomeMessage | null = null;
    try {
      // Knock until the port listens; the hello is then held until the node is ready.
      await eventually('a connection to the restarting node', async () => {
        const opened = await RawClient.open(port).catch(() => null);
        if (opened === null) return false;
        first = opened.client;
        welcome = opened.welcome;
        return true;
      }, 30_000, 5);
      nodes[doomedIndex] = await restarting;
      expect((welcome as WelcomeMessage | null)?.namespaces.map((ns) => ns.name)).to.deep.equal(['shared']);
    } finally {
      (first as RawClient | null)?.destroy();
    }
  });
});

describe('cluster: a cluster secret keeps membership to the members (issue 12)', function () {
  this.timeout(120_000);
  const secret = Uint8Array.from(randomBytes(32));
  const nodes: HaretNode[] = [];
  let dir = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'haret-cluster-secret-'));
    for (const name of ['a', 'b']) {
      nodes.push(await startNode({ name, namespaces: [], cluster: { port: 0, secret }, dataDir: join(dir, name), logLevel: 'silent' }));
    }
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  const cluster = (i: number) => {
    const api = (nodes[i] as HaretNode).cluster;
    if (api === null) throw new Error('no cluster API');
    return api;
  };
  const frame = (value: ClusterFrame): Uint8Array => encodeFrame(encodeClusterFrame(value));
  const join_ = (name: string) => ({ type: 'join', member: { name, clusterAddress: '127.0.0.1:9', clientAddress: null, adminAddress: null, incarnation: 99 } });
  const forgedCreate = { type: 'namespace_created', namespace: { name: 'forged', nodes: ['a', 'a', 'a'] } };

  it('members holding the secret join', async () => {
    expect(await cluster(1).join(cluster(0).address)).to.deep.equal({ node: 'a' });
    await eventually('two members, links up', () => [0, 1].every((i) => cluster(i).status().members.length === 2 && cluster(i).status().members.every((m) => m.link !== 'down')), 20_000);
  });

  it('a caller without the secret gets no join or namespace_created in, whichever name its hello claims', async () => {
    const port = Number(cluster(0).address.split(':')[1]);
    for (const name of ['a', 'b', 'mallory']) {
      const batch = frame({ t: 'batch', b: [{ from: `${name}::host/cluster`, to: 'a::host/cluster', msg: join_(name) }, { from: `${name}::host/cluster`, to: 'a::host/cluster', msg: forgedCreate }] });
      // The handshake of a node without a secret, then the forged messages.
      const plainHello = frame({ t: 'hello', version: 2, node: name, incarnation: 99, info: {} });
      // The secret handshake with a guessed proof, then the forged messages.
      const secretHello = frame({ t: 'hello', version: 2, node: name, incarnation: 99, info: {}, nonce: Uint8Array.from(randomBytes(32)) });
      const proof = frame({ t: 'proof', mac: Uint8Array.from(randomBytes(32)) });
      for (const steps of [[plainHello, batch], [secretHello, proof, batch]]) {
        const answers = await converse(port, steps);
        expect(answers.map((a) => a.t), name).to.not.include('welcome');
        expect(answers.at(-1), name).to.include({ t: 'error' });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(cluster(0).status().members.map((m) => m.name).sort()).to.deep.equal(['a', 'b']);
    expect(cluster(0).status().namespaces).to.deep.equal([]);
    expect(loadRecord(join(dir, 'a'))?.members.map((m) => m.name).sort()).to.deep.equal(['a', 'b']);
    expect(loadRecord(join(dir, 'a'))?.namespaces).to.deep.equal([]);
    expect((nodes[0] as HaretNode).namespaces).to.deep.equal([]);
  });

  it("a member that proved its name speaks only as its own actors, and cluster messages only as its cluster actor", async () => {
    const before = { ...cluster(0).status().counters };
    const evil = await ClusterLinks.start({ nodeName: 'evil', security: { mode: 'secret', secret } }, { onEnvelopes: () => undefined });
    try {
      expect(await evil.dial(cluster(0).address)).to.equal('a');
      // As b's cluster actor (b is connected, evil is not b), and as evil's proxy rather than its cluster actor.
      evil.send('a', { from: 'b::host/cluster', to: 'a::host/cluster', msg: forgedCreate });
      evil.send('a', { from: 'evil::proxy', to: 'a::host/cluster', msg: join_('evil') });
      evil.send('a', { from: 'evil::proxy', to: 'a::host/cluster', msg: forgedCreate });
      await eventually('the refusals counted', () => {
        const counters = cluster(0).status().counters;
        return (counters['refusedIn'] ?? 0) >= (before['refusedIn'] ?? 0) + 1 && (counters['badMessages'] ?? 0) >= (before['badMessages'] ?? 0) + 2;
      }, 10_000);
      expect(cluster(0).status().members.map((m) => m.name).sort()).to.deep.equal(['a', 'b']);
      expect(cluster(0).status().namespaces).to.deep.equal([]);
    } finally {
      await evil.close();
    }
  });
});

/** Writes each frame after the node answered the previous one (or closed); returns the node's frames once it closed. */
async function converse(port: number, steps: readonly Uint8Array[]): Promise<ClusterFrame[]> {
  const socket: Socket = tcpConnect(port, '127.0.0.1');
  const decoder = new FrameDecoder({ frameBytesMax: 1 << 20 });
  const frames: ClusterFrame[] = [];
  let closed = false;
  socket.on('data', (chunk: Buffer) => {
    for (const event of decoder.push(chunk)) {
      if (event.type !== 'frame') continue;
      const decoded = decodeClusterFrame(event.payload);
      if (decoded.ok) frames.push(decoded.frame);
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  try {
    for (const step of steps) {
      if (closed) break;
      const seen = frames.length;
      socket.write(step);
      await eventually('an answer or a close', () => closed || frames.length > seen || step === steps.at(-1), 5_000, 5);
    }
    await eventually('the close', () => closed, 5_000, 5);
    return frames;
  } finally {
    socket.destroy();
  }
}

/** A port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}
