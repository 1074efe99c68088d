/**
 * `npm run bench -- net`: the runtime benchmark's workloads (100-byte blob puts; 90/10
 * get/put) over TCP through the client library (`connect`), against one node with a
 * 3-replica namespace serving the client API on 127.0.0.1. Reports ops/s, p50 and p99 per
 * caller count, a table and a JSON file. (Three nodes need cluster links, not built yet.)
 */

import { connect } from '../src/net/index.ts';
import { startNode } from '../src/node/index.ts';
import { formatInteger, printTable, progress, writeResults, type SuiteContext } from './report.ts';
import { drive, makeBars, percentile, prepareBlobs, type Workload } from './runtime.bench.ts';

type NetRow = { readonly name: string; readonly workload: Workload; readonly callers: number; readonly opsPerSecond: number; readonly p50Us: number; readonly p99Us: number; readonly errors: number };

export async function netSuite(context: SuiteContext): Promise<void> {
  const startedAt = new Date();
  const msPerRun = context.quick ? 1000 : 3000;
  const reps = context.quick ? 1 : 3;
  const warmOps = context.quick ? 2_000 : 20_000;
  const rows: NetRow[] = [];
  const bars = makeBars();
  const node = await startNode({ logLevel: 'silent', clientApi: { port: 0 } });
  try {
    const address = node.clientApiAddress;
    if (address === null) throw new Error('no client API address');
    const remote = await connect([`${address.host}:${address.port}`]);
    try {
      const client = remote.client();
      await prepareBlobs(client, 1024);
      for (const workload of ['put', 'mix'] as const) {
        for (const callers of [1, 16, 256, 1024]) {
          const name = `${workload === 'put' ? 'put' : '90/10 get/put'}, ${callers} callers, TCP`;
          let warmed = 0;
          while (warmed < warmOps) warmed += (await drive(client, workload, callers, 500, null)).ops;
          const runs: NetRow[] = [];
          for (let rep = 0; rep < reps; rep += 1) {
            const bar = bars.create(msPerRun, 0, `${name} (${rep + 1}/${reps})`);
            const run = await drive(client, workload, callers, msPerRun, bar);
            bar.done();
            runs.push({ name, workload, callers, opsPerSecond: run.ops / run.seconds, p50Us: percentile(run.latenciesUs, 0.5), p99Us: percentile(run.latenciesUs, 0.99), errors: run.errors });
          }
          runs.sort((a, b) => a.opsPerSecond - b.opsPerSecond);
          rows.push(runs[Math.floor(runs.length / 2)] as NetRow);
        }
      }
    } finally {
      await remote.close();
    }
  } finally {
    bars.stop();
    await node.stop();
  }
  printTable(
    'over TCP through the client library: one node, 3 replicas (median run)',
    [{ header: 'case' }, { header: 'ops/s', align: 'right' }, { header: 'p50 µs', align: 'right' }, { header: 'p99 µs', align: 'right' }, { header: 'errors', align: 'right' }],
    rows.map((r) => [r.name, formatInteger(r.opsPerSecond), formatInteger(r.p50Us), formatInteger(r.p99Us), String(r.errors)]),
  );
  const files = writeResults(context.outDir, 'net', { options: { msPerRun, reps, warmOps }, rows: rows.map((r) => ({ ...r })) }, startedAt);
  progress(`results: ${files.path}`);
}
