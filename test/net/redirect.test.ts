/**
 * `redirect`: a node cut off from every replica of a namespace sends the client to the node
 * hosting its primary, and the client library reconnects there and finishes the call.
 */

import { expect } from 'chai';
import { connect as tcpConnect } from 'node:net';
import { FrameDecoder } from '../../src/api/frame.ts';
import { decodeNodeMessage, defaultWireLimits, encodeClientFrame, protocolVersion, type NodeMessage } from '../../src/api/wire.ts';
import { connect } from '../../src/net/index.ts';
import { ClientApiServer } from '../../src/net/server.ts';
import { startNode, type HaretNode } from '../../src/node/index.ts';
import { defaultTreeLimits } from '../../src/base/limits.ts';

describe('net: redirect', function () {
  this.timeout(60_000);
  let node: HaretNode;
  let cutOff: ClientApiServer;
  let target = '';
  const sent: string[] = [];

  before(async () => {
    node = await startNode({ name: 'served', logLevel: 'silent', clientApi: { port: 0 } });
    const address = node.clientApiAddress;
    target = `${address?.host}:${address?.port}`;
    // A node that knows `default` but reaches none of its replicas.
    cutOff = await ClientApiServer.start({
      nodeName: 'cut-off',
      namespaces: [{ name: 'default', replicas: ['default/r0', 'default/r1', 'default/r2'], limits: defaultTreeLimits }],
      send: (to) => void sent.push(to),
      locate: () => ({ reachable: false, clientAddress: target }),
    });
  });

  after(async () => {
    await cutOff.close();
    await node.stop();
  });

  it('answers redirect with the primary node\'s address and forwards nothing', async () => {
    const messages = await new Promise<NodeMessage[]>((resolve) => {
      const socket = tcpConnect(cutOff.address().port, '127.0.0.1');
      const frames = new FrameDecoder({ frameBytesMax: defaultWireLimits.frameBytesMax });
      const out: NodeMessage[] = [];
      socket.on('connect', () => {
        socket.write(encodeClientFrame({ type: 'hello', version: protocolVersion }));
        socket.write(encodeClientFrame({ type: 'request', id: 7, ns: 'default', replica: 0, clientId: 'c1', requestNum: 0, op: { type: 'register' } }));
      });
      socket.on('data', (chunk: Buffer) => {
        for (const event of frames.push(chunk)) {
          if (event.type !== 'frame') continue;
          const decoded = decodeNodeMessage(event.payload);
          if (decoded.ok) out.push(decoded.message);
          if (out.length === 2) {
            socket.destroy();
            resolve(out);
          }
        }
      });
    });
    expect(messages[0]?.type).to.equal('welcome');
    expect(messages[1]).to.deep.equal({ type: 'redirect', id: 7, ns: 'default', replica: 0, address: target });
    expect(sent).to.deep.equal([]);
    expect(cutOff.counters.redirects).to.equal(1);
  });

  it('the client library follows it: the call completes on the node it was sent to', async () => {
    const remote = await connect([`127.0.0.1:${cutOff.address().port}`]);
    try {
      expect(remote.node).to.equal('cut-off');
      const client = remote.client('default');
      await client.create('/r', 'blob');
      await client.blobPut('/r', 'redirected');
      expect(remote.node).to.equal('served');
      const got = await node.client().blobGet('/r');
      expect(new TextDecoder().decode(got.value ?? new Uint8Array())).to.equal('redirected');
    } finally {
      await remote.close();
    }
  });
});
