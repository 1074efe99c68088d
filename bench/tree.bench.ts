/**
 * The tree benchmark: throughput of single ops on trees of growing size, and snapshot cost.
 *
 * Trees. A "dirs" tree of n leaves is `/d<i>/n<j>`: directories of 1000 leaves each (the last
 * one may be smaller), leaf k = 1000 i + j of type blob, set, queue by k mod 3. The "flat"
 * tree is one directory with n children, `/flat/n<k>`, same leaf mix. Every tree is built with
 * `create` ops through `applyOp`, so the build time printed is the cost of n creates. The
 * harness keeps no per-leaf data (no path arrays): a leaf's path is computed from its index,
 * so the heap holds the tree and little else.
 *
 * Shape. Depth 2 below the root at every size (1k: one directory of 1000; 1M: 1000 of 1000),
 * so the sizes differ in how many nodes there are, not in how many levels a path crosses:
 * what the goal is about. A coordination tree is typically shallow (service/config,
 * locks/<name>, queues/<name>) with some wide directories; a deeper tree costs more per op at
 * every size (one more directory per level), and "flat 100k" shows one very wide directory.
 *
 * Ops. blob_put (a fresh 100-byte value, unique per op, so it is never a no-op), blob_get,
 * blob_get_warm and blob_get_hot (blob_get among a fixed set of 4,096 or 64 leaves: extra
 * rows, outside the goal, that separate the tree's own cost from memory latency), set_insert
 * (a fresh member, so it always inserts), queue_push, queue_pop (always of a non-empty queue,
 * see `queuePopWorkload`). Each op targets a uniformly random leaf of the right type chosen by a
 * seeded PRNG, and its resulting tree replaces the current one, so later ops see earlier
 * writes, as in a replica applying its log. Every outcome is checked: a failed or no-op
 * result aborts the benchmark, since its numbers would measure the wrong thing.
 *
 * Timing. Ops run in batches of 1024: the batch's inputs (op objects, paths, values) are made
 * untimed, as a replica gets its ops decoded, then applying the batch is timed
 * (process.hrtime.bigint). Everything `applyOp` does is inside the timed part: splitting the
 * path, the lookups, the copy of the path to the root, the outcome. Per (op, tree): a warm-up,
 * then `reps` runs of `msPerRun` of timed work each, each run starting after a forced full GC
 * (`--expose-gc`, which `npm run bench` passes). ns/op is the median over the runs; the
 * main-thread GC pauses inside the timed batches (v8.GCProfiler) are reported beside it, and
 * ns/op excluding them.
 *
 * Collections grow as the ops run: on a small tree the few sets and queues take every insert
 * and push, so they end up larger than on a big tree, where the same number of ops is spread
 * over many more leaves. The scaling ratio therefore mixes tree size with collection size.
 *
 * Snapshots. Keeping a reference to a tree is a snapshot (O(1)); `encodeSnapshot` is the
 * serialised form, O(n), measured right after the build so its bytes match the tree's size.
 *
 * Goal. The per-op cost on the 1M tree is at most twice the cost on the 1k tree (the writes
 * copy O(depth × log₃₂ n) nodes); the scaling table prints PASS or MISS per op.
 */

import { GCProfiler } from 'node:v8';
import {
  applyOp,
  describeTreeError,
  emptyTree,
  encodeSnapshot,
  nodeCount,
  type Bytes,
  type NodeType,
  type OpOutcome,
  type Tree,
  type TreeOp,
} from '../src/tree/index.ts';
import {
  defaultOutDir,
  formatBytes,
  formatInteger,
  formatMs,
  formatNs,
  formatSize,
  median,
  printTable,
  progress,
  writeResults,
  type Column,
  type SuiteContext,
} from './report.ts';

// ---- options and results ---------------------------------------------------------------------

export type TreeBenchOptions = {
  /** Leaf counts of the `/d<i>/n<j>` trees, measured in this order. */
  readonly sizes: readonly number[];
  /** Children of the single `/flat` directory; 0 skips the flat tree. */
  readonly flat: number;
  /** Length of one timed run. The warm-up before the runs lasts a third of this. */
  readonly msPerRun: number;
  /** Timed runs per (op, tree); the median is reported. */
  readonly reps: number;
  /** Print progress and tables, and write the JSON result files. */
  readonly write: boolean;
  /** Where the result files go when `write` is set. */
  readonly outDir?: string;
  /** Seed of the target choice; the same seed picks the same leaves in the same order. */
  readonly seed?: number;
};

/**
 * The ops measured on every tree, in the order they run (queue_pop after queue_push;
 * blob_get_hot last, so the other ops keep the seeds they had before it was added).
 */
export const treeBenchOps = ['blob_put', 'blob_get', 'blob_get_warm', 'set_insert', 'queue_push', 'queue_pop', 'blob_get_hot'] as const;

/**
 * Extra rows, not part of the goal: the same reads as `blob_get` over a fixed subset of the
 * blobs instead of all of them. The goal is stated for (and PASS/MISS summed over) the
 * uniformly random rows only.
 */
export const workingSetOps: ReadonlySet<TreeBenchOp> = new Set<TreeBenchOp>(['blob_get_warm', 'blob_get_hot']);

/**
 * `blob_get_warm` reads random blobs among a fixed set of this many: the same work per op as
 * `blob_get`, with a working set that stays in cache, so the two together separate the tree's
 * own cost from memory latency (uniformly random reads over a 1M-node heap miss every cache).
 */
export const warmLeaves = 4096;

/**
 * `blob_get_hot` reads random blobs among this many: few enough that the objects on their
 * paths fit in the caches and, which `blob_get_warm` does not achieve on a 1M tree, in the TLB
 * (4,096 leaves touch ~5 objects each, nearly every one on its own 4 KiB page: ~20k pages).
 * Same work per op as `blob_get`, no memory latency: the tree's own cost at each size.
 */
export const hotLeaves = 64;
export type TreeBenchOp = (typeof treeBenchOps)[number];

export type TreeShape = 'dirs' | 'flat';

export type BuildRow = {
  /** "1k", "100k", "1M", "flat 100k". */
  readonly tree: string;
  readonly shape: TreeShape;
  readonly leaves: number;
  /** `nodeCount`: leaves, directories and the root. */
  readonly nodes: number;
  readonly buildMs: number;
  /** process.memoryUsage().heapUsed right after the build (after a GC when `gc` is exposed). */
  readonly heapUsedBytes: number;
  readonly gcForced: boolean;
};

export type OpRow = {
  readonly op: TreeBenchOp;
  readonly tree: string;
  readonly nodes: number;
  /** Median over the timed runs. */
  readonly opsPerSec: number;
  /** 1e9 / opsPerSec. */
  readonly nsPerOp: number;
  /** ops/s of each timed run, in run order. */
  readonly runsOpsPerSec: readonly number[];
  /** Ops done in the timed runs (warm-up excluded). */
  readonly timedOps: number;
  /** Median over the runs of ns/op with the main-thread GC pauses taken out. */
  readonly nsPerOpExclGc: number;
  /** GC pauses inside the timed runs, in total (ms) and as a share of the timed time. */
  readonly gcMs: number;
  readonly gcCount: number;
  readonly gcShare: number;
};

export type SnapshotRow = {
  readonly tree: string;
  readonly nodes: number;
  /** Taking a snapshot, i.e. keeping a reference to the tree. */
  readonly keepNsPerOp: number;
  /** Median time of `encodeSnapshot` over `encodeRuns` runs. */
  readonly encodeMs: number;
  readonly encodeRuns: number;
  readonly encodedBytes: number;
};

export type RatioRow = {
  readonly op: TreeBenchOp;
  /** The smallest and the largest dirs tree. */
  readonly smallTree: string;
  readonly largeTree: string;
  readonly smallNsPerOp: number;
  readonly largeNsPerOp: number;
  /** largeNsPerOp / smallNsPerOp. */
  readonly ratio: number;
  /** The same ratio with GC pauses taken out of both. */
  readonly smallNsPerOpExclGc: number;
  readonly largeNsPerOpExclGc: number;
  readonly ratioExclGc: number;
  readonly goal: number;
  readonly pass: boolean;
  /** The flat tree's ns/op and its ratio to the smallest tree, when measured. */
  readonly flatNsPerOp: number | null;
  readonly flatRatio: number | null;
};

export type TreeBenchResult = {
  readonly builds: readonly BuildRow[];
  readonly rows: readonly OpRow[];
  readonly snapshots: readonly SnapshotRow[];
  readonly ratios: readonly RatioRow[];
};

/** Per-op cost at the largest tree may be at most this multiple of the cost at the smallest. */
export const scalingGoal = 2;

const leavesPerDirectory = 1000;
const blobValueBytes = 100;
const setMemberBytes = 8;
/** Ops per timed batch: their inputs are prepared (untimed) just before the batch runs. */
const batchOps = 1024;
const defaultSeed = 0x5eed_7ee5;

// ---- the suite -------------------------------------------------------------------------------

/** `npm run bench -- tree [--quick]`: 1k, 100k, 1M (not with --quick) and a flat 100k. */
export function treeSuite(context: SuiteContext): void {
  const options: TreeBenchOptions = context.quick
    ? { sizes: [1000, 100_000], flat: 100_000, msPerRun: 300, reps: 3, write: true, outDir: context.outDir }
    : { sizes: [1000, 100_000, 1_000_000], flat: 100_000, msPerRun: 1000, reps: 5, write: true, outDir: context.outDir };
  runTreeBench(options);
}

/**
 * Builds each tree, measures every op and the snapshot cost on it, and returns the rows;
 * with `write`, also prints progress (stderr), the tables (stdout) and the result files.
 */
export function runTreeBench(options: TreeBenchOptions): TreeBenchResult {
  checkOptions(options);
  const startedAt = new Date();
  const log = options.write ? progress : (): void => {};
  const timing: Timing = {
    warmupNs: msToNs(options.msPerRun / 3),
    runNs: msToNs(options.msPerRun),
    reps: options.reps,
  };
  const seed = options.seed ?? defaultSeed;
  const plan: { readonly shape: TreeShape; readonly leaves: number }[] = options.sizes.map((leaves) => ({
    shape: 'dirs',
    leaves,
  }));
  if (options.flat > 0) plan.push({ shape: 'flat', leaves: options.flat });

  if (options.write && globalThis.gc === undefined) {
    log(
      'note: gc is not exposed, so no GC is forced between trees and heapUsed includes garbage' +
        ' (NODE_OPTIONS=--expose-gc npm run bench -- tree exposes it)',
    );
  }
  const builds: BuildRow[] = [];
  const rows: OpRow[] = [];
  const snapshots: SnapshotRow[] = [];
  const values = new UniqueBytes();

  plan.forEach(({ shape, leaves }, treeIndex) => {
    // The previous subject is unreachable by now: collect it so it does not bill this tree.
    forceGc();
    const label = treeLabel(shape, leaves);
    log(`building ${label} (${formatInteger(leaves)} leaves) ...`);
    const buildStart = process.hrtime.bigint();
    const subject = buildSubject(shape, leaves);
    const buildMs = nsToMs(process.hrtime.bigint() - buildStart);
    // Collect the garbage of the build so heapUsed is the tree itself (plus what was live).
    const gcForced = forceGc();
    const build: BuildRow = {
      tree: label,
      shape,
      leaves,
      nodes: nodeCount(subject.tree),
      buildMs,
      heapUsedBytes: process.memoryUsage().heapUsed,
      gcForced,
    };
    builds.push(build);
    log(
      `built ${label}: ${formatInteger(build.nodes)} nodes in ${formatMs(buildMs)}` +
        ` (${formatNs((buildMs * 1e6) / leaves)} ns/leaf), heapUsed ${formatBytes(build.heapUsedBytes)}`,
    );

    const snapshot = measureSnapshot(label, subject, timing);
    snapshots.push(snapshot);
    log(
      `  snapshot ${label}: keep ${formatNs(snapshot.keepNsPerOp)} ns, encode ${formatMs(snapshot.encodeMs)},` +
        ` ${formatBytes(snapshot.encodedBytes)}`,
    );

    // queue_pop sizes its prepared pushes by the rate of queue_push, measured just before.
    let pushOpsPerSec = 0;
    treeBenchOps.forEach((op, opIndex) => {
      // One seeded stream per (tree, op): the targets do not depend on how many ops the
      // time-bounded loops before it happened to run.
      const random = splitmix32(seed + treeIndex * 0x1000 + opIndex);
      const workload = makeWorkload(op, subject, random, values);
      const measured = measure(workload, timing, op === 'queue_pop' ? pushOpsPerSec : 0);
      if (op === 'queue_push') pushOpsPerSec = measured.opsPerSec;
      const timedNs = measured.runs.reduce((sum, run) => sum + run.ns, 0);
      const gcNs = measured.runs.reduce((sum, run) => sum + run.gcNs, 0);
      const row: OpRow = {
        op,
        tree: label,
        nodes: build.nodes,
        opsPerSec: measured.opsPerSec,
        nsPerOp: 1e9 / measured.opsPerSec,
        runsOpsPerSec: measured.runs.map(opsPerSecOf),
        timedOps: measured.timedOps,
        nsPerOpExclGc: median(measured.runs.map(nsPerOpExcludingGc)),
        gcMs: gcNs / 1e6,
        gcCount: measured.runs.reduce((sum, run) => sum + run.gcCount, 0),
        gcShare: gcNs / Math.max(timedNs, 1),
      };
      rows.push(row);
      log(
        `  ${op.padEnd(13)} ${label}: ${formatInteger(row.opsPerSec)} ops/s, ${formatNs(row.nsPerOp)} ns/op,` +
          ` ${formatNs(row.nsPerOpExclGc)} ns/op without GC (GC ${(row.gcShare * 100).toFixed(1)}%)`,
      );
    });
  });
  forceGc();

  const result: TreeBenchResult = { builds, rows, snapshots, ratios: scalingRatios(options, rows) };
  if (options.write) {
    printResult(options, result);
    const files = writeResults(
      options.outDir ?? defaultOutDir,
      'tree',
      {
        options: {
          sizes: options.sizes,
          flat: options.flat,
          msPerRun: options.msPerRun,
          reps: options.reps,
          seed,
          gcExposed: globalThis.gc !== undefined,
        },
        ...result,
      },
      startedAt,
    );
    process.stdout.write(`results: ${files.path}\n         ${files.latestPath}\n`);
  }
  return result;
}

function checkOptions(options: TreeBenchOptions): void {
  const positive = (value: number): boolean => Number.isSafeInteger(value) && value > 0;
  if (options.sizes.length === 0 || !options.sizes.every(positive)) {
    throw new RangeError('tree bench: sizes must be a non-empty list of positive integers');
  }
  if (!Number.isSafeInteger(options.flat) || options.flat < 0) {
    throw new RangeError('tree bench: flat must be a non-negative integer');
  }
  if (!(options.msPerRun > 0) || !positive(options.reps)) {
    throw new RangeError('tree bench: msPerRun and reps must be positive');
  }
}

function treeLabel(shape: TreeShape, leaves: number): string {
  return shape === 'flat' ? `flat ${formatSize(leaves)}` : formatSize(leaves);
}

// ---- trees -----------------------------------------------------------------------------------

/**
 * A tree under measurement. The harness holds no per-leaf data: leaf `k` (0 <= k < leaves)
 * is `/d<k / 1000>/n<k % 1000>` (dirs) or `/flat/n<k>` (flat), of type `leafTypes[k % 3]`,
 * so the m-th blob is leaf 3m, the m-th set leaf 3m + 1 and the m-th queue leaf 3m + 2, and a
 * path is computed from an integer when an op's input is prepared.
 */
type Subject = {
  /** The current tree; every write replaces it. */
  tree: Tree;
  readonly shape: TreeShape;
  readonly leaves: number;
};

const leafTypes = ['blob', 'set', 'queue'] as const satisfies readonly NodeType[];
type LeafType = (typeof leafTypes)[number];

function leafPath(shape: TreeShape, k: number): string {
  return shape === 'flat' ? `/flat/n${k}` : `/d${Math.floor(k / leavesPerDirectory)}/n${k % leavesPerDirectory}`;
}

/** Leaves of one type: leaf k has type `leafTypes[k % 3]`. */
function leafCount(leaves: number, type: LeafType): number {
  const offset = leafTypes.indexOf(type);
  return leaves > offset ? Math.floor((leaves - offset - 1) / leafTypes.length) + 1 : 0;
}

/** The path of the m-th leaf of a type. */
function typedLeafPath(subject: Subject, type: LeafType, m: number): string {
  return leafPath(subject.shape, m * leafTypes.length + leafTypes.indexOf(type));
}

function buildSubject(shape: TreeShape, leaves: number): Subject {
  let tree = emptyTree();
  const create = (path: string, nodeType: NodeType): void => {
    tree = applyChecked(tree, { type: 'create', path, nodeType }, 'ok');
  };
  if (shape === 'flat') create('/flat', 'directory');
  for (let k = 0; k < leaves; k++) {
    if (shape === 'dirs' && k % leavesPerDirectory === 0) create(`/d${k / leavesPerDirectory}`, 'directory');
    create(leafPath(shape, k), leafTypes[k % leafTypes.length] ?? 'blob');
  }
  return { tree, shape, leaves };
}

/** Applies an op that must succeed with a result of type `expected`; returns the new tree. */
function applyChecked(tree: Tree, op: TreeOp, expected: OpOutcome['type']): Tree {
  const { tree: next, outcome } = applyOp(tree, op);
  if (outcome.type !== expected) unexpected(op, outcome);
  return next;
}

function unexpected(op: TreeOp, outcome: OpOutcome): never {
  const what = outcome.type === 'error' ? describeTreeError(outcome.error) : JSON.stringify(outcome);
  throw new Error(`tree bench: ${op.type} ${'path' in op ? op.path : ''} gave an unexpected outcome: ${what}`);
}

// ---- workloads -------------------------------------------------------------------------------

/**
 * One op to measure. `input` builds the next op (untimed: a batch of inputs is prepared before
 * each timed batch, as a replica receives its ops already decoded); `apply` is the timed part:
 * `applyOp` on the current tree, the outcome check, and keeping the new tree.
 */
type Workload = {
  readonly input: () => TreeOp;
  readonly apply: (op: TreeOp) => void;
  /**
   * Gets ready (untimed) for a run expected to do about `expectedOps` ops and returns the most
   * ops the run may do. Without it a run is bounded by time only.
   */
  readonly prepare?: (expectedOps: number) => number;
};

function makeWorkload(op: TreeBenchOp, subject: Subject, random: Random, values: UniqueBytes): Workload {
  const pick = (type: LeafType): string => typedLeafPath(subject, type, pickIndex(leafCount(subject.leaves, type), random));
  switch (op) {
    case 'blob_put':
      return {
        input: () => ({ type: 'blob_put', path: pick('blob'), value: values.next(blobValueBytes) }),
        apply: (put) => {
          const { tree, outcome } = applyOp(subject.tree, put);
          // A changed value always gives `ok` with a new tree; the same tree would mean a no-op.
          if (outcome.type !== 'ok' || tree === subject.tree) unexpected(put, outcome);
          subject.tree = tree;
        },
      };
    case 'blob_get':
      return { input: () => ({ type: 'blob_get', path: pick('blob') }), apply: blobGet(subject) };
    case 'blob_get_warm':
    case 'blob_get_hot': {
      const blobs = leafCount(subject.leaves, 'blob');
      const subset = op === 'blob_get_warm' ? warmLeaves : hotLeaves;
      const warm = Int32Array.from({ length: Math.min(subset, blobs) }, () => pickIndex(blobs, random));
      return {
        input: () => ({ type: 'blob_get', path: typedLeafPath(subject, 'blob', warm[pickIndex(warm.length, random)] ?? 0) }),
        apply: blobGet(subject),
      };
    }
    case 'set_insert':
      return {
        input: () => ({ type: 'set_insert', path: pick('set'), value: values.next(setMemberBytes) }),
        apply: (insert) => {
          const { tree, outcome } = applyOp(subject.tree, insert);
          if (outcome.type !== 'bool' || !outcome.value) unexpected(insert, outcome);
          subject.tree = tree;
        },
      };
    case 'queue_push':
      return {
        input: () => ({ type: 'queue_push', path: pick('queue'), value: queueElement }),
        apply: (push) => {
          const { tree, outcome } = applyOp(subject.tree, push);
          if (outcome.type !== 'ok') unexpected(push, outcome);
          subject.tree = tree;
        },
      };
    case 'queue_pop':
      return queuePopWorkload(subject, random);
    default: {
      const never: never = op;
      throw new Error(`tree bench: unknown op ${String(never)}`);
    }
  }
}

function blobGet(subject: Subject): (op: TreeOp) => void {
  return (get) => {
    const { tree, outcome } = applyOp(subject.tree, get);
    if (outcome.type !== 'blob') unexpected(get, outcome);
    subject.tree = tree;
  };
}

/** Queue elements are stored by reference and never mutated, so one value serves every push. */
const queueElement: Bytes = new Uint8Array(16).fill(0x51);

/**
 * queue_pop must pop real elements: a pop of an empty queue is a no-op and much cheaper. So
 * before each run (untimed) it pushes onto a seeded random sequence of queues, and the run
 * pops the same sequence in the same order: at every point a queue has had at least as many
 * pushes as pops, so no pop finds it empty. The sequence is a bit longer than the run is
 * expected to be; if the run gets to its end first, it stops there (the rate stays exact).
 * All the pushes come before the first pop, so a pop does not find its queue in cache because
 * it was just pushed to (on a big tree it is long evicted, as for any other op).
 */
function queuePopWorkload(subject: Subject, random: Random): Workload {
  const queues = leafCount(subject.leaves, 'queue');
  let sequence = new Int32Array(0);
  let cursor = 0;
  return {
    prepare: (expectedOps) => {
      sequence = Int32Array.from({ length: expectedOps }, () => pickIndex(queues, random));
      cursor = 0;
      for (const m of sequence) {
        const push: TreeOp = { type: 'queue_push', path: typedLeafPath(subject, 'queue', m), value: queueElement };
        subject.tree = applyChecked(subject.tree, push, 'ok');
      }
      return sequence.length;
    },
    input: () => {
      const m = sequence[cursor++];
      if (m === undefined) throw new Error('tree bench: queue_pop ran past its prepared sequence');
      return { type: 'queue_pop', path: typedLeafPath(subject, 'queue', m) };
    },
    apply: (pop) => {
      const { tree, outcome } = applyOp(subject.tree, pop);
      if (outcome.type !== 'element' || outcome.value === null) unexpected(pop, outcome);
      subject.tree = tree;
    },
  };
}

/**
 * Fresh byte strings, each different from every other one made by this instance (a counter
 * in the first bytes, little-endian), so a blob_put always changes the value and a
 * set_insert always adds a member.
 */
class UniqueBytes {
  private counter = 0;

  next(length: number): Bytes {
    const bytes = new Uint8Array(length);
    let n = ++this.counter;
    for (let i = 0; n > 0 && i < length; i++) {
      bytes[i] = n % 256;
      n = Math.floor(n / 256);
    }
    return bytes;
  }
}

// ---- seeded randomness -----------------------------------------------------------------------

/** Floats in [0, 1). */
type Random = () => number;

/**
 * splitmix32: a tiny, well-mixed 32-bit PRNG. Not Math.random, so a given seed picks the same
 * leaves in the same order on every run.
 */
export function splitmix32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    z ^= z >>> 15;
    return (z >>> 0) / 4294967296;
  };
}

/** A uniform index in [0, count). */
function pickIndex(count: number, random: Random): number {
  if (count <= 0) throw new Error('tree bench: no leaf of the type this op needs');
  return Math.floor(random() * count);
}

// ---- timing ----------------------------------------------------------------------------------

type Timing = { readonly warmupNs: bigint; readonly runNs: bigint; readonly reps: number };

/** One timed run: its ops, the time they took, and the GC pauses inside that time. */
type Run = { readonly ops: number; readonly ns: number; readonly gcNs: number; readonly gcCount: number };

type Measured = {
  /** Median over the runs of ops/s, GC pauses included. */
  readonly opsPerSec: number;
  readonly runs: readonly Run[];
  readonly timedOps: number;
};

/**
 * Main-thread GC pauses (µs) while `body` runs, from v8.GCProfiler. Not a PerformanceObserver:
 * its 'gc' entries are delivered on a later event-loop turn and this benchmark is synchronous,
 * while GCProfiler.stop() returns the pauses at once.
 */
function gcPauses<T>(body: () => T): { result: T; gcNs: number; gcCount: number } {
  const profiler = new GCProfiler();
  profiler.start();
  const result = body();
  const statistics = profiler.stop()?.statistics ?? [];
  let gcNs = 0;
  for (const entry of statistics) gcNs += entry.cost * 1000;
  return { result, gcNs, gcCount: statistics.length };
}

/**
 * Runs batches of `batchOps` ops until `durationNs` of timed work have passed or `maxOps` ops
 * are done. Per batch: its inputs are prepared (untimed), then the clock and the GC profiler
 * cover applying them. GC forced before the run starts from a collected heap, so one run
 * does not pay for the garbage of the one before.
 */
function timedRun(workload: Workload, durationNs: number, maxOps: number): Run {
  forceGc();
  const batch: TreeOp[] = [];
  let ops = 0;
  let ns = 0;
  let gcNs = 0;
  let gcCount = 0;
  const apply = workload.apply;
  while (ops < maxOps && ns < durationNs) {
    const size = Math.min(batchOps, maxOps - ops);
    batch.length = 0;
    for (let k = 0; k < size; k++) batch.push(workload.input());
    const timed = gcPauses(() => {
      const start = process.hrtime.bigint();
      for (let k = 0; k < size; k++) apply(batch[k] as TreeOp);
      return Number(process.hrtime.bigint() - start);
    });
    ops += size;
    ns += timed.result;
    gcNs += timed.gcNs;
    gcCount += timed.gcCount;
  }
  return { ops, ns, gcNs, gcCount };
}

/**
 * Warm-up, then `timing.reps` timed runs; the median ops/s. `hintOpsPerSec` sizes the first
 * `prepare` (later ones use the rate just measured); 0 when there is no hint yet.
 */
function measure(workload: Workload, timing: Timing, hintOpsPerSec: number): Measured {
  let lastOpsPerSec = hintOpsPerSec > 0 ? hintOpsPerSec : 1e6;
  const run = (durationNs: number): Run => {
    // Prepare for 25% more ops than the last rate predicts, and at least one batch.
    const expected = Math.ceil((lastOpsPerSec * durationNs * 1.25) / 1e9) + batchOps;
    const maxOps = workload.prepare === undefined ? Number.POSITIVE_INFINITY : workload.prepare(expected);
    const done = timedRun(workload, durationNs, maxOps);
    lastOpsPerSec = (done.ops * 1e9) / Math.max(done.ns, 1);
    return done;
  };
  run(Number(timing.warmupNs));
  const runs: Run[] = [];
  for (let rep = 0; rep < timing.reps; rep++) runs.push(run(Number(timing.runNs)));
  return {
    opsPerSec: median(runs.map(opsPerSecOf)),
    runs,
    timedOps: runs.reduce((sum, done) => sum + done.ops, 0),
  };
}

function opsPerSecOf(run: Run): number {
  return (run.ops * 1e9) / Math.max(run.ns, 1);
}

/** ns/op with the GC pauses taken out. */
function nsPerOpExcludingGc(run: Run): number {
  return Math.max(run.ns - run.gcNs, 0) / run.ops;
}

function measureSnapshot(tree: string, subject: Subject, timing: Timing): SnapshotRow {
  // Taking a snapshot is keeping the reference; a ring of slots keeps the store observable.
  const kept: Tree[] = new Array<Tree>(256).fill(subject.tree);
  let slot = 0;
  const keepOps = 1_000_000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < keepOps; i++) kept[slot++ & 255] = subject.tree;
  const keepNsPerOp = Number(process.hrtime.bigint() - start) / keepOps;
  // Encoding is O(n): repeat it while the time spent stays within the budget of the timed
  // runs of one op, at least once and at most `reps` times.
  const budgetNs = Number(timing.runNs) * timing.reps;
  const encodeMs: number[] = [];
  let encodedBytes = 0;
  let spentNs = 0;
  while (encodeMs.length < timing.reps && (encodeMs.length === 0 || spentNs < budgetNs)) {
    const encodeStart = process.hrtime.bigint();
    encodedBytes = encodeSnapshot(subject.tree).length;
    const ns = Number(process.hrtime.bigint() - encodeStart);
    spentNs += ns;
    encodeMs.push(ns / 1e6);
  }
  return {
    tree,
    nodes: nodeCount(subject.tree),
    keepNsPerOp,
    encodeMs: median(encodeMs),
    encodeRuns: encodeMs.length,
    encodedBytes,
  };
}

/** Runs a full GC when node was started with --expose-gc; true when it did. */
function forceGc(): boolean {
  if (globalThis.gc === undefined) return false;
  globalThis.gc();
  return true;
}

function msToNs(ms: number): bigint {
  return BigInt(Math.max(1, Math.round(ms * 1e6)));
}

function nsToMs(ns: bigint): number {
  return Number(ns) / 1e6;
}

// ---- scaling and output ----------------------------------------------------------------------

function scalingRatios(options: TreeBenchOptions, rows: readonly OpRow[]): RatioRow[] {
  const smallTree = treeLabel('dirs', Math.min(...options.sizes));
  const largeTree = treeLabel('dirs', Math.max(...options.sizes));
  const flatTree = options.flat > 0 ? treeLabel('flat', options.flat) : null;
  const find = (op: TreeBenchOp, tree: string): OpRow | null => rows.find((row) => row.op === op && row.tree === tree) ?? null;
  return treeBenchOps.map((op) => {
    const small = find(op, smallTree);
    const large = find(op, largeTree);
    if (small === null || large === null) throw new Error(`tree bench: no ${op} row for ${smallTree} or ${largeTree}`);
    const flat = flatTree === null ? null : (find(op, flatTree)?.nsPerOp ?? null);
    const ratio = large.nsPerOp / small.nsPerOp;
    return {
      op,
      smallTree,
      largeTree,
      smallNsPerOp: small.nsPerOp,
      largeNsPerOp: large.nsPerOp,
      ratio,
      smallNsPerOpExclGc: small.nsPerOpExclGc,
      largeNsPerOpExclGc: large.nsPerOpExclGc,
      ratioExclGc: large.nsPerOpExclGc / small.nsPerOpExclGc,
      goal: scalingGoal,
      pass: ratio <= scalingGoal,
      flatNsPerOp: flat,
      flatRatio: flat === null ? null : flat / small.nsPerOp,
    };
  });
}

const right = 'right' as const;

function printResult(options: TreeBenchOptions, result: TreeBenchResult): void {
  const gc = globalThis.gc !== undefined;
  printTable(
    'Trees (built with create ops)',
    [
      { header: 'tree' },
      { header: 'leaves', align: right },
      { header: 'nodes', align: right },
      { header: 'build', align: right },
      { header: 'ns/leaf', align: right },
      { header: gc ? 'heapUsed' : 'heapUsed (no GC)', align: right },
    ],
    result.builds.map((build) => [
      build.tree,
      formatInteger(build.leaves),
      formatInteger(build.nodes),
      formatMs(build.buildMs),
      formatNs((build.buildMs * 1e6) / build.leaves),
      formatBytes(build.heapUsedBytes),
    ]),
  );

  printTable(
    `Operations (median of ${options.reps} runs of ${formatMs(options.msPerRun)}; spread = largest deviation from the median)`,
    [
      { header: 'op' },
      { header: 'tree' },
      { header: 'ops/s', align: right },
      { header: 'ns/op', align: right },
      { header: 'spread', align: right },
      { header: 'ns/op excl GC', align: right },
      { header: 'GC pauses', align: right },
      { header: 'GC share', align: right },
    ],
    result.rows.map((row) => [
      row.op,
      row.tree,
      formatInteger(row.opsPerSec),
      formatNs(row.nsPerOp),
      spread(row),
      formatNs(row.nsPerOpExclGc),
      `${formatInteger(row.gcCount)} / ${formatMs(row.gcMs)}`,
      `${(row.gcShare * 100).toFixed(1)}%`,
    ]),
  );

  printTable(
    'Snapshots (keep = hold a reference to the tree; encode = encodeSnapshot)',
    [
      { header: 'tree' },
      { header: 'nodes', align: right },
      { header: 'keep ns', align: right },
      { header: 'encode', align: right },
      { header: 'runs', align: right },
      { header: 'bytes', align: right },
      { header: 'bytes/node', align: right },
    ],
    result.snapshots.map((snapshot) => [
      snapshot.tree,
      formatInteger(snapshot.nodes),
      formatNs(snapshot.keepNsPerOp),
      formatMs(snapshot.encodeMs),
      String(snapshot.encodeRuns),
      formatBytes(snapshot.encodedBytes),
      (snapshot.encodedBytes / snapshot.nodes).toFixed(1),
    ]),
  );

  // One ns/op column per tree, then the ratio against the goal.
  const trees = result.builds.map((build) => build.tree);
  const first = result.ratios[0];
  if (first === undefined) return;
  const ratioHeader = `${first.largeTree}/${first.smallTree}`;
  const columns: Column[] = [
    { header: 'op' },
    ...trees.map((tree): Column => ({ header: `${tree} ns`, align: right })),
    { header: ratioHeader, align: right },
    { header: `goal <= ${scalingGoal}` },
    { header: `${ratioHeader} excl GC`, align: right },
  ];
  if (first.flatNsPerOp !== null) columns.push({ header: `flat/${first.smallTree}`, align: right });
  printTable(
    `Scaling: per-op cost on the ${first.largeTree} tree vs the ${first.smallTree} tree` +
      (options.sizes.includes(1_000_000) ? '' : ' (the goal is stated for 1M vs 1k; this run has no 1M tree)'),
    columns,
    result.ratios.map((ratio) => {
      const cells = [
        ratio.op,
        ...trees.map((tree) => {
          const row = result.rows.find((candidate) => candidate.op === ratio.op && candidate.tree === tree);
          return row === undefined ? '-' : formatNs(row.nsPerOp);
        }),
        ratio.ratio.toFixed(2),
        ratio.pass ? 'PASS' : 'MISS',
        ratio.ratioExclGc.toFixed(2),
      ];
      if (ratio.flatRatio !== null) cells.push(ratio.flatRatio.toFixed(2));
      return cells;
    }),
  );
  const uniform = result.ratios.filter((ratio) => !workingSetOps.has(ratio.op));
  const missed = uniform.filter((ratio) => !ratio.pass).map((ratio) => ratio.op);
  process.stdout.write(
    `Goal (${first.largeTree}/${first.smallTree} <= ${scalingGoal}) over the uniformly random rows: ` +
      `${uniform.length - missed.length} of ${uniform.length} PASS` +
      (missed.length > 0 ? `, MISS: ${missed.join(', ')}` : '') +
      ` (${[...workingSetOps].join(' and ')}: extra rows over a fixed subset of blobs, not part of the goal)\n\n`,
  );
}

/** The largest deviation of a run from the median, in percent of the median: "±3.1%". */
function spread(row: OpRow): string {
  const deviation = Math.max(...row.runsOpsPerSec.map((rate) => Math.abs(rate - row.opsPerSec)));
  return `±${((deviation / row.opsPerSec) * 100).toFixed(1)}%`;
}
