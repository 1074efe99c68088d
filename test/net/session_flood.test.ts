/**
 * A session flood past the client table's limit, through raw frames on one connection: at the
 * production default (100,000 sessions) a namespace used to wedge for good (every further
 * registration sorted the whole table, on every replica). Now the table evicts the least
 * recently active session in O(1): every registration is answered, the evicted sessions get a
 * typed `session_expired`, the group keeps its view, and the node serves a new client at once.
 */

import { expect } from 'chai';
import { connect } from '../../src/net/index.ts';
import { startNode, type HaretNode } from '../../src/node/index.ts';
import type { NodeMessage } from '../../src/api/wire.ts';
import { RawClient, inWindows, register, treeRequest } from './raw_client.ts';

const tableMax = 100_000;
const sessions = 130_000;

function bodyOf(message: NodeMessage | undefined): { type: string; isNew?: boolean } | null {
  if (message?.type !== 'answer' || message.answer.type !== 'reply') return null;
  return message.answer.body as { type: string; isNew?: boolean };
}

describe('net: a session flood past the client table limit', function () {
  this.timeout(300_000);
  let node: HaretNode;

  before(async () => {
    node = await startNode({ logLevel: 'silent', clientApi: { port: 0 } });
  });

  after(async () => {
    await node?.stop();
  });

  it(`${sessions.toLocaleString('en')} registrations on one connection (over the 100,000-session table): all answered, the oldest evicted, no view change`, async () => {
    const port = node.clientApiAddress?.port ?? 0;
    const { client } = await RawClient.open(port);
    try {
      const answers = await inWindows(client, Array.from({ length: sessions }, (_, i) => register(i + 1, `flood-${i}`)), 1000);
      let registered = 0;
      const others = new Map<string, number>();
      for (const answer of answers.values()) {
        const body = bodyOf(answer);
        if (body?.type === 'registered' && body.isNew === true) registered += 1;
        else {
          const kind = answer?.type === 'error' ? `error ${answer.code}: ${answer.message}` : `${answer?.type} ${JSON.stringify(answer?.type === 'answer' ? { type: answer.answer.type, body } : body)}`;
          others.set(kind, (others.get(kind) ?? 0) + 1);
        }
      }
      expect(registered, `answers other than a new registration: ${JSON.stringify([...others])}`).to.equal(sessions);
      // The least recently active sessions were evicted: a request from one is refused, typed.
      client.send(treeRequest(sessions + 1, 'flood-0', 1, { type: 'stat', path: '/' }));
      expect(bodyOf((await client.answerTo(sessions + 1)).message)?.type).to.equal('session_expired');
      // The most recent one runs.
      client.send(treeRequest(sessions + 2, `flood-${sessions - 1}`, 1, { type: 'stat', path: '/' }));
      expect(bodyOf((await client.answerTo(sessions + 2)).message)?.type).to.equal('tree');
      const inspected = (await node.inspect(node.replicaId('default', 0))) as { clients: number; view: number };
      expect(inspected.clients).to.equal(tableMax);
      const { actors } = await node.status();
      const replicas = actors.filter((a) => a.ns === 'default');
      expect(replicas.map((a) => [a.status, a.view])).to.deep.equal([
        ['normal', 0],
        ['normal', 0],
        ['normal', 0],
      ]);
    } finally {
      client.destroy();
    }
    // A new client is served at once.
    const remote = await connect([`127.0.0.1:${port}`]);
    try {
      await remote.client().create('/after-flood', 'blob');
    } finally {
      await remote.close();
    }
  });
});
