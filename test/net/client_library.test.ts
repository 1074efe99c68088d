/**
 * The client library (src/net/connect.ts) on the one client path: `connect()` always settles,
 * a closed connection fails its waiting calls with `stopped`, the namespaces' own limits come
 * from the welcome, and the library loads only the pure core (no logger, no runtime).
 */

import { expect } from 'chai';
import { createServer, type Server } from 'node:net';
import { dirname, join, relative } from 'node:path';
import { connect } from '../../src/net/index.ts';
import { HaretError, startNode, type HaretNode } from '../../src/node/index.ts';
import { defaultTreeLimits } from '../../src/base/limits.ts';
import { repoRoot as root, runtimeImports } from './import_graph.ts';
import { RawClient } from './raw_client.ts';

function listen(server: Server): Promise<number> {
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done((server.address() as { port: number }).port)));
}

describe('net: the client library', function () {
  this.timeout(60_000);

  it('connect() settles when the node closes before its welcome (a node at its connection limit): `unavailable`, long before connectTimeoutMs', async () => {
    const node = await startNode({ logLevel: 'silent', clientApi: { port: 0, connectionsMax: 1 } });
    const port = node.clientApiAddress?.port ?? 0;
    const { client: occupant } = await RawClient.open(port);
    try {
      const started = performance.now();
      const error = await connect([`127.0.0.1:${port}`], { connectTimeoutMs: 20_000 }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(HaretError).with.property('code', 'unavailable');
      expect((error as HaretError).message).to.match(/overloaded/);
      expect(performance.now() - started).to.be.below(2_000);
    } finally {
      occupant.destroy();
      await node.stop();
    }
  });

  it('connect() settles against a server that closes at once, and one that never answers (at connectTimeoutMs), trying every address', async () => {
    const closer = createServer((socket) => socket.destroy());
    const silent = createServer(() => undefined);
    const closerPort = await listen(closer);
    const silentPort = await listen(silent);
    try {
      const started = performance.now();
      const error = await connect([`127.0.0.1:${closerPort}`, `127.0.0.1:${silentPort}`], { connectTimeoutMs: 500 }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(HaretError).with.property('code', 'unavailable');
      expect((error as HaretError).message).to.match(/closed before the welcome/).and.to.match(/no welcome within 500 ms/);
      expect(performance.now() - started).to.be.within(400, 3_000);
    } finally {
      closer.close();
      silent.close();
    }
  });

  describe('against a node', () => {
    let node: HaretNode;
    let address = '';
    before(async () => {
      node = await startNode({
        logLevel: 'silent',
        namespaces: ['default', { name: 'tiny', config: { treeLimits: { ...defaultTreeLimits, valueBytesMax: 8 } } }],
        supervisor: { maxRestarts: 0, windowMs: 60_000, backoffMinMs: 20, backoffMaxMs: 100, failedCoolDownMs: 3_600_000 },
        clientApi: { port: 0 },
      });
      address = `127.0.0.1:${node.clientApiAddress?.port}`;
    });
    after(async () => {
      await node.stop();
    });

    it('validates each namespace\'s ops with the limits its welcome gave: refused locally, never sent', async () => {
      const remote = await connect([address]);
      try {
        const error = await remote.client('tiny').blobPut('/x', 'nine bytes').catch((e: unknown) => e);
        expect(error).to.be.instanceOf(HaretError).with.property('code', 'too_large');
        expect((error as HaretError).executed).to.equal(false);
        await remote.client('default').create('/ok', 'blob');
        expect((await remote.client('default').blobPut('/ok', 'nine bytes')).version).to.equal(1);
      } finally {
        await remote.close();
      }
    });

    it('an answer too large for a frame settles the call at once as `frame_too_large` (it executed), and the connection goes on', async () => {
      const remote = await connect([address]);
      try {
        const db = remote.client('default');
        await db.create('/huge', 'blob');
        await db.blobPut('/huge', new Uint8Array(1024 * 1024 - 64));
        const started = performance.now();
        const error = await db.multiCas([], Array.from({ length: 5 }, () => ({ type: 'blob_get' as const, path: '/huge' }))).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(HaretError).with.property('code', 'frame_too_large');
        expect((error as HaretError).executed).to.equal(true);
        expect(performance.now() - started).to.be.below(2_000);
        expect((await db.blobSize('/huge')).count).to.equal(1024 * 1024 - 64);
      } finally {
        await remote.close();
      }
    });

    it('close() fails every waiting call with `stopped` (as the embedded client does), at once', async () => {
      // Replicas 0..2 dead or alive, no matter: calls to a group with no quorum wait.
      const remote = await connect([address]);
      const db = remote.client('tiny');
      await db.create('/w', 'blob');
      await node.faults.terminate(node.replicaId('tiny', 1));
      await node.faults.terminate(node.replicaId('tiny', 2));
      const waiting = Array.from({ length: 20 }, () => db.blobGet('/w').catch((e: unknown) => e));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const closed = performance.now();
      await remote.close();
      const errors = await Promise.all(waiting);
      expect(performance.now() - closed).to.be.below(500);
      for (const error of errors) {
        expect(error).to.be.instanceOf(HaretError).with.property('code', 'stopped');
        expect((error as HaretError).executed).to.equal('maybe');
      }
    });
  });

  it('loads only the pure core and the coordination recipes: src/client, src/api, src/tree, src/base, src/watch, src/coord (nothing of src/vr at run time); no logger, no runtime, no node internals', () => {
    const { files, packages } = runtimeImports(join(root, 'src/net/connect.ts'));
    const folders = new Set([...files].map((file) => dirname(relative(root, file))));
    expect([...folders].sort()).to.deep.equal(['src/api', 'src/base', 'src/client', 'src/coord', 'src/net', 'src/tree', 'src/watch']);
    expect([...files].filter((file) => relative(root, file).startsWith('src/net/')).map((file) => relative(root, file)).sort()).to.deep.equal(['src/net/address.ts', 'src/net/connect.ts', 'src/net/framed_socket.ts', 'src/net/tls.ts']);
    for (const forbidden of ['pino', 'piscina', 'comlink', 'node:worker_threads']) expect(packages.has(forbidden), forbidden).to.equal(false);
  });
});
