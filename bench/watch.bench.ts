/**
 * `npm run bench -- watch`: what watches (issue 14) deliver and what they cost, on one node
 * with a 3-replica namespace, in two setups: in-process (the embedding API, `startNode`: the
 * node, the writers and the watchers' loops share this process's main thread, whose busy share
 * the tables show) and over TCP (the node as its own process, `haret start` in memory, its
 * client API on 127.0.0.1, and `connect` in this process: writers on one connection, watchers
 * spread over a few others). A node in the bench process would put its TCP server and relays
 * on the clients' main thread and charge the watchers' cost over TCP twice; in its own process
 * the TCP rows show this (client) main thread's busy share, the node's main thread's CPU share
 * (from /proc, where there is one) and its workers' busy shares (admin `metrics`).
 *
 * - delivery: events received per second, in total, by 1, 100 and 1,000 watchers of one hot
 *   path (4 writers put it) and of distinct paths (each watcher its own blob, 64 writers put
 *   them all). A batch is the net change of one log entry, so concurrent puts of the hot path
 *   that share an entry arrive as one event: its rate is entries/s per watcher. Every put
 *   writes new bytes (a put of the bytes already there is a no-op write: no event).
 * - latency: from a put's acknowledgement (its promise resolving) to the event's arrival at a
 *   watcher, p50 and p99, puts one at a time, with 1 and 1,000 watchers of the path. Signed:
 *   the event can arrive before the acknowledgement (a negative time). Each watch is served by
 *   a replica chosen at random, and a backup learns of a commit only with the next prepare or
 *   commit message, so the one-watcher row reopens its watch in several rounds and the table
 *   shows the share of events within 1 ms (about the share served by the primary).
 * - cost to writers: closed-loop puts/s of 256 writers without watchers, and with 1,000
 *   watchers (one per written blob; or all of one path a writer puts), and the ratio.
 *
 * Goals (reported, never asserted): 1,000 watchers on one node receive >= 200,000 events/s
 * in total; commit-to-event p50 < 1 ms in-process; watchers cost writers < 20% of puts/s.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { connect, type RemoteConnection } from '../src/net/index.ts';
import { startNode, type HaretNode, type NamespaceClient } from '../src/node/index.ts';
import { adminValue, startNodeProcess, stopNodeProcess, type NodeProcess } from './node_process.ts';
import { formatInteger, printTable, progress, writeResults, type SuiteContext } from './report.ts';
import { percentile } from './runtime.bench.ts';
import { busyShare, nodeLoopTimes, type LoopTimes } from './loop_times.ts';

export type Setup = 'in-process' | 'tcp';
export type Pattern = 'hot path' | 'distinct paths';

type Options = {
  /** Measured window of a delivery or writer run. */
  readonly msPerRun: number;
  /** Load before the window opens (JIT, batching settled). */
  readonly warmMs: number;
  /** Sequential puts measured for latency, by watcher count. */
  readonly latencyPuts: Readonly<Record<number, number>>;
  /** A latency row stops early past this (events that never come would make it slow). */
  readonly latencyBudgetMs: number;
};

export type DeliveryRow = {
  readonly setup: Setup;
  readonly pattern: Pattern;
  readonly watchers: number;
  readonly writers: number;
  readonly eventsPerSecond: number;
  readonly batchesPerSecond: number;
  readonly putsPerSecond: number;
  /** Watches that ended with an error during the run (lagging, ...). */
  readonly watchErrors: number;
  /** Share of the window each thread's event loop was busy (0-1): where the time went. */
  readonly busy: Record<string, number>;
};

export type LatencyRow = {
  readonly setup: Setup;
  readonly watchers: number;
  /** Times the watchers were opened afresh (each time at replicas chosen anew). */
  readonly rounds: number;
  readonly puts: number;
  readonly p50Us: number;
  readonly p99Us: number;
  /** Put issued to its acknowledgement, for scale. */
  readonly ackP50Us: number;
  /**
   * Share of the events that arrived within 1 ms of the acknowledgement. A watch is served by
   * one replica (chosen at random): a backup learns that an entry committed with the next
   * prepare or commit message, so a lone put reaches its backup watchers up to the primary's
   * commit interval later, while a watch at the primary sees it at once.
   */
  readonly within1msShare: number;
  /** Events expected but not seen within the wait bound. */
  readonly missing: number;
};

export type WriterCase = 'no watchers' | '1,000 watchers, one per written blob' | '1,000 watchers of one written path';

export type WriterRow = {
  readonly setup: Setup;
  readonly case: WriterCase;
  readonly writers: number;
  readonly putsPerSecond: number;
  readonly eventsPerSecond: number;
  /** puts/s over the same setup's puts/s without watchers (1 = no cost). */
  readonly ratio: number;
  readonly watchErrors: number;
  readonly busy: Record<string, number>;
};

const watcherCounts = [1, 100, 1000] as const;
const patterns: readonly Pattern[] = ['hot path', 'distinct paths'];
/**
 * Writers of a delivery run. Distinct paths: enough to keep the log's entries full. The hot
 * path: few, since its events are per entry (concurrent puts of it in one entry are one
 * change), and a few closed-loop writers make the most entries.
 */
const distinctWriters = 64;
const hotWriters = 4;
/** Writers of the cost runs, as the runtime suite's wide case. */
const costWriters = 256;
const costBlobs = 1000;
/** Watchers per TCP connection: an application with many watches still uses a few sockets. */
const watchersPerConnection = 250;
/** Rounds of the one-watcher latency row (a fresh watch, at a random replica, each). */
const latencySingleRounds = 9;
/** How long a latency sample waits for its events before counting them missing. */
const latencyWaitMs = 2000;

/**
 * A 100-byte value no put made before: a put of the bytes a blob already holds is a no-op
 * write (no new version, so no event), which would measure nothing. A fresh array each time,
 * since a call may still hold the previous one.
 */
let putCounter = 0;
function freshValue(): Uint8Array {
  const bytes = new Uint8Array(100).fill(0x61);
  putCounter += 1;
  new DataView(bytes.buffer).setFloat64(0, putCounter);
  return bytes;
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- setups --------------------------------------------------------------------------------

/** Clients of one node: the writers' client, and the client watcher `i` uses. */
type Target = {
  readonly setup: Setup;
  readonly writer: NamespaceClient;
  watcher(i: number): NamespaceClient;
  /** Every thread's time so far (event-loop active/idle, or CPU/the rest), by label. */
  loopTimes(): Promise<LoopTimes>;
};

async function withTarget<T>(setup: Setup, fn: (target: Target) => Promise<T>): Promise<T> {
  if (setup === 'in-process') {
    const node: HaretNode = await startNode({ logLevel: 'silent' });
    try {
      const client = node.client();
      return await fn({ setup, writer: client, watcher: () => client, loopTimes: () => nodeLoopTimes(node, mainLabels.inProcess) });
    } finally {
      await node.stop();
    }
  }
  const connections: RemoteConnection[] = [];
  let nodeProcess: NodeProcess | null = null;
  // Should this process end without reaching the finally below (process.exit elsewhere, or
  // SIGINT/SIGTERM sent to it alone), the node must not outlive it. 'exit' handlers run
  // synchronously, so a kill is all there is; a signal is raised again once the node is
  // killed and this handler gone, so the process still ends as the signal means.
  const killOnExit = (): void => {
    nodeProcess?.child.kill('SIGKILL');
  };
  const killOnSignal = (signal: NodeJS.Signals): void => {
    killOnExit();
    removeHandlers();
    process.kill(process.pid, signal);
  };
  const removeHandlers = (): void => {
    process.off('exit', killOnExit);
    process.off('SIGINT', killOnSignal);
    process.off('SIGTERM', killOnSignal);
  };
  process.on('exit', killOnExit);
  process.once('SIGINT', killOnSignal);
  process.once('SIGTERM', killOnSignal);
  try {
    nodeProcess = await startNodeProcess('bench-watch', ['--namespace', 'default', '--replicas', '3']);
    const node = nodeProcess;
    const endpoint = node.client;
    const writerConnection = await connect([endpoint]);
    connections.push(writerConnection);
    const watcherConnections: RemoteConnection[] = [];
    for (let k = 0; k < Math.ceil(Math.max(...watcherCounts) / watchersPerConnection); k += 1) {
      const connection = await connect([endpoint]);
      connections.push(connection);
      watcherConnections.push(connection);
    }
    return await fn({
      setup,
      writer: writerConnection.client(),
      watcher: (i) => (watcherConnections[Math.floor(i / watchersPerConnection) % watcherConnections.length] as RemoteConnection).client(),
      loopTimes: () => processLoopTimes(node),
    });
  } finally {
    await Promise.all(connections.map((connection) => connection.close().catch(() => undefined)));
    if (nodeProcess !== null) {
      // SIGTERM, SIGKILL after a grace; should even that throw, kill it outright.
      await stopNodeProcess(nodeProcess, 5000).catch(() => nodeProcess?.child.kill('SIGKILL'));
    }
    removeHandlers();
  }
}

async function createBlobs(client: NamespaceClient, paths: readonly string[]): Promise<void> {
  for (let start = 0; start < paths.length; start += 256) {
    await Promise.all(paths.slice(start, start + 256).map((path) => client.create(path, 'blob').catch(() => undefined)));
  }
}

const distinctPath = (k: number): string => `/d/${k}`;
const costPath = (k: number): string => `/b/${k}`;

// ---- watchers ------------------------------------------------------------------------------

/** Totals over a group of watchers, read before and after a window. */
type Counts = { events: number; batches: number; errors: number };

type Group = {
  readonly counts: Counts;
  /** Every watcher got its `start`: subscriptions are live. */
  readonly started: Promise<void>;
  /** Cancels every watch and waits for their loops to end. */
  close(): Promise<void>;
};

/**
 * Opens `count` watches (watch `k` on `pathOf(k)`), each consumed by its own loop that counts
 * what arrives; `onBatch` sees every events batch with its arrival time.
 */
function watchGroup(target: Target, count: number, pathOf: (k: number) => string, onBatch?: (op: number, at: number) => void): Group {
  const counts: Counts = { events: 0, batches: 0, errors: 0 };
  const streams: { cancel(): void }[] = [];
  const loops: Promise<void>[] = [];
  const starts: Promise<void>[] = [];
  for (let k = 0; k < count; k += 1) {
    const stream = target.watcher(k).watch(pathOf(k));
    streams.push(stream);
    let started: () => void = () => undefined;
    starts.push(new Promise<void>((resolve) => (started = resolve)));
    loops.push(
      (async () => {
        try {
          for await (const batch of stream) {
            if (batch.kind === 'start') {
              started();
            } else if (batch.kind === 'events') {
              onBatch?.(batch.op, performance.now());
              counts.batches += 1;
              counts.events += batch.events.length;
            }
          }
        } catch {
          counts.errors += 1;
        } finally {
          started(); // a watch that failed to start must not hold the run
        }
      })(),
    );
  }
  return {
    counts,
    started: Promise.all(starts).then(() => undefined),
    close: async () => {
      for (const stream of streams) stream.cancel();
      await Promise.all(loops);
    },
  };
}

// ---- writers -------------------------------------------------------------------------------

type Writers = { readonly puts: () => number; stop(): Promise<void> };

/** Closed-loop writers: writer `c` puts `pathsOf(c)` in turn until stopped. */
function startWriters(client: NamespaceClient, writers: number, pathsOf: (c: number) => readonly string[]): Writers {
  let running = true;
  let puts = 0;
  const loops = Array.from({ length: writers }, async (_, c) => {
    const paths = pathsOf(c);
    if (paths.length === 0) return;
    for (let i = 0; running; i += 1) {
      try {
        await client.blobPut(paths[i % paths.length] as string, freshValue());
        puts += 1;
      } catch {
        // counted by the absence of puts; an error here is not what this bench measures
      }
    }
  });
  return {
    puts: () => puts,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Writer `c` of `writers` takes paths c, c + writers, ... of `paths`. */
function share(paths: readonly string[], writers: number): (c: number) => readonly string[] {
  return (c) => paths.filter((_, k) => k % writers === c);
}

/** Labels of main threads in the busy records; every other label is one of the node's workers. */
const mainLabels = { inProcess: 'main', client: 'client main', nodeCpu: 'node main cpu' } as const;

/**
 * What `nodeLoopTimes` (bench/loop_times.ts) reads of an in-process node, for a node process: its workers' event loops (admin `metrics`), its main thread's
 * CPU time as "active" and the rest of the wall time as "idle" (its event loop is not in the
 * admin answers; /proc has its CPU time, on Linux), and this process's main thread.
 */
async function processLoopTimes(node: NodeProcess): Promise<LoopTimes> {
  const out: LoopTimes = {};
  const workers = (await adminValue(node.admin, { type: 'metrics' })) as readonly { worker: string; loop: { activeMs: number; idleMs: number } | null }[];
  for (const worker of workers) if (worker.loop !== null) out[worker.worker] = { activeMs: worker.loop.activeMs, idleMs: worker.loop.idleMs };
  const cpuMs = mainThreadCpuMs(node.child.pid);
  const wallMs = performance.now();
  if (cpuMs !== null) out[mainLabels.nodeCpu] = { activeMs: cpuMs, idleMs: wallMs - cpuMs };
  const main = performance.eventLoopUtilization();
  out[mainLabels.client] = { activeMs: main.active, idleMs: main.idle };
  return out;
}

let clockTicksPerSecond: number | null = null;

/** CPU time (user + system) of a process's main thread, in ms, from /proc; null where unreadable. */
function mainThreadCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, in parentheses): state is the
    // first; utime and stime, fields 14 and 15 of stat, the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (!Number.isFinite(ticks)) return null;
    if (clockTicksPerSecond === null) {
      try {
        clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
      } catch {
        clockTicksPerSecond = 100; // Linux's USER_HZ
      }
    }
    return (ticks * 1000) / clockTicksPerSecond;
  } catch {
    return null;
  }
}


/** Counts over the measured window, after `warmMs` of load, and how busy each thread was. */
async function measure(
  target: Target,
  options: Options,
  read: () => { puts: number; events: number; batches: number },
): Promise<{ seconds: number; puts: number; events: number; batches: number; busy: Record<string, number> }> {
  await sleep(options.warmMs);
  const loopsBefore = await target.loopTimes();
  const before = read();
  const started = performance.now();
  await sleep(options.msPerRun);
  const after = read();
  const seconds = (performance.now() - started) / 1000;
  const busy = busyShare(loopsBefore, await target.loopTimes());
  return { seconds, puts: after.puts - before.puts, events: after.events - before.events, batches: after.batches - before.batches, busy };
}

// ---- runs ----------------------------------------------------------------------------------

async function delivery(target: Target, pattern: Pattern, watchers: number, options: Options): Promise<DeliveryRow> {
  const paths = pattern === 'hot path' ? ['/hot'] : Array.from({ length: watchers }, (_, k) => distinctPath(k));
  const group = watchGroup(target, watchers, (k) => (pattern === 'hot path' ? '/hot' : distinctPath(k)));
  await group.started;
  const writerCount = pattern === 'hot path' ? hotWriters : distinctWriters;
  const writers = startWriters(target.writer, writerCount, pattern === 'hot path' ? () => paths : share(paths, writerCount));
  try {
    const run = await measure(target, options, () => ({ puts: writers.puts(), events: group.counts.events, batches: group.counts.batches }));
    return {
      setup: target.setup,
      pattern,
      watchers,
      writers: writerCount,
      eventsPerSecond: run.events / run.seconds,
      batchesPerSecond: run.batches / run.seconds,
      putsPerSecond: run.puts / run.seconds,
      watchErrors: group.counts.errors,
      busy: run.busy,
    };
  } finally {
    await writers.stop();
    await group.close();
  }
}

/**
 * Sequential puts of /lat, each waited for at every watcher. The watchers are opened afresh
 * for each of `rounds` rounds: a watch is served by one replica, chosen at random, and a single
 * watcher measured once would report that one replica's latency only.
 */
async function latency(target: Target, watchers: number, puts: number, rounds: number, budgetMs: number): Promise<LatencyRow> {
  const deltasUs: number[] = [];
  const acksUs: number[] = [];
  let missing = 0;
  let done = 0;
  const stopAt = performance.now() + budgetMs;
  for (let round = 0; round < rounds && performance.now() < stopAt; round += 1) {
    const arrivals = new Map<number, number[]>();
    const waiters = new Map<number, () => void>();
    const group = watchGroup(target, watchers, () => '/lat', (op, at) => {
      let list = arrivals.get(op);
      if (list === undefined) arrivals.set(op, (list = []));
      list.push(at);
      if (list.length === watchers) waiters.get(op)?.();
    });
    await group.started;
    try {
      const roundEnd = Math.round((puts * (round + 1)) / rounds);
      for (; done < roundEnd && performance.now() < stopAt; done += 1) {
        const issued = performance.now();
        const result = await target.writer.blobPut('/lat', freshValue());
        const acked = performance.now();
        acksUs.push((acked - issued) * 1000);
        if ((arrivals.get(result.op)?.length ?? 0) < watchers) {
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            waiters.set(result.op, resolve);
            timer = setTimeout(resolve, latencyWaitMs);
          });
          clearTimeout(timer);
          waiters.delete(result.op);
        }
        const seen = arrivals.get(result.op) ?? [];
        missing += watchers - seen.length;
        for (const at of seen) deltasUs.push((at - acked) * 1000);
        arrivals.delete(result.op);
      }
    } finally {
      await group.close();
    }
  }
  const sorted = Float64Array.from(deltasUs).sort();
  return {
    setup: target.setup,
    watchers,
    rounds,
    puts: done,
    p50Us: percentile(sorted, 0.5),
    p99Us: percentile(sorted, 0.99),
    ackP50Us: percentile(Float64Array.from(acksUs).sort(), 0.5),
    within1msShare: sorted.length === 0 ? Number.NaN : sorted.filter((delta) => delta <= 1000).length / sorted.length,
    missing,
  };
}

async function writerCost(target: Target, c: WriterCase, options: Options): Promise<Omit<WriterRow, 'ratio'>> {
  const blobs = Array.from({ length: costBlobs }, (_, k) => costPath(k));
  // In the hot case writer 0 puts /hot only (every entry it lands in changes /hot once), the
  // others their blobs as in the other cases.
  const pathsOf = c === '1,000 watchers of one written path' ? (w: number) => (w === 0 ? ['/hot'] : share(blobs, costWriters)(w)) : share(blobs, costWriters);
  const group = c === 'no watchers' ? null : watchGroup(target, 1000, c === '1,000 watchers of one written path' ? () => '/hot' : (k) => costPath(k));
  await group?.started;
  const writers = startWriters(target.writer, costWriters, pathsOf);
  try {
    const run = await measure(target, options, () => ({ puts: writers.puts(), events: group?.counts.events ?? 0, batches: group?.counts.batches ?? 0 }));
    return { setup: target.setup, case: c, writers: costWriters, putsPerSecond: run.puts / run.seconds, eventsPerSecond: run.events / run.seconds, watchErrors: group?.counts.errors ?? 0, busy: run.busy };
  } finally {
    await writers.stop();
    await group?.close();
  }
}

export type WatchBenchResult = { readonly delivery: DeliveryRow[]; readonly latency: LatencyRow[]; readonly writers: WriterRow[] };

export async function runWatchBench(options: Options, setups: readonly Setup[] = ['in-process', 'tcp']): Promise<WatchBenchResult> {
  const result: WatchBenchResult = { delivery: [], latency: [], writers: [] };
  for (const setup of setups) {
    progress(`${setup}: starting a node`);
    await withTarget(setup, async (target) => {
      await createBlobs(target.writer, ['/hot', '/lat', ...Array.from({ length: Math.max(...watcherCounts) }, (_, k) => distinctPath(k)), ...Array.from({ length: costBlobs }, (_, k) => costPath(k))]);
      for (const pattern of patterns) {
        for (const watchers of watcherCounts) {
          progress(`${setup}: delivery, ${watchers} watchers, ${pattern}`);
          result.delivery.push(await delivery(target, pattern, watchers, options));
        }
      }
      for (const watchers of [1, 1000]) {
        progress(`${setup}: latency, ${watchers} watchers`);
        result.latency.push(await latency(target, watchers, options.latencyPuts[watchers] ?? 100, watchers === 1 ? latencySingleRounds : 1, options.latencyBudgetMs));
      }
      const cases: readonly WriterCase[] = ['no watchers', '1,000 watchers, one per written blob', '1,000 watchers of one written path'];
      const rows: Omit<WriterRow, 'ratio'>[] = [];
      for (const c of cases) {
        progress(`${setup}: writers, ${c}`);
        rows.push(await writerCost(target, c, options));
      }
      const base = rows[0]?.putsPerSecond ?? Number.NaN;
      for (const row of rows) result.writers.push({ ...row, ratio: row.putsPerSecond / base });
    });
  }
  return result;
}

// ---- report --------------------------------------------------------------------------------

const us = (value: number): string => (Number.isNaN(value) ? '-' : formatInteger(value));
const pct = (share: number | undefined): string => (share === undefined ? '-' : `${Math.round(share * 100)}%`);

/**
 * The main threads' busy shares and the busiest worker's: `main 95%, r0 60%` in-process,
 * `client main 40%, node main cpu 70%, r1 50%` over TCP.
 */
function busiest(busy: Record<string, number>): string {
  const mains: readonly string[] = Object.values(mainLabels);
  let worker: [string, number] | null = null;
  for (const [thread, share] of Object.entries(busy)) if (!mains.includes(thread) && (worker === null || share > worker[1])) worker = [thread, share];
  const parts = mains.filter((label) => busy[label] !== undefined).map((label) => `${label} ${pct(busy[label])}`);
  if (worker !== null) parts.push(`${worker[0]} ${pct(worker[1])}`);
  return parts.join(', ');
}

export async function watchSuite(context: SuiteContext): Promise<void> {
  const startedAt = new Date();
  // Recorded because the numbers mean little on a machine busy with other work.
  const loadAtStart = os.loadavg()[0] ?? Number.NaN;
  const options: Options = context.quick
    ? { msPerRun: 800, warmMs: 300, latencyPuts: { 1: 90, 1000: 20 }, latencyBudgetMs: 4000 }
    : { msPerRun: 3000, warmMs: 1000, latencyPuts: { 1: 450, 1000: 150 }, latencyBudgetMs: 12_000 };
  const result = await runWatchBench(options);
  const loadAtEnd = os.loadavg()[0] ?? Number.NaN;
  process.stdout.write(`1-minute load average ${loadAtStart.toFixed(1)} at the start, ${loadAtEnd.toFixed(1)} at the end, on ${os.cpus().length} CPUs\n\n`);

  printTable(
    'events delivered per second, in total, to W watchers (closed-loop writers of 100-byte blobs)',
    [{ header: 'setup' }, { header: 'paths' }, { header: 'W', align: 'right' }, { header: 'events/s', align: 'right' }, { header: 'per watcher', align: 'right' }, { header: 'writers', align: 'right' }, { header: 'puts/s', align: 'right' }, { header: 'watch errors', align: 'right' }, { header: 'busy: main thread(s), busiest worker' }],
    result.delivery.map((r) => [r.setup, r.pattern, formatInteger(r.watchers), formatInteger(r.eventsPerSecond), formatInteger(r.eventsPerSecond / r.watchers), String(r.writers), formatInteger(r.putsPerSecond), String(r.watchErrors), busiest(r.busy)]),
  );
  printTable(
    "latency from a put's acknowledgement to its event at each watcher (puts one at a time; negative: the event came first)",
    [{ header: 'setup' }, { header: 'W', align: 'right' }, { header: 'rounds', align: 'right' }, { header: 'puts', align: 'right' }, { header: 'p50 µs', align: 'right' }, { header: 'p99 µs', align: 'right' }, { header: '<= 1 ms', align: 'right' }, { header: 'put ack p50 µs', align: 'right' }, { header: 'missing', align: 'right' }],
    result.latency.map((r) => [r.setup, formatInteger(r.watchers), String(r.rounds), formatInteger(r.puts), us(r.p50Us), us(r.p99Us), Number.isNaN(r.within1msShare) ? '-' : `${Math.round(r.within1msShare * 100)}%`, us(r.ackP50Us), String(r.missing)]),
  );
  printTable(
    `writers' puts/s (${costWriters} closed-loop writers over ${formatInteger(costBlobs)} blobs) without and with watchers`,
    [{ header: 'setup' }, { header: 'case' }, { header: 'puts/s', align: 'right' }, { header: 'of no watchers', align: 'right' }, { header: 'events/s', align: 'right' }, { header: 'watch errors', align: 'right' }, { header: 'busy: main thread(s), busiest worker' }],
    result.writers.map((r) => [r.setup, r.case, formatInteger(r.putsPerSecond), `${(r.ratio * 100).toFixed(0)}%`, formatInteger(r.eventsPerSecond), String(r.watchErrors), busiest(r.busy)]),
  );

  const best1000 = Math.max(...result.delivery.filter((r) => r.watchers === 1000).map((r) => r.eventsPerSecond));
  const inProcessLatency = result.latency.find((r) => r.setup === 'in-process' && r.watchers === 1);
  const worstRatio = Math.min(...result.writers.filter((r) => r.case !== 'no watchers').map((r) => r.ratio));
  const targets = [
    ['1,000 watchers receive >= 200,000 events/s in total (best row)', formatInteger(best1000), best1000 >= 200_000],
    ['commit-to-event p50 < 1 ms in-process (1 watcher)', `${us(inProcessLatency?.p50Us ?? Number.NaN)} µs`, (inProcessLatency?.p50Us ?? Infinity) < 1000],
    ["1,000 watchers cost writers < 20% of puts/s (worst case)", `${((1 - worstRatio) * 100).toFixed(0)}%`, worstRatio > 0.8],
  ] as const;
  printTable('goals (reported, not asserted)', [{ header: 'goal' }, { header: 'measured', align: 'right' }, { header: 'met' }], targets.map(([t, m, ok]) => [t, m, ok ? 'yes' : 'NO']));

  const files = writeResults(
    context.outDir,
    'watch',
    {
      options: { msPerRun: options.msPerRun, warmMs: options.warmMs, latencyBudgetMs: options.latencyBudgetMs, latencyPuts: { ...options.latencyPuts }, distinctWriters, hotWriters, costWriters, costBlobs, watchersPerConnection },
      delivery: result.delivery.map((r) => ({ ...r })),
      latency: result.latency.map((r) => ({ ...r })),
      writers: result.writers.map((r) => ({ ...r })),
      targets: targets.map(([target, measured, met]) => ({ target, measured, met })),
      loadAverage: { start: loadAtStart, end: loadAtEnd },
    },
    startedAt,
  );
  progress(`results: ${files.path}`);
}
