/**
 * `npm run bench -- durable`: what durability costs (issue 13, "Benchmark"). Closed-loop
 * 100-byte blob puts (the runtime bench's `drive`, each caller on its own blob) at 1, 16, 256
 * and 1,024 callers against, all in the same run:
 *
 * - haret durable: `startNode({ namespaces: [{ name: 'bench', replicas: 3 }], dataDir })` on a
 *   fresh temporary directory (fsync on), in-process through `node.client()`; and over TCP, a
 *   `haret start --data-dir` process driven through `connect()` from this one, as etcd's
 *   members are processes of their own (a node serving TCP in this process would share its
 *   main thread with the 1,024 callers' client library);
 * - haret diskless: the same without a data dir, both ways, for the durable/diskless ratio
 *   (goal: at least 0.5);
 * - etcd: a 3-member cluster on 127.0.0.1 (bench/etcd.ts) through the `etcd3` client, when an
 *   `etcd` binary is on the PATH, for the haret/etcd ratio (goal: at least 5x at 1,024 callers).
 *   Not in `--quick`.
 *
 * The run has two halves: the in-process systems beside etcd, then the node processes beside
 * etcd (the in-process nodes stopped first: they live in this process, whose main thread also
 * runs the TCP rows' client library, and idle beside it they halved the TCP rows). etcd is up
 * throughout and measured in both halves; each haret row is compared with the etcd of its own
 * half. Within a half every system stays up and the measured runs of one caller count rotate
 * through them rep by rep, so drift in the machine's load hits every side of a ratio alike (as
 * the net bench does for TLS). Each row is the median run by throughput. For the durable
 * rows, the replicas' cumulative storage counters (status `storage`: fsyncs, entries, ...; over
 * the admin API's `replica` answer for a node process) are read before and after each run: fsyncs per second (the three replicas together) and log
 * entries per fsync (group commit: above 1 means one fsync covered several entries). A status
 * without those counters prints n/a; a durable node that cannot start prints its error.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type RemoteConnection } from '../src/net/index.ts';
import { startNode, type ActorReport, type HaretNode, type NamespaceClient, type WorkerLayout } from '../src/node/index.ts';
import { findEtcd, startEtcdCluster, type EtcdCluster } from './etcd.ts';
import { adminValue, startNodeProcess, stopNodeProcess, type NodeProcess } from './node_process.ts';
import { formatInteger, printTable, progress, writeResults, type SuiteContext } from './report.ts';
import { drive, makeBars, percentile, prepareBlobs, type Bars } from './runtime.bench.ts';

export type DurableSystem = 'haret durable' | 'haret diskless' | 'etcd';
export type DurableTransport = 'in-process' | 'TCP' | 'gRPC';

/**
 * A replica's cumulative storage counters, as its status reports them (issue 13). `state` is
 * `ok` when the disk works (`failing`, `lost`, ...: whatever else the replica says, shown as is).
 */
export type StorageCounters = {
  readonly fsyncs: number;
  readonly entries: number;
  readonly records: number;
  readonly bytes: number;
  readonly faults: number;
  readonly state: string;
};

/** The storage counters of a namespace's replicas over one measured run. */
export type StorageWindow = {
  /** Replicas whose status carried counters. */
  readonly replicas: number;
  readonly seconds: number;
  readonly fsyncs: number;
  readonly entries: number;
  readonly records: number;
  readonly bytes: number;
  readonly faults: number;
  /** Every replica's fsyncs together, per second. */
  readonly fsyncsPerSecond: number;
  /** Log entries per fsync (NaN without fsyncs). */
  readonly entriesPerFsync: number;
  /** `ok`, or every other state a replica's storage was in at the end of the run. */
  readonly state: string;
};

/**
 * Which half of the run measured a row: the in-process systems and etcd, then the node
 * processes and etcd again. etcd is measured in both halves, each haret row is compared with the
 * etcd of its own half.
 */
export type DurablePhase = 'in-process' | 'TCP';

export type DurableRow = {
  readonly system: DurableSystem;
  readonly transport: DurableTransport;
  readonly phase: DurablePhase;
  readonly name: string;
  readonly callers: number;
  /** Why the row has no numbers (the system could not start), or null. */
  readonly unavailable: string | null;
  readonly opsPerSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly ops: number;
  readonly errors: number;
  /** Durable rows whose replicas report storage counters; null otherwise. */
  readonly storage: StorageWindow | null;
};

/** One ratio of two rows of the same caller count: numerator over denominator ops/s, null when either is missing. */
export type DurableRatio = {
  readonly callers: number;
  readonly durableOverDisklessInProcess: number | null;
  readonly durableOverDisklessTcp: number | null;
  readonly durableInProcessOverEtcd: number | null;
  readonly durableTcpOverEtcd: number | null;
};

export const callerCounts = [1, 16, 256, 1024] as const;
/** Goals of issue 13. */
export const disklessShareGoal = 0.5;
export const etcdRatioGoal = 5;
const namespace = 'bench';
const value = new Uint8Array(100).fill(0x61);

type Options = {
  readonly msPerRun: number;
  readonly reps: number;
  /** Closed-loop warm-up of every system at each caller count before its measured runs. */
  readonly warmMs: number;
  /** Once per system at start: JIT in every thread, sessions registered, pools filled. */
  readonly firstWarmMs: number;
};

// ---- storage counters -----------------------------------------------------------------------

function isCounters(candidate: unknown): candidate is StorageCounters {
  if (typeof candidate !== 'object' || candidate === null) return false;
  const c = candidate as Record<string, unknown>;
  return (
    ['fsyncs', 'entries', 'records', 'bytes', 'faults'].every((key) => typeof c[key] === 'number' && Number.isFinite(c[key])) &&
    typeof c['state'] === 'string'
  );
}

/**
 * An actor's storage counters, or null. The replica's own status object is the report's
 * `detail` (its `status` field is the protocol status string), so the counters are looked for
 * there, and in `status` too should that become the object: read defensively either way.
 */
export function storageOf(actor: ActorReport): StorageCounters | null {
  const sources: unknown[] = [actor.detail, actor.status];
  for (const source of sources) {
    if (typeof source !== 'object' || source === null) continue;
    const storage = (source as { storage?: unknown }).storage;
    if (isCounters(storage)) return storage;
  }
  return null;
}

/** The counters of every replica of `ns` that reports them, by actor id. */
export function storageByReplica(actors: readonly ActorReport[], ns: string): Map<string, StorageCounters> {
  const out = new Map<string, StorageCounters>();
  for (const actor of actors) {
    if (actor.ns !== ns) continue;
    const storage = storageOf(actor);
    if (storage !== null) out.set(actor.actor, storage);
  }
  return out;
}

/**
 * The counters' growth between two snapshots `seconds` apart, over the replicas present in
 * both (a replica restarted meanwhile restarts its counters: a negative growth is taken as
 * the whole of its new count). Null when no replica reports counters.
 */
export function storageWindow(before: ReadonlyMap<string, StorageCounters>, after: ReadonlyMap<string, StorageCounters>, seconds: number): StorageWindow | null {
  let replicas = 0;
  const sum = { fsyncs: 0, entries: 0, records: 0, bytes: 0, faults: 0 };
  const states = new Set<string>();
  for (const [actor, end] of after) {
    const start = before.get(actor);
    if (start === undefined) continue;
    replicas += 1;
    for (const key of ['fsyncs', 'entries', 'records', 'bytes', 'faults'] as const) {
      const grown = end[key] - start[key];
      sum[key] += grown >= 0 ? grown : end[key];
    }
    if (end.state !== 'ok') states.add(end.state);
  }
  if (replicas === 0) return null;
  return {
    replicas,
    seconds,
    ...sum,
    fsyncsPerSecond: seconds > 0 ? sum.fsyncs / seconds : Number.NaN,
    entriesPerFsync: sum.fsyncs > 0 ? sum.entries / sum.fsyncs : Number.NaN,
    state: states.size === 0 ? 'ok' : [...states].join('+'),
  };
}

// ---- ratios ---------------------------------------------------------------------------------

/** The ratios per caller count, from the rows of one run. */
export function durableRatios(rows: readonly DurableRow[]): DurableRatio[] {
  const ops = (system: DurableSystem, transport: DurableTransport, callers: number): number | null => {
    const row = rows.find((r) => r.system === system && r.transport === transport && r.callers === callers);
    return row === undefined || row.unavailable !== null || !(row.opsPerSecond > 0) ? null : row.opsPerSecond;
  };
  const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a / b);
  // etcd as measured beside each half's haret rows (rows of a run without phases count for both).
  const etcdOps = (phase: DurablePhase, callers: number): number | null => {
    const row = rows.find((r) => r.system === 'etcd' && r.phase === phase && r.callers === callers) ?? rows.find((r) => r.system === 'etcd' && r.callers === callers);
    return row === undefined || row.unavailable !== null || !(row.opsPerSecond > 0) ? null : row.opsPerSecond;
  };
  const counts = [...new Set(rows.map((r) => r.callers))].sort((a, b) => a - b);
  return counts.map((callers) => {
    return {
      callers,
      durableOverDisklessInProcess: ratio(ops('haret durable', 'in-process', callers), ops('haret diskless', 'in-process', callers)),
      durableOverDisklessTcp: ratio(ops('haret durable', 'TCP', callers), ops('haret diskless', 'TCP', callers)),
      durableInProcessOverEtcd: ratio(ops('haret durable', 'in-process', callers), etcdOps('in-process', callers)),
      durableTcpOverEtcd: ratio(ops('haret durable', 'TCP', callers), etcdOps('TCP', callers)),
    };
  });
}

// ---- the systems ----------------------------------------------------------------------------

/** One system and transport the closed loop drives. */
type Target = {
  readonly system: DurableSystem;
  readonly transport: DurableTransport;
  readonly phase: DurablePhase;
  readonly client: NamespaceClient;
  /** Reads the replicas' storage counters (durable rows), or null. */
  readonly countersOf: (() => Promise<Map<string, StorageCounters>>) | null;
};

/** A system that could not start: its rows say why. */
type Missing = { readonly system: DurableSystem; readonly transport: DurableTransport; readonly phase: DurablePhase; readonly reason: string };

/** A haret node serving the bench namespace in-process. */
type HaretDeployment = { readonly node: HaretNode; readonly dataDir: string | null };

/** A `haret start` process serving the bench namespace over TCP, with a connection to it. */
type HaretProcess = { readonly process: NodeProcess; readonly remote: RemoteConnection; readonly dataDir: string | null };

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function startHaret(durable: boolean, layout: WorkerLayout | undefined): Promise<HaretDeployment> {
  const dataDir = durable ? mkdtempSync(join(tmpdir(), 'haret-bench-durable-')) : null;
  let node: HaretNode | null = null;
  try {
    node = await startNode({
      logLevel: 'silent',
      namespaces: [{ name: namespace, replicas: 3 }],
      ...(dataDir === null ? {} : { dataDir }),
      ...(layout === undefined ? {} : { workerLayout: layout }),
    });
    const client = node.client(namespace);
    // A first write proves the namespace serves (a durable start that cannot write fails here, once).
    await client.create('/probe', 'blob');
    await prepareBlobs(client, Math.max(...callerCounts));
    return { node, dataDir };
  } catch (error) {
    await node?.stop().catch(() => undefined);
    if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

async function stopHaret(deployment: HaretDeployment): Promise<void> {
  await deployment.node.stop();
  if (deployment.dataDir !== null) rmSync(deployment.dataDir, { recursive: true, force: true });
}

async function startHaretProcess(durable: boolean, layout: WorkerLayout | undefined): Promise<HaretProcess> {
  const dataDir = durable ? mkdtempSync(join(tmpdir(), 'haret-bench-durable-tcp-')) : null;
  let started: NodeProcess | null = null;
  try {
    started = await startNodeProcess(durable ? 'bench-durable' : 'bench-diskless', ['--namespace', namespace, '--replicas', '3', ...(dataDir === null ? [] : ['--data-dir', dataDir]), ...(layout === undefined ? [] : ['--worker-layout', layout])]);
    const remote = await connect([started.client]);
    try {
      const client = remote.client(namespace);
      await client.create('/probe', 'blob');
      await prepareBlobs(client, Math.max(...callerCounts));
    } catch (error) {
      await remote.close().catch(() => undefined);
      throw error;
    }
    return { process: started, remote, dataDir };
  } catch (error) {
    if (started !== null) await stopNodeProcess(started).catch(() => undefined);
    if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

async function stopHaretProcess(deployment: HaretProcess): Promise<void> {
  await deployment.remote.close().catch(() => undefined);
  await stopNodeProcess(deployment.process);
  if (deployment.dataDir !== null) rmSync(deployment.dataDir, { recursive: true, force: true });
}

/** The storage counters of a node process's replicas, through the admin API's `replica` answer. */
async function processCounters(node: NodeProcess): Promise<Map<string, StorageCounters>> {
  const out = new Map<string, StorageCounters>();
  for (let index = 0; index < 3; index += 1) {
    const actor = `${namespace}/r${index}`;
    const view = (await adminValue(node.admin, { type: 'replica', actor })) as { storage?: unknown } | null;
    if (isCounters(view?.storage)) out.set(actor, view.storage);
  }
  return out;
}

function nodeCounters(node: HaretNode): () => Promise<Map<string, StorageCounters>> {
  return async () => storageByReplica((await node.status()).actors, namespace);
}

/**
 * The etcd cluster as a closed-loop target. `drive` takes a NamespaceClient and, for puts,
 * calls only `blobPut(path, value)` (for the 90/10 mix, `blobGet(path)`): the cluster's
 * key-value adapter has exactly those two, with the same arguments, on etcd keys.
 */
function etcdTarget(cluster: EtcdCluster, phase: DurablePhase): Target {
  return { system: 'etcd', transport: 'gRPC', phase, client: cluster.kv as unknown as NamespaceClient, countersOf: null };
}

// ---- measuring ------------------------------------------------------------------------------

async function snapshot(read: (() => Promise<Map<string, StorageCounters>>) | null): Promise<{ at: number; counters: Map<string, StorageCounters> } | null> {
  if (read === null) return null;
  const counters = await read();
  return { at: performance.now(), counters };
}

function rowName(system: DurableSystem, transport: DurableTransport, phase: DurablePhase, callers: number): string {
  const beside = system === 'etcd' ? ` (beside ${phase})` : '';
  return `${system}, ${transport}${beside}: put, ${formatInteger(callers)} caller${callers === 1 ? '' : 's'}`;
}

async function measure(target: Target, callers: number, options: Options, bars: Bars, label: string): Promise<DurableRow> {
  const name = rowName(target.system, target.transport, target.phase, callers);
  const bar = bars.create(options.msPerRun, 0, `${name} ${label}`);
  const before = await snapshot(target.countersOf);
  const run = await drive(target.client, 'put', callers, options.msPerRun, bar);
  const after = await snapshot(target.countersOf);
  bar.done();
  const storage = before === null || after === null ? null : storageWindow(before.counters, after.counters, (after.at - before.at) / 1000);
  return {
    system: target.system,
    transport: target.transport,
    phase: target.phase,
    name,
    callers,
    unavailable: null,
    opsPerSecond: run.ops / run.seconds,
    p50Us: percentile(run.latenciesUs, 0.5),
    p99Us: percentile(run.latenciesUs, 0.99),
    ops: run.ops,
    errors: run.errors,
    storage,
  };
}

function unavailableRow(system: DurableSystem, transport: DurableTransport, phase: DurablePhase, callers: number, reason: string): DurableRow {
  return { system, transport, phase, name: rowName(system, transport, phase, callers), callers, unavailable: reason, opsPerSecond: Number.NaN, p50Us: Number.NaN, p99Us: Number.NaN, ops: 0, errors: 0, storage: null };
}

/** The run with the median ops/s. */
function medianRun(runs: readonly DurableRow[]): DurableRow {
  const sorted = [...runs].sort((a, b) => a.opsPerSecond - b.opsPerSecond);
  const middle = sorted[Math.floor(sorted.length / 2)];
  if (middle === undefined) throw new RangeError('no run to take the median of');
  return middle;
}

/** Every target at every caller count; the measured runs of one caller count rotate through the targets rep by rep. */
async function runAll(targets: readonly Target[], options: Options, bars: Bars): Promise<DurableRow[]> {
  const rows: DurableRow[] = [];
  for (const target of targets) {
    const bar = bars.create(options.firstWarmMs, 0, `warm-up: ${target.system}, ${target.transport}`);
    await drive(target.client, 'put', 256, options.firstWarmMs, bar);
    bar.done();
  }
  for (const callers of callerCounts) {
    for (const target of targets) await drive(target.client, 'put', callers, options.warmMs, null);
    const runs = targets.map((): DurableRow[] => []);
    for (let rep = 0; rep < options.reps; rep += 1) {
      for (let k = 0; k < targets.length; k += 1) {
        const i = (k + rep) % targets.length;
        const target = targets[i] as Target;
        (runs[i] as DurableRow[]).push(await measure(target, callers, options, bars, `(${rep + 1}/${options.reps})`));
      }
    }
    for (const targetRuns of runs) rows.push(medianRun(targetRuns));
  }
  return rows;
}

// ---- the suite ------------------------------------------------------------------------------

const order: readonly (readonly [DurableSystem, DurableTransport, DurablePhase])[] = [
  ['haret durable', 'in-process', 'in-process'],
  ['haret diskless', 'in-process', 'in-process'],
  ['etcd', 'gRPC', 'in-process'],
  ['haret durable', 'TCP', 'TCP'],
  ['haret diskless', 'TCP', 'TCP'],
  ['etcd', 'gRPC', 'TCP'],
];

/** Rows in table order: by half, system and transport, then by callers. */
function ordered(rows: readonly DurableRow[]): DurableRow[] {
  const rank = (row: DurableRow): number => order.findIndex(([system, transport, phase]) => system === row.system && transport === row.transport && phase === row.phase);
  return [...rows].sort((a, b) => rank(a) - rank(b) || a.callers - b.callers);
}

const formatRatio = (ratio: number | null, suffix = ''): string => (ratio === null ? 'n/a' : `${ratio.toFixed(2)}${suffix}`);

/**
 * Puts acknowledged per fsync of one replica: every replica writes every entry, so the three
 * replicas' fsyncs over three. Counts every fsync of the store (superblock and checkpoint files
 * too), so it is a lower bound of the puts one log append carried.
 */
export function putsPerReplicaFsync(row: DurableRow): number {
  const s = row.storage;
  if (s === null || !(s.fsyncsPerSecond > 0)) return Number.NaN;
  return row.opsPerSecond / (s.fsyncsPerSecond / s.replicas);
}

function storageCells(row: DurableRow): [string, string, string, string] {
  if (row.system !== 'haret durable' || row.unavailable !== null) return ['', '', '', ''];
  const s = row.storage;
  if (s === null) return ['n/a', 'n/a', 'n/a', 'n/a'];
  const health = s.state !== 'ok' || s.faults > 0 ? `${s.state}, ${formatInteger(s.faults)} faults` : 'ok';
  const perFsync = putsPerReplicaFsync(row);
  return [formatInteger(s.fsyncsPerSecond), Number.isNaN(s.entriesPerFsync) ? 'n/a' : s.entriesPerFsync.toFixed(2), Number.isNaN(perFsync) ? 'n/a' : perFsync.toFixed(1), health];
}

/**
 * One half of the run: the durable and the diskless haret of one transport (`start(true)`,
 * `start(false)`, side by side: most of a start is worker threads loading their modules),
 * measured beside etcd, then stopped.
 */
async function runHalf<D>(
  phase: DurablePhase,
  halves: {
    readonly start: (durable: boolean) => Promise<D>;
    readonly target: (deployment: D, durable: boolean) => Pick<Target, 'client' | 'countersOf'>;
    readonly stop: (deployment: D) => Promise<void>;
  },
  etcd: EtcdCluster | null,
  missing: Missing[],
  options: Options,
  bars: Bars,
): Promise<DurableRow[]> {
  progress(phase === 'in-process' ? 'starting haret durable and haret diskless in this process' : 'starting haret durable and haret diskless as node processes');
  const targets: Target[] = [];
  const deployments: D[] = [];
  try {
    const started = await Promise.allSettled([halves.start(true), halves.start(false)]);
    for (const [i, result] of started.entries()) {
      const durable = i === 0;
      const system: DurableSystem = durable ? 'haret durable' : 'haret diskless';
      if (result.status === 'rejected') {
        missing.push({ system, transport: phase, phase, reason: errorText(result.reason) });
        continue;
      }
      deployments.push(result.value);
      targets.push({ system, transport: phase, phase, ...halves.target(result.value, durable) });
    }
    if (etcd !== null) targets.push(etcdTarget(etcd, phase));
    return await runAll(targets, options, bars);
  } finally {
    const stopped = await Promise.allSettled(deployments.map((deployment) => halves.stop(deployment)));
    for (const result of stopped) if (result.status === 'rejected') progress(`cleanup failed: ${errorText(result.reason)}`);
  }
}

/** The first half: haret in this process. */
function inProcessHalf(etcd: EtcdCluster | null, missing: Missing[], options: Options, bars: Bars, layout: WorkerLayout | undefined): Promise<DurableRow[]> {
  const target = (deployment: HaretDeployment, durable: boolean): Pick<Target, 'client' | 'countersOf'> => ({ client: deployment.node.client(namespace), countersOf: durable ? nodeCounters(deployment.node) : null });
  return runHalf('in-process', { start: (durable) => startHaret(durable, layout), target, stop: stopHaret }, etcd, missing, options, bars);
}

/** The second half: `haret start` processes over TCP. */
function tcpHalf(etcd: EtcdCluster | null, missing: Missing[], options: Options, bars: Bars, layout: WorkerLayout | undefined): Promise<DurableRow[]> {
  const target = (deployment: HaretProcess, durable: boolean): Pick<Target, 'client' | 'countersOf'> => ({
    client: deployment.remote.client(namespace),
    countersOf: durable ? () => processCounters(deployment.process) : null,
  });
  return runHalf('TCP', { start: (durable) => startHaretProcess(durable, layout), target, stop: stopHaretProcess }, etcd, missing, options, bars);
}

export async function durableSuite(context: SuiteContext): Promise<void> {
  const startedAt = new Date();
  // Other work on the machine skews every row; the ratios less, as the systems take turns.
  const loadAtStart = loadavg()[0] ?? Number.NaN;
  const options: Options = context.quick ? { msPerRun: 100, reps: 1, warmMs: 40, firstWarmMs: 100 } : { msPerRun: 3000, reps: 3, warmMs: 1000, firstWarmMs: 3000 };
  const missing: Missing[] = [];
  let etcd: EtcdCluster | null = null;
  let etcdNote: string;
  const bars = makeBars();
  let rows: DurableRow[] = [];
  try {
    const binary = context.quick ? null : findEtcd();
    if (context.quick) {
      etcdNote = 'etcd: not run in --quick';
    } else if (binary === null) {
      etcdNote = 'etcd: no etcd binary on the PATH, etcd rows skipped (Debian: apt-get install etcd-server etcd-client)';
    } else {
      progress(`starting a 3-member etcd cluster (${binary})`);
      try {
        etcd = await startEtcdCluster({ binary });
        etcdNote = `etcd: ${etcd.version} (${binary}), 3 members on ${etcd.endpoints.join(', ')}, defaults (WAL fsync on)`;
      } catch (error: unknown) {
        etcdNote = `etcd: could not start a cluster: ${errorText(error)}`;
        for (const phase of ['in-process', 'TCP'] as const) missing.push({ system: 'etcd', transport: 'gRPC', phase, reason: errorText(error) });
      }
    }
    // Two halves, etcd up throughout and measured in both: the in-process nodes live in this
    // process, whose main thread also runs the TCP rows' client library, so they are stopped
    // before the node processes are measured (measured: the two idle in-process nodes took
    // ~10% of a core and the TCP rows fell by about half beside them).
    rows.push(...(await inProcessHalf(etcd, missing, options, bars, context.workerLayout)));
    rows.push(...(await tcpHalf(etcd, missing, options, bars, context.workerLayout)));
  } finally {
    bars.stop();
    if (etcd !== null) await etcd.stop().catch((error: unknown) => progress(`cleanup failed: ${errorText(error)}`));
  }
  for (const gone of missing) for (const callers of callerCounts) rows.push(unavailableRow(gone.system, gone.transport, gone.phase, callers, gone.reason));
  rows = ordered(rows);

  const loadAtEnd = loadavg()[0] ?? Number.NaN;
  process.stdout.write(`${etcdNote}\nharet worker layout: ${context.workerLayout ?? "each node's default (single for a durable node, actor_per_worker in memory)"}\nmachine load (1-minute average): ${loadAtStart.toFixed(2)} at start, ${loadAtEnd.toFixed(2)} at end\n\n`);
  printTable(
    'durable puts: 100-byte blob puts, closed loop, 3 replicas (median run); fsyncs/s of the 3 replicas together, puts/fsync per replica',
    [
      { header: 'case' },
      { header: 'puts/s', align: 'right' },
      { header: 'p50 µs', align: 'right' },
      { header: 'p99 µs', align: 'right' },
      { header: 'errors', align: 'right' },
      { header: 'fsyncs/s', align: 'right' },
      { header: 'entries/fsync', align: 'right' },
      { header: 'puts/fsync', align: 'right' },
      { header: 'storage' },
      { header: 'note' },
    ],
    rows.map((r) =>
      r.unavailable !== null
        ? // The reason goes last, so that its length widens no column of numbers.
          [r.name, 'n/a', 'n/a', 'n/a', '', '', '', '', '', `n/a (${r.unavailable})`]
        : [r.name, formatInteger(r.opsPerSecond), formatInteger(r.p50Us), formatInteger(r.p99Us), String(r.errors), ...storageCells(r)],
    ),
  );
  const ratios = durableRatios(rows);
  const etcdRan = rows.some((r) => r.system === 'etcd' && r.unavailable === null);
  printTable(
    'ratios of puts/s, same run',
    [
      { header: 'callers', align: 'right' },
      { header: 'durable/diskless in-process', align: 'right' },
      { header: 'durable/diskless TCP', align: 'right' },
      ...(etcdRan ? [{ header: 'haret durable in-process/etcd', align: 'right' as const }, { header: 'haret durable TCP/etcd', align: 'right' as const }] : []),
    ],
    ratios.map((r) => [
      formatInteger(r.callers),
      formatRatio(r.durableOverDisklessInProcess),
      formatRatio(r.durableOverDisklessTcp),
      ...(etcdRan ? [formatRatio(r.durableInProcessOverEtcd, 'x'), formatRatio(r.durableTcpOverEtcd, 'x')] : []),
    ]),
  );
  const at = (callers: number): DurableRatio | undefined => ratios.find((r) => r.callers === callers);
  const widest = Math.max(...callerCounts);
  const met = (ratio: number | null | undefined, goal: number): string => (ratio === null || ratio === undefined ? 'n/a' : ratio >= goal ? 'yes' : 'NO');
  const groupCommit = rows.filter((r) => r.system === 'haret durable' && r.callers >= 256 && r.unavailable === null);
  const groupCommitMeasured = groupCommit.length > 0 && groupCommit.every((r) => r.storage !== null && !Number.isNaN(r.storage.entriesPerFsync));
  const targetsTable: (readonly [string, string, string])[] = [
    [`durable/diskless in-process at ${formatInteger(widest)} callers >= ${disklessShareGoal}`, formatRatio(at(widest)?.durableOverDisklessInProcess ?? null), met(at(widest)?.durableOverDisklessInProcess, disklessShareGoal)],
    [`durable/diskless TCP at ${formatInteger(widest)} callers >= ${disklessShareGoal}`, formatRatio(at(widest)?.durableOverDisklessTcp ?? null), met(at(widest)?.durableOverDisklessTcp, disklessShareGoal)],
    [`haret durable TCP/etcd at ${formatInteger(widest)} callers >= ${etcdRatioGoal}x`, formatRatio(at(widest)?.durableTcpOverEtcd ?? null, 'x'), met(at(widest)?.durableTcpOverEtcd, etcdRatioGoal)],
    [`haret durable in-process/etcd at ${formatInteger(widest)} callers >= ${etcdRatioGoal}x`, formatRatio(at(widest)?.durableInProcessOverEtcd ?? null, 'x'), met(at(widest)?.durableInProcessOverEtcd, etcdRatioGoal)],
    [
      'group commit: entries/fsync > 1 at 256+ callers',
      groupCommitMeasured ? groupCommit.map((r) => r.storage?.entriesPerFsync.toFixed(2) ?? '').join(', ') : 'n/a',
      groupCommitMeasured ? (groupCommit.every((r) => (r.storage?.entriesPerFsync ?? 0) > 1) ? 'yes' : 'NO') : 'n/a',
    ],
  ];
  printTable('targets (issue 13)', [{ header: 'target' }, { header: 'measured', align: 'right' }, { header: 'met' }], targetsTable);
  const files = writeResults(
    context.outDir,
    'durable',
    {
      options: { ...options, callers: [...callerCounts], workerLayout: context.workerLayout ?? null },
      etcd: etcdNote,
      loadAverage: { start: loadAtStart, end: loadAtEnd },
      rows: rows.map((r) => ({ ...r, storage: r.storage === null ? null : { ...r.storage }, putsPerReplicaFsync: putsPerReplicaFsync(r) })),
      ratios: ratios.map((r) => ({ ...r })),
      targets: targetsTable.map(([target, measured, ok]) => ({ target, measured, met: ok })),
    },
    startedAt,
  );
  progress(`results: ${files.path}`);
}
