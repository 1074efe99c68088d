/**
 * Every promise of docs/protocol.md, checked by a client that speaks raw frames (what an
 * outside client written from the doc alone sees), against a node on 127.0.0.1:
 * - every request the node accepted gets exactly one answer with its id, within
 *   requestTimeoutMs, even when the replica it went to never answers or dies;
 * - one request per session: a resend supersedes the earlier id, another request is refused;
 * - answers too large for a frame, text that is not UTF-8, nil optional fields, a bad first
 *   message, a graceful stop: each as the doc says.
 */

import { expect } from 'chai';
import { ClientApiServer } from '../../src/net/server.ts';
import { startNode, type HaretNode } from '../../src/node/index.ts';
import { defaultTreeLimits } from '../../src/base/limits.ts';
import type { NodeMessage } from '../../src/api/wire.ts';
import { eventually } from '../runtime/helpers.ts';
import { RawClient, register, treeRequest } from './raw_client.ts';

const requestTimeoutMs = 1_500;
/** Deadlines are swept every 50 ms; a loaded 2-core machine adds its own delays. */
const slackMs = 1_000;

const text = new TextEncoder();

describe('net: the client protocol\'s promises, through raw frames', function () {
  this.timeout(120_000);
  let node: HaretNode;
  let port = 0;
  /** Replica 2 of `default` is dead for good (its supervisor may not restart it): it never answers. */
  const silent = 2;

  before(async () => {
    node = await startNode({
      name: 'promises',
      logLevel: 'silent',
      supervisor: { maxRestarts: 0, windowMs: 60_000, backoffMinMs: 20, backoffMaxMs: 100, failedCoolDownMs: 3_600_000 },
      clientApi: { port: 0, requestTimeoutMs },
    });
    port = node.clientApiAddress?.port ?? 0;
    // Replica 2 is a backup in view 0: the group keeps serving with replicas 0 and 1.
    await node.faults.terminate(node.replicaId('default', silent));
    await eventually('replica 2 marked failed', async () => (await node.status()).actors.find((a) => a.actor === 'default/r2')?.state === 'failed');
  });

  after(async () => {
    await node?.stop();
  });

  it('welcome describes each namespace (replicas, limits) and the connection\'s limits and answer bound', async () => {
    const { client, welcome } = await RawClient.open(port);
    try {
      expect(welcome.node).to.equal('promises');
      expect(welcome.namespaces.map((ns) => [ns.name, ns.replicas])).to.deep.equal([['default', 3]]);
      expect(welcome.namespaces[0]?.limits.valueBytesMax).to.equal(1024 * 1024);
      expect(welcome).to.include({ frameBytesMax: 4_259_840, inFlightMax: 1024, requestTimeoutMs });
    } finally {
      client.destroy();
    }
  });

  it('a request to a replica that never answers gets `timeout` with its id within requestTimeoutMs', async () => {
    const { client } = await RawClient.open(port);
    try {
      const sent = performance.now();
      client.send(register(1, 'silent-1', silent));
      const answer = await client.answerTo(1, requestTimeoutMs + slackMs + 2_000);
      expect(answer.message).to.deep.include({ type: 'error', id: 1, code: 'timeout' });
      expect(answer.atMs - sent).to.be.within(requestTimeoutMs - 50, requestTimeoutMs + slackMs);
      // The same request sent to the primary then runs (a timeout is an unknown outcome, and
      // resending is always safe).
      client.send(register(2, 'silent-1', 0));
      expect((await client.answerTo(2)).message).to.deep.include({ type: 'answer', id: 2 });
      expect(client.allFor(1)).to.have.length(1);
    } finally {
      client.destroy();
    }
  });

  it('the same request sent again while in flight: the earlier id is answered `superseded` at once, the later one gets the answer', async () => {
    const { client } = await RawClient.open(port);
    try {
      // To the silent replica: id 1 would wait for its deadline; id 2 replaces it.
      client.send(register(1, 'twice-1', silent));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const resent = performance.now();
      client.send(register(2, 'twice-1', 0));
      const first = await client.answerTo(1, 2_000);
      expect(first.message).to.deep.include({ type: 'error', id: 1, code: 'superseded' });
      expect(first.atMs - resent).to.be.below(500);
      const second = await client.answerTo(2);
      expect(second.message).to.deep.include({ type: 'answer', id: 2 });
      // Both in one write, to the primary: still exactly one answer per id.
      client.send(treeRequest(3, 'twice-1', 1, { type: 'create', path: '/twice', nodeType: 'queue' }), treeRequest(4, 'twice-1', 1, { type: 'create', path: '/twice', nodeType: 'queue' }));
      expect((await client.answerTo(3)).message).to.deep.include({ type: 'error', code: 'superseded' });
      const created = (await client.answerTo(4)).message;
      expect(created).to.deep.include({ type: 'answer', id: 4 });
      await new Promise((resolve) => setTimeout(resolve, requestTimeoutMs + slackMs));
      for (const id of [1, 2, 3, 4]) expect(client.allFor(id), `id ${id}`).to.have.length(1);
    } finally {
      client.destroy();
    }
  });

  it('two different requests of one session in flight: the second is refused `session_busy` and only the first runs', async () => {
    const { client } = await RawClient.open(port);
    try {
      client.send(register(1, 'busy-1'));
      await client.answerTo(1);
      client.send(treeRequest(2, 'busy-1', 1, { type: 'create', path: '/busy', nodeType: 'queue' }));
      await client.answerTo(2);
      const push = (value: string) => ({ type: 'queue_push' as const, path: '/busy', value: text.encode(value) });
      client.send(treeRequest(3, 'busy-1', 2, push('first')), treeRequest(4, 'busy-1', 3, push('second')));
      expect((await client.answerTo(4)).message).to.deep.include({ type: 'error', id: 4, code: 'session_busy' });
      expect((await client.answerTo(3)).message).to.deep.include({ type: 'answer', id: 3 });
      client.send(treeRequest(5, 'busy-1', 3, { type: 'queue_len', path: '/busy' }));
      const len = (await client.answerTo(5)).message;
      expect(len).to.deep.nested.include({ 'answer.body.outcome.count': 1 });
    } finally {
      client.destroy();
    }
  });

  it('an id reused while in flight is refused `malformed`; the first keeps its own answer', async () => {
    const { client } = await RawClient.open(port);
    try {
      client.send(register(9, 'reuse-1', silent));
      client.send(register(9, 'reuse-2', 0));
      await eventually('two answers for id 9', () => client.allFor(9).length >= 2, requestTimeoutMs + slackMs + 2_000);
      const answers = client.allFor(9);
      expect(answers[0]).to.deep.include({ type: 'error', id: 9, code: 'malformed' });
      expect(answers[1]).to.deep.include({ type: 'error', id: 9, code: 'timeout' });
    } finally {
      client.destroy();
    }
  });

  it('a request number below the session\'s last executed one is answered at once (`stale_request`), not dropped', async () => {
    const { client } = await RawClient.open(port);
    try {
      client.send(register(1, 'stale-1'));
      await client.answerTo(1);
      client.send(treeRequest(2, 'stale-1', 5, { type: 'create', path: '/stale', nodeType: 'blob' }));
      await client.answerTo(2);
      const sent = performance.now();
      client.send(treeRequest(3, 'stale-1', 4, { type: 'stat', path: '/stale' }));
      const answer = await client.answerTo(3, 3_000);
      expect(answer.message).to.deep.nested.include({ type: 'answer', 'answer.body.type': 'stale_request', 'answer.body.lastRequestNum': 5 });
      expect(answer.atMs - sent).to.be.below(1_000);
    } finally {
      client.destroy();
    }
  });

  it('an answer too large for a frame is `frame_too_large` for its id, and the connection keeps serving', async () => {
    const { client } = await RawClient.open(port);
    try {
      client.send(register(1, 'large-1'));
      await client.answerTo(1);
      const mib = new Uint8Array(1024 * 1024 - 64).fill(7);
      client.send(treeRequest(2, 'large-1', 1, { type: 'multi_cas', guards: [], ops: [{ type: 'create', path: '/large', nodeType: 'blob' }, { type: 'blob_put', path: '/large', value: mib }] }));
      expect((await client.answerTo(2)).message).to.deep.include({ type: 'answer' });
      // Five reads of a 1 MiB blob: ~5 MiB of answer, over the 4 MiB + 64 KiB frame limit.
      client.send(treeRequest(3, 'large-1', 2, { type: 'multi_cas', guards: [], ops: Array.from({ length: 5 }, () => ({ type: 'blob_get' as const, path: '/large' })) }));
      const refused = (await client.answerTo(3)).message;
      expect(refused).to.deep.include({ type: 'error', id: 3, code: 'frame_too_large' });
      client.send({ type: 'ping', id: 4 });
      expect((await client.answerTo(4)).message).to.deep.equal({ type: 'pong', id: 4 });
      expect(client.isClosed).to.equal(false);
      expect(client.undecodable).to.equal(0);
    } finally {
      client.destroy();
    }
  });

  it('text that is not UTF-8 is `malformed`: `/v/\\xff` and `/v/\\xfe` never name a node', async () => {
    const { client } = await RawClient.open(port);
    try {
      client.send(register(1, 'utf8-1'));
      await client.answerTo(1);
      const str = (bytes: readonly number[]): number[] => [0xa0 | bytes.length, ...bytes];
      const s = (value: string): number[] => str([...Buffer.from(value)]);
      const create = (id: number, requestNum: number, path: readonly number[]): Uint8Array => {
        const payload = Uint8Array.from([
          0x87, ...s('type'), ...s('request'), ...s('id'), id, ...s('ns'), ...s('default'), ...s('replica'), 0, ...s('clientId'), ...s('utf8-1'), ...s('requestNum'), requestNum,
          ...s('op'), 0x82, ...s('type'), ...s('tree'), ...s('op'), 0x83, ...s('type'), ...s('create'), ...s('path'), ...str(path), ...s('nodeType'), ...s('blob'),
        ]);
        const frame = new Uint8Array(4 + payload.length);
        new DataView(frame.buffer).setUint32(0, payload.length);
        frame.set(payload, 4);
        return frame;
      };
      client.sendRaw(create(2, 1, [0x2f, 0x76, 0x2f, 0xff]));
      client.sendRaw(create(3, 2, [0x2f, 0x76, 0x2f, 0xfe]));
      expect((await client.answerTo(2)).message).to.deep.include({ type: 'error', id: 2, code: 'malformed' });
      expect((await client.answerTo(3)).message).to.deep.include({ type: 'error', id: 3, code: 'malformed' });
      client.send(treeRequest(4, 'utf8-1', 1, { type: 'list', path: '/', recursive: true }));
      const listed = (await client.answerTo(4)).message as Extract<NodeMessage, { type: 'answer' }>;
      const body = listed.answer.type === 'reply' ? listed.answer.body : null;
      const names = body?.type === 'tree' && body.outcome.type === 'list' ? body.outcome.entries.map((e) => e.path) : [];
      expect(names.filter((name) => name.startsWith('/v'))).to.deep.equal([]);
    } finally {
      client.destroy();
    }
  });

  it('nil means absent: `list` with `recursive: nil` lists the directory', async () => {
    const { client } = await RawClient.open(port);
    try {
      client.send(register(1, 'nil-1'));
      await client.answerTo(1);
      const { Packr } = await import('msgpackr');
      const payload = new Packr({ useRecords: false }).pack({ type: 'request', id: 2, ns: 'default', replica: 0, clientId: 'nil-1', requestNum: 1, op: { type: 'tree', op: { type: 'list', path: '/', recursive: null } } });
      const frame = new Uint8Array(4 + payload.length);
      new DataView(frame.buffer).setUint32(0, payload.length);
      frame.set(payload, 4);
      client.sendRaw(frame);
      expect((await client.answerTo(2)).message).to.deep.nested.include({ type: 'answer', 'answer.body.outcome.type': 'list' });
    } finally {
      client.destroy();
    }
  });

  it('a first message that is not a valid hello is answered with an error and the connection is closed', async () => {
    for (const bytes of [Uint8Array.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]), Uint8Array.from([0, 0, 0, 1, 0x90])]) {
      const client = await RawClient.connect(port);
      client.sendRaw(bytes);
      await client.closedWithin(3_000);
      expect(client.received.map((r) => r.message)).to.deep.equal([{ type: 'error', id: null, code: 'malformed', message: client.received[0]?.message.type === 'error' ? client.received[0].message.message : '' }]);
    }
    const request = await RawClient.connect(port);
    request.send(register(1, 'early-1'));
    await request.closedWithin(3_000);
    expect(request.received[0]?.message).to.deep.include({ type: 'error', id: null, code: 'malformed' });
  });

  it('before hello a frame may hold at most 4 KiB: a larger prefix is refused at once, nothing buffered', async () => {
    const clients = await Promise.all(Array.from({ length: 150 }, () => RawClient.connect(port)));
    const rssBefore = process.memoryUsage().rss;
    for (const client of clients) client.sendRaw(Uint8Array.from([0, 0x40, 0, 0, 1, 2, 3])); // announces 4 MiB
    await Promise.all(clients.map((client) => client.closedWithin(5_000)));
    for (const client of clients) expect(client.received[0]?.message).to.deep.include({ type: 'error', id: null, code: 'frame_too_large' });
    expect(process.memoryUsage().rss - rssBefore).to.be.below(64 * 1024 * 1024);
  });
});

describe('net: deadlines, backpressure and graceful stop', function () {
  this.timeout(120_000);

  it('connections that never say hello are closed after helloTimeoutMs and cannot lock clients out', async () => {
    const node = await startNode({ logLevel: 'silent', clientApi: { port: 0, connectionsMax: 64, helloTimeoutMs: 800 } });
    const port = node.clientApiAddress?.port ?? 0;
    const dribblers: RawClient[] = [];
    const timers: NodeJS.Timeout[] = [];
    try {
      for (let i = 0; i < 64; i += 1) {
        const client = await RawClient.connect(port);
        // A frame of 256 bytes announced, then a byte of it every 200 ms: busy enough to
        // defeat an idle timer, never a whole hello.
        client.sendRaw(Uint8Array.from([0, 0, 1, 0]));
        timers.push(setInterval(() => client.sendRaw(Uint8Array.from([0x80])), 200));
        dribblers.push(client);
      }
      const opened = performance.now();
      await Promise.all(dribblers.map((client) => client.closedWithin(5_000)));
      expect(performance.now() - opened).to.be.below(800 + 2_000);
      for (const client of dribblers) expect(client.received[0]?.message).to.deep.include({ type: 'error', code: 'timeout' });
      const { client, welcome } = await RawClient.open(port);
      expect(welcome.node).to.equal('haret');
      client.destroy();
    } finally {
      for (const timer of timers) clearInterval(timer);
      for (const client of dribblers) client.destroy();
      await node.stop();
    }
  });

  it('a client that never reads its answers stops being read; the node\'s memory stays bounded and it serves others', async () => {
    const node = await startNode({ logLevel: 'silent', clientApi: { port: 0, writeBufferBytesMax: 1024 * 1024 } });
    const port = node.clientApiAddress?.port ?? 0;
    const { client } = await RawClient.open(port);
    try {
      const value = new Uint8Array(256 * 1024).fill(1);
      const sessions = 512;
      for (let i = 0; i < sessions; i += 1) client.send(register(i + 1, `slow-${i}`));
      for (let i = 0; i < sessions; i += 1) await client.answerTo(i + 1);
      client.send(treeRequest(100_000, 'slow-0', 1, { type: 'create', path: '/big', nodeType: 'blob' }));
      await client.answerTo(100_000);
      client.send(treeRequest(100_001, 'slow-0', 2, { type: 'blob_put', path: '/big', value }));
      await client.answerTo(100_001);
      client.pause();
      const rssBefore = process.memoryUsage().rss;
      // 512 sessions x 8 reads of 256 KiB: 1 GiB of answers if the node buffered them all.
      let id = 200_000;
      for (let round = 0; round < 8; round += 1) {
        for (let i = 1; i < sessions; i += 1) client.send(treeRequest(id++, `slow-${i}`, round + 1, { type: 'blob_get', path: '/big' }));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const grown = process.memoryUsage().rss - rssBefore;
      const counters = (await node.status()).actors.find((a) => a.actor === 'host/net')?.detail as { pausedReads: number; closedSlowReaders: number };
      expect(counters.pausedReads + counters.closedSlowReaders).to.be.at.least(1);
      expect(grown).to.be.below(256 * 1024 * 1024);
      // Another client is served meanwhile.
      const other = await RawClient.open(port);
      other.client.send(register(1, 'other-1'));
      expect((await other.client.answerTo(1, 5_000)).message).to.deep.include({ type: 'answer' });
      other.client.destroy();
    } finally {
      client.destroy();
      await node.stop();
    }
  });

  it('a graceful stop answers every request in flight `shutting_down`, then says so to the connection and closes it', async () => {
    const node = await startNode({ logLevel: 'silent', supervisor: { maxRestarts: 0, windowMs: 60_000, backoffMinMs: 20, backoffMaxMs: 100, failedCoolDownMs: 3_600_000 }, clientApi: { port: 0, requestTimeoutMs: 30_000 } });
    const port = node.clientApiAddress?.port ?? 0;
    await node.faults.terminate(node.replicaId('default', 2));
    await eventually('replica 2 failed', async () => (await node.status()).actors.find((a) => a.actor === 'default/r2')?.state === 'failed');
    const { client } = await RawClient.open(port);
    client.send(register(1, 'stop-1', 2));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await node.stop();
    await client.closedWithin(3_000);
    const messages = client.received.map((r) => r.message).filter((m) => m.type !== 'welcome');
    expect(messages.map((m) => m.type === 'error' && [m.id, m.code])).to.deep.equal([
      [1, 'shutting_down'],
      [null, 'shutting_down'],
    ]);
  });
});

describe('net: a node that is not ready yet holds hellos instead of welcoming with nothing', function () {
  this.timeout(30_000);

  it('no welcome until ready(); then the welcome lists every namespace, and requests are forwarded', async () => {
    const sent: string[] = [];
    const server = await ClientApiServer.start({ nodeName: 'restarting', namespaces: [], ready: false, send: (to) => void sent.push(to) });
    try {
      const client = await RawClient.connect(server.address().port);
      client.send({ type: 'hello', version: 1 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(client.received).to.deep.equal([]);
      server.addNamespace({ name: 'jobs', replicas: ['jobs/r0', 'jobs/r1', 'jobs/r2'], limits: defaultTreeLimits });
      server.ready();
      const welcome = await client.next((m) => m.type === 'welcome');
      expect(welcome.message.type === 'welcome' && welcome.message.namespaces.map((ns) => ns.name)).to.deep.equal(['jobs']);
      client.send(register(1, 'late-1', 1, 'jobs'));
      await eventually('the request forwarded to the replica it named', () => sent.length === 1);
      expect(sent).to.deep.equal(['jobs/r1']);
      client.destroy();
    } finally {
      await server.close();
    }
  });
});
