/**
 * Watches over TCP on a three-process cluster (issue 14, "Tests: Real workers and TCP"): three
 * `haret start` members with data directories host namespace `w` (replica i on node n<i+1>).
 * Eight watchers (exact and recursive, values on and off) run over one client-library
 * connection to node n1, through a tapping TCP forwarder that reads the client's frames (so
 * the test knows which replica each watch subscribed at) and can cut the connection; four
 * writers write through a connection to the other nodes. Then:
 *   1. SIGKILL of the node (other than n1) whose replica serves the most watchers; it restarts;
 *   2. the watchers' connection is cut (both sockets destroyed): the library reconnects, to
 *      the next address, and resumes every watch by itself;
 *   3. SIGKILL of the node the watchers' connection is on now; it restarts;
 *   4. SIGKILL of the primary's node (a view change); it restarts.
 * Every watcher must see every committed change to its paths exactly once, in order: the
 * versions of each path are exactly 0..final, at the ops the writers' results report, with the
 * values written; no watch ends.
 */

import { expect } from 'chai';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { FrameDecoder } from '../../src/api/frame.ts';
import { decodeClientMessage } from '../../src/api/wire.ts';
import { defaultTreeLimits } from '../../src/base/limits.ts';
import type { RemoteConnection } from '../../src/net/index.ts';
import { HaretError } from '../../src/node/index.ts';
import { admin, adminStatus, Cluster, connectWithin, namespaceClient, runScenario, waitFor, type Member } from '../durability/processes.ts';
import { PathWriter, Recorder, runProblems } from '../node/watch_check.ts';

const ns = 'w';

/**
 * A TCP forwarder on 127.0.0.1 in front of one node's client port. It decodes what the client
 * sends, to learn at which replica each watch (`w.<n>`, the library's ids) last subscribed,
 * and `cut()` destroys every connection through it, both sides.
 */
class Tap {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  /** Watch number n -> replica index of its latest subscribe. */
  readonly replicaOf = new Map<number, number>();
  subscribes = 0;
  cuts = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async open(upstreamPort: number): Promise<Tap> {
    let tap: Tap | null = null;
    const server = createServer((client) => {
      if (tap === null) client.destroy();
      else tap.#accept(client, upstreamPort);
    });
    tap = new Tap(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return tap;
  }

  get address(): string {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('the tap does not listen');
    return `127.0.0.1:${address.port}`;
  }

  #accept(client: Socket, upstreamPort: number): void {
    const upstream = tcpConnect(upstreamPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    this.#pairs.add(pair);
    const frames = new FrameDecoder({ frameBytesMax: 64 * 1024 * 1024 });
    const lookup = (): { replicas: number; tree: typeof defaultTreeLimits } => ({ replicas: 3, tree: defaultTreeLimits });
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      for (const event of frames.push(chunk)) {
        if (event.type !== 'frame') continue;
        const decoded = decodeClientMessage(event.payload, lookup);
        if (!decoded.ok || decoded.message.type !== 'watch_subscribe') continue;
        const n = Number(decoded.message.watchId.split('.')[1]);
        this.replicaOf.set(n, decoded.message.replica);
        this.subscribes += 1;
      }
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.#pairs.delete(pair);
    };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  }

  /** Destroys every connection through the tap (the client sees its socket closed). */
  cut(): void {
    this.cuts += 1;
    for (const [client, upstream] of [...this.#pairs]) {
      client.destroy();
      upstream.destroy();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

describe('net: watches on a three-process cluster', function () {
  this.timeout(240_000);

  it('watchers over a connection to n1: SIGKILL of the serving node, a cut connection, SIGKILL of the node the watchers are on, then of the primary: every change exactly once, in order', async () => {
    const report: Record<string, unknown> = {};
    let watchConn: RemoteConnection | null = null;
    let writeConn: RemoteConnection | null = null;
    let tap: Tap | null = null;
    const recorders: Recorder[] = [];
    const writers: PathWriter[] = [];
    await runScenario('haret-watch-cluster-', report, async (dir, procs, started) => {
      const cluster = await Cluster.create(procs, dir);
      await cluster.start('n1');
      await Promise.all([cluster.start('n2', [cluster.clusterAddress('n1')]), cluster.start('n3', [cluster.clusterAddress('n1')])]);
      await cluster.linked(20_000);
      const created = (await admin(cluster.adminAddress('n1'), { type: 'namespace_create', ns, replicas: 3, nodes: ['n1', 'n2', 'n3'] })) as { nodes: string[] };
      expect(created.nodes).to.deep.equal(['n1', 'n2', 'n3']);
      const replicaNormal = async (member: Member): Promise<boolean> => {
        const actor = `${ns}/r${created.nodes.indexOf(member.name)}`;
        return (await adminStatus(cluster.adminAddress(member.name))).find((line) => line.actor === actor)?.status === 'normal';
      };
      await waitFor('every replica normal', async () => (await Promise.all(cluster.members.map(replicaNormal))).every(Boolean), 30_000, 100);
      report['formedMs'] = Math.round(performance.now() - started);

      const n1 = cluster.member('n1');
      tap = await Tap.open(n1.clientPort);
      const [a1, a2, a3] = cluster.clientAddresses() as [string, string, string];
      watchConn = await connectWithin([tap.address, a2, a3], 10_000);
      writeConn = await connectWithin([a2, a3, a1], 10_000);
      expect(watchConn.node).to.equal('n1');
      const watchClient = await namespaceClient(watchConn, ns, 20_000);
      const writeClient = await namespaceClient(writeConn, ns, 20_000);
      await waitFor('/k created', () => writeClient.create('/k', 'directory').then(() => true, (error: unknown) => error instanceof HaretError && error.code === 'already_exists'), 20_000, 200);

      const specs = [
        { name: 'k-recursive-values', path: '/k', recursive: true, values: true },
        { name: 'k-recursive', path: '/k', recursive: true, values: false },
        { name: 'root-recursive', path: '/', recursive: true, values: false },
        { name: 'k0-exact-values', path: '/k/0', recursive: false, values: true },
        { name: 'k1-exact', path: '/k/1', recursive: false, values: false },
        { name: 'k2-exact-values', path: '/k/2', recursive: false, values: true },
        { name: 'k3-exact', path: '/k/3', recursive: false, values: false },
        { name: 'k-recursive-values-2', path: '/k', recursive: true, values: true },
      ];
      for (const spec of specs) recorders.push(new Recorder(spec.name, watchClient.watch(spec.path, { recursive: spec.recursive, values: spec.values })));
      await waitFor('every watcher started', () => recorders.every((recorder) => recorder.position !== null), 15_000, 20);
      // The library numbers its subscriptions w.1, w.2, ... in the order they were opened; the
      // last spec repeats the first, so it shares w.1's subscription (src/client/watch_registry.ts).
      expect([...tap.replicaOf.keys()].sort((x, y) => x - y)).to.deep.equal(specs.slice(0, -1).map((_, i) => i + 1));

      for (let i = 0; i < 4; i++) writers.push(new PathWriter(`/k/${i}`));
      for (const writer of writers) writer.start(writeClient);
      const ackedTotal = (): number => writers.reduce((sum, writer) => sum + writer.acked.length, 0);
      const lastAckedOp = (): number => Math.max(...writers.map((writer) => writer.acked.at(-1)?.op ?? 0));
      /** Waits until every watcher is past what was acknowledged now; returns the ms since `since`. */
      const watchersPast = async (what: string, since = performance.now()): Promise<number> => {
        const op = lastAckedOp();
        await waitFor(`${what}: every watcher past op ${op}`, () => recorders.every((recorder) => (recorder.position ?? -1) >= op), 60_000, 20);
        return Math.round(performance.now() - since);
      };
      const morePuts = async (count: number): Promise<void> => {
        const target = ackedTotal() + count;
        await waitFor(`${count} more puts`, () => ackedTotal() >= target, 60_000, 20);
      };
      const kill = async (member: Member): Promise<void> => {
        const proc = member.proc;
        if (proc === null) throw new Error(`${member.name} is not running`);
        proc.child.kill('SIGKILL');
        await proc.exited;
        member.proc = null;
      };
      const restart = async (member: Member): Promise<number> => {
        const from = performance.now();
        await cluster.start(member.name);
        await waitFor(`${member.name}'s replica normal`, () => replicaNormal(member), 60_000, 100);
        return Math.round(performance.now() - from);
      };
      const primaryNode = async (): Promise<string | null> => {
        for (const member of cluster.members) {
          if (member.proc === null) continue;
          const primary = (await admin(cluster.adminAddress(member.name), { type: 'primary', ns }).catch(() => null)) as { index: number } | null;
          if (primary !== null) return created.nodes[primary.index] ?? null;
        }
        return null;
      };
      await morePuts(200);

      // 1. The node other than n1 whose replica serves the most watchers (by the subscribes seen).
      const servedBy = new Map<string, number>();
      for (const replica of tap.replicaOf.values()) {
        const node = created.nodes[replica] as string;
        servedBy.set(node, (servedBy.get(node) ?? 0) + 1);
      }
      const candidates = ['n2', 'n3'].filter((name) => (servedBy.get(name) ?? 0) > 0).sort((x, y) => (servedBy.get(y) ?? 0) - (servedBy.get(x) ?? 0));
      expect(candidates.length, `no watcher served off n1: ${JSON.stringify([...servedBy])}`).to.be.above(0);
      const first = cluster.member(candidates[0] as string);
      report['kill1'] = { node: first.name, servingWatchers: servedBy.get(first.name), wasPrimary: (await primaryNode()) === first.name, afterPuts: ackedTotal() };
      let killedAt = performance.now();
      await kill(first);
      await morePuts(100);
      (report['kill1'] as Record<string, unknown>)['watchersPastMs'] = await watchersPast('after the serving node died', killedAt);
      (report['kill1'] as Record<string, unknown>)['restartMs'] = await restart(first);
      await morePuts(100);
      await watchersPast('after its restart');

      // 2. The watchers' connection cut: the library reconnects (to the next address) and resumes.
      const subscribesBefore = tap.subscribes;
      const cutAt = performance.now();
      tap.cut();
      await morePuts(100);
      const resumedMs = await watchersPast('after the cut', cutAt);
      report['cut'] = { reconnectedTo: watchConn.node, watchersPastMs: resumedMs, subscribesThroughTapAfter: tap.subscribes - subscribesBefore };

      // 3. The node the watchers' connection is on now.
      const onNode = cluster.members.find((member) => member.name === watchConn?.node) ?? n1;
      report['kill3'] = { node: onNode.name, wasPrimary: (await primaryNode()) === onNode.name, afterPuts: ackedTotal() };
      killedAt = performance.now();
      await kill(onNode);
      await morePuts(100);
      (report['kill3'] as Record<string, unknown>)['watchersPastMs'] = await watchersPast('after the watchers\' node died', killedAt);
      (report['kill3'] as Record<string, unknown>)['reconnectedTo'] = watchConn.node;
      (report['kill3'] as Record<string, unknown>)['restartMs'] = await restart(onNode);
      await morePuts(100);
      await watchersPast('after its restart');

      // 4. The primary's node (a view change across processes, writers and watchers moving on).
      const primaryName = await waitFor('a primary', primaryNode, 30_000, 100);
      const primary = cluster.member(primaryName);
      report['kill4'] = { node: primary.name, watchersOn: watchConn.node, afterPuts: ackedTotal() };
      killedAt = performance.now();
      await kill(primary);
      await morePuts(100);
      (report['kill4'] as Record<string, unknown>)['watchersPastMs'] = await watchersPast('after the primary died', killedAt);
      (report['kill4'] as Record<string, unknown>)['newPrimary'] = await primaryNode();
      (report['kill4'] as Record<string, unknown>)['restartMs'] = await restart(primary);
      await morePuts(100);

      await Promise.all(writers.map((writer) => writer.stop()));
      const finals = new Map<string, { version: number; op: number }>();
      for (const writer of writers) finals.set(writer.path, await writeClient.stat(writer.path));
      const finalOp = Math.max(...[...finals.values()].map((final) => final.op));
      await waitFor(`every watcher through op ${finalOp}`, () => recorders.every((recorder) => (recorder.position ?? -1) >= finalOp), 60_000, 20);
      for (const recorder of recorders) expect(recorder.error, `${recorder.name} ended with an error`).to.equal(null);
      expect(recorders.every((recorder) => !recorder.ended)).to.equal(true);

      const problems = runProblems(specs, recorders, writers, finals);
      report['puts'] = ackedTotal();
      report['ambiguous'] = writers.map((writer) => writer.ambiguous);
      report['notExecuted'] = writers.map((writer) => writer.notExecuted);
      report['finalVersions'] = [...finals.values()].map((final) => final.version);
      report['finalOp'] = finalOp;
      report['batches'] = recorders.map((recorder) => recorder.batches.length);
      report['longestGapsMs'] = recorders.map((recorder) => recorder.longestGapMs);
      expect(problems, problems.slice(0, 20).join('\n')).to.deep.equal([]);
    }, async () => {
      await Promise.all(writers.map((writer) => writer.stop().catch(() => undefined)));
      await Promise.all(recorders.map((recorder) => recorder.stop()));
      await watchConn?.close();
      await writeConn?.close();
      await tap?.close();
    });
  });
});
