/**
 * The cluster's address rules (src/node/cluster.ts), without sockets: senders are qualified
 * with the node's name on the way out, a node's own prefix is stripped on the way in, and a
 * link cannot deliver to actors that are not here nor speak for another node. Cluster messages
 * come only from another node's cluster actor, and what they carry is bounded (issue 12).
 */

import { expect } from 'chai';
import type { Envelope } from '../../runtime/envelope.ts';
import { makeLogger } from '../../runtime/logger.ts';
import type { ClusterLinks } from '../../src/net/cluster_link.ts';
import { ClusterError } from '../../src/api/admin_wire.ts';
import { Cluster, nodeThread, remoteThreadOf, type ClusterNodeHooks } from '../../src/node/cluster.ts';
import { localReplicasMax, membersMax } from '../../src/node/cluster_store.ts';

type Sent = { node: string; envelope: Envelope };

function fixture() {
  const sent: Sent[] = [];
  const received: Envelope[] = [];
  const started: string[] = [];
  const sinks = new Map<string, (batch: readonly Envelope[]) => void>();
  const routes = new Map<string, string>();
  const links = {
    dial: async () => 'b',
    forget: () => undefined,
    send: (node: string, envelope: Envelope) => void sent.push({ node, envelope }),
    isUp: () => true,
  } as unknown as ClusterLinks;
  const local = new Set(['proxy', 'host/net', 'host/cluster']);
  const hooks: ClusterNodeHooks = {
    receive: (batch) => void received.push(...batch),
    send: (envelope) => {
      const thread = routes.get(envelope.to) ?? remoteThreadOf(envelope.to);
      if (thread !== undefined) sinks.get(thread)?.([envelope]);
    },
    isLocal: (actor) => local.has(actor),
    addRemoteRoutes: (entries) => {
      for (const [actor, thread] of entries) routes.set(actor, thread);
    },
    setLink: (thread, sink) => void sinks.set(thread, sink),
    hasLocalNamespace: () => false,
    startNamespace: async (namespace) => {
      started.push(namespace.name);
      namespace.nodes.forEach((node, index) => {
        if (node === 'a') local.add(`${namespace.name}/r${index}`);
      });
    },
  };
  const cluster = new Cluster({ name: 'a', clusterAddress: '127.0.0.1:1', clientAddress: null, adminAddress: null, incarnation: 1 }, links, hooks, null, makeLogger('silent', {}));
  return { cluster, sent, received, sinks, routes, started };
}

describe('cluster routing rules', () => {
  it('names the link of a qualified id, and nothing else', () => {
    expect(remoteThreadOf('b::proxy')).to.equal(nodeThread('b'));
    expect(remoteThreadOf('ns/r1')).to.equal(undefined);
    expect(remoteThreadOf('::proxy')).to.equal(undefined);
  });

  it('places a namespace, routes remote replicas to their node and qualifies local senders', async () => {
    const { cluster, sent, sinks, routes } = fixture();
    // Members arrive through a state message from b (as after a join).
    cluster.receive([
      {
        from: 'b::host/cluster',
        to: 'host/cluster',
        msg: {
          type: 'state',
          members: [
            { name: 'b', clusterAddress: '127.0.0.1:2', clientAddress: null, adminAddress: null },
            { name: 'c', clusterAddress: '127.0.0.1:3', clientAddress: null, adminAddress: null },
          ],
          namespaces: [],
        },
      },
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(cluster.status().members.map((m) => m.name).sort()).to.deep.equal(['a', 'b', 'c']);
    const created = await cluster.createNamespace('ns', 3, ['a', 'b', 'c']);
    expect(created.nodes).to.deep.equal(['a', 'b', 'c']);
    expect(routes.get('ns/r1')).to.equal(nodeThread('b'));
    expect(routes.get('ns/r2')).to.equal(nodeThread('c'));
    expect(routes.has('ns/r0')).to.equal(false);
    sent.length = 0;
    // A replica keeps its name; a node-local sender gets the node's prefix.
    sinks.get(nodeThread('b'))?.([
      { from: 'ns/r0', to: 'ns/r1', msg: 1 },
      { from: 'proxy', to: 'ns/r1', msg: 2 },
    ]);
    expect(sent).to.deep.equal([
      { node: 'b', envelope: { from: 'ns/r0', to: 'ns/r1', msg: 1 } },
      { node: 'b', envelope: { from: 'a::proxy', to: 'ns/r1', msg: 2 } },
    ]);
  });

  it('accepts from a link only envelopes for local actors whose sender belongs to the linked node', async () => {
    const { cluster, received } = fixture();
    await cluster.createNamespace('ns', 3, ['a', 'a', 'a']).catch(() => null);
    cluster.onLinkEnvelopes('b', [
      { from: 'b::proxy', to: 'a::proxy', msg: 'answer for our proxy' },
      { from: 'b::proxy', to: 'host/net', msg: 'unqualified local target' },
      { from: 'c::proxy', to: 'proxy', msg: 'b speaking for c' },
      { from: 'b::proxy', to: 'd::proxy', msg: 'relay through us' },
      { from: 'b::proxy', to: 'timer', msg: 'not an actor here' },
      { from: 'ns/r1', to: 'proxy', msg: 'a replica b does not host' },
    ]);
    expect(received).to.deep.equal([
      { from: 'b::proxy', to: 'proxy', msg: 'answer for our proxy' },
      { from: 'b::proxy', to: 'host/net', msg: 'unqualified local target' },
    ]);
    expect(cluster.status().counters['refusedIn']).to.equal(4);
  });

  it('keeps the newest incarnation of a member: an old record gossiped back does not replace it', async () => {
    const { cluster } = fixture();
    const state = (clientAddress: string, incarnation: number) => ({
      from: 'b::host/cluster',
      to: 'host/cluster',
      msg: { type: 'state', members: [{ name: 'b', clusterAddress: '127.0.0.1:2', clientAddress, adminAddress: null, incarnation }], namespaces: [] },
    });
    const clientOfB = () => cluster.status().members.find((m) => m.name === 'b')?.clientAddress;
    cluster.receive([state('127.0.0.1:10', 1)]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(clientOfB()).to.equal('127.0.0.1:10');
    cluster.receive([state('127.0.0.1:11', 2)]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(clientOfB()).to.equal('127.0.0.1:11');
    cluster.receive([state('127.0.0.1:10', 1)]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(clientOfB()).to.equal('127.0.0.1:11');
  });

  const member = (name: string) => ({ name, clusterAddress: `127.0.0.1:${name.length + 10}`, clientAddress: null, adminAddress: null, incarnation: 1 });
  const turn = () => new Promise((resolve) => setImmediate(resolve));

  it("takes cluster messages only from another node's cluster actor: not its proxy, not a replica, not as this node", async () => {
    const { cluster } = fixture();
    const state = { type: 'state', members: [member('c')], namespaces: [] };
    cluster.receive([
      { from: 'b::proxy', to: 'host/cluster', msg: state },
      { from: 'ns/r0', to: 'host/cluster', msg: state },
      { from: 'a::host/cluster', to: 'host/cluster', msg: state },
      { from: 'b::host/cluster', to: 'host/cluster', msg: { type: 'join', member: member('c') } },
    ]);
    await turn();
    expect(cluster.status().members.map((m) => m.name)).to.deep.equal(['a']);
    expect(cluster.status().counters['badMessages']).to.equal(4);
    cluster.receive([{ from: 'b::host/cluster', to: 'host/cluster', msg: state }]);
    await turn();
    expect(cluster.status().members.map((m) => m.name).sort()).to.deep.equal(['a', 'c']);
  });

  it('refuses a state over the caps whole, without walking it', async () => {
    const { cluster } = fixture();
    const members = Array.from({ length: membersMax + 1 }, (_, i) => member(`m${i}`));
    const namespaces = Array.from({ length: 65 }, (_, i) => ({ name: `ns${i}`, nodes: ['a'] }));
    cluster.receive([
      { from: 'b::host/cluster', to: 'host/cluster', msg: { type: 'state', members, namespaces: [] } },
      { from: 'b::host/cluster', to: 'host/cluster', msg: { type: 'state', members: [], namespaces } },
    ]);
    await turn();
    expect(cluster.status().members).to.have.length(1);
    expect(cluster.status().namespaces).to.deep.equal([]);
    expect(cluster.status().counters['badMessages']).to.equal(2);
  });

  it(`a peer's namespaces start at most ${localReplicasMax} replicas here; past the cap they are refused, and the creator refuses such a placement`, async () => {
    const { cluster, started } = fixture();
    const nine = Array.from({ length: 9 }, () => 'a');
    // Today's caps alone would let one peer start 64 x 9 replicas here.
    for (let i = 0; i < 64; i += 1) cluster.receive([{ from: 'b::host/cluster', to: 'host/cluster', msg: { type: 'namespace_created', namespace: { name: `flood${i}`, nodes: nine } } }]);
    await turn();
    const hosted = Math.floor(localReplicasMax / 9);
    expect(started).to.have.length(hosted);
    expect(cluster.status().counters['refusedNamespaces']).to.equal(64 - hosted);
    // Placements elsewhere still fit; the creator refuses one that would pass the cap here.
    cluster.receive([{ from: 'b::host/cluster', to: 'host/cluster', msg: { type: 'namespace_created', namespace: { name: 'elsewhere', nodes: ['b', 'c', 'd'] } } }]);
    await turn();
    expect(started).to.include('elsewhere');
    let failure: unknown = null;
    await cluster.createNamespace('more', 9, ['a']).catch((error: unknown) => (failure = error));
    expect(failure).to.be.instanceOf(ClusterError);
    expect((failure as ClusterError).code).to.equal('invalid');
    expect(started).to.not.include('more');
  });
});
