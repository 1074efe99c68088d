/**
 * `npm run bench -- net`: the runtime benchmark's workloads (100-byte blob puts; 90/10
 * get/put) over TCP through the client library (`connect`, in this process), against node
 * processes (`haret start`) on 127.0.0.1 in two topologies: one node with a 3-replica
 * namespace, and three nodes joined by cluster links with one replica each (the client
 * connects to the node that hosts the first primary). Reports ops/s, p50 and p99 per caller
 * count, a table and a JSON file.
 */

import { connect } from '../src/net/index.ts';
import { adminValue, startNodeProcess, stopNodeProcess, type NodeProcess } from './node_process.ts';
import { formatInteger, printTable, progress, writeResults, type SuiteContext } from './report.ts';
import { drive, makeBars, percentile, prepareBlobs, type Workload } from './runtime.bench.ts';

type Topology = 'one node' | 'three nodes';

type NetRow = { readonly topology: Topology; readonly name: string; readonly workload: Workload; readonly callers: number; readonly opsPerSecond: number; readonly p50Us: number; readonly p99Us: number; readonly errors: number };

export async function netSuite(context: SuiteContext): Promise<void> {
  const startedAt = new Date();
  const msPerRun = context.quick ? 1000 : 3000;
  const reps = context.quick ? 1 : 3;
  const warmOps = context.quick ? 2_000 : 20_000;
  const rows: NetRow[] = [];
  const bars = makeBars();
  for (const topology of ['one node', 'three nodes'] as const) {
    const { nodes, address, ns } = await startTopology(topology);
    try {
      const remote = await connect([address]);
      try {
        const client = remote.client(ns);
        await prepareBlobs(client, 1024);
        for (const workload of ['put', 'mix'] as const) {
          for (const callers of [1, 16, 256, 1024]) {
            const name = `${topology}: ${workload === 'put' ? 'put' : '90/10 get/put'}, ${callers} callers`;
            let warmed = 0;
            while (warmed < warmOps) warmed += (await drive(client, workload, callers, 500, null)).ops;
            const runs: NetRow[] = [];
            for (let rep = 0; rep < reps; rep += 1) {
              const bar = bars.create(msPerRun, 0, `${name} (${rep + 1}/${reps})`);
              const run = await drive(client, workload, callers, msPerRun, bar);
              bar.done();
              runs.push({ topology, name, workload, callers, opsPerSecond: run.ops / run.seconds, p50Us: percentile(run.latenciesUs, 0.5), p99Us: percentile(run.latenciesUs, 0.99), errors: run.errors });
            }
            runs.sort((a, b) => a.opsPerSecond - b.opsPerSecond);
            rows.push(runs[Math.floor(runs.length / 2)] as NetRow);
          }
        }
      } finally {
        await remote.close();
      }
    } finally {
      await Promise.all(nodes.map((node) => stopNodeProcess(node)));
    }
  }
  bars.stop();
  printTable(
    'over TCP through the client library, 3 replicas on one node and on three nodes (median run)',
    [{ header: 'case' }, { header: 'ops/s', align: 'right' }, { header: 'p50 µs', align: 'right' }, { header: 'p99 µs', align: 'right' }, { header: 'errors', align: 'right' }],
    rows.map((r) => [r.name, formatInteger(r.opsPerSecond), formatInteger(r.p50Us), formatInteger(r.p99Us), String(r.errors)]),
  );
  const files = writeResults(context.outDir, 'net', { options: { msPerRun, reps, warmOps }, rows: rows.map((r) => ({ ...r })) }, startedAt);
  progress(`results: ${files.path}`);
}

/** The node processes of a topology, the client address to use, and the namespace to load. */
async function startTopology(topology: Topology): Promise<{ nodes: NodeProcess[]; address: string; ns: string }> {
  if (topology === 'one node') {
    const node = await startNodeProcess('single', []);
    return { nodes: [node], address: node.client, ns: 'default' };
  }
  const nodes: NodeProcess[] = [];
  try {
    for (const name of ['a', 'b', 'c']) nodes.push(await startNodeProcess(name, ['--cluster-address', '127.0.0.1:0', '--no-local-namespace']));
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    for (const joiner of [b, c]) await adminValue(joiner.admin, { type: 'cluster_join', address: a.cluster as string });
    const created = (await adminValue(a.admin, { type: 'namespace_create', ns: 'bench', replicas: 3, nodes: ['a', 'b', 'c'] })) as { nodes: string[] };
    for (const node of nodes) {
      while (!((await adminValue(node.admin, { type: 'namespaces' })) as string[]).includes('bench')) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // View 0's primary is replica 0: the client talks to the node that hosts it.
    const first = nodes.find((node) => node.name === created.nodes[0]) ?? a;
    return { nodes, address: first.client, ns: 'bench' };
  } catch (error) {
    await Promise.all(nodes.map((node) => stopNodeProcess(node)));
    throw error;
  }
}
