/**
 * `npm run bench -- net`: the runtime benchmark's workloads (100-byte blob puts; 90/10
 * get/put) over TCP through the client library (`connect`, in this process), against node
 * processes (`haret start`) on 127.0.0.1 in two topologies: one node with a 3-replica
 * namespace, and three nodes joined by cluster links with one replica each (the client
 * connects to the node that hosts the first primary). Reports ops/s, p50 and p99 per caller
 * count, a table and a JSON file.
 *
 * Each topology also runs with TLS (`--tls-cert/--tls-key/--tls-ca`: TLS on the client port,
 * and mutual TLS on the cluster links of the three nodes), puts at 1 and 1,024 callers, and
 * the run reports the cost as TLS/plain ratios of ops/s and p50 measured in the same run:
 * both deployments stay up side by side and their runs alternate. Certificates are made at
 * start with openssl (EC P-256, as docs/security.md shows) in a temporary directory that is
 * removed at the end.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type RemoteConnection } from '../src/net/index.ts';
import type { NamespaceClient } from '../src/node/index.ts';
import { makeTestCa, type TestCa } from '../test/net/certs.ts';
import { adminValue, startNodeProcess, stopNodeProcess, tlsFlags, type AdminAccess, type NodeProcess } from './node_process.ts';
import { formatInteger, printTable, progress, writeResults, type SuiteContext } from './report.ts';
import { drive, makeBars, percentile, prepareBlobs, type Workload } from './runtime.bench.ts';

export type Topology = 'one node' | 'three nodes';
/** Plain TCP everywhere, or TLS on the client port (and mutual TLS between the three nodes). */
export type Transport = 'plain' | 'tls';

export type NetRow = {
  readonly topology: Topology;
  readonly transport: Transport;
  readonly name: string;
  readonly workload: Workload;
  readonly callers: number;
  readonly opsPerSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly errors: number;
};

/** The price of TLS for one topology and caller count: the TLS row over the plain row of the same run. */
export type TlsCost = {
  readonly topology: Topology;
  readonly callers: number;
  readonly plainOpsPerSecond: number;
  readonly tlsOpsPerSecond: number;
  /** TLS ops/s over plain ops/s: below 1 is throughput lost to TLS. */
  readonly opsRatio: number;
  readonly plainP50Us: number;
  readonly tlsP50Us: number;
  /** TLS p50 over plain p50: above 1 is latency added by TLS. */
  readonly p50Ratio: number;
};

/** Caller counts of the plaintext rows, and of the TLS rows (puts only: the cost is per byte and per hop, not per op type). */
const plainCallers = [1, 16, 256, 1024] as const;
const tlsCallers = [1, 1024] as const;

/** Pairs every TLS put row with the plaintext put row of the same topology and callers. */
export function tlsCosts(rows: readonly NetRow[]): TlsCost[] {
  const out: TlsCost[] = [];
  for (const tls of rows) {
    if (tls.transport !== 'tls' || tls.workload !== 'put') continue;
    const plain = rows.find((row) => row.transport === 'plain' && row.workload === 'put' && row.topology === tls.topology && row.callers === tls.callers);
    if (plain === undefined) continue;
    out.push({
      topology: tls.topology,
      callers: tls.callers,
      plainOpsPerSecond: plain.opsPerSecond,
      tlsOpsPerSecond: tls.opsPerSecond,
      opsRatio: tls.opsPerSecond / plain.opsPerSecond,
      plainP50Us: plain.p50Us,
      tlsP50Us: tls.p50Us,
      p50Ratio: tls.p50Us / plain.p50Us,
    });
  }
  return out;
}

/** The certificates of a TLS run: a CA, and the directory the nodes' PEM files go to. */
type Pki = { readonly ca: TestCa; readonly dir: string };

/** One topology running, with a loaded client connected to it. */
type Deployment = { readonly transport: Transport; readonly nodes: NodeProcess[]; readonly remote: RemoteConnection; readonly client: NamespaceClient };

export async function netSuite(context: SuiteContext): Promise<void> {
  const startedAt = new Date();
  const msPerRun = context.quick ? 1000 : 3000;
  const reps = context.quick ? 1 : 3;
  const warmOps = context.quick ? 2_000 : 20_000;
  const rows: NetRow[] = [];
  const bars = makeBars();
  const pki: Pki = { ca: makeTestCa('haret bench CA'), dir: mkdtempSync(join(tmpdir(), 'haret-bench-tls-')) };
  /** Median-of-reps rows of one case, measured on `deployment`; `runs` collects each rep. */
  const measure = async (topology: Topology, deployment: Deployment, workload: Workload, callers: number, runs: NetRow[], label: string): Promise<void> => {
    const { transport, client } = deployment;
    const name = `${topology}${transport === 'tls' ? ', TLS' : ''}: ${workload === 'put' ? 'put' : '90/10 get/put'}, ${callers} callers`;
    const bar = bars.create(msPerRun, 0, `${name} ${label}`);
    const run = await drive(client, workload, callers, msPerRun, bar);
    bar.done();
    runs.push({ topology, transport, name, workload, callers, opsPerSecond: run.ops / run.seconds, p50Us: percentile(run.latenciesUs, 0.5), p99Us: percentile(run.latenciesUs, 0.99), errors: run.errors });
  };
  const warm = async (deployment: Deployment, workload: Workload, callers: number): Promise<void> => {
    let warmed = 0;
    while (warmed < warmOps) warmed += (await drive(deployment.client, workload, callers, 500, null)).ops;
  };
  try {
    for (const topology of ['one node', 'three nodes'] as const) {
      // Both transports stay up side by side, and the TLS cases alternate with their plaintext
      // twins rep by rep: drift in the machine's load (a shared, noisy VM) then hits both sides
      // of a ratio alike, instead of whichever ran second.
      const deployments: Deployment[] = [];
      try {
        for (const transport of ['plain', 'tls'] as const) deployments.push(await deploy(topology, transport === 'tls' ? pki : null));
        const [plain, tls] = deployments as [Deployment, Deployment];
        const tlsRows: NetRow[] = [];
        for (const workload of ['put', 'mix'] as const) {
          for (const callers of plainCallers) {
            const paired = workload === 'put' && (tlsCallers as readonly number[]).includes(callers);
            const plainRuns: NetRow[] = [];
            const tlsRuns: NetRow[] = [];
            await warm(plain, workload, callers);
            if (paired) await warm(tls, workload, callers);
            for (let rep = 0; rep < reps; rep += 1) {
              const label = `(${rep + 1}/${reps})`;
              if (!paired) {
                await measure(topology, plain, workload, callers, plainRuns, label);
              } else if (rep % 2 === 0) {
                await measure(topology, plain, workload, callers, plainRuns, label);
                await measure(topology, tls, workload, callers, tlsRuns, label);
              } else {
                await measure(topology, tls, workload, callers, tlsRuns, label);
                await measure(topology, plain, workload, callers, plainRuns, label);
              }
            }
            rows.push(medianRun(plainRuns));
            if (paired) tlsRows.push(medianRun(tlsRuns));
          }
        }
        rows.push(...tlsRows);
      } finally {
        await Promise.allSettled(deployments.map((deployment) => deployment.remote.close()));
        await Promise.all(deployments.flatMap((deployment) => deployment.nodes.map((node) => stopNodeProcess(node))));
      }
    }
  } finally {
    pki.ca.dispose();
    rmSync(pki.dir, { recursive: true, force: true });
  }
  bars.stop();
  printTable(
    'over TCP through the client library, 3 replicas on one node and on three nodes (median run)',
    [{ header: 'case' }, { header: 'ops/s', align: 'right' }, { header: 'p50 µs', align: 'right' }, { header: 'p99 µs', align: 'right' }, { header: 'errors', align: 'right' }],
    rows.map((r) => [r.name, formatInteger(r.opsPerSecond), formatInteger(r.p50Us), formatInteger(r.p99Us), String(r.errors)]),
  );
  const costs = tlsCosts(rows);
  printTable(
    'the cost of TLS (client port; mutual TLS between the three nodes), puts, TLS/plain, runs alternated',
    [
      { header: 'case' },
      { header: 'plain ops/s', align: 'right' },
      { header: 'TLS ops/s', align: 'right' },
      { header: 'ops/s TLS/plain', align: 'right' },
      { header: 'plain p50 µs', align: 'right' },
      { header: 'TLS p50 µs', align: 'right' },
      { header: 'p50 TLS/plain', align: 'right' },
    ],
    costs.map((c) => [`${c.topology}: put, ${c.callers} callers`, formatInteger(c.plainOpsPerSecond), formatInteger(c.tlsOpsPerSecond), c.opsRatio.toFixed(2), formatInteger(c.plainP50Us), formatInteger(c.tlsP50Us), c.p50Ratio.toFixed(2)]),
  );
  const files = writeResults(context.outDir, 'net', { options: { msPerRun, reps, warmOps }, rows: rows.map((r) => ({ ...r })), tlsCost: costs.map((c) => ({ ...c })) }, startedAt);
  progress(`results: ${files.path}`);
}

/** The run with the median ops/s. */
function medianRun(runs: readonly NetRow[]): NetRow {
  const sorted = [...runs].sort((a, b) => a.opsPerSecond - b.opsPerSecond);
  const median = sorted[Math.floor(sorted.length / 2)];
  if (median === undefined) throw new RangeError('no run to take the median of');
  return median;
}

/** A topology's node processes, a connection to them (TLS when `pki` is given) and its namespace loaded with the bench's blobs. */
async function deploy(topology: Topology, pki: Pki | null): Promise<Deployment> {
  const { nodes, address, ns } = await startTopology(topology, pki);
  let remote: RemoteConnection | null = null;
  try {
    remote = await connect([address], pki === null ? {} : { tls: { ca: pki.ca.cert } });
    const client = remote.client(ns);
    await prepareBlobs(client, 1024);
    return { transport: pki === null ? 'plain' : 'tls', nodes, remote, client };
  } catch (error) {
    await remote?.close().catch(() => undefined);
    await Promise.all(nodes.map((node) => stopNodeProcess(node)));
    throw error;
  }
}

/**
 * The node processes of a topology, the client address to use, and the namespace to load.
 * With `pki`, every node gets a certificate for its name (the `--tls-*` flags: TLS on its
 * client and admin ports, mutual TLS on its cluster links), and the admin calls here verify it.
 */
async function startTopology(topology: Topology, pki: Pki | null): Promise<{ nodes: NodeProcess[]; address: string; ns: string }> {
  const flagsFor = (name: string): string[] => (pki === null ? [] : tlsFlags(pki.dir, name, { ...pki.ca.issue(name), ca: pki.ca.cert }));
  const access: AdminAccess = pki === null ? {} : { tls: { ca: pki.ca.cert } };
  if (topology === 'one node') {
    const node = await startNodeProcess('single', flagsFor('single'));
    return { nodes: [node], address: node.client, ns: 'default' };
  }
  const nodes: NodeProcess[] = [];
  try {
    for (const name of ['a', 'b', 'c']) nodes.push(await startNodeProcess(name, ['--cluster-address', '127.0.0.1:0', '--no-local-namespace', ...flagsFor(name)]));
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    for (const joiner of [b, c]) await adminValue(joiner.admin, { type: 'cluster_join', address: a.cluster as string }, access);
    const created = (await adminValue(a.admin, { type: 'namespace_create', ns: 'bench', replicas: 3, nodes: ['a', 'b', 'c'] }, access)) as { nodes: string[] };
    for (const node of nodes) {
      while (!((await adminValue(node.admin, { type: 'namespaces' }, access)) as string[]).includes('bench')) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // View 0's primary is replica 0: the client talks to the node that hosts it.
    const first = nodes.find((node) => node.name === created.nodes[0]) ?? a;
    return { nodes, address: first.client, ns: 'bench' };
  } catch (error) {
    await Promise.all(nodes.map((node) => stopNodeProcess(node)));
    throw error;
  }
}
