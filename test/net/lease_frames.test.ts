/**
 * Leases through raw frames (docs/protocol.md sections 5 and 12), as a client written from the
 * doc alone sees them: grant, ephemeral and sequential creates, keep-alive, the owner rule
 * between two clients (client id host prefixes), revoke deleting the lease's nodes in one op,
 * expiry once keep-alives stop, and malformed lease ops answered with a typed error at once.
 */

import { expect } from 'chai';
import { startNode, type HaretNode } from '../../src/index.ts';
import type { ClientAnswer, ReplyBody } from '../../src/vr/messages.ts';
import type { NodeMessage } from '../../src/api/wire.ts';
import type { OpOutcome, TreeOp } from '../../src/tree/ops.ts';
import { RawClient, register, treeRequest } from './raw_client.ts';

/** The reply body of answer `id`, failing the test on anything else. */
async function replyTo(client: RawClient, id: number): Promise<{ body: ReplyBody; op: number }> {
  const { message } = await client.answerTo(id);
  if (message.type !== 'answer') throw new Error(`expected an answer for ${id}, got ${JSON.stringify(message).slice(0, 300)}`);
  const answer: ClientAnswer = message.answer;
  if (answer.type !== 'reply') throw new Error(`expected a reply for ${id}, got ${answer.type}`);
  return { body: answer.body, op: answer.op };
}

async function outcomeOf(client: RawClient, id: number): Promise<OpOutcome> {
  const { body } = await replyTo(client, id);
  if (body.type !== 'tree' && body.type !== 'rejected') throw new Error(`expected a tree reply for ${id}, got ${body.type}`);
  return body.outcome;
}

/** A session over raw frames: `${host}.1`, its own request numbers and frame ids. */
class Session {
  #id = 0;
  #requestNum = 0;
  readonly client: RawClient;
  readonly clientId: string;
  readonly idBase: number;

  constructor(client: RawClient, clientId: string, idBase: number) {
    this.client = client;
    this.clientId = clientId;
    this.idBase = idBase;
  }

  async open(): Promise<void> {
    this.client.send(register(this.idBase + ++this.#id, this.clientId));
    const { body } = await replyTo(this.client, this.idBase + this.#id);
    expect(body.type).to.equal('registered');
  }

  async run(op: TreeOp): Promise<OpOutcome> {
    const id = this.idBase + ++this.#id;
    this.client.send(treeRequest(id, this.clientId, ++this.#requestNum, op));
    return outcomeOf(this.client, id);
  }
}

describe('net: leases through raw frames', function () {
  this.timeout(60_000);
  let node: HaretNode;
  let alice: RawClient;
  let bob: RawClient;

  before(async () => {
    node = await startNode({ name: 'leases', logLevel: 'silent', clientApi: { port: 0 } });
    const port = node.clientApiAddress?.port ?? 0;
    alice = (await RawClient.open(port)).client;
    bob = (await RawClient.open(port)).client;
  });

  after(async () => {
    alice?.destroy();
    bob?.destroy();
    await node?.stop();
  });

  it('grant, ephemeral and sequential creates, keep-alive; another client can neither keep alive nor revoke nor attach; revoke deletes every node in one op', async () => {
    const a = new Session(alice, 'alicehost.1', 1000);
    const b = new Session(bob, 'bobhost.1', 2000);
    await a.open();
    await b.open();
    const granted = await a.run({ type: 'lease_grant', ttlMs: 5_000 });
    expect(granted).to.include({ type: 'lease', ttlMs: 5_000, nodes: 0 });
    const id = granted.type === 'lease' ? granted.id : -1;
    const first = await a.run({ type: 'create', path: '/svc/worker-', nodeType: 'blob', lease: id, sequential: true });
    const second = await a.run({ type: 'create', path: '/svc/worker-', nodeType: 'blob', lease: id, sequential: true });
    expect(first).to.deep.equal({ type: 'ok', version: 0, path: '/svc/worker-0000000000' });
    expect(second).to.deep.equal({ type: 'ok', version: 0, path: '/svc/worker-0000000001' });
    expect(await a.run({ type: 'lease_keepalive', ids: [id] })).to.deep.equal({ type: 'lease_kept', alive: [true] });
    // Bob's client id has another host prefix: the lease is not his.
    expect(await b.run({ type: 'lease_keepalive', ids: [id] })).to.deep.equal({ type: 'lease_kept', alive: [false] });
    expect(await b.run({ type: 'lease_revoke', id })).to.deep.equal({ type: 'error', error: { code: 'lease_not_owned', id } });
    expect(await b.run({ type: 'create', path: '/svc/intruder', nodeType: 'blob', lease: id })).to.deep.equal({ type: 'error', error: { code: 'lease_not_owned', id } });
    const revoked = await a.run({ type: 'lease_revoke', id });
    expect(revoked).to.deep.equal({ type: 'lease', id, ttlMs: 5_000, nodes: 2 });
    expect(await a.run({ type: 'list', path: '/svc', recursive: false })).to.deep.include({ type: 'list', entries: [] });
    expect(await a.run({ type: 'lease_revoke', id })).to.deep.equal({ type: 'error', error: { code: 'no_such_lease', id } });
  });

  it('a lease whose keep-alives stop expires with its nodes, no sooner than its TTL', async () => {
    const a = new Session(alice, 'alicehost.2', 3000);
    await a.open();
    const granted = await a.run({ type: 'lease_grant', ttlMs: 600 });
    const id = granted.type === 'lease' ? granted.id : -1;
    await a.run({ type: 'create', path: '/eph/x', nodeType: 'set', lease: id });
    const kept = performance.now();
    expect(await a.run({ type: 'lease_keepalive', ids: [id] })).to.deep.equal({ type: 'lease_kept', alive: [true] });
    let goneAfter = 0;
    for (;;) {
      const stat = await a.run({ type: 'stat', path: '/eph/x' });
      if (stat.type === 'error') {
        expect(stat.error.code).to.equal('does_not_exist');
        goneAfter = performance.now() - kept;
        break;
      }
      if (performance.now() - kept > 10_000) throw new Error('the lease never expired');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(goneAfter, 'never before its TTL since the keep-alive was sent').to.be.at.least(600);
    expect(await a.run({ type: 'lease_keepalive', ids: [id] })).to.deep.equal({ type: 'lease_kept', alive: [false] });
  });

  it('malformed lease ops are answered at once with a typed error and change nothing', async () => {
    const a = new Session(alice, 'alicehost.3', 4000);
    await a.open();
    const bad: unknown[] = [
      { type: 'lease_grant', ttlMs: -5 },
      { type: 'lease_grant', ttlMs: 10 ** 15 },
      { type: 'lease_keepalive', ids: [] },
      { type: 'lease_keepalive', ids: Array.from({ length: 1_001 }, (_, i) => i + 1) },
      { type: 'lease_revoke', id: -1 },
      { type: 'create', path: '/d', nodeType: 'directory', lease: 1 },
      { type: 'multi_cas', guards: [], ops: [{ type: 'lease_revoke', id: 1 }] },
    ];
    let id = 4900;
    for (const op of bad) {
      id += 1;
      alice.send(treeRequest(id, 'alicehost.3', 99, op as TreeOp));
      const { message } = await alice.answerTo(id, 5_000);
      const described = JSON.stringify(message).slice(0, 200);
      // The node refuses the frame before it reaches a replica (docs/protocol.md: error malformed / invalid_request).
      expect(isRefusal(message), described).to.equal(true);
    }
    expect(await a.run({ type: 'list', path: '/', recursive: false })).to.not.deep.include({ entries: [{ name: 'd' }] });
  });
});

function isRefusal(message: NodeMessage): boolean {
  if (message.type === 'error') return true;
  return message.type === 'answer' && message.answer.type === 'reply' && message.answer.body.type === 'rejected';
}
