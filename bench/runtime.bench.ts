/**
 * `npm run bench -- runtime`: the product on worker threads. A 3-replica namespace in this
 * process (each replica, the client proxy and the timer in a worker of their own), driven by
 * 1, 16, 256 and 1,024 concurrent callers through the embedding API:
 *
 * - `put`: 100-byte blob puts, each caller on its own blob;
 * - `mix`: 90% gets and 10% puts (linearizable reads: answered by the primary after a
 *   confirmation round, src/vr/README.md rule 22; the `reads logged` rows log them instead);
 *
 * reporting committed ops/s, p50 and p99 latency. In the same run, for comparison:
 * - the transport ceiling: the same actors and message flow with the replica replaced by an
 *   echo (bench/ceiling_replica.ts), at the same caller counts for puts;
 * - the codec: structured clone vs msgpack between workers, puts at 256 callers;
 * - the transport: the SharedArrayBuffer ring transport, puts at 1 and 1,024 callers;
 * - the placement (issue 16): `workerLayout: 'shared'` (three replica workers shared by every
 *   namespace), alone and with the proxy on the main thread, puts at 1 and 1,024 callers; and
 *   `workerLayout: 'single'` (every replica in one worker) with the proxy on the main thread,
 *   puts at 1 and 1,024 callers and the 90/10 mix at 1,024;
 * - the simulator baseline: the pure core in one thread, no workers (the `sim` suite's widest case);
 * - memory: heap of every thread after a full GC, after 100,000 puts and after 1,000,000.
 *
 * and, for the 1- and 1,024-caller put rows and the 1,024-caller mix, where the time goes per
 * committed op (bench/time_breakdown.ts): CPU and GC per thread, posts, envelopes and bytes,
 * requests per log entry at the primary.
 */

import cliProgress from 'cli-progress';
import { startNode, type HaretNode, type NamespaceClient } from '../src/node/index.ts';
import type { CodecName } from '../runtime/codec.ts';
import type { ProxyThread, WorkerLayout } from '../src/node/options.ts';
import { formatBytes, formatInteger, printTable, progress, writeResults, type SuiteContext } from './report.ts';
import { runSimBench } from './sim.bench.ts';
import { busyShare } from './loop_times.ts';
import { breakdown, breakdownColumns, breakdownRows, breakdownTitle, GcClock, loopTimesOf, takeSnapshot, type TimeBreakdown } from './time_breakdown.ts';

// Bytes per post with the clone codec are sampled only when asked for (runtime/router.ts).
process.env['HARET_MEASURE_POST_BYTES'] = '1';

export type Workload = 'put' | 'mix';

export type Case = {
  readonly name: string;
  readonly workload: Workload;
  readonly callers: number;
  readonly ceiling: boolean;
  readonly codec: CodecName;
  readonly proxy: ProxyThread;
  /** Every read logged, as in VRR §4.1 (src/vr/README.md rule 22 off): what the read path saves. */
  readonly readsLogged?: true;
  /** The SharedArrayBuffer ring transport (runtime/ring_transport.ts) instead of MessagePorts. */
  readonly ring?: true;
  /** A worker layout other than the default (fewer threads; issue 16 asks for it measured): `shared` or `single`. */
  readonly layout?: Exclude<WorkerLayout, 'actor_per_worker'>;
};

/** A case and what its median run measured. */
export type RuntimeRow = Case & {
  readonly opsPerSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly ops: number;
  readonly errors: number;
  /** Share of the run each thread's event loop was busy (0-1): where the time went. */
  readonly busy: Record<string, number>;
  /** Per committed op, over the same window: CPU, GC, posts, envelopes, bytes (bench/time_breakdown.ts). */
  readonly breakdown: TimeBreakdown;
};

type Options = { readonly msPerRun: number; readonly warmMs: number; readonly warmOps: number; readonly reps: number; readonly memoryPuts: readonly [number, number] };

const ceilingModule = new URL('./ceiling_replica.ts', import.meta.url).href;
const value = new Uint8Array(100).fill(0x61);

function cases(): Case[] {
  const out: Case[] = [];
  const base = { ceiling: false, codec: 'clone', proxy: 'worker' } as const;
  for (const callers of [1, 16, 256, 1024]) out.push({ ...base, name: `put, ${callers} callers`, workload: 'put', callers });
  for (const callers of [1, 16, 256, 1024]) out.push({ ...base, name: `90/10 get/put, ${callers} callers`, workload: 'mix', callers });
  for (const callers of [1, 1024]) out.push({ ...base, name: `90/10 get/put, ${callers} callers, reads logged`, workload: 'mix', callers, readsLogged: true });
  for (const callers of [1, 1024]) out.push({ ...base, name: `put, ${callers} callers, proxy on main thread`, workload: 'put', callers, proxy: 'host' });
  for (const callers of [256, 1024]) out.push({ ...base, name: `put, ${callers} callers, msgpack codec`, workload: 'put', callers, codec: 'msgpack' });
  for (const callers of [1, 1024]) out.push({ ...base, name: `put, ${callers} callers, ring transport`, workload: 'put', callers, ring: true });
  for (const callers of [1, 1024]) out.push({ ...base, name: `put, ${callers} callers, shared workers`, workload: 'put', callers, layout: 'shared' });
  for (const callers of [1, 1024]) out.push({ ...base, name: `put, ${callers} callers, shared workers, proxy on main thread`, workload: 'put', callers, layout: 'shared', proxy: 'host' });
  for (const callers of [1, 1024]) out.push({ ...base, name: `put, ${callers} callers, single replica worker, proxy on main thread`, workload: 'put', callers, layout: 'single', proxy: 'host' });
  out.push({ ...base, name: '90/10 get/put, 1024 callers, single replica worker, proxy on main thread', workload: 'mix', callers: 1024, layout: 'single', proxy: 'host' });
  for (const callers of [1, 16, 256, 1024]) out.push({ ...base, name: `ceiling: echo, ${callers} callers`, workload: 'put', callers, ceiling: true });
  return out;
}

/** Closed-loop callers for `ms`; returns ops/s and latency percentiles (µs). */
export async function drive(client: NamespaceClient, workload: Workload, callers: number, ms: number, bar: Bar | null): Promise<{ ops: number; completed: number; errors: number; seconds: number; latenciesUs: Float64Array }> {
  let running = true;
  let ops = 0;
  // Every op that succeeded, the ones that ended after the window included: what the threads
  // worked on between a snapshot taken before `drive` and one taken after it returns.
  let completed = 0;
  let errors = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const stopAt = started + ms;
  const ticker = bar === null ? null : setInterval(() => bar.update(Math.min(ms, performance.now() - started)), 100);
  const timer = setTimeout(() => (running = false), ms);
  await Promise.all(
    Array.from({ length: callers }, async (_, k) => {
      const path = `/b${k}`;
      let i = k;
      while (running) {
        const t0 = performance.now();
        try {
          if (workload === 'mix' && i % 10 !== 0) await client.blobGet(path);
          else await client.blobPut(path, value);
          const t1 = performance.now();
          completed += 1;
          if (t1 <= stopAt) {
            ops += 1;
            latencies.push((t1 - t0) * 1000);
          }
        } catch {
          errors += 1;
        }
        i += 1;
      }
    }),
  );
  clearTimeout(timer);
  if (ticker !== null) clearInterval(ticker);
  const seconds = (Math.min(performance.now(), stopAt) - started) / 1000;
  return { ops, completed, errors, seconds, latenciesUs: Float64Array.from(latencies).sort() };
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number;
}

async function withNode<T>(options: { ceiling: boolean; codec: CodecName; proxy: ProxyThread; readsLogged?: true; ring?: true; layout?: WorkerLayout }, fn: (node: HaretNode) => Promise<T>): Promise<T> {
  const node = await startNode({
    logLevel: 'silent',
    codec: options.codec,
    proxyThread: options.proxy,
    ...(options.ceiling ? { replicaModule: ceilingModule } : {}),
    ...(options.readsLogged === true ? { namespaces: [{ name: 'default', config: { readsSkipLog: false } }] } : {}),
    ...(options.ring === true ? { transport: 'ring' as const } : {}),
    ...(options.layout === undefined ? {} : { workerLayout: options.layout }),
  });
  try {
    return await fn(node);
  } finally {
    await node.stop();
  }
}

export async function prepareBlobs(client: NamespaceClient, count: number): Promise<void> {
  const batch = 256;
  for (let start = 0; start < count; start += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, count - start) }, (_, i) =>
        client.create(`/b${start + i}`, 'blob').catch(() => undefined),
      ),
    );
  }
}

/**
 * Progress bars on a terminal (cli-progress); on a pipe or a file, one plain line per step, so
 * logs stay readable.
 */
export type Bars = { create(total: number, start: number, label: string): Bar; stop(): void };
export type Bar = { update(value: number): void; done(): void };

export function makeBars(): Bars {
  if (process.stderr.isTTY !== true) {
    return {
      create(_total, _start, label) {
        progress(label);
        return { update: () => undefined, done: () => undefined };
      },
      stop: () => undefined,
    };
  }
  const multi = new cliProgress.MultiBar(
    { format: '  {bar} {percentage}% | {label}', stream: process.stderr, hideCursor: false, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  return {
    create(total, start, label) {
      const bar = multi.create(total, start, { label });
      return {
        update: (value) => bar.update(value),
        done: () => {
          bar.update(total);
          bar.stop();
          multi.remove(bar);
        },
      };
    },
    stop: () => multi.stop(),
  };
}

async function runCase(c: Case, options: Options, bars: Bars, mainGc: GcClock): Promise<RuntimeRow> {
  return withNode({ ceiling: c.ceiling, codec: c.codec, proxy: c.proxy, ...(c.readsLogged === true ? { readsLogged: true } : {}), ...(c.ring === true ? { ring: true } : {}), ...(c.layout === undefined ? {} : { layout: c.layout }) }, async (node) => {
    const client = node.client();
    if (!c.ceiling) await prepareBlobs(client, c.callers);
    // Warm-up: JIT in every (fresh) thread, sessions registered, pools filled. At least
    // `warmMs`, and on until `warmOps` operations ran: one caller does few ops per second, and
    // a thread whose hot path is not yet optimised would be measured, not the design.
    let warmed = 0;
    const warmStarted = performance.now();
    while (warmed < options.warmOps && performance.now() - warmStarted < options.warmMs * 10) {
      warmed += (await drive(client, c.workload, c.callers, options.warmMs, null)).ops;
    }
    const reps: RuntimeRow[] = [];
    for (let rep = 0; rep < options.reps; rep += 1) {
      const bar = bars.create(options.msPerRun, 0, `${c.name} (${rep + 1}/${options.reps})`);
      const before = await takeSnapshot(node, mainGc);
      const run = await drive(client, c.workload, c.callers, options.msPerRun, bar);
      const after = await takeSnapshot(node, mainGc);
      const busy = busyShare(loopTimesOf(before), loopTimesOf(after));
      bar.done();
      reps.push({
        ...c,
        opsPerSecond: run.ops / run.seconds,
        p50Us: percentile(run.latenciesUs, 0.5),
        p99Us: percentile(run.latenciesUs, 0.99),
        ops: run.ops,
        errors: run.errors,
        busy,
        breakdown: breakdown(before, after, run.completed),
      });
    }
    // The median run by throughput, with its own latencies.
    const sorted = [...reps].sort((a, b) => a.opsPerSecond - b.opsPerSecond);
    return sorted[Math.floor(sorted.length / 2)] as RuntimeRow;
  });
}

type MemoryRow = { readonly puts: number; readonly heapBytes: number; readonly perThread: Record<string, number> };

async function measureMemory(options: Options, bars: Bars): Promise<MemoryRow[]> {
  return withNode({ ceiling: false, codec: 'clone', proxy: 'worker' }, async (node) => {
    const client = node.client();
    const callers = 1024;
    await prepareBlobs(client, callers);
    const rows: MemoryRow[] = [];
    let done = 0;
    for (const target of options.memoryPuts) {
      const bar = bars.create(target, done, `memory: puts to ${formatInteger(target)}`);
      await Promise.all(
        Array.from({ length: callers }, async (_, k) => {
          while (done < target) {
            done += 1;
            await client.blobPut(`/b${k}`, value).catch(() => undefined);
            if (done % 1000 === 0) bar.update(done);
          }
        }),
      );
      bar.done();
      const perThread = await node.collectGarbage();
      (globalThis as { gc?: () => void }).gc?.();
      perThread['host'] = process.memoryUsage().heapUsed;
      rows.push({ puts: target, heapBytes: Object.values(perThread).reduce((a, b) => a + b, 0), perThread });
    }
    return rows;
  });
}

export async function runtimeSuite(context: SuiteContext): Promise<void> {
  const startedAt = new Date();
  const options: Options = context.quick
    ? { msPerRun: 1000, warmMs: 500, warmOps: 20_000, reps: 1, memoryPuts: [20_000, 100_000] }
    : { msPerRun: 3000, warmMs: 1500, warmOps: 20_000, reps: 3, memoryPuts: [100_000, 1_000_000] };
  const bars = makeBars();
  const rows: RuntimeRow[] = [];
  const mainGc = new GcClock().start();
  try {
    for (const c of cases()) rows.push(await runCase(c, options, bars, mainGc));
  } finally {
    bars.stop();
    mainGc.stop();
  }
  progress('simulator baseline (one thread, no workers)');
  const sim = runSimBench({ cases: [{ name: 'batch 100, 1000 clients', batchMax: 100, clients: 1000 }], msPerRun: options.msPerRun, reps: options.reps, write: false });
  const memoryBars = makeBars();
  let memory: MemoryRow[];
  try {
    memory = await measureMemory(options, memoryBars);
  } finally {
    memoryBars.stop();
  }

  const ceilingAt = (callers: number): number => rows.find((r) => r.ceiling && r.callers === callers)?.opsPerSecond ?? Number.NaN;
  printTable(
    'committed ops/s of a 3-replica namespace on worker threads (median run)',
    [{ header: 'case' }, { header: 'ops/s', align: 'right' }, { header: 'p50 µs', align: 'right' }, { header: 'p99 µs', align: 'right' }, { header: '% of ceiling', align: 'right' }, { header: 'errors', align: 'right' }],
    rows.map((r) => [
      r.name,
      formatInteger(r.opsPerSecond),
      formatInteger(r.p50Us),
      formatInteger(r.p99Us),
      r.ceiling || r.workload !== 'put' || r.proxy !== 'worker' || r.codec !== 'clone' || r.ring === true || r.layout !== undefined ? '' : `${((r.opsPerSecond / ceilingAt(r.callers)) * 100).toFixed(0)}%`,
      String(r.errors),
    ]),
  );
  const threads = [...new Set(rows.flatMap((r) => Object.keys(r.busy)))];
  printTable(
    'event-loop busy share per thread during the run (100% = that thread never waited)',
    [{ header: 'case' }, ...threads.map((t) => ({ header: t, align: 'right' as const }))],
    rows.filter((r) => r.callers === 1 || r.callers === 1024).map((r) => [r.name, ...threads.map((t) => (r.busy[t] === undefined ? '' : `${Math.round((r.busy[t] ?? 0) * 100)}%`))]),
  );
  printTable(breakdownTitle, breakdownColumns, breakdownCases(rows).flatMap((r) => breakdownRows(r.name, r.breakdown)));
  const simRow = sim[0];
  printTable(
    'simulator baseline (pure core, one thread)',
    [{ header: 'case' }, { header: 'ops/s', align: 'right' }],
    simRow === undefined ? [] : [[simRow.name, formatInteger(simRow.opsPerSecond)]],
  );
  const [small, large] = memory;
  printTable(
    'memory: heap after a full GC, all threads',
    [{ header: 'puts' }, { header: 'heap', align: 'right' }],
    memory.map((m) => [formatInteger(m.puts), formatBytes(m.heapBytes)]),
  );
  const ratio = small !== undefined && large !== undefined ? large.heapBytes / small.heapBytes : Number.NaN;
  const put1024 = rows.find((r) => !r.ceiling && r.workload === 'put' && r.callers === 1024 && r.codec === 'clone' && r.proxy === 'worker' && r.ring !== true && r.layout === undefined);
  const put1 = rows.find((r) => !r.ceiling && r.workload === 'put' && r.callers === 1 && r.proxy === 'worker' && r.ring !== true && r.layout === undefined);
  const put1Host = rows.find((r) => !r.ceiling && r.workload === 'put' && r.callers === 1 && r.proxy === 'host' && r.layout === undefined);
  const mix1024 = rows.find((r) => !r.ceiling && r.workload === 'mix' && r.callers === 1024 && r.readsLogged !== true && r.layout === undefined);
  const single = (workload: Workload, callers: number): RuntimeRow | undefined => rows.find((r) => !r.ceiling && r.workload === workload && r.callers === callers && r.layout === 'single');
  const put1024Single = single('put', 1024);
  const put1Single = single('put', 1);
  const mix1024Single = single('mix', 1024);
  const targets = [
    ['puts/s at 1,024 callers >= 100,000', formatInteger(put1024?.opsPerSecond ?? 0), (put1024?.opsPerSecond ?? 0) >= 100_000],
    ['90/10 get/put ops/s at 1,024 callers >= 200,000', formatInteger(mix1024?.opsPerSecond ?? 0), (mix1024?.opsPerSecond ?? 0) >= 200_000],
    ['p50 at 1 caller < 150 µs (proxy in a worker)', `${formatInteger(put1?.p50Us ?? 0)} µs`, (put1?.p50Us ?? Infinity) < 150],
    ['p50 at 1 caller < 150 µs (proxy on the main thread)', `${formatInteger(put1Host?.p50Us ?? 0)} µs`, (put1Host?.p50Us ?? Infinity) < 150],
    ['puts/s at 1,024 callers >= 100,000 (single replica worker, proxy on the main thread)', formatInteger(put1024Single?.opsPerSecond ?? 0), (put1024Single?.opsPerSecond ?? 0) >= 100_000],
    ['90/10 get/put ops/s at 1,024 callers >= 200,000 (single replica worker, proxy on the main thread)', formatInteger(mix1024Single?.opsPerSecond ?? 0), (mix1024Single?.opsPerSecond ?? 0) >= 200_000],
    ['p50 at 1 caller < 150 µs (single replica worker, proxy on the main thread)', `${formatInteger(put1Single?.p50Us ?? 0)} µs`, (put1Single?.p50Us ?? Infinity) < 150],
    ['>= 40% of the transport ceiling (1,024 callers)', `${(((put1024?.opsPerSecond ?? 0) / ceilingAt(1024)) * 100).toFixed(0)}%`, (put1024?.opsPerSecond ?? 0) >= 0.4 * ceilingAt(1024)],
    [`heap after ${formatInteger(memory[1]?.puts ?? 0)} puts within 1.5x of ${formatInteger(memory[0]?.puts ?? 0)}`, `${ratio.toFixed(2)}x`, ratio <= 1.5],
  ] as const;
  printTable('targets', [{ header: 'target' }, { header: 'measured', align: 'right' }, { header: 'met' }], targets.map(([t, m, ok]) => [t, m, ok ? 'yes' : 'NO']));
  const files = writeResults(
    context.outDir,
    'runtime',
    {
      options: { msPerRun: options.msPerRun, warmMs: options.warmMs, warmOps: options.warmOps, reps: options.reps, memoryPuts: [...options.memoryPuts] },
      rows: rows.map((r) => ({ ...r, breakdown: { ...r.breakdown, threads: r.breakdown.threads.map((t) => ({ ...t })) } })),
      simBaseline: simRow === undefined ? null : { name: simRow.name, opsPerSecond: simRow.opsPerSecond },
      memory: memory.map((m) => ({ puts: m.puts, heapBytes: m.heapBytes, perThread: m.perThread })),
      targets: targets.map(([target, measured, met]) => ({ target, measured, met })),
    },
    startedAt,
  );
  progress(`results: ${files.path}`);
}

/**
 * The rows the "where the time goes" table shows: puts at 1 and 1,024 callers and the 1,024-caller
 * mix, with default options and with the single replica worker (proxy on the main thread).
 */
export function breakdownCases(rows: readonly RuntimeRow[]): RuntimeRow[] {
  const shown = (r: RuntimeRow): boolean => (r.proxy === 'worker' && r.layout === undefined) || r.layout === 'single';
  return rows.filter((r) => !r.ceiling && r.codec === 'clone' && r.readsLogged !== true && r.ring !== true && shown(r) && (r.callers === 1 || r.callers === 1024) && (r.workload === 'put' || r.callers === 1024));
}
