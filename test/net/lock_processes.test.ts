/**
 * The lock recipe under real process faults: three `haret start` members host namespace `l`
 * (replica i on node n<i+1>), one cluster for the three tests; lock clients are processes of their own
 * (test/net/fixtures/lock_client.mts, the client library over TCP), so a test can SIGKILL a
 * holder as a dead client machine, or the primary's node under holders that stay alive.
 *   1. A holder killed: the waiter holds within the lease's bound after the kill, with a higher token.
 *   2. The primary's node killed under a holder that lives: its lease is not lost (no `lost`
 *      for two TTLs, a keep-alive and a fenced write succeed after the view change), the waiter
 *      never holds meanwhile, and holds once the holder releases.
 *   3. 64 contenders (4 client processes x 16) through a SIGKILL of the primary's node and its
 *      restart: each holds once, holds never overlap, fenced writes commit in token order.
 * Times compared across processes are each process's wall clock (performance.timeOrigin +
 * performance.now()); every process runs on this machine, so they share one clock.
 */

import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import type { RemoteConnection } from '../../src/net/index.ts';
import type { NamespaceClient } from '../../src/node/index.ts';
import { admin, adminStatus, Cluster, connectWithin, namespaceClient, pause, Processes, removeDir, runScenario, tempDir, waitFor, type Member, type Proc } from '../durability/processes.ts';

const ns = 'l';
const fixture = fileURLToPath(new URL('./fixtures/lock_client.mts', import.meta.url));
const now = (): number => performance.timeOrigin + performance.now();

/** The primary's lease clock: leaseClockTicks 20 x tickMs 10 (README rule 21). */
const leaseClockMs = 200;

type LockEvent = { readonly event: string; readonly t: number; readonly [field: string]: unknown };

/** One lock client process: commands to its stdin, its JSON events from its stdout. */
type LockClient = {
  readonly name: string;
  readonly proc: Proc;
  send(command: Record<string, unknown>): void;
  events(): LockEvent[];
  /** The first event matching `match`; rejects when the process exits or `timeoutMs` passes. */
  next(what: string, match: (event: LockEvent) => boolean, timeoutMs: number): Promise<LockEvent>;
};

function eventsOf(proc: Proc): LockEvent[] {
  const events: LockEvent[] = [];
  for (const line of proc.stdout().split('\n').slice(0, -1)) {
    if (!line.startsWith('{')) continue;
    events.push(JSON.parse(line) as LockEvent);
  }
  return events;
}

async function startLockClient(procs: Processes, name: string, addresses: readonly string[]): Promise<LockClient> {
  const proc = procs.spawn(name, process.execPath, ['--import', 'tsx', fixture, addresses.join(','), ns]);
  const client: LockClient = {
    name,
    proc,
    send: (command) => void proc.child.stdin?.write(`${JSON.stringify(command)}\n`),
    events: () => eventsOf(proc),
    next: (what, match, timeoutMs) =>
      waitFor(`${name}: ${what}`, () => {
        const events = eventsOf(proc);
        const found = events.find(match);
        if (found !== undefined) return found;
        const bug = events.find((event) => event.event === 'bug');
        if (bug !== undefined) throw new Error(`${name} failed: ${String(bug['message'])}`);
        if (proc.done()) throw new Error(`${name} exited\nstdout: ${proc.stdout()}\nstderr: ${proc.stderr().slice(-4000)}`);
        return null;
      }, timeoutMs, 10),
  };
  await client.next('ready', (event) => event.event === 'ready', 60_000);
  return client;
}

/** The client's first `holding` event; rejects at once if its lock call failed instead. */
async function holding(client: LockClient, what: string, timeoutMs: number): Promise<LockEvent> {
  const event = await client.next(what, (e) => e.event === 'holding' || e.event === 'lockFailed', timeoutMs);
  if (event.event !== 'holding') throw new Error(`${client.name}: ${what}: the lock call failed: ${JSON.stringify(event)}`);
  return event;
}

/** Events a client printed that no test expects (`bug`: an exception in the fixture). */
function bugs(clients: readonly LockClient[]): string[] {
  return clients.flatMap((client) => client.events().filter((event) => event.event === 'bug').map((event) => `${client.name}: ${String(event['message'])}`));
}

/** The addresses starting at index `first` (so clients spread over the nodes). */
const rotated = (addresses: readonly string[], first: number): string[] => addresses.map((_, i) => addresses[(first + i) % addresses.length] as string);

/** A formed cluster with namespace `l` on all three members, and what the tests do to it. */
type Formed = {
  readonly cluster: Cluster;
  /** Node names in replica order (replica i on nodes[i]). */
  readonly nodes: readonly string[];
  primaryNode(): Promise<string | null>;
  kill(member: Member): Promise<number>;
  restart(member: Member): Promise<number>;
  /** Restarts any member a test left down, and waits for every replica to be normal. */
  ready(): Promise<void>;
};

async function formCluster(procs: Processes, dir: string): Promise<Formed> {
  const cluster = await Cluster.create(procs, dir);
  await cluster.start('n1');
  await Promise.all([cluster.start('n2', [cluster.clusterAddress('n1')]), cluster.start('n3', [cluster.clusterAddress('n1')])]);
  await cluster.linked(30_000);
  const created = (await admin(cluster.adminAddress('n1'), { type: 'namespace_create', ns, replicas: 3, nodes: ['n1', 'n2', 'n3'] })) as { nodes: string[] };
  const replicaNormal = async (member: Member): Promise<boolean> => {
    const actor = `${ns}/r${created.nodes.indexOf(member.name)}`;
    return (await adminStatus(cluster.adminAddress(member.name))).find((line) => line.actor === actor)?.status === 'normal';
  };
  await waitFor('every replica normal', async () => (await Promise.all(cluster.members.map(replicaNormal))).every(Boolean), 30_000, 100);
  return {
    cluster,
    nodes: created.nodes,
    primaryNode: async () => {
      for (const member of cluster.members) {
        if (member.proc === null) continue;
        const primary = (await admin(cluster.adminAddress(member.name), { type: 'primary', ns }).catch(() => null)) as { index: number } | null;
        if (primary !== null) return created.nodes[primary.index] ?? null;
      }
      return null;
    },
    /** SIGKILL; resolves with the time it was sent. */
    kill: async (member) => {
      const proc = member.proc;
      if (proc === null) throw new Error(`${member.name} is not running`);
      const at = now();
      proc.child.kill('SIGKILL');
      await proc.exited;
      member.proc = null;
      return at;
    },
    /** Restarts on its ports and data directory; resolves with the ms until its replica is normal. */
    restart: async (member) => {
      const from = performance.now();
      await cluster.start(member.name);
      await waitFor(`${member.name}'s replica normal`, () => replicaNormal(member), 60_000, 100);
      return Math.round(performance.now() - from);
    },
    ready: async () => {
      for (const member of cluster.members) if (member.proc === null || member.proc.done()) await cluster.start(member.name);
      await waitFor('every replica normal', async () => (await Promise.all(cluster.members.map(replicaNormal))).every(Boolean), 30_000, 100);
    },
  };
}

/** The test's own connection (reads only): the children of a lock's directory. */
async function lockNodes(db: NamespaceClient, node: string): Promise<string[]> {
  const dir = node.slice(0, node.lastIndexOf('/')) || '/';
  return (await db.list(dir)).entries.map((entry) => entry.path);
}

describe('net: the lock recipe with real processes', function () {
  this.timeout(90_000);

  // One cluster for the three tests (forming one takes 5-15 s on a loaded 2-core machine); each
  // test starts with every member up and every replica normal, and uses its own lock path.
  let shared: { readonly dir: string; readonly procs: Processes; formed: Formed | null } | null = null;
  before(async function () {
    this.timeout(90_000);
    const started = performance.now();
    shared = { dir: tempDir('haret-lock-'), procs: new Processes(), formed: null };
    shared.formed = await formCluster(shared.procs, shared.dir);
    console.log(`      ${JSON.stringify({ clusterFormedMs: Math.round(performance.now() - started) })}`);
  });
  after(async () => {
    if (shared === null) return;
    await shared.procs.killAll();
    removeDir(shared.dir);
  });
  /** The shared cluster, every member up and normal. */
  const sharedCluster = async (): Promise<Formed> => {
    const formed = shared?.formed;
    if (formed === null || formed === undefined) throw new Error('the cluster was not formed');
    await formed.ready();
    return formed;
  };

  it('a holder SIGKILLed: the waiter holds within ttl + lease clock + 2000 ms of the kill, with a higher token', async () => {
    const ttlMs = 1_000;
    // What the guarantee gives: the lease expires at most ttlMs + the lease clock's interval +
    // commit latency after its last keep-alive (before the kill). 2000 ms more covers that
    // commit, the watch delivery to the waiter, its check that it is first, and a loaded
    // 2-core machine running three nodes and two client processes.
    const slackMs = 2_000;
    const boundMs = ttlMs + leaseClockMs + slackMs;
    const report: Record<string, unknown> = { ttlMs, boundMs };
    const clients: LockClient[] = [];
    let remote: RemoteConnection | null = null;
    await runScenario('haret-lock-killed-', report, async (_dir, procs, started) => {
      const { cluster } = await sharedCluster();
      report['readyMs'] = Math.round(performance.now() - started);
      const addresses = cluster.clientAddresses();
      const [a, b] = await Promise.all([startLockClient(procs, 'A', rotated(addresses, 0)), startLockClient(procs, 'B', rotated(addresses, 1))]);
      clients.push(a, b);
      remote = await connectWithin(rotated(addresses, 2), 10_000);
      const db = await namespaceClient(remote, ns, 20_000);

      a.send({ cmd: 'lock', id: 'a', path: '/locks/one', ttlMs });
      const aHolding = await holding(a, 'holding', 30_000);
      b.send({ cmd: 'lock', id: 'b', path: '/locks/one', ttlMs });
      // B is queued once its node is there behind A's.
      await waitFor('B queued behind A', async () => (await lockNodes(db, String(aHolding['node']))).length === 2, 20_000, 20);
      await pause(2 * ttlMs); // A keeps its lease alive meanwhile: B must not hold.
      expect(b.events().filter((event) => event.event === 'holding'), 'B held while A lived').to.deep.equal([]);
      expect(a.events().filter((event) => event.event === 'lost'), 'A lost its lock while alive').to.deep.equal([]);

      const killedAt = now();
      a.proc.child.kill('SIGKILL');
      await a.proc.exited;
      const bHolding = await holding(b, 'holding after A died', boundMs + 10_000);
      const seenMs = now() - killedAt;
      const afterKillMs = bHolding.t - killedAt;
      report['nextHolderAfterKillMs'] = Math.round(afterKillMs);
      report['seenByTestAfterMs'] = Math.round(seenMs);
      report['tokens'] = [aHolding['token'], bHolding['token']];
      expect(afterKillMs, 'B held before A was killed').to.be.above(0);
      expect(afterKillMs, `B held ${Math.round(afterKillMs)} ms after the kill, past the bound`).to.be.at.most(boundMs);
      expect(bHolding['token'] as number).to.be.above(aHolding['token'] as number);
      expect(b.events().filter((event) => event.event === 'lockFailed' || event.event === 'lost')).to.deep.equal([]);
      expect(bugs(clients)).to.deep.equal([]);
      // A's node went with its lease; B's is the only one left.
      expect(await lockNodes(db, String(bHolding['node']))).to.deep.equal([bHolding['node']]);
    }, async () => {
      await remote?.close();
    });
  });

  it('the primary\'s node SIGKILLed under a live holder: no lost for 2 x TTL, a keep-alive and a fenced write succeed after the view change, the waiter never holds until the release', async () => {
    const ttlMs = 3_000;
    const windowMs = 2 * ttlMs;
    const report: Record<string, unknown> = { ttlMs, windowMs };
    const clients: LockClient[] = [];
    let remote: RemoteConnection | null = null;
    await runScenario('haret-lock-primary-', report, async (_dir, procs, started) => {
      const formed = await sharedCluster();
      const { cluster } = formed;
      report['readyMs'] = Math.round(performance.now() - started);
      const addresses = cluster.clientAddresses();
      const primaryName = await waitFor('a primary', formed.primaryNode, 20_000, 100);
      const primaryIndex = cluster.members.findIndex((member) => member.name === primaryName);
      // The holder's connection is on the primary's node (killed with it: it reconnects as the
      // view changes); the waiter's and the test's on the others.
      const [c, d] = await Promise.all([startLockClient(procs, 'C', rotated(addresses, primaryIndex)), startLockClient(procs, 'D', rotated(addresses, primaryIndex + 1))]);
      clients.push(c, d);
      remote = await connectWithin(rotated(addresses, primaryIndex + 2), 10_000);
      const db = await namespaceClient(remote, ns, 20_000);
      report['holderOn'] = c.events().find((event) => event.event === 'ready')?.['node'];
      report['primary'] = primaryName;

      await db.create('/reg-two', 'blob');
      c.send({ cmd: 'lock', id: 'c', path: '/locks/two', ttlMs, ownLease: true });
      const cHolding = await holding(c, 'holding', 30_000);
      d.send({ cmd: 'lock', id: 'd', path: '/locks/two', ttlMs });
      await waitFor('D queued behind C', async () => (await lockNodes(db, String(cHolding['node']))).length === 2, 20_000, 20);

      const killedAt = await formed.kill(cluster.member(primaryName));
      const newPrimary = await waitFor('a new primary', async () => {
        const name = await formed.primaryNode();
        return name !== null && name !== primaryName ? name : null;
      }, 30_000, 50);
      report['newPrimary'] = newPrimary;
      report['newPrimaryKnownAfterMs'] = Math.round(now() - killedAt);
      c.send({ cmd: 'keepalive', id: 'c' });
      const kept = await c.next('a keep-alive answer', (event) => event.event === 'kept' || event.event === 'keepaliveFailed', windowMs);
      report['keepAliveAfterKillMs'] = Math.round(kept.t - killedAt);
      expect(kept.event, JSON.stringify(kept)).to.equal('kept');
      expect(kept['alive'], 'the lease after the view change').to.equal(true);
      expect(kept['leaseAlive'], 'the kept lease\'s own view').to.equal(true);
      c.send({ cmd: 'write', id: 'c', reg: '/reg-two' });
      const wrote = await c.next('the fenced write', (event) => event.event === 'wrote' || event.event === 'writeFailed', windowMs);
      expect(wrote.event, JSON.stringify(wrote)).to.equal('wrote');

      await pause(Math.max(0, killedAt + windowMs - now()));
      expect(c.events().filter((event) => event.event === 'lost'), 'the holder\'s lost fired').to.deep.equal([]);
      expect(d.events().filter((event) => event.event === 'holding'), 'the waiter held while the holder lived').to.deep.equal([]);
      expect(await lockNodes(db, String(cHolding['node'])), 'both nodes still there').to.have.length(2);

      c.send({ cmd: 'release', id: 'c' });
      const releasing = await c.next('releasing', (event) => event.event === 'releasing', 10_000);
      await c.next('released', (event) => event.event === 'released', 30_000);
      const dHolding = await holding(d, 'holding after the release', 30_000);
      report['nextHolderAfterReleaseMs'] = Math.round(dHolding.t - releasing.t);
      expect(dHolding.t).to.be.above(releasing.t);
      expect(dHolding['token'] as number).to.be.above(cHolding['token'] as number);
      const lostBeforeRelease = c.events().filter((event) => event.event === 'lost' && event.t < releasing.t);
      expect(lostBeforeRelease).to.deep.equal([]);
      expect(d.events().filter((event) => event.event === 'lockFailed' || event.event === 'lost')).to.deep.equal([]);
      expect(bugs(clients)).to.deep.equal([]);
      report['restartMs'] = await formed.restart(cluster.member(primaryName));
    }, async () => {
      await remote?.close();
    });
  });

  it('64 contenders (4 processes x 16) through a SIGKILL of the primary\'s node: each holds once, holds never overlap, fenced writes commit in token order', async () => {
    const processes = 4;
    const perProcess = 16;
    const total = processes * perProcess;
    const ttlMs = 4_000;
    const report: Record<string, unknown> = { contenders: total, processes, ttlMs };
    const clients: LockClient[] = [];
    let remote: RemoteConnection | null = null;
    await runScenario('haret-lock-contend-', report, async (_dir, procs, started) => {
      const formed = await sharedCluster();
      const { cluster } = formed;
      report['readyMs'] = Math.round(performance.now() - started);
      const addresses = cluster.clientAddresses();
      clients.push(...(await Promise.all(Array.from({ length: processes }, (_, p) => startLockClient(procs, `P${p}`, rotated(addresses, p))))));
      remote = await connectWithin(addresses, 10_000);
      const db = await namespaceClient(remote, ns, 20_000);

      type Hold = LockEvent & { client: string; contender: number; token: number; holdingAt: number; releasingAt: number; writeOp: number | null; writeError: string | null; nodeGone: boolean | null; lostAt: number | null };
      const holds = (): Hold[] => clients.flatMap((client) => client.events().filter((event) => event.event === 'hold').map((event) => ({ ...event, client: client.name }) as Hold));

      await db.create('/reg', 'blob');
      const contendAt = performance.now();
      for (const client of clients) client.send({ cmd: 'contend', path: '/locks/many', reg: '/reg', count: perProcess, ttlMs });
      await waitFor('half the holds', () => holds().length >= total / 2, 60_000, 10);
      const primaryName = await waitFor('the primary', formed.primaryNode, 20_000, 50);
      const holdsBeforeKill = holds().length;
      const killedAt = await formed.kill(cluster.member(primaryName));
      await pause(1_000);
      const restartMs = await formed.restart(cluster.member(primaryName));
      for (const client of clients) await client.next('contendDone', (event) => event.event === 'contendDone', 60_000);
      report['contendMs'] = Math.round(performance.now() - contendAt);
      report['killed'] = { node: primaryName, afterHolds: holdsBeforeKill, restartMs };

      const all = holds();
      const lockFailures = clients.flatMap((client) => client.events().filter((event) => event.event === 'lockFailed'));
      const failureCounts = new Map<string, number>();
      for (const failure of lockFailures) failureCounts.set(String(failure['code']), (failureCounts.get(String(failure['code'])) ?? 0) + 1);
      report['holds'] = all.length;
      // A lock call fails when its lease is lost while it waits (no keep-alive succeeded within
      // ttl - margin: the view change and reconnect took that long); the contender then retries.
      report['lockFailures'] = Object.fromEntries(failureCounts);
      if (lockFailures.length > 0) {
        const sinceKill = lockFailures.map((failure) => failure.t - killedAt);
        report['lockFailuresAfterKillMs'] = [Math.round(Math.min(...sinceKill)), Math.round(Math.max(...sinceKill))];
        report['lockFailureExample'] = lockFailures[0]?.['message'];
      }
      report['writes'] = { ok: all.filter((hold) => hold.writeOp !== null).length, failed: all.filter((hold) => hold.writeOp === null).map((hold) => hold.writeError) };
      report['lostWhileHeld'] = all.filter((hold) => hold.lostAt !== null).map((hold) => hold['lostCode']);
      expect(bugs(clients)).to.deep.equal([]);

      // Every contender held exactly once.
      expect(all).to.have.length(total);
      const who = new Set(all.map((hold) => `${hold.client}/${hold.contender}`));
      expect(who.size).to.equal(total);
      expect(new Set(all.map((hold) => hold.token)).size, 'tokens unique').to.equal(total);

      // Holding order is token order, and the next holder holds only after the one before it
      // started releasing (unless that one had lost its lease: then the service may have moved on).
      const byToken = [...all].sort((x, y) => x.token - y.token);
      const byHolding = [...all].sort((x, y) => x.holdingAt - y.holdingAt);
      const overlaps: string[] = [];
      for (let i = 1; i < byToken.length; i++) {
        const previous = byToken[i - 1] as Hold;
        const next = byToken[i] as Hold;
        const previousLost = previous.lostAt !== null && previous.lostAt <= next.holdingAt;
        if (!previousLost && next.holdingAt < previous.releasingAt) overlaps.push(`token ${next.token} held at ${next.holdingAt.toFixed(1)}, before token ${previous.token} released at ${previous.releasingAt.toFixed(1)}`);
      }
      expect(overlaps, overlaps.join('\n')).to.deep.equal([]);
      if (all.every((hold) => hold.lostAt === null)) expect(byHolding.map((hold) => hold.token)).to.deep.equal(byToken.map((hold) => hold.token));

      // Fencing: the writes that committed did so in token order; each failed one failed because its holder's lease was lost.
      const written = all.filter((hold) => hold.writeOp !== null).sort((x, y) => (x.writeOp as number) - (y.writeOp as number));
      const tokensInCommitOrder = written.map((hold) => hold.token);
      expect(tokensInCommitOrder).to.deep.equal([...tokensInCommitOrder].sort((x, y) => x - y));
      expect(new Set(tokensInCommitOrder).size).to.equal(tokensInCommitOrder.length);
      for (const hold of all.filter((h) => h.writeOp === null)) {
        expect(hold.writeError, `${hold.client}/${hold.contender}`).to.equal('cas_failed');
        expect(hold.nodeGone, `${hold.client}/${hold.contender}: its node still there after cas_failed`).to.equal(true);
        expect(hold.lostAt, `${hold.client}/${hold.contender}: cas_failed without its lease lost`).to.not.equal(null);
      }
      const last = written.at(-1);
      expect(last, 'no fenced write committed').to.not.equal(undefined);
      const register = await db.blobGet('/reg');
      expect(new TextDecoder().decode(register.value)).to.equal(String(last?.token));
      // Created at version 0, each committed write (a new token) one version more.
      expect(register.version).to.equal(written.length);
      report['tokenRange'] = [byToken[0]?.token, byToken.at(-1)?.token];
    }, async () => {
      await remote?.close();
    });
  });
});
