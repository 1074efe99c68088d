/**
 * `npm run bench -- recipes`: what the coordination recipes (src/coord) deliver and cost.
 *
 * - locks: acquire+release per second through the client library, on one path, for a fixed
 *   window, by 1 (sequential lock/release loops), 16 and 256 contenders (total holds per
 *   second), with p50/p99 of the acquisition (the `lock` call to its promise resolving), in
 *   two setups: over TCP, a `haret start` process (one 3-replica namespace) driven from this
 *   process through `connect` (contenders spread over up to 16 connections); and in-process,
 *   `startNode`. Both with the `main_thread` worker layout unless `--worker-layout` names
 *   another (`recipesDefaultLayout`). Each lock takes a lease of its own (the default: from
 *   the client's pool of leases, given back at release); the `held` row passes a lease
 *   granted once (`grantLease`), so a hold is only the lock's own node.
 * - etcd: when an `etcd` binary is on the PATH, the uncontended loop with etcd's lock recipe
 *   through the `etcd3` client (`client.lock(key).acquire()` / `release()`: a lease, a
 *   put-if-absent txn on it, the lease revoked) against a 3-member etcd (bench/etcd.ts), in the
 *   same run, and the ratio haret/etcd. Never installed by the bench; not run in --quick.
 * - failover: a leader process SIGKILLed, to an observer seeing the standby lead
 *   (bench/recipes_failover.ts), p50/p99 over N rounds, against TTL + 2 view-change timeouts.
 * - keep-alive: 10,000 live leases on one node in this process against the same node idle
 *   (bench/recipes_keepalive.ts).
 *
 * Goals (reported, never asserted): uncontended lock+release over TCP at least 10x etcd's.
 * The full run takes about two minutes, --quick about half a minute; every process it starts
 * is stopped (SIGKILLed should this process exit first) and etcd's data directories removed.
 */

import os from 'node:os';
import { Etcd3 } from 'etcd3';
import type { NamespaceClient } from '../src/client/namespace_client.ts';
import { connect, type RemoteConnection } from '../src/net/index.ts';
import { startNode, type HaretNode, type WorkerLayout } from '../src/node/index.ts';
import { defaultReplicaConfig } from '../src/vr/config.ts';
import { findEtcd, startEtcdCluster, type EtcdCluster } from './etcd.ts';
import { startNodeProcess, stopNodeProcess, type NodeProcess } from './node_process.ts';
import { measureFailover, type FailoverResult } from './recipes_failover.ts';
import { measureKeepAlive, type KeepAliveOptions, type KeepAliveResult, type KeepAliveWindow } from './recipes_keepalive.ts';
import { etcdLockRun, haretLockRun, type LeaseMode, type LockRun, type RunLength } from './recipes_locks.ts';
import { formatInteger, printTable, progress, writeResults, type SuiteContext } from './report.ts';
import { percentile } from './runtime.bench.ts';

export type LockSetup = 'TCP' | 'in-process' | 'etcd';

export type LockRow = LockRun & {
  readonly setup: LockSetup;
  readonly leaseMode: LeaseMode;
  readonly contenders: number;
  readonly holdsPerSecond: number;
};

export type FailoverSummary = {
  readonly rounds: number;
  readonly ttlMs: number;
  /** TTL + 2 view-change timeouts (viewChangeTimeoutTicks x tickMs each). */
  readonly boundMs: number;
  readonly viewChangeTimeoutMs: number;
  readonly observedP50Ms: number;
  readonly observedP99Ms: number;
  readonly observedMinMs: number;
  readonly observedMaxMs: number;
  readonly standbyP50Ms: number;
  readonly standbyP99Ms: number;
  readonly failures: readonly string[];
};

export type RecipesOptions = {
  /** Measured window of each lock row, and the warm-up before it. */
  readonly lockMs: number;
  readonly lockWarmMs: number;
  /** Once per system before its first row: JIT in every thread, sessions and connections busy (0: none). */
  readonly lockFirstWarmMs: number;
  /** Lock cycles each contender finishes however long it takes (0: the window alone decides; a smoke run's floor). */
  readonly lockMinCycles: number;
  readonly contenders: readonly number[];
  /** Run the etcd comparison when a binary is on the PATH. */
  readonly etcd: boolean;
  readonly failoverRounds: number;
  readonly failoverTtlMs: number;
  readonly failoverBudgetMs: number;
  readonly keepAlive: KeepAliveOptions;
};

export type RecipesResult = {
  readonly locks: readonly LockRow[];
  /** Why there are no etcd rows, or which etcd ran. */
  readonly etcdNote: string;
  readonly failover: FailoverSummary;
  readonly keepAlive: KeepAliveResult;
};

const namespace = 'default';
/** TCP contenders are spread over this many connections (one client library each). */
const connectionsMax = 16;
/** A lock loop's contenders get this long after the window to finish their cycle. */
const drainMs = 30_000;

export const fullOptions: RecipesOptions = {
  lockMs: 5000,
  lockWarmMs: 500,
  lockFirstWarmMs: 2000,
  lockMinCycles: 0,
  contenders: [1, 16, 256],
  etcd: true,
  failoverRounds: 10,
  failoverTtlMs: 1000,
  failoverBudgetMs: 60_000,
  keepAlive: { clients: 10, leasesPerClient: 1000, ttlMs: 10_000, windowMs: 10_000, settleMs: 2000 },
};

export const quickOptions: RecipesOptions = {
  lockMs: 1000,
  lockWarmMs: 100,
  lockFirstWarmMs: 300,
  lockMinCycles: 0,
  contenders: [1, 16, 256],
  etcd: false,
  failoverRounds: 1,
  failoverTtlMs: 1000,
  failoverBudgetMs: 15_000,
  // A keep-alive period of 1 s, so that the 2 s window sees keep-alives.
  keepAlive: { clients: 10, leasesPerClient: 100, ttlMs: 3000, windowMs: 2000, settleMs: 200 },
};

/** Where progress lines go. */
export type Log = (message: string) => void;

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

// ---- setups ----------------------------------------------------------------------------------

/** The node process, killed outright should this process exit before stopping it. */
let liveProcess: NodeProcess | null = null;
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => liveProcess?.child.kill('SIGKILL'));
}

type LockTarget = { readonly setup: LockSetup; clientFor(contender: number): NamespaceClient };

type Systems = {
  readonly process: NodeProcess;
  readonly connections: readonly RemoteConnection[];
  readonly node: HaretNode;
  readonly targets: readonly LockTarget[];
};

async function startSystems(layout: WorkerLayout | undefined): Promise<Systems> {
  installExitHook();
  const connections: RemoteConnection[] = [];
  let node: HaretNode | null = null;
  let started: NodeProcess | null = null;
  try {
    // Side by side (most of a start is loading modules); whichever started is stopped should the other fail.
    const [processStart, nodeStart] = await Promise.allSettled([
      startNodeProcess('bench-recipes', ['--namespace', namespace, '--replicas', '3', ...(layout === undefined ? [] : ['--worker-layout', layout])]),
      startNode({ logLevel: 'silent', ...(layout === undefined ? {} : { workerLayout: layout }) }),
    ]);
    if (processStart.status === 'fulfilled') started = liveProcess = processStart.value;
    if (nodeStart.status === 'fulfilled') node = nodeStart.value;
    if (processStart.status === 'rejected') throw processStart.reason;
    if (nodeStart.status === 'rejected') throw nodeStart.reason;
    const processStarted = processStart.value;
    const nodeStarted = nodeStart.value;
    const address = processStarted.client;
    for (let k = 0; k < connectionsMax; k += 1) connections.push(await connect([address]));
    const local = nodeStarted.client(namespace);
    const targets: LockTarget[] = [
      { setup: 'TCP', clientFor: (k) => (connections[k % connections.length] as RemoteConnection).client(namespace) },
      { setup: 'in-process', clientFor: () => local },
    ];
    return { process: processStarted, connections, node: nodeStarted, targets };
  } catch (error) {
    await stopSystems({ process: started, connections, node }, () => undefined);
    throw error;
  }
}

async function stopSystems(systems: { readonly process: NodeProcess | null; readonly connections: readonly RemoteConnection[]; readonly node: HaretNode | null }, log: Log): Promise<void> {
  await Promise.all(systems.connections.map((connection) => connection.close().catch(() => undefined)));
  await systems.node?.stop().catch((error: unknown) => log(`in-process node stop failed: ${errorText(error)}`));
  if (systems.process !== null) await stopNodeProcess(systems.process, 5000).catch(() => systems.process?.child.kill('SIGKILL'));
  liveProcess = null;
}

// ---- locks ------------------------------------------------------------------------------------

let lockPathCounter = 0;
/** A path no earlier row used: a row never meets another's leftovers. */
const lockPath = (): string => `/bench/locks/l${(lockPathCounter += 1)}`;

function lockRow(setup: LockSetup, leaseMode: LeaseMode, contenders: number, run: LockRun): LockRow {
  return { ...run, setup, leaseMode, contenders, holdsPerSecond: run.holds / run.seconds };
}

async function runLocks(targets: readonly LockTarget[], etcd: Etcd3 | null, options: RecipesOptions, log: Log): Promise<LockRow[]> {
  const rows: LockRow[] = [];
  const warm: RunLength = { ms: options.lockWarmMs, minCycles: 0, drainMs };
  const measured: RunLength = { ms: options.lockMs, minCycles: options.lockMinCycles, drainMs };
  if (options.lockFirstWarmMs > 0) {
    const first: RunLength = { ms: options.lockFirstWarmMs, minCycles: 0, drainMs };
    // Both the contended and the uncontended path: measured here, the uncontended rate kept
    // climbing for ~5 s of uncontended cycles (JIT tiers in the client and the node), so a
    // warm-up of contenders alone left the 1-contender row measuring that climb.
    // etcd first, so that haret's measured rows do not come straight after etcd's fsyncing
    // warm-up: measured outside the bench, a TCP haret row right after it did 972-1,093
    // cycles/s, and 1,181-1,384 with no etcd run before it (the cause is not pinned down).
    const uncontended: RunLength = { ms: options.lockFirstWarmMs * 1.5, minCycles: 0, drainMs };
    if (etcd !== null) {
      log('locks, etcd: first warm-up');
      await etcdLockRun(etcd, 'bench-lock-warm', first);
      await etcdLockRun(etcd, 'bench-lock-warm', uncontended);
    }
    for (const target of targets) {
      log(`locks, ${target.setup}: first warm-up`);
      await haretLockRun(target.clientFor, lockPath(), 16, 'per lock', first);
      await haretLockRun(target.clientFor, lockPath(), 1, 'per lock', uncontended);
    }
  }
  const cases: readonly { contenders: number; leaseMode: LeaseMode }[] = [
    ...options.contenders.map((contenders) => ({ contenders, leaseMode: 'per lock' as const })),
    { contenders: 1, leaseMode: 'held' },
  ];
  for (const c of cases) {
    for (const target of targets) {
      const label = `${target.setup}: ${c.contenders} contender${c.contenders === 1 ? '' : 's'}, lease ${c.leaseMode}`;
      log(`locks, ${label}`);
      await haretLockRun(target.clientFor, lockPath(), c.contenders, c.leaseMode, warm);
      rows.push(lockRow(target.setup, c.leaseMode, c.contenders, await haretLockRun(target.clientFor, lockPath(), c.contenders, c.leaseMode, measured)));
    }
    // etcd right after haret's uncontended rows, so that the machine's state is alike for the ratio.
    if (etcd !== null && c.contenders === 1 && c.leaseMode === 'per lock') {
      log('locks, etcd: 1 contender');
      await etcdLockRun(etcd, 'bench-lock-warm', warm);
      rows.push(lockRow('etcd', 'per lock', 1, await etcdLockRun(etcd, 'bench-lock', measured)));
    }
  }
  return rows;
}

async function startEtcd(options: RecipesOptions, log: Log): Promise<{ cluster: EtcdCluster | null; client: Etcd3 | null; note: string }> {
  if (!options.etcd) return { cluster: null, client: null, note: 'etcd comparison skipped: not run in --quick' };
  const binary = findEtcd();
  if (binary === null) return { cluster: null, client: null, note: 'etcd comparison skipped: no etcd binary on the PATH (Debian: apt-get install etcd-server etcd-client; the bench installs nothing)' };
  log(`starting a 3-member etcd cluster (${binary})`);
  try {
    const cluster = await startEtcdCluster({ binary });
    const client = new Etcd3({ hosts: [...cluster.endpoints], dialTimeout: 5000, defaultCallOptions: () => ({ deadline: Date.now() + 10_000 }) });
    return { cluster, client, note: `etcd: ${cluster.version} (${binary}), 3 members on 127.0.0.1, defaults (WAL fsync on), etcd3 client lock recipe` };
  } catch (error: unknown) {
    return { cluster: null, client: null, note: `etcd comparison skipped: the cluster did not start: ${errorText(error)}` };
  }
}

// ---- failover ---------------------------------------------------------------------------------

function summarizeFailover(result: FailoverResult, options: RecipesOptions): FailoverSummary {
  const viewChangeTimeoutMs = defaultReplicaConfig.viewChangeTimeoutTicks * defaultReplicaConfig.tickMs;
  const observed = Float64Array.from(result.samples.map((s) => s.killToObservedMs)).sort();
  const standby = Float64Array.from(result.samples.map((s) => s.killToStandbyMs)).sort();
  return {
    rounds: result.samples.length,
    ttlMs: options.failoverTtlMs,
    boundMs: options.failoverTtlMs + 2 * viewChangeTimeoutMs,
    viewChangeTimeoutMs,
    observedP50Ms: percentile(observed, 0.5),
    observedP99Ms: percentile(observed, 0.99),
    observedMinMs: observed.length === 0 ? Number.NaN : (observed[0] as number),
    observedMaxMs: observed.length === 0 ? Number.NaN : (observed[observed.length - 1] as number),
    standbyP50Ms: percentile(standby, 0.5),
    standbyP99Ms: percentile(standby, 0.99),
    failures: result.failures,
  };
}

// ---- the run ----------------------------------------------------------------------------------

/** Runs every measure; `log` takes the progress lines (stderr by default). */
export async function runRecipesBench(options: RecipesOptions, log: Log = progress, layout?: WorkerLayout): Promise<RecipesResult> {
  log('starting a haret node process (TCP) and a node in this process');
  const systems = await startSystems(layout);
  let locks: LockRow[];
  let etcdNote: string;
  let failover: FailoverResult;
  try {
    const etcd = await startEtcd(options, log);
    etcdNote = etcd.note;
    try {
      locks = await runLocks(systems.targets, etcd.client, options, log);
    } finally {
      etcd.client?.close();
      await etcd.cluster?.stop().catch((error: unknown) => log(`etcd stop failed: ${errorText(error)}`));
    }
    // The in-process node is done with: the failover runs against the node process alone.
    await systems.node.stop();
    log(`failover: ${options.failoverRounds} rounds, TTL ${options.failoverTtlMs} ms`);
    failover = await measureFailover({ address: systems.process.client, namespace, rounds: options.failoverRounds, ttlMs: options.failoverTtlMs, budgetMs: options.failoverBudgetMs });
  } finally {
    await stopSystems({ process: systems.process, connections: systems.connections, node: null }, log);
    await systems.node.stop().catch(() => undefined);
  }
  const k = options.keepAlive;
  log(`keep-alive: idle, then ${formatInteger(k.clients * k.leasesPerClient)} leases (${k.windowMs} ms windows)`);
  const keepAlive = await measureKeepAlive(k);
  return { locks, etcdNote, failover: summarizeFailover(failover, options), keepAlive };
}

// ---- report -----------------------------------------------------------------------------------

const ms = (us: number): string => (Number.isNaN(us) ? '-' : (us / 1000).toFixed(us < 10_000 ? 2 : 0));
const msValue = (value: number): string => (Number.isNaN(value) ? '-' : value.toFixed(0));
const pct = (share: number | undefined): string => (share === undefined || Number.isNaN(share) ? '-' : `${Math.round(share * 100)}%`);

/** `main 1%, proxy 1%, timer 4%, r0 18%, ...`: every thread, replicas by their index. */
function threads(busy: Record<string, number>): string {
  return Object.entries(busy)
    .map(([thread, share]) => `${thread.replace(`${namespace}.`, '')} ${pct(share)}`)
    .join(', ');
}

/** Uncontended holds/s of a setup (per-lock leases), or null. */
function uncontended(rows: readonly LockRow[], setup: LockSetup): number | null {
  const row = rows.find((r) => r.setup === setup && r.contenders === 1 && r.leaseMode === 'per lock');
  return row === undefined || !(row.holdsPerSecond > 0) ? null : row.holdsPerSecond;
}

export type EtcdRatios = { readonly tcp: number | null; readonly inProcess: number | null };

export function etcdRatios(rows: readonly LockRow[]): EtcdRatios {
  const etcd = uncontended(rows, 'etcd');
  const ratio = (setup: LockSetup): number | null => {
    const haret = uncontended(rows, setup);
    return haret === null || etcd === null ? null : haret / etcd;
  };
  return { tcp: ratio('TCP'), inProcess: ratio('in-process') };
}

export const etcdRatioGoal = 10;

function keepAliveRow(name: string, w: KeepAliveWindow): string[] {
  return [name, formatInteger(w.leasesReported), w.keepAliveOpsPerSecond.toFixed(2), formatInteger(w.idsRenewedPerSecond), String(w.idsLost), w.entriesPerSecond.toFixed(1), pct(w.cpuShare), threads(w.busy)];
}

export function printRecipes(result: RecipesResult, options: RecipesOptions): void {
  process.stdout.write(`${result.etcdNote}\n\n`);
  printTable(
    `lock acquire+release on one path, closed loops for ${options.lockMs} ms per row (${options.lockWarmMs} ms warm-up each, ${options.lockFirstWarmMs} ms of 16 contenders then ${options.lockFirstWarmMs * 1.5} ms of 1 first per system), 3 replicas, default options; TCP: a \`haret start\` process, contenders over up to ${connectionsMax} connections; acquire: the lock call to its promise resolving`,
    [{ header: 'setup' }, { header: 'lease' }, { header: 'contenders', align: 'right' }, { header: 'holds/s', align: 'right' }, { header: 'acquire p50 ms', align: 'right' }, { header: 'acquire p99 ms', align: 'right' }, { header: 'holds', align: 'right' }, { header: 'errors', align: 'right' }, { header: 'stuck', align: 'right' }, { header: 'note' }],
    result.locks.map((r) => [r.setup, r.leaseMode, formatInteger(r.contenders), formatInteger(r.holdsPerSecond), ms(r.p50Us), ms(r.p99Us), formatInteger(r.holds), String(r.errors), String(r.stuck), r.firstError ?? '']),
  );
  const ratios = etcdRatios(result.locks);
  if (result.locks.some((r) => r.setup === 'etcd')) {
    printTable(
      'uncontended lock+release per second, haret/etcd (same run)',
      [{ header: 'haret setup' }, { header: 'haret/etcd', align: 'right' }, { header: `goal >= ${etcdRatioGoal}x` }],
      [
        ['TCP', ratios.tcp === null ? 'n/a' : `${ratios.tcp.toFixed(1)}x`, ratios.tcp === null ? 'n/a' : ratios.tcp >= etcdRatioGoal ? 'yes' : 'NO'],
        ['in-process', ratios.inProcess === null ? 'n/a' : `${ratios.inProcess.toFixed(1)}x`, ''],
      ],
    );
  }
  const f = result.failover;
  printTable(
    `election failover: leader process SIGKILLed (lease TTL ${f.ttlMs} ms, the kill at a random point below the TTL after the standby queued) until the new leader is seen; bound TTL + 2 view-change timeouts = ${f.ttlMs} + 2 x ${f.viewChangeTimeoutMs} ms (viewChangeTimeoutTicks ${defaultReplicaConfig.viewChangeTimeoutTicks} x tickMs ${defaultReplicaConfig.tickMs}) = ${f.boundMs} ms`,
    [{ header: 'measure' }, { header: 'rounds', align: 'right' }, { header: 'min ms', align: 'right' }, { header: 'p50 ms', align: 'right' }, { header: 'p99 ms', align: 'right' }, { header: 'max ms', align: 'right' }, { header: 'bound ms', align: 'right' }, { header: 'failed rounds', align: 'right' }],
    [
      ['kill -> observer sees new leader', String(f.rounds), msValue(f.observedMinMs), msValue(f.observedP50Ms), msValue(f.observedP99Ms), msValue(f.observedMaxMs), String(f.boundMs), String(f.failures.length)],
      ['kill -> standby campaign resolves', String(f.rounds), '', msValue(f.standbyP50Ms), msValue(f.standbyP99Ms), '', String(f.boundMs), ''],
    ],
  );
  for (const failure of f.failures) process.stdout.write(`failover: ${failure}\n`);
  const k = result.keepAlive;
  const kOptions = options.keepAlive;
  printTable(
    `keep-alive cost, one node in this process, 3 replicas: idle vs ${formatInteger(kOptions.clients * kOptions.leasesPerClient)} leases (${kOptions.clients} clients x ${formatInteger(kOptions.leasesPerClient)}, TTL ${formatInteger(kOptions.ttlMs)} ms, default keep-alive period TTL/3), ${kOptions.windowMs} ms windows; CPU: process CPU time / wall time (100% = one core of ${os.cpus().length})`,
    [{ header: 'window' }, { header: 'leases', align: 'right' }, { header: 'keep-alive ops/s', align: 'right' }, { header: 'ids renewed/s', align: 'right' }, { header: 'ids lost', align: 'right' }, { header: 'log entries/s', align: 'right' }, { header: 'CPU', align: 'right' }, { header: 'event loop busy, each thread' }],
    [keepAliveRow('idle, no leases', k.idle), keepAliveRow('leases kept alive', k.loaded)],
  );
  process.stdout.write(`granted ${formatInteger(k.loaded.leases)} leases in ${formatInteger(k.grantMs)} ms (${k.grantErrors} errors); leases lost by the end: ${k.leasesLost}\n\n`);
}

/**
 * The layout the lock rows run with when `--worker-layout` is not given: the one a user who
 * wants the lowest lock latency on one machine would pick (in memory, every replica beside the
 * sockets: a request crosses no thread; README "Performance today" says what it trades).
 * Printed with the results, and written to the JSON.
 */
export const recipesDefaultLayout: WorkerLayout = 'main_thread';

export async function recipesSuite(context: SuiteContext): Promise<void> {
  const startedAt = new Date();
  const loadAtStart = os.loadavg()[0] ?? Number.NaN;
  const options = context.quick ? quickOptions : fullOptions;
  const layout = context.workerLayout ?? recipesDefaultLayout;
  const result = await runRecipesBench(options, progress, layout);
  const loadAtEnd = os.loadavg()[0] ?? Number.NaN;
  const seconds = (Date.now() - startedAt.getTime()) / 1000;
  process.stdout.write(`1-minute load average ${loadAtStart.toFixed(1)} at the start, ${loadAtEnd.toFixed(1)} at the end, on ${os.cpus().length} CPUs; ran ${seconds.toFixed(0)} s; haret worker layout: ${layout}${context.workerLayout === undefined ? ' (the suite\'s default; --worker-layout picks another)' : ''}\n\n`);
  printRecipes(result, options);
  const ratios = etcdRatios(result.locks);
  const files = writeResults(
    context.outDir,
    'recipes',
    {
      options: { ...options, contenders: [...options.contenders], keepAlive: { ...options.keepAlive }, workerLayout: layout },
      etcdNote: result.etcdNote,
      locks: result.locks.map((r) => ({ ...r })),
      etcdRatios: { ...ratios },
      failover: { ...result.failover, failures: [...result.failover.failures] },
      keepAlive: { ...result.keepAlive, idle: { ...result.keepAlive.idle, busy: { ...result.keepAlive.idle.busy } }, loaded: { ...result.keepAlive.loaded, busy: { ...result.keepAlive.loaded.busy } } },
      loadAverage: { start: loadAtStart, end: loadAtEnd },
      seconds,
    },
    startedAt,
  );
  progress(`results: ${files.path}`);
}
