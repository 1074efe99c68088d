/**
 * Issue 12, the client and admin ports: auth tokens (checked in hello, a typed
 * `unauthenticated` and a close otherwise), TLS with a CA the client names, and an admin port
 * that idle or hostile connections cannot lock the operator out of. Every wait is bounded.
 */

import { expect } from 'chai';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { FrameDecoder } from '../../src/api/frame.ts';
import { decodeAdminAnswer, encodeAdminMessage, type AdminAnswer, type AdminRequest } from '../../src/api/admin_wire.ts';
import { AdminServer, type AdminBackend } from '../../src/net/admin.ts';
import { AdminClient } from '../../src/net/admin_client.ts';
import { connect } from '../../src/net/index.ts';
import { HaretError, startNode, type HaretNode } from '../../src/node/index.ts';
import { makeTestCa, type TestCa } from './certs.ts';
import { RawClient, register } from './raw_client.ts';

const token = 'correct horse battery staple';

/** Rejects after `ms`: every await on the network in this file is raced against one. */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

describe('net: the client port with an auth token', function () {
  this.timeout(60_000);
  let node: HaretNode;
  let port = 0;
  let address = '';

  before(async () => {
    node = await startNode({ logLevel: 'silent', clientApi: { port: 0, authToken: token } });
    port = node.clientApiAddress?.port ?? 0;
    address = `127.0.0.1:${port}`;
  });
  after(async () => {
    await node.stop();
  });

  for (const [label, hello] of [
    ['without a token', { type: 'hello', version: 1 }],
    ['with a wrong token', { type: 'hello', version: 1, token: 'correct horse battery stapler' }],
    ['with a token of another length', { type: 'hello', version: 1, token: 'x' }],
  ] as const) {
    it(`a hello ${label} gets error {id: nil, code: unauthenticated}, then the close; a request sent behind it is never answered`, async () => {
      const client = await RawClient.connect(port);
      try {
        client.send(hello, register(1, 'intruder'));
        await client.closedWithin(3_000);
        expect(client.received.map((r) => r.message)).to.have.length(1);
        expect(client.received[0]?.message).to.deep.include({ type: 'error', id: null, code: 'unauthenticated' });
      } finally {
        client.destroy();
      }
    });
  }

  it('a hello with the right token is welcomed and served', async () => {
    const { client, welcome } = await RawClient.open(port, token);
    try {
      expect(welcome.namespaces.map((ns) => ns.name)).to.deep.equal(['default']);
      client.send(register(1, 'operator'));
      expect((await client.answerTo(1, 10_000)).message).to.include({ type: 'answer', id: 1 });
    } finally {
      client.destroy();
    }
  });

  it('the client library: a wrong or missing token rejects connect() with HaretError unauthenticated at once (no retry loop)', async () => {
    for (const options of [{ token: 'wrong token' }, {}]) {
      const started = performance.now();
      const error = await within(5_000, connect([address], { ...options, connectTimeoutMs: 20_000 }).catch((e: unknown) => e), 'connect');
      expect(error).to.be.instanceOf(HaretError).with.property('code', 'unauthenticated');
      expect((error as HaretError).executed).to.equal(false);
      expect(performance.now() - started).to.be.below(2_000);
    }
  });

  it('the client library with the right token works', async () => {
    const remote = await within(10_000, connect([address], { token }), 'connect');
    try {
      const db = remote.client('default');
      await within(10_000, db.create('/authed', 'blob'), 'create');
      await within(10_000, db.blobPut('/authed', 'yes'), 'put');
      expect(Buffer.from((await within(10_000, db.blobGet('/authed'), 'get')).value).toString()).to.equal('yes');
    } finally {
      await remote.close();
    }
  });
});

describe('net: the client library when the token is refused after it connected', function () {
  this.timeout(60_000);

  it('a node restarted with another token: waiting and later calls fail `unauthenticated`, and the library stops reconnecting', async () => {
    const first = await startNode({ logLevel: 'silent', clientApi: { port: 0, authToken: token } });
    const port = first.clientApiAddress?.port ?? 0;
    const remote = await within(10_000, connect([`127.0.0.1:${port}`], { token }), 'connect');
    let second: HaretNode | null = null;
    try {
      await within(10_000, remote.client('default').create('/rotated', 'blob'), 'create');
      await first.stop();
      const waiting = remote.client('default').blobGet('/rotated').catch((e: unknown) => e);
      second = await startNode({ logLevel: 'silent', clientApi: { port, authToken: 'the rotated token' } });
      const error = await within(15_000, waiting, 'the waiting call');
      expect(error).to.be.instanceOf(HaretError).with.property('code', 'unauthenticated');
      const started = performance.now();
      const later = await within(1_000, remote.client('default').blobGet('/rotated').catch((e: unknown) => e), 'a later call');
      expect(later).to.be.instanceOf(HaretError).with.property('code', 'unauthenticated');
      expect((later as HaretError).executed).to.equal(false);
      expect(performance.now() - started).to.be.below(200);
    } finally {
      await remote.close();
      await second?.stop();
    }
  });
});

describe('net: the client port over TLS', function () {
  this.timeout(120_000);
  let ca: TestCa;
  let otherCa: TestCa;
  let node: HaretNode;
  let port = 0;
  let address = '';

  before(async () => {
    ca = makeTestCa();
    otherCa = makeTestCa('another CA');
    node = await startNode({ logLevel: 'silent', clientApi: { port: 0, tls: ca.issue('n1'), authToken: token } });
    port = node.clientApiAddress?.port ?? 0;
    address = `127.0.0.1:${port}`;
  });
  after(async () => {
    await node?.stop();
    ca?.dispose();
    otherCa?.dispose();
  });

  it('the library with the CA that signed the node\'s certificate works', async () => {
    const remote = await within(10_000, connect([address], { token, tls: { ca: ca.cert } }), 'connect');
    try {
      const db = remote.client('default');
      await within(10_000, db.create('/tls', 'blob'), 'create');
      await within(10_000, db.blobPut('/tls', 'secret'), 'put');
      expect(Buffer.from((await within(10_000, db.blobGet('/tls'), 'get')).value).toString()).to.equal('secret');
    } finally {
      await remote.close();
    }
  });

  it('the library with another CA fails to connect, quickly, saying the certificate was not accepted', async () => {
    const started = performance.now();
    const error = await within(10_000, connect([address], { token, tls: { ca: otherCa.cert }, connectTimeoutMs: 20_000 }).catch((e: unknown) => e), 'connect');
    expect(error).to.be.instanceOf(HaretError).with.property('code', 'unavailable');
    expect((error as HaretError).message).to.match(/TLS: the node's certificate was not accepted/);
    expect(performance.now() - started).to.be.below(3_000);
  });

  it('TLS with the right CA still needs the token', async () => {
    const error = await within(10_000, connect([address], { tls: { ca: ca.cert } }).catch((e: unknown) => e), 'connect');
    expect(error).to.be.instanceOf(HaretError).with.property('code', 'unauthenticated');
  });

  it('a plaintext client is never welcomed (the connection closes)', async () => {
    const client = await RawClient.connect(port);
    try {
      client.send({ type: 'hello', version: 1, token });
      await client.closedWithin(10_000);
      expect(client.received.filter((r) => r.message.type === 'welcome')).to.deep.equal([]);
    } finally {
      client.destroy();
    }
  });

  it('a raw TLS client that trusts the CA is welcomed', async () => {
    const client = await RawClient.connect(port, '127.0.0.1', { ca: ca.cert });
    try {
      client.send({ type: 'hello', version: 1, token });
      expect((await client.next((m) => m.type === 'welcome', 10_000)).message).to.include({ type: 'welcome' });
    } finally {
      client.destroy();
    }
  });
});

// ---- the admin port ---------------------------------------------------------------------

/** A node as the admin server sees it, recording every cluster change asked of it. */
function fakeNode(): { backend: AdminBackend; changes: string[] } {
  const changes: string[] = [];
  const backend: AdminBackend = {
    namespaces: ['default'],
    options: { name: 'n1', secretish: 'the whole configuration' },
    cluster: {
      status: () => ({ members: ['n1'] }),
      join: (address) => {
        changes.push(`join ${address}`);
        return Promise.resolve({ joined: address });
      },
      createNamespace: (name) => {
        changes.push(`create ${name}`);
        return Promise.resolve({ created: name });
      },
    },
    status: () => Promise.resolve({ actors: [], workers: [], serving: true, problems: [] }),
    primaryOf: () => Promise.resolve(0),
    replicaId: (ns, index) => `${ns}/r${index}`,
    inspect: () => Promise.resolve(null),
    snapshot: (ns) => {
      changes.push(`snapshot ${ns}`);
      return Promise.resolve({ ns, op: 0, file: new Uint8Array(0) });
    },
  };
  return { backend, changes };
}

/** The admin protocol spoken by hand: sends any request, records every answer and when the node closed. */
class RawAdmin {
  readonly answers: AdminAnswer[] = [];
  readonly closed: Promise<number>;
  readonly openedMs = performance.now();
  readonly #socket: Socket;
  readonly #decoder = new FrameDecoder({ frameBytesMax: 1 << 24 });
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      for (const event of this.#decoder.push(chunk)) {
        if (event.type !== 'frame') continue;
        const answer = decodeAdminAnswer(event.payload);
        if (answer !== null) this.answers.push(answer);
      }
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const waiter of waiters) waiter();
    });
    this.closed = new Promise((resolve) => socket.on('close', () => resolve(performance.now())));
  }

  static connect(port: number, options: { readonly localAddress?: string; readonly ca?: string } = {}): Promise<RawAdmin> {
    return new Promise((resolve, reject) => {
      const local = options.localAddress === undefined ? {} : { localAddress: options.localAddress };
      const socket = options.ca === undefined ? tcpConnect({ port, host: '127.0.0.1', ...local }) : tlsConnect({ port, host: '127.0.0.1', ca: options.ca, ...local });
      socket.once(options.ca === undefined ? 'connect' : 'secureConnect', () => resolve(new RawAdmin(socket)));
      socket.once('error', reject);
    });
  }

  send(request: AdminRequest): void {
    this.#socket.write(encodeAdminMessage(request));
  }

  /** The answer with this id (or an id-less one), within `timeoutMs`. */
  async answer(id: number | null, timeoutMs = 5_000): Promise<AdminAnswer> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.answers.find((a) => a.id === id);
      if (found !== undefined) return found;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no admin answer to ${id} within ${timeoutMs} ms (have ${JSON.stringify(this.answers)})`);
      await within(left, new Promise<void>((resolve) => this.#waiters.push(resolve)), 'answer').catch(() => undefined);
    }
  }

  closedWithin(timeoutMs: number): Promise<number> {
    return within(timeoutMs, this.closed, 'admin connection close');
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

describe('net: a TLS port bounds its sockets, handshaking ones included', function () {
  this.timeout(60_000);

  it('connections that never finish the TLS handshake cannot pile up past connectionsMax plus the refusal room; a client gets in once they go', async () => {
    const ca = makeTestCa();
    // connectionsMax 2: at most 2 + 64 sockets; the handshake deadline (10 s) is far away.
    const node = await startNode({ logLevel: 'silent', clientApi: { port: 0, tls: ca.issue('n1'), connectionsMax: 2, helloTimeoutMs: 10_000 } });
    const stalled: Socket[] = [];
    try {
      const port = node.clientApiAddress?.port ?? 0;
      const closed: boolean[] = [];
      for (let i = 0; i < 90; i++) {
        const socket = tcpConnect(port, '127.0.0.1');
        const index = closed.push(false) - 1;
        socket.on('error', () => undefined);
        socket.on('close', () => (closed[index] = true));
        stalled.push(socket);
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // Dropped at once, long before the 10 s handshake deadline: 90 - 66 of them.
      expect(closed.filter(Boolean).length).to.be.at.least(24);
      for (const socket of stalled) socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const remote = await within(10_000, connect([`127.0.0.1:${port}`], { tls: { ca: ca.cert } }), 'connect');
      await remote.close();
    } finally {
      for (const socket of stalled) socket.destroy();
      await node.stop();
      ca.dispose();
    }
  });
});

describe('net: the admin port with a token', function () {
  this.timeout(60_000);
  let admin: AdminServer;
  let changes: string[];
  let port = 0;

  beforeEach(async () => {
    const made = fakeNode();
    changes = made.changes;
    admin = await AdminServer.start(made.backend, { authToken: token, helloTimeoutMs: 1_000, idleTimeoutMs: 5_000 });
    port = admin.address().port;
  });
  afterEach(async () => {
    await admin.close();
  });

  const requests: readonly AdminRequest[] = [
    { type: 'status', id: 1 },
    { type: 'config', id: 2 },
    { type: 'namespace_create', id: 3, ns: 'stolen', replicas: 3, nodes: [] },
    { type: 'cluster_join', id: 4, address: '203.0.113.9:7401' },
  ];
  for (const request of requests) {
    it(`${request.type} without hello: unauthenticated, the close, and nothing changed`, async () => {
      const raw = await RawAdmin.connect(port);
      try {
        raw.send(request);
        raw.send({ type: 'cluster_join', id: 9, address: '203.0.113.9:7401' });
        await raw.closedWithin(3_000);
        expect(raw.answers).to.have.length(1);
        expect(raw.answers[0]).to.include({ type: 'error', id: request.id, code: 'unauthenticated' });
        expect(changes).to.deep.equal([]);
      } finally {
        raw.destroy();
      }
    });
  }

  for (const [label, hello] of [
    ['without a token', { type: 'hello', id: 0 }],
    ['with a wrong token', { type: 'hello', id: 0, token: 'guess' }],
  ] as const) {
    it(`hello ${label}: unauthenticated and the close; namespace_create behind it is not run`, async () => {
      const raw = await RawAdmin.connect(port);
      try {
        raw.send(hello);
        raw.send({ type: 'namespace_create', id: 1, ns: 'stolen', replicas: 3, nodes: [] });
        await raw.closedWithin(3_000);
        expect(raw.answers).to.have.length(1);
        expect(raw.answers[0]).to.include({ type: 'error', id: 0, code: 'unauthenticated' });
        expect(changes).to.deep.equal([]);
      } finally {
        raw.destroy();
      }
    });
  }

  it('AdminClient without the token or with a wrong one: HaretError unauthenticated', async () => {
    for (const options of [{}, { token: 'guess' }]) {
      const error = await within(5_000, AdminClient.open(`127.0.0.1:${port}`, options).catch((e: unknown) => e), 'open');
      expect(error).to.be.instanceOf(HaretError).with.property('code', 'unauthenticated');
    }
  });

  it('AdminClient with the token: reads and cluster changes are served', async () => {
    const client = await within(5_000, AdminClient.open(`127.0.0.1:${port}`, { token }), 'open');
    try {
      expect(await within(5_000, client.request({ type: 'config' }), 'config')).to.deep.include({ type: 'ok', value: { name: 'n1', secretish: 'the whole configuration' } });
      expect(await within(5_000, client.request({ type: 'namespace_create', ns: 'jobs', replicas: 3, nodes: [] }), 'create')).to.include({ type: 'ok' });
      expect(await within(5_000, client.request({ type: 'cluster_join', address: '127.0.0.1:7401' }), 'join')).to.include({ type: 'ok' });
      expect(changes).to.deep.equal(['create jobs', 'join 127.0.0.1:7401']);
    } finally {
      client.close();
    }
  });

  it('a connection that sends nothing is closed after helloTimeoutMs (1 s), with unauthenticated', async () => {
    const raw = await RawAdmin.connect(port);
    try {
      const closedAt = await raw.closedWithin(5_000);
      expect(closedAt - raw.openedMs).to.be.within(900, 4_000);
      expect(raw.answers[0]).to.include({ type: 'error', id: null, code: 'unauthenticated' });
    } finally {
      raw.destroy();
    }
  });
});

describe('net: the admin port cannot be locked by idle connections', function () {
  this.timeout(60_000);

  it('64 idle connections from one address: the 9th and later are refused at once, another address is served meanwhile, the 8 held close after helloTimeoutMs, then the operator is served from that address too', async () => {
    const { backend } = fakeNode();
    const helloTimeoutMs = 1_500;
    const admin = await AdminServer.start(backend, { authToken: token, helloTimeoutMs, connectionsMax: 64 });
    const port = admin.address().port;
    const idle: RawAdmin[] = [];
    try {
      for (let i = 0; i < 64; i += 1) idle.push(await RawAdmin.connect(port));
      const held = idle.slice(0, 8);
      const refused = idle.slice(8);
      // The 56 beyond the per-address limit get their refusal and close long before the hello deadline.
      const refusedAt = await within(5_000, Promise.all(refused.map((raw) => raw.closed)), 'refusals');
      for (const [index, raw] of refused.entries()) {
        expect(raw.answers[0], `connection ${index + 8}`).to.include({ type: 'error', id: null, code: 'failed' });
        expect(raw.answers[0]?.type === 'error' ? raw.answers[0].message : '').to.match(/too many admin connections from/);
        expect((refusedAt[index] ?? Infinity) - raw.openedMs).to.be.below(helloTimeoutMs);
      }
      // Meanwhile an operator from another address is served at once.
      const operator = await RawAdmin.connect(port, { localAddress: '127.0.0.2' });
      operator.send({ type: 'hello', id: 0, token });
      operator.send({ type: 'status', id: 1 });
      expect(await operator.answer(1, 2_000)).to.include({ type: 'ok', id: 1 });
      operator.destroy();
      // The 8 held ones never said hello: closed after the deadline, not before.
      const heldAt = await within(5_000, Promise.all(held.map((raw) => raw.closed)), 'hello deadline');
      for (const [index, raw] of held.entries()) {
        expect((heldAt[index] ?? Infinity) - raw.openedMs, `held connection ${index}`).to.be.within(helloTimeoutMs - 100, helloTimeoutMs + 3_000);
        expect(raw.answers[0]).to.include({ type: 'error', code: 'unauthenticated' });
      }
      // And the operator is served from the flooding address as well.
      const client = await within(5_000, AdminClient.open(`127.0.0.1:${port}`, { token }), 'open');
      expect(await within(5_000, client.request({ type: 'status' }), 'status')).to.include({ type: 'ok' });
      client.close();
      expect(admin.counters.refusedPerAddress).to.equal(56);
    } finally {
      for (const raw of idle) raw.destroy();
      await admin.close();
    }
  });

  it('without a token the first request must still come within helloTimeoutMs, and an idle connection is closed after idleTimeoutMs', async () => {
    const { backend } = fakeNode();
    const admin = await AdminServer.start(backend, { helloTimeoutMs: 500, idleTimeoutMs: 1_000 });
    const port = admin.address().port;
    const silent = await RawAdmin.connect(port);
    const talker = await RawAdmin.connect(port);
    try {
      // No token configured: a request without hello is still answered (older clients).
      talker.send({ type: 'namespaces', id: 1 });
      expect(await talker.answer(1, 2_000)).to.deep.include({ type: 'ok', id: 1, value: ['default'] });
      const silentClosed = await silent.closedWithin(5_000);
      expect(silentClosed - silent.openedMs).to.be.within(400, 4_000);
      expect(silent.answers[0]).to.include({ type: 'error', id: null, code: 'timeout' });
      const talkerClosed = await talker.closedWithin(8_000);
      expect(talkerClosed - talker.openedMs).to.be.within(900, 7_000);
    } finally {
      silent.destroy();
      talker.destroy();
      await admin.close();
    }
  });

  it('defaults: 8 connections per address, a 5 s hello deadline, 30 s idle (not minutes)', async () => {
    const { backend } = fakeNode();
    const admin = await AdminServer.start(backend, {});
    const port = admin.address().port;
    const raws: RawAdmin[] = [];
    try {
      for (let i = 0; i < 9; i += 1) raws.push(await RawAdmin.connect(port));
      const ninth = raws[8] as RawAdmin;
      await ninth.closedWithin(3_000);
      expect(ninth.answers[0]).to.include({ type: 'error', code: 'failed' });
      expect(admin.counters.refusedPerAddress).to.equal(1);
    } finally {
      for (const raw of raws) raw.destroy();
      await admin.close();
    }
  });
});

describe('net: the admin port over TLS', function () {
  this.timeout(60_000);
  let ca: TestCa;
  let otherCa: TestCa;

  before(() => {
    ca = makeTestCa();
    otherCa = makeTestCa('another CA');
  });
  after(() => {
    ca?.dispose();
    otherCa?.dispose();
  });

  it('AdminClient with the CA and the token is served; with another CA it fails to connect; plaintext gets nothing', async () => {
    const { backend, changes } = fakeNode();
    const admin = await AdminServer.start(backend, { tls: ca.issue('n1'), authToken: token, helloTimeoutMs: 2_000 });
    const address = `127.0.0.1:${admin.address().port}`;
    try {
      const client = await within(5_000, AdminClient.open(address, { token, tls: { ca: ca.cert } }), 'open');
      expect(await within(5_000, client.request({ type: 'namespace_create', ns: 'jobs', replicas: 3, nodes: [] }), 'create')).to.include({ type: 'ok' });
      client.close();
      expect(changes).to.deep.equal(['create jobs']);

      const error = await within(5_000, AdminClient.open(address, { token, tls: { ca: otherCa.cert } }).catch((e: unknown) => e), 'open');
      expect(error).to.be.instanceOf(Error);
      expect((error as Error).message).to.match(/TLS: the node's certificate was not accepted/);

      const plain = await RawAdmin.connect(admin.address().port);
      plain.send({ type: 'hello', id: 0, token });
      plain.send({ type: 'namespace_create', id: 1, ns: 'plain', replicas: 3, nodes: [] });
      await plain.closedWithin(5_000);
      expect(plain.answers).to.deep.equal([]);
      expect(changes).to.deep.equal(['create jobs']);

      const raw = await RawAdmin.connect(admin.address().port, { ca: ca.cert });
      raw.send({ type: 'hello', id: 0, token });
      expect(await raw.answer(0, 5_000)).to.include({ type: 'ok', id: 0 });
      raw.destroy();
    } finally {
      await admin.close();
    }
  });
});


