/**
 * Watches over TCP (docs/protocol.md section 11), end to end on 127.0.0.1: a client speaking
 * raw frames subscribes and sees the changes of writes made through the API, progress,
 * resumption from an op, `compacted` once the history moved on, the node's own refusals
 * (`invalid`, `too_many`), and a closed connection's watches freed at the replicas; then the
 * client library: `for await` over `conn.client().watch(...)` sees every put once, in order,
 * and `break` frees the watch everywhere.
 */

import { expect } from 'chai';
import type { NodeMessage } from '../../src/api/wire.ts';
import { connect } from '../../src/net/index.ts';
import { startNode, type HaretNode } from '../../src/node/index.ts';
import type { WatchEvents, WatchNotice } from '../../src/watch/messages.ts';
import { RawClient } from './raw_client.ts';

const text = new TextEncoder();
const historyOpsMax = 16;
const watchesPerConnectionMax = 4;

function isNotice(message: NodeMessage, watchId: string): message is WatchNotice {
  return (message.type === 'watch_events' || message.type === 'watch_progress' || message.type === 'watch_ended') && message.watchId === watchId;
}

/** Every notice of `watchId` the client received so far, in order. */
function noticesOf(client: RawClient, watchId: string): WatchNotice[] {
  return client.received.map((received) => received.message).filter((message): message is WatchNotice => isNotice(message, watchId));
}

async function nextNotice<T extends WatchNotice['type']>(client: RawClient, watchId: string, type: T, accept: (notice: Extract<WatchNotice, { type: T }>) => boolean = () => true, timeoutMs = 10_000): Promise<Extract<WatchNotice, { type: T }>> {
  const received = await client.next((message) => isNotice(message, watchId) && message.type === type && accept(message as Extract<WatchNotice, { type: T }>), timeoutMs);
  return received.message as Extract<WatchNotice, { type: T }>;
}

/** Polls `probe` until it returns true (or fails after `timeoutMs`). */
async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('net: watches over TCP', function () {
  this.timeout(120_000);
  let node: HaretNode;
  let port: number;
  const clients: RawClient[] = [];

  async function open(): Promise<RawClient> {
    const { client } = await RawClient.open(port);
    clients.push(client);
    return client;
  }

  /** Watches the replicas of `default` serve now, by the replicas' own status reports. */
  async function replicaWatches(): Promise<number> {
    const { actors } = await node.status();
    let total = 0;
    for (const actor of actors) {
      if (actor.ns !== 'default') continue;
      const watches = (actor.detail as { watches?: unknown } | null)?.watches;
      if (typeof watches !== 'number') throw new Error(`replica ${actor.actor} reports no watch count`);
      total += watches;
    }
    return total;
  }

  /** The TCP server's counters, from its actor's status. */
  async function serverCounters(): Promise<Record<string, number>> {
    const { actors } = await node.status();
    const net = actors.find((actor) => actor.role === 'client_api');
    if (net === undefined) throw new Error('no client_api actor');
    return net.detail as Record<string, number>;
  }

  before(async () => {
    node = await startNode({
      logLevel: 'silent',
      name: 'watch-node',
      clientApi: { port: 0, watchesPerConnectionMax },
      watch: { historyOpsMax, progressTicks: 20 },
    });
    port = node.clientApiAddress?.port ?? 0;
    expect(port).to.be.greaterThan(0);
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.destroy();
  });

  after(async () => {
    await node.stop();
  });

  it('raw frames: a subscribe sees the puts made through the API, in order, with values, and progress between them', async () => {
    const db = node.client();
    await db.create('/raw/x', 'blob');
    const client = await open();
    client.send({ type: 'watch_subscribe', ns: 'default', replica: 0, watchId: 'a1', path: '/raw', recursive: true, fromOp: null, values: true });
    const start = await nextNotice(client, 'a1', 'watch_progress');
    const ops: number[] = [];
    for (const value of ['one', 'two', 'three']) ops.push((await db.blobPut('/raw/x', value)).op);
    const other = await db.create('/elsewhere', 'blob');
    expect(ops[0]).to.be.greaterThan(start.through);
    const last = await nextNotice(client, 'a1', 'watch_events', (notice) => notice.op === ops[2]);
    client.send({ type: 'watch_ack', ns: 'default', replica: 0, watchId: 'a1', through: last.op });
    // Progress beyond the last change: a write elsewhere moves the position without events.
    const progress = await nextNotice(client, 'a1', 'watch_progress', (notice) => notice.through >= other.op);
    expect(progress.through).to.be.at.least(other.op);

    const notices = noticesOf(client, 'a1');
    const events = notices.filter((notice): notice is WatchEvents => notice.type === 'watch_events');
    expect(events.map((notice) => notice.op)).to.deep.equal(ops);
    for (const [i, notice] of events.entries()) {
      expect(notice.more).to.equal(false);
      const blob = notice.events.find((event) => event.path === '/raw/x');
      expect(blob).to.deep.include({ kind: 'changed', nodeType: 'blob', version: i + 1 });
      expect(blob?.value).to.deep.equal(text.encode(['one', 'two', 'three'][i]));
      // Its ancestor under the watched path changed too; nothing outside it is reported.
      expect(notice.events.map((event) => event.path)).to.have.members(['/raw', '/raw/x']);
    }
    // Numbered 1, 2, 3, ... in the order sent (nothing was lost between the replica and here).
    expect(notices.map((notice) => notice.seq)).to.deep.equal(notices.map((_, i) => i + 1));
    // Every message is complete through its position: events strictly after the previous
    // position, progress never before it (a quiet watch hears the same position again).
    let position = -1;
    for (const notice of notices) {
      if (notice.type === 'watch_events') expect(notice.op).to.be.greaterThan(position);
      if (notice.type === 'watch_progress') expect(notice.through).to.be.at.least(position);
      position = notice.type === 'watch_events' ? notice.op : notice.type === 'watch_progress' ? notice.through : position;
    }
    client.send({ type: 'watch_cancel', ns: 'default', replica: 0, watchId: 'a1' });
  });

  it('raw frames: fromOp resumes from the history at another replica, with exactly the changes after it', async () => {
    const db = node.client();
    const created = await db.create('/resume/x', 'blob');
    const first = await db.blobPut('/resume/x', 'first');
    const second = await db.blobPut('/resume/x', 'second');
    const client = await open();
    client.send({ type: 'watch_subscribe', ns: 'default', replica: 1, watchId: 'r1', path: '/resume/x', recursive: false, fromOp: created.op, values: false });
    const start = await nextNotice(client, 'r1', 'watch_progress');
    expect(start.through).to.equal(created.op);
    await nextNotice(client, 'r1', 'watch_events', (notice) => notice.op === second.op);
    const events = noticesOf(client, 'r1').filter((notice): notice is WatchEvents => notice.type === 'watch_events');
    expect(events.map((notice) => notice.op)).to.deep.equal([first.op, second.op]);
    expect(events.map((notice) => notice.events)).to.deep.equal([
      [{ kind: 'changed', path: '/resume/x', nodeType: 'blob', version: 1 }],
      [{ kind: 'changed', path: '/resume/x', nodeType: 'blob', version: 2 }],
    ]);
  });

  it('raw frames: fromOp 0 after the history moved on is compacted, with the oldest retained and current ops', async () => {
    const db = node.client();
    await db.create('/churn', 'queue');
    let last = 0;
    for (let i = 0; i < historyOpsMax + 4; i += 1) last = (await db.queuePush('/churn', `v${i}`)).op;
    const client = await open();
    client.send({ type: 'watch_subscribe', ns: 'default', replica: 0, watchId: 'c1', path: '/', recursive: true, fromOp: 0, values: false });
    const ended = await nextNotice(client, 'c1', 'watch_ended');
    expect(ended.reason).to.equal('compacted');
    expect(ended.oldestOp).to.be.greaterThan(0);
    expect(ended.currentOp).to.be.at.least(last);
    expect(noticesOf(client, 'c1')).to.have.length(1);
  });

  it('raw frames: malformed subscribes are answered watch_ended invalid under their own watch ids; the connection stays open', async () => {
    const client = await open();
    const before = await serverCounters();
    const base = { type: 'watch_subscribe', ns: 'default', replica: 0, path: '/a', recursive: false, fromOp: null, values: false } as const;
    client.send(
      { ...base, watchId: 'bad-path', path: 'no-slash' },
      { ...base, watchId: 'dots', path: '/a/../b' },
      { ...base, watchId: 'absurd', fromOp: 2 ** 50 },
      { ...base, watchId: 'unknown-ns', ns: 'nope' },
      { ...base, watchId: 'replica-99', replica: 99 },
    );
    const expected: readonly [string, string][] = [
      ['bad-path', 'absolute'],
      ['dots', 'path'],
      ['absurd', 'fromOp'],
      ['unknown-ns', 'nope'],
      ['replica-99', 'replica 99'],
    ];
    for (const [watchId, text] of expected) {
      const ended = await nextNotice(client, watchId, 'watch_ended');
      // The node's own refusal of a subscribe is that subscription's notice 1.
      expect(ended, watchId).to.deep.include({ reason: 'invalid', oldestOp: 0, currentOp: 0, seq: 1 });
      expect(ended.message, watchId).to.include(text);
    }
    // A watch id that cannot be read names no watch: a connection-level malformed, and the connection goes on.
    client.send({ ...base, watchId: 'has space' });
    const error = await client.next((message) => message.type === 'error');
    expect(error.message).to.deep.include({ id: null, code: 'malformed' });
    client.send({ type: 'ping', id: 5 });
    expect((await client.answerTo(5)).message.type).to.equal('pong');
    // Acks and cancels for watches the connection does not have are ignored.
    client.send({ type: 'watch_ack', ns: 'default', replica: 0, watchId: 'never', through: 3 }, { type: 'watch_cancel', ns: 'default', replica: 0, watchId: 'never' });
    client.send({ type: 'ping', id: 6 });
    await client.answerTo(6);
    expect(client.received.filter((received) => received.message.type === 'watch_ended')).to.have.length(expected.length);
    const after = await serverCounters();
    expect((after['watchesRefusedInvalid'] ?? 0) - (before['watchesRefusedInvalid'] ?? 0)).to.equal(expected.length);
    expect((after['strayWatchRequests'] ?? 0) - (before['strayWatchRequests'] ?? 0)).to.equal(2);
  });

  it('raw frames: past watchesPerConnectionMax a subscribe is answered too_many; a cancel makes room', async () => {
    const client = await open();
    const subscribe = (watchId: string): void => client.send({ type: 'watch_subscribe', ns: 'default', replica: 2, watchId, path: `/limit/${watchId}`, recursive: false, fromOp: null, values: false });
    for (let i = 0; i < watchesPerConnectionMax; i += 1) subscribe(`t${i}`);
    for (let i = 0; i < watchesPerConnectionMax; i += 1) await nextNotice(client, `t${i}`, 'watch_progress');
    subscribe('over');
    const refused = await nextNotice(client, 'over', 'watch_ended');
    expect(refused).to.deep.include({ reason: 'too_many', seq: 1 });
    // Another connection has its own allowance.
    const other = await open();
    other.send({ type: 'watch_subscribe', ns: 'default', replica: 2, watchId: 't0', path: '/limit/other', recursive: false, fromOp: null, values: false });
    await nextNotice(other, 't0', 'watch_progress');
    client.send({ type: 'watch_cancel', ns: 'default', replica: 2, watchId: 't0' });
    subscribe('again');
    await nextNotice(client, 'again', 'watch_progress');
    expect(noticesOf(client, 'again').some((notice) => notice.type === 'watch_ended')).to.equal(false);
  });

  it('raw frames: a second subscribe with an open watch id ends both (invalid) and frees the replica\'s watch', async () => {
    await until('no watches left from earlier tests', async () => (await replicaWatches()) === 0);
    const client = await open();
    const subscribe = (): void => client.send({ type: 'watch_subscribe', ns: 'default', replica: 0, watchId: 'dup', path: '/dup', recursive: false, fromOp: null, values: false });
    subscribe();
    await nextNotice(client, 'dup', 'watch_progress');
    subscribe();
    const ended = await nextNotice(client, 'dup', 'watch_ended');
    expect(ended.reason).to.equal('invalid');
    expect(ended.message).to.include('already open');
    await until('the replica to free the watch', async () => (await replicaWatches()) === 0);
    expect((await serverCounters())['watchesOpen']).to.equal(0);
  });

  it('a connection that closes frees its watches at the replicas', async () => {
    await until('no watches left from earlier tests', async () => (await replicaWatches()) === 0);
    const client = await open();
    for (const [i, replica] of [0, 1, 2].entries()) {
      client.send({ type: 'watch_subscribe', ns: 'default', replica, watchId: `k${i}`, path: '/', recursive: true, fromOp: null, values: false });
    }
    for (let i = 0; i < 3; i += 1) await nextNotice(client, `k${i}`, 'watch_progress');
    expect(await replicaWatches()).to.equal(3);
    expect((await serverCounters())['watchesOpen']).to.equal(3);
    client.destroy();
    await until('the replicas to free the closed connection\'s watches', async () => (await replicaWatches()) === 0);
    expect((await serverCounters())['watchesOpen']).to.equal(0);
  });

  it('client library: for await sees every put exactly once, in order, and break frees the watch', async () => {
    await until('no watches left from earlier tests', async () => (await replicaWatches()) === 0);
    const conn = await connect([`127.0.0.1:${port}`]);
    try {
      const db = conn.client();
      await db.create('/lib/a', 'blob');
      // Get, then watch from the op read: a backup's commit may lag the primary's, so without
      // fromOp the watch could start before this create and report it.
      const created = await db.create('/lib/deeper/b', 'blob');
      const puts = 40;
      const seen: { kind: string; op: number; events: readonly { path: string; version: number; value?: Uint8Array | null }[] }[] = [];
      let lastPutOp = Number.POSITIVE_INFINITY;
      let started: () => void = () => undefined;
      const startedPromise = new Promise<void>((resolve) => (started = resolve));
      const reading = (async () => {
        for await (const batch of db.watch('/lib', { recursive: true, values: true, fromOp: created.op })) {
          seen.push(batch);
          if (batch.kind === 'start') started();
          if (batch.op >= lastPutOp) break;
        }
      })();
      await startedPromise;
      expect(await replicaWatches()).to.equal(1);
      expect(conn.watchesOpen).to.equal(1);
      const ops: number[] = [];
      // Writes through both paths: this connection and the embedding API.
      for (let i = 0; i < puts; i += 1) ops.push((await (i % 2 === 0 ? db : node.client()).blobPut(i % 5 === 4 ? '/lib/deeper/b' : '/lib/a', `v${i}`)).op);
      lastPutOp = ops[ops.length - 1] as number;
      // The reader may be waiting for the next batch: progress arrives periodically.
      await reading;
      const eventBatches = seen.filter((batch) => batch.kind === 'events');
      expect(seen[0]).to.deep.include({ kind: 'start', op: created.op });
      expect(eventBatches.map((batch) => batch.op)).to.deep.equal(ops);
      // Events strictly after the previous position; progress never before it (a heartbeat
      // repeats the position: the last events may arrive before lastPutOp is known, and then a
      // progress through the same op ends the loop).
      for (let i = 1; i < seen.length; i += 1) {
        const batch = seen[i] as (typeof seen)[number];
        const previous = (seen[i - 1] as (typeof seen)[number]).op;
        const order = JSON.stringify(seen.map((b) => [b.kind, b.op]));
        if (batch.kind === 'events') expect(batch.op, order).to.be.greaterThan(previous);
        else expect(batch.op, order).to.be.at.least(previous);
      }
      for (const [i, batch] of eventBatches.entries()) {
        const path = i % 5 === 4 ? '/lib/deeper/b' : '/lib/a';
        const event = batch.events.find((candidate) => candidate.path === path);
        expect(event?.value, `put ${i}`).to.deep.equal(text.encode(`v${i}`));
      }
      // break cancelled it: the connection, the node and the replica forget it.
      expect(conn.watchesOpen).to.equal(0);
      await until('the replica to free the watch after break', async () => (await replicaWatches()) === 0);
      await until('the server to forget the watch', async () => (await serverCounters())['watchesOpen'] === 0);
    } finally {
      await conn.close();
    }
  });

  it('client library: close ends an open watch with stopped', async () => {
    const conn = await connect([`127.0.0.1:${port}`]);
    const stream = conn.client().watch('/closing');
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).value).to.deep.include({ kind: 'start' });
    await conn.close();
    const ended = await iterator.next().catch((error: unknown) => error);
    expect(ended).to.have.property('code', 'stopped');
    await until('the replicas to free the closed connection\'s watch', async () => (await replicaWatches()) === 0);
  });

  it('a connection that does not read has its watches ended lagging, not its notices buffered', async () => {
    // Its own node: a small output bound, and replicas that send far past it without acks.
    const slow = await startNode({
      logLevel: 'silent',
      name: 'slow-node',
      clientApi: { port: 0, writeBufferBytesMax: 256 * 1024 },
      watch: { bufferBytesMax: 256 * 1024 * 1024, valueBytesMax: 64 * 1024 },
    });
    let client: RawClient | null = null;
    try {
      const db = slow.client();
      await db.create('/big', 'blob');
      client = (await RawClient.open(slow.clientApiAddress?.port ?? 0)).client;
      client.send({ type: 'watch_subscribe', ns: 'default', replica: 0, watchId: 'slow', path: '/big', recursive: false, fromOp: null, values: true });
      await nextNotice(client, 'slow', 'watch_progress');
      client.pause();
      const value = new Uint8Array(60 * 1024).fill(7);
      // 24 MiB of notices: far more than the kernel's socket buffers and the node's bound.
      for (let i = 0; i < 400; i += 1) await db.blobPut('/big', value.map((byte) => byte + (i % 100)));
      client.resume();
      const ended = await nextNotice(client, 'slow', 'watch_ended', () => true, 30_000);
      expect(ended.reason).to.equal('lagging');
      // Everything relayed arrived, numbered 1, 2, 3, ...; the node's own end takes the next number.
      const notices = noticesOf(client, 'slow');
      expect(notices.at(-1)).to.equal(ended);
      expect(notices.map((notice) => notice.seq)).to.deep.equal(notices.map((_, i) => i + 1));
      const { actors } = await slow.status();
      const net = actors.find((actor) => actor.role === 'client_api')?.detail as Record<string, number>;
      expect(net['watchesLagging']).to.equal(1);
      expect(net['watchesOpen']).to.equal(0);
      // The connection itself goes on.
      client.send({ type: 'ping', id: 1 });
      await client.answerTo(1, 30_000);
    } finally {
      client?.destroy();
      await slow.stop();
    }
  });
});
