/**
 * Three `haret start` processes on 127.0.0.1 form a cluster (`cluster join` through the admin
 * API), a namespace is created across them, and clients push unique values through the client
 * library while the process hosting the primary is killed with SIGKILL. A new primary takes
 * over; no acknowledged push is lost and none is applied twice. The killed node restarts from
 * its data directory on the same cluster port, and its replica recovers (VRR §4.3) and
 * catches up with the others. The same run three times (issue 12): cluster links without
 * authentication (loopback), with a cluster secret (`--cluster-secret-file`), and with mutual
 * TLS (`--tls-cert/--tls-key/--tls-ca`, which also puts the client and admin ports on TLS);
 * certificates are made at test time.
 */

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminValue, haretBin, startNodeProcess, tlsFlags, type AdminAccess, type NodeProcess } from '../../bench/node_process.ts';
import { connect, type RemoteConnection } from '../../src/net/index.ts';
import { HaretError } from '../../src/node/index.ts';
import { assertNever } from '../../src/base/assert.ts';
import { decodeClusterFrame, encodeClusterFrame } from '../../src/api/cluster_wire.ts';
import { encodeFrame, FrameDecoder } from '../../src/api/frame.ts';
import { connect as tcpConnect } from 'node:net';
import { eventually, runChild } from '../runtime/helpers.ts';
import { makeTestCa, type TestCa } from './certs.ts';

const bin = haretBin;

/** A cluster member process with a data directory and no namespace of its own. */
function startMember(name: string, dataDir: string, clusterAddress: string, security: readonly string[]): Promise<NodeProcess> {
  return startNodeProcess(name, ['--cluster-address', clusterAddress, '--data-dir', dataDir, '--no-local-namespace', ...security]);
}

type StatusLine = { actor: string; status: string | null; role: string | null; view: number | null; op: number | null; commit: number | null };

type Mode = 'none' | 'secret' | 'tls';

/**
 * Sends a plaintext hello of the unauthenticated handshake naming `node` and returns what the
 * node answered before it closed (or within 3 s): frame types, an error with its code.
 */
async function strangerHello(address: string, node: string): Promise<string[]> {
  const at = address.lastIndexOf(':');
  const socket = tcpConnect(Number(address.slice(at + 1)), address.slice(0, at));
  const decoder = new FrameDecoder({ frameBytesMax: 1 << 20 });
  const answers: string[] = [];
  socket.on('data', (chunk: Buffer) => {
    for (const event of decoder.push(chunk)) {
      if (event.type !== 'frame') continue;
      const decoded = decodeClusterFrame(event.payload);
      if (decoded.ok) answers.push(decoded.frame.t === 'error' ? `error:${decoded.frame.code}` : decoded.frame.t);
    }
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.once('connect', () => socket.write(encodeFrame(encodeClusterFrame({ t: 'hello', version: 2, node, incarnation: 0, info: {} }))));
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 3_000))]);
  socket.destroy();
  return answers;
}

/** The `haret start` flags of each member, the admin access and the client library's TLS options for a mode. */
type Security = {
  readonly flags: (name: string) => readonly string[];
  readonly access: AdminAccess;
  readonly adminFlags: readonly string[];
  readonly clientTls: { readonly ca: string } | undefined;
  readonly dispose: () => void;
};

function securityOf(mode: Mode, dir: string): Security {
  switch (mode) {
    case 'none':
      return { flags: () => [], access: {}, adminFlags: [], clientTls: undefined, dispose: () => undefined };
    case 'secret': {
      const file = join(dir, 'cluster.secret');
      // 32 random bytes as hex: 64 bytes of secret, printable.
      writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
      return { flags: () => ['--cluster-secret-file', file], access: {}, adminFlags: [], clientTls: undefined, dispose: () => undefined };
    }
    case 'tls': {
      const ca: TestCa = makeTestCa();
      const flags = new Map<string, string[]>();
      for (const name of ['n1', 'n2', 'n3']) flags.set(name, tlsFlags(dir, name, { ...ca.issue(name), ca: ca.cert }));
      return {
        flags: (name) => flags.get(name) ?? [],
        access: { tls: { ca: ca.cert } },
        adminFlags: ['--tls-ca', join(dir, 'ca.crt')],
        clientTls: { ca: ca.cert },
        dispose: () => ca.dispose(),
      };
    }
    default:
      return assertNever(mode, 'mode');
  }
}

describe('cluster of three node processes', function () {
  this.timeout(180_000);

  for (const mode of ['none', 'secret', 'tls'] as const) {
    const label = mode === 'none' ? 'links on loopback without authentication' : mode === 'secret' ? 'links authenticated by a cluster secret' : 'mutual TLS on the links, TLS on the client and admin ports';
    it(`${label}: survives SIGKILL of the primary node: no acknowledged write lost or doubled, and the restarted node catches up`, async function () {
      await failover(mode);
    });
  }
});

async function failover(mode: Mode): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'haret-cluster-'));
  const security = securityOf(mode, dir);
  const adminOk = (address: string, query: Parameters<typeof adminValue>[1]): Promise<unknown> => adminValue(address, query, security.access);
  const nodes = new Map<string, NodeProcess>();
  let remote: RemoteConnection | null = null;
  try {
    // Started side by side: each is on its own until it joins.
    const started = await Promise.all(['n1', 'n2', 'n3'].map(async (name) => [name, await startMember(name, join(dir, name), '127.0.0.1:0', security.flags(name))] as const));
    for (const [name, node] of started) nodes.set(name, node);
    const n1 = nodes.get('n1') as NodeProcess;
    // n2 joins through the admin API, n3 through `haret admin -e` as an operator would.
    expect(await adminOk((nodes.get('n2') as NodeProcess).admin, { type: 'cluster_join', address: n1.cluster as string })).to.deep.equal({ node: 'n1' });
    const joined = await runChild([bin, 'admin', (nodes.get('n3') as NodeProcess).admin, ...security.adminFlags, '-e', `cluster join ${n1.cluster}`], 30_000);
    expect(joined.code, joined.stderr).to.equal(0);
    expect(JSON.parse(joined.stdout)).to.deep.equal({ node: 'n1' });
    await eventually('every node to see three members', async () => {
      for (const node of nodes.values()) {
        const status = (await adminOk(node.admin, { type: 'cluster_status' })) as { members: { link: string }[] };
        if (status.members.length !== 3 || status.members.some((member) => member.link === 'down')) return false;
      }
      return true;
    }, 20_000);
    // A stranger's plaintext hello: welcomed only without authentication (as a stranger; with
    // a secret or TLS even naming n2, a member connected to n1 now, gets nothing but a refusal).
    const answer = await strangerHello(n1.cluster as string, mode === 'none' ? 'stranger' : 'n2');
    expect(answer, mode).to.deep.equal(mode === 'none' ? ['welcome'] : mode === 'secret' ? ['error:unauthenticated'] : []);
    const create = await runChild([bin, 'admin', n1.admin, ...security.adminFlags, '-e', 'namespace create jobs 3'], 30_000);
    expect(create.code, create.stderr).to.equal(0);
    const created = JSON.parse(create.stdout) as { name: string; nodes: string[] };
    expect(created.name).to.equal('jobs');
    const clusterStatus = await runChild([bin, 'admin', n1.admin, ...security.adminFlags, '-e', 'cluster status'], 30_000);
    expect(clusterStatus.code, clusterStatus.stderr).to.equal(0);
    expect(clusterStatus.stdout).to.contain('"n2"').and.contain('"n3"').and.contain('"jobs"');
    expect([...created.nodes].sort()).to.deep.equal(['n1', 'n2', 'n3']);
    await eventually('every node to serve jobs', async () => {
      for (const node of nodes.values()) if (!((await adminOk(node.admin, { type: 'namespaces' })) as string[]).includes('jobs')) return false;
      return true;
    }, 20_000);

    remote = await connect([...nodes.values()].map((node) => node.client), { connectTimeoutMs: 2_000, ...(security.clientTls === undefined ? {} : { tls: security.clientTls }) });
    const jobs = remote.client('jobs');
    // A create that timed out may have run: already_exists then means it did.
    const createQueue = async (): Promise<boolean> =>
      jobs.create('/q', 'queue').then(
        () => true,
        (error: unknown) => error instanceof HaretError && error.code === 'already_exists',
      );
    await eventually('the namespace to take writes', createQueue, 30_000);

    // Closed-loop writers pushing unique values; each value is acknowledged, failed for sure,
    // or unknown (a timeout: it may or may not have run).
    const acknowledged = new Set<string>();
    const unknown = new Set<string>();
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i += 1) {
        const value = `w${w}-${i}`;
        try {
          await jobs.queuePush('/q', value);
          acknowledged.add(value);
        } catch (error) {
          if (error instanceof HaretError && error.code === 'timeout') unknown.add(value);
          else if (!(error instanceof HaretError && (error.code === 'session_expired' || error.code === 'overloaded'))) throw error;
        }
      }
    };
    const failures: unknown[] = [];
    const writers = Array.from({ length: 8 }, (_, w) => writer(w).catch((error: unknown) => void failures.push(error)));
    await eventually('some acknowledged writes', async () => acknowledged.size >= 200, 20_000);

    const primary = (await adminOk(n1.admin, { type: 'primary', ns: 'jobs' })) as { index: number } | null;
    expect(primary).to.not.equal(null);
    const victimName = created.nodes[primary?.index ?? 0] as string;
    const victim = nodes.get(victimName) as NodeProcess;
    const beforeKill = acknowledged.size;
    victim.child.kill('SIGKILL');
    await victim.exited;
    nodes.delete(victimName);
    const survivor = [...nodes.values()][0] as NodeProcess;

    await eventually('writes to go on after the kill', async () => acknowledged.size >= beforeKill + 200, 60_000);
    const newPrimary = (await adminOk(survivor.admin, { type: 'primary', ns: 'jobs' })) as { index: number } | null;
    expect(newPrimary).to.not.equal(null);
    expect(created.nodes[newPrimary?.index ?? 0]).to.not.equal(victimName);

    // The killed node comes back on its cluster port with its data directory: its replica recovers.
    const restarted = await startMember(victimName, join(dir, victimName), victim.cluster as string, security.flags(victimName));
    nodes.set(victimName, restarted);
    await eventually('more writes with the restarted node back', async () => acknowledged.size >= beforeKill + 400, 60_000);
    stop = true;
    await Promise.all(writers);
    expect(failures.map(String), 'writers that failed with an unexpected error').to.deep.equal([]);

    const settled = (await adminOk(survivor.admin, { type: 'status' })) as StatusLine[];
    const target = Math.max(...settled.filter((line) => line.actor.startsWith('jobs/')).map((line) => line.commit ?? 0));
    await eventually('the restarted replica to recover and catch up', async () => {
      const lines = (await adminOk(restarted.admin, { type: 'status' })) as StatusLine[];
      const replica = lines.find((line) => line.actor.startsWith('jobs/'));
      return replica !== undefined && replica.status === 'normal' && (replica.commit ?? 0) >= target ? replica : null;
    }, 60_000);

    // The restarted node's new client address (a new incarnation) replaced the old one everywhere.
    await eventually('the survivors to learn the restarted node\'s addresses', async () => {
      for (const node of nodes.values()) {
        const status = (await adminOk(node.admin, { type: 'cluster_status' })) as { members: { name: string; clientAddress: string; incarnation: number }[] };
        const member = status.members.find((m) => m.name === victimName);
        if (member?.clientAddress !== restarted.client || member.incarnation !== 2) return false;
      }
      return true;
    }, 20_000);

    // Every acknowledged value is in the queue exactly once; nothing else is but unknowns.
    const seen = new Map<string, number>();
    const decoder = new TextDecoder();
    for (;;) {
      const popped = await jobs.queuePop('/q');
      if (popped.value === null) break;
      const value = decoder.decode(popped.value);
      seen.set(value, (seen.get(value) ?? 0) + 1);
    }
    const doubled = [...seen].filter(([, count]) => count > 1);
    expect(doubled, 'values applied twice').to.deep.equal([]);
    const lost = [...acknowledged].filter((value) => !seen.has(value));
    expect(lost, 'acknowledged values lost').to.deep.equal([]);
    const strays = [...seen.keys()].filter((value) => !acknowledged.has(value) && !unknown.has(value));
    expect(strays, 'values nobody wrote').to.deep.equal([]);
    expect(acknowledged.size).to.be.greaterThan(beforeKill + 400 - 1);
  } finally {
    await remote?.close();
    for (const node of nodes.values()) node.child.kill('SIGKILL');
    await Promise.all([...nodes.values()].map((node) => node.exited));
    security.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
