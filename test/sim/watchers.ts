/**
 * Watches in the simulator (issue 14): simulated watchers beside the usual clients, the links
 * their traffic travels on, and the watch checker.
 *
 * Watchers. Each watcher (`w0`, `w1`, ...) is a network node that runs the product's client
 * machine (src/client/watch.ts) for one watch at a time, with its own id prefix (`w3.7` for
 * its 7th watch, attempts `w3.7.1`, `w3.7.2`, ...). It watches a random path of the workload's
 * tree (`/`, `/kN`, `/kN/x`, `/kN/y`, now and then one nobody writes), exact or recursive,
 * with values or not, from the replica's commit, from op 0 or from a committed op; it starts
 * at a random tick, cancels now and then and watches again (sometimes resuming the same path
 * from the op it got to, as an application resumes after `lagging`), and after an error ends
 * its watch it watches again too. The replicas' hubs (src/watch/hub.ts, run by the glue in
 * actors/replica.ts) serve them.
 *
 * Links. Each (replica, watcher, attempt) is a connection whose messages get the seed's delays
 * (drawn per message with the network's current delay distribution) and which breaks, for
 * good, when a message of it draws a break (the seed's loss rate, scaled by `breakScale`),
 * crosses a partitioned link (the core network's cuts: partitions and isolations apply to
 * watchers too), or reaches a crashed replica: a TCP connection or a replica that is gone.
 * Within a live connection the links also do what the product's inner paths may do (an actor's
 * bounded mailbox drops an envelope when full): lose single messages (the loss rate, scaled by
 * `lossScale`), deliver a message twice (the duplication rate, scaled by `duplicateScale`;
 * never a subscribe, which a replica rightly refuses as a duplicate id), and let a message out
 * of FIFO order (`reorderProbability`: its delay is drawn without waiting for the connection's
 * earlier messages, so it may overtake them or be overtaken). Notices are numbered per
 * subscription (`seq`), so the client machine drops repeats and resubscribes over a gap.
 * Attempts are separate connections, so messages of different attempts interleave freely, and
 * late notices of an abandoned attempt arrive during the next. What the watch protocol must
 * survive besides, every seed has: silences, breaks, replicas crashing and restarting with empty
 * hubs, replicas behind or installing checkpoints, views changing, resubscriptions replaying
 * from the position at another replica. The links draw from their own PRNG, so a seed's core
 * run is the same with and without watchers.
 *
 * The checker. The committed history is recorded from the core's `applied` effects (the first
 * replica to apply an op; the agreement checkers (b) and (f) in ./checkers.ts prove every
 * replica applies the same entry to the same tree, and an op is applied only once committed).
 * Per op the expected events of a watch are `entryChanges` filtered by `changeMatches`, with
 * the blob's bytes after the op as the value (null and `valueOmitted` above the hub's cap);
 * they are cross-checked once per (op, path) against an independent diff of the two trees
 * along the watched path. Two streams are checked, each as it happens:
 * - the hub's, per attempt, as the replica sends it, before the links (the contract of
 *   src/watch/messages.ts): numbered 1, 2, 3, ... in the order sent, it opens with
 *   `watch_progress {through: fromOp}` (or a committed op), then events and progress each
 *   complete through a later op, nothing after `watch_ended`, every notice from the replica
 *   subscribed to, for a watch id of this watcher. Checked in seq order where it is whole, so
 *   the links' losses, repeats and reordering neither hide a hub's fault nor fake one (each
 *   notice received is also checked to be one the replica sent under that number);
 * - the application's, per watch (the client machine's `deliver` outputs, across all of its
 *   attempts and replicas).
 * Both must be the projection of the committed history on the watched path, which etcd's
 * robustness tests (tests/robustness/validate/watch.go in etcd-io/etcd) state as:
 * - ordered: ops strictly increase (events) and never go back (progress);
 * - unique: no op is delivered twice (a resumed stream replays nothing the application saw);
 * - atomic: a batch is the whole entry's matching changes, never split, never merged;
 * - reliable: no gap: between two positions, every committed op that changed the watched
 *   paths is delivered (a progress through N says no such op in between);
 * - resumable: all of the above across resubscriptions to other replicas after crashes,
 *   partitions, silences, and across an application's re-watch from its last op;
 * - bookmarkable: a progress (and the start) names a committed op, never beyond the committed
 *   history, never backwards; the start is `fromOp` when one was given;
 * plus nothing uncommitted (every op delivered is committed, with the committed entry's
 * events), values equal to the blob's bytes at the op, and ends that are legitimate:
 * `compacted` only for a position older than the answering replica's history, `future` only
 * for an unconfirmed fromOp beyond the answering replica's commit, never `invalid` (the
 * watchers send only valid requests); `lagging` and `unavailable` are counted. At the end of a
 * run each watch's delivered ops are compared once more with the projection computed afresh.
 */

import { assertNever } from '../../src/base/assert.ts';
import { initialWatchMachine, watchPosition, watchStep, type WatchBatch, type WatchError, type WatchMachine, type WatchMachineConfig, type WatchOutput, type WatchSpec } from '../../src/client/watch.ts';
import { changeMatches, entryChanges, type TreeChange } from '../../src/tree/events.ts';
import { lookup, type Tree } from '../../src/tree/lookup.ts';
import { bytesEqual, childOf, hasMember, type TreeNode } from '../../src/tree/node.ts';
import type { TreeOp } from '../../src/tree/ops.ts';
import { joinPath, rootPath } from '../../src/tree/path.ts';
import { queueToArray } from '../../src/tree/queue.ts';
import type { WatchHubLimits } from '../../src/watch/hub.ts';
import type { WatchEvent, WatchNotice, WatchRequest } from '../../src/watch/messages.ts';
import type { NetworkFaults, NodeId } from './network.ts';
import { Prng } from './prng.ts';
import { canonical, deepEqual } from './tree_model.ts';

// ---- options -------------------------------------------------------------------------------

export type WatchSimOptions = {
  /** Watcher nodes `w0`.. */
  readonly count: number;
  /** Seeds the watchers' and links' PRNG (independent of every other stream of the run). */
  readonly seed: number;
  /** The replicas' hub limits (small ones make compacted, lagging and too_many happen). */
  readonly hub: WatchHubLimits;
  /** The client machine's timing (ticks are simulator ticks). */
  readonly machine: Omit<WatchMachineConfig, 'replicaCount'>;
  /** Top-level components of the workload (`/k0`..), where the watched paths are. */
  readonly components: number;
  /** A watcher's first watch starts at a tick in [0, startTicksMax]. */
  readonly startTicksMax: number;
  /** Per tick, the probability that a live watch is cancelled (and another started later). */
  readonly cancelProbability: number;
  /** A new watch starts 1..rewatchTicksMax ticks after the previous one ended. */
  readonly rewatchTicksMax: number;
  /** A watch message breaks its connection with probability network loss x breakScale. */
  readonly breakScale: number;
  /** A watch message is lost alone (its connection lives on) with probability network loss x lossScale. */
  readonly lossScale: number;
  /** A watch message other than a subscribe arrives twice with probability network duplication x duplicateScale. */
  readonly duplicateScale: number;
  /** A watch message is not held behind its connection's earlier ones with this probability. */
  readonly reorderProbability: number;
};

/** What the links do to watch traffic (see the file comment). */
export type WatchLinkFaults = Pick<WatchSimOptions, 'breakScale' | 'lossScale' | 'duplicateScale' | 'reorderProbability'>;

/** Simulator-sized hub limits and client timing (a replica tick and a client tick are one simulator tick). */
export const simWatchHubLimits: WatchHubLimits = {
  historyOpsMax: 100_000,
  historyBytesMax: 64 * 1024 * 1024,
  watchesMax: 10_000,
  bufferBytesMax: 1024 * 1024,
  valueBytesMax: 64 * 1024,
  progressTicks: 10,
  idleTicks: 300,
};

export const simWatchMachineConfig: Omit<WatchMachineConfig, 'replicaCount'> = {
  silenceTicks: 60,
  retryTicks: 4,
  giveUpTicks: 600,
  ackBytes: 4096,
};

export function watchSimOptions(overrides: Partial<WatchSimOptions> & { readonly seed: number }): WatchSimOptions {
  return {
    count: 3,
    hub: simWatchHubLimits,
    machine: simWatchMachineConfig,
    components: 6,
    startTicksMax: 200,
    cancelProbability: 0.002,
    rewatchTicksMax: 50,
    breakScale: 0.1,
    lossScale: 0.5,
    duplicateScale: 1,
    reorderProbability: 0.02,
    ...overrides,
  };
}

/** Draws a seed's watch options (swarm testing, like the rest of a VOPR seed). */
export function drawWatchSimOptions(prng: Prng, components: number): WatchSimOptions {
  const progressTicks = prng.pick([5, 10, 20]);
  const count = prng.range(1, 5);
  return {
    count,
    seed: prng.next(),
    hub: {
      // Tiny histories and buffers make watches fall behind and out of the history (lagging, compacted).
      historyOpsMax: prng.pick([2, 4, 32, 100_000]),
      historyBytesMax: prng.pick([2048, 64 * 1024 * 1024]),
      // As few as the watchers (abandoned attempts then crowd live ones out until they end
      // idle: too_many), never fewer: one replica must be able to serve every watcher at once.
      watchesMax: prng.pick([count, count + 2, 10_000]),
      bufferBytesMax: prng.pick([64, 256, 4096, 1024 * 1024]),
      valueBytesMax: prng.pick([1, 2, 64 * 1024]),
      progressTicks,
      idleTicks: prng.pick([150, 400]),
    },
    machine: {
      silenceTicks: prng.pick([60, 100]),
      retryTicks: prng.pick([2, 8]),
      giveUpTicks: prng.pick([400, 1000]),
      ackBytes: prng.pick([256, 64 * 1024]),
    },
    components,
    startTicksMax: prng.pick([50, 500, 1500]),
    cancelProbability: prng.pick([0, 0.002, 0.01]),
    rewatchTicksMax: prng.pick([5, 100]),
    breakScale: prng.pick([0, 0.05, 0.3]),
    // Loss, repeats and reordering inside a connection (healed with the network's loss and
    // duplication in the liveness phase; reordering stays, rare enough for streams to go on).
    lossScale: prng.pick([0, 0.05, 0.2, 1]),
    duplicateScale: prng.pick([0, 0.5, 1]),
    reorderProbability: prng.pick([0, 0.01, 0.05]),
  };
}

// ---- the committed history -------------------------------------------------------------------

type CommittedEntry = { readonly before: Tree; readonly ops: readonly TreeOp[]; readonly after: Tree; changes: readonly TreeChange[] | null };

/**
 * Every committed op's tree before and after and its tree ops, from the first replica that
 * applied it. `known`: every op up to it is recorded (an op is applied only after the one
 * before it, by someone: a checkpoint a replica installs was made by applying).
 */
export class CommittedHistory {
  readonly #entries = new Map<number, CommittedEntry>();
  known = 0;

  record(op: number, before: Tree, ops: readonly TreeOp[], after: Tree): void {
    if (this.#entries.has(op)) return;
    this.#entries.set(op, { before, ops, after, changes: null });
    while (this.#entries.has(this.known + 1)) this.known += 1;
  }

  has(op: number): boolean {
    return op <= this.known && (op === 0 || this.#entries.has(op));
  }

  /** The net changes of committed op `op` (entryChanges: the code the hub uses). */
  changes(op: number): readonly TreeChange[] {
    const entry = this.#entries.get(op);
    if (entry === undefined) return [];
    entry.changes ??= entryChanges(entry.before, entry.ops, entry.after);
    return entry.changes;
  }

  entry(op: number): CommittedEntry | undefined {
    return this.#entries.get(op);
  }

  /** The first op in (from, to] with a change the watch sees, or null. */
  firstMatch(from: number, to: number, path: string, recursive: boolean): number | null {
    for (let op = from + 1; op <= to; op++) {
      if (this.changes(op).some((change) => changeMatches(change, path, recursive))) return op;
    }
    return null;
  }
}

/**
 * The changes along `path` (and below it when recursive) between two trees, computed without
 * entryChanges: the node at each path on both sides, compared by identity, then by state. A
 * second opinion on what the hub serves.
 */
export function treeDiff(before: Tree, after: Tree, path: string, recursive: boolean): Map<string, TreeChange> {
  const out = new Map<string, TreeChange>();
  const at = (tree: Tree): TreeNode | undefined => {
    const found = lookup(tree, path);
    return found.ok ? found.node : undefined;
  };
  const stack: { path: string; b: TreeNode | undefined; a: TreeNode | undefined }[] = [{ path, b: at(before), a: at(after) }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { b, a } = top;
    if (b === a) continue;
    const change = nodeChange(top.path, b, a);
    if (change !== null) out.set(top.path, change);
    if (!recursive) continue;
    const names = new Set<string>();
    if (b?.type === 'directory') for (const name of b.children.keys()) names.add(name);
    if (a?.type === 'directory') for (const name of a.children.keys()) names.add(name);
    for (const name of names) {
      stack.push({
        path: joinPath(top.path, name),
        b: b?.type === 'directory' ? childOf(b, name) : undefined,
        a: a?.type === 'directory' ? childOf(a, name) : undefined,
      });
    }
  }
  return out;
}

function nodeChange(path: string, b: TreeNode | undefined, a: TreeNode | undefined): TreeChange | null {
  if (b === undefined && a === undefined) return null;
  if (b === undefined) return { kind: 'created', path, nodeType: (a as TreeNode).type, version: (a as TreeNode).version };
  if (a === undefined) return { kind: 'deleted', path, nodeType: b.type, version: b.version };
  if (b.type === a.type && b.version === a.version && sameContent(b, a)) return null;
  return { kind: 'changed', path, nodeType: a.type, version: a.version };
}

function sameContent(b: TreeNode, a: TreeNode): boolean {
  if (b.type === 'directory') return a.type === 'directory';
  if (b.type === 'blob') return a.type === 'blob' && bytesEqual(b.value, a.value);
  if (b.type === 'queue') {
    if (a.type !== 'queue') return false;
    const left = queueToArray(b);
    const right = queueToArray(a);
    return left.length === right.length && left.every((element, i) => bytesEqual(element, right[i] as Uint8Array));
  }
  if (a.type !== 'set' || a.size !== b.size) return false;
  for (const key of b.members.keys()) if (!hasMember(a, key)) return false;
  return true;
}

// ---- the links -------------------------------------------------------------------------------

type LinkMessage = {
  readonly id: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly connection: string;
  readonly message: unknown;
  readonly deliverAt: number;
};

/** What the links need of the cluster. */
export type LinkHost = {
  faults(): NetworkFaults;
  /** Whether the core network's partitions let from -> to through. */
  canDeliver(from: NodeId, to: NodeId): boolean;
};

export type LinkStats = { sent: number; delivered: number; broken: number; droppedBroken: number; lost: number; duplicated: number; reordered: number };

/** Per-connection links for watch traffic: FIFO but for the faults drawn (see the file comment). */
export class WatchLinks {
  readonly #prng: Prng;
  readonly #host: LinkHost;
  readonly #faults: WatchLinkFaults;
  #queue: LinkMessage[] = [];
  #nextId = 1;
  /** Connection -> the delivery tick of its last message in flight (FIFO). */
  readonly #last = new Map<string, number>();
  readonly #broken = new Set<string>();
  readonly stats: LinkStats = { sent: 0, delivered: 0, broken: 0, droppedBroken: 0, lost: 0, duplicated: 0, reordered: 0 };

  /** `faults`: a break scale alone keeps every live connection FIFO and exactly once. */
  constructor(prng: Prng, host: LinkHost, faults: number | WatchLinkFaults) {
    this.#prng = prng;
    this.#host = host;
    this.#faults = typeof faults === 'number' ? { breakScale: faults, lossScale: 0, duplicateScale: 0, reorderProbability: 0 } : { ...faults };
  }

  /** A connection: one attempt between one replica and one watcher, both directions. */
  static connection(replica: number, watcher: string, watchId: string): string {
    return `${replica}|${watcher}|${watchId}`;
  }

  /** `mayRepeat` false: never duplicated (a subscribe). */
  send(from: NodeId, to: NodeId, connection: string, message: unknown, now: number, mayRepeat = true): void {
    this.stats.sent += 1;
    if (this.#broken.has(connection)) {
      this.stats.droppedBroken += 1;
      return;
    }
    const faults = this.#host.faults();
    const mine = this.#faults;
    if (!this.#host.canDeliver(from, to) || this.#prng.chance(faults.lossProbability * mine.breakScale)) {
      this.breakConnection(connection);
      return;
    }
    if (this.#prng.chance(faults.lossProbability * mine.lossScale)) {
      this.stats.lost += 1;
      return;
    }
    const copies = mayRepeat && this.#prng.chance(faults.duplicateProbability * mine.duplicateScale) ? 2 : 1;
    const channel = `${connection}>${typeof to === 'number' ? 'r' : 'w'}`;
    for (let copy = 0; copy < copies; copy++) {
      const delay = now + drawDelay(this.#prng, faults);
      let deliverAt: number;
      if (this.#prng.chance(mine.reorderProbability)) {
        // Out of order: neither waits for the earlier messages nor holds back the later ones.
        deliverAt = delay;
        this.stats.reordered += 1;
      } else {
        deliverAt = Math.max(delay, this.#last.get(channel) ?? 0);
        this.#last.set(channel, deliverAt);
      }
      if (copy > 0) this.stats.duplicated += 1;
      this.#queue.push({ id: this.#nextId++, from, to, connection, message, deliverAt });
    }
  }

  breakConnection(connection: string): void {
    if (this.#broken.has(connection)) return;
    this.#broken.add(connection);
    this.stats.broken += 1;
  }

  /** Messages due at `now`, in (deliverAt, id) order; those of broken connections or cut links are dropped (and break them). */
  deliverDue(now: number): LinkMessage[] {
    const due: LinkMessage[] = [];
    const kept: LinkMessage[] = [];
    for (const message of this.#queue) (message.deliverAt <= now ? due : kept).push(message);
    if (due.length === 0) return [];
    this.#queue = kept;
    due.sort((a, b) => a.deliverAt - b.deliverAt || a.id - b.id);
    const out: LinkMessage[] = [];
    for (const message of due) {
      if (!this.#broken.has(message.connection) && !this.#host.canDeliver(message.from, message.to)) this.breakConnection(message.connection);
      if (this.#broken.has(message.connection)) {
        this.stats.droppedBroken += 1;
        continue;
      }
      this.stats.delivered += 1;
      out.push(message);
    }
    return out;
  }

  get inFlight(): number {
    return this.#queue.length;
  }
}

/** A delay with the network's distribution (./network.ts draws the same way). */
function drawDelay(prng: Prng, faults: NetworkFaults): number {
  const { delayMinTicks: min, delayMaxTicks: max } = faults;
  if (max === min) return min;
  if (faults.delayDistribution === 'uniform') return prng.range(min, max);
  return Math.min(max, min + Math.floor(prng.exponential(faults.delayMeanTicks)));
}

// ---- the checks --------------------------------------------------------------------------------

/** One attempt (one subscription at one replica), as its replica's hub sends it. */
type AttemptCheck = {
  readonly watchId: string;
  readonly replica: number;
  readonly spec: WatchSpec;
  readonly fromOp: number | null;
  /** The notices the replica sent, by seq (what the links may deliver). */
  readonly sent: Map<number, WatchNotice>;
  /** Complete through (null before the opening progress). */
  position: number | null;
  partial: { op: number; events: WatchEvent[] } | null;
  ended: boolean;
};

/** One watch (one client machine), as the application sees it. */
export type WatchRecord = {
  readonly watcher: string;
  readonly idPrefix: string;
  readonly spec: WatchSpec;
  readonly startTick: number;
  start: number | null;
  position: number | null;
  /** Ops delivered with events, in order. */
  readonly eventOps: number[];
  batches: number;
  events: number;
  progress: number;
  attempts: number;
  /** null while running; 'cancelled' or the error code when it ended. */
  end: WatchError['code'] | 'cancelled' | null;
};

export type WatchStats = {
  watchers: number;
  watches: number;
  attempts: number;
  batches: number;
  events: number;
  progress: number;
  notices: number;
  ended: Record<WatchError['code'] | 'cancelled', number>;
  /** watch_ended reasons the hubs sent. */
  refusals: Record<string, number>;
  links: LinkStats;
  /** (op, path) pairs whose entryChanges were cross-checked against the tree diff. */
  diffChecks: number;
};

export type WatchHost = LinkHost & {
  readonly replicaCount: number;
  readonly now: number;
  /** Records a violation (kind `watch`). */
  report(message: string): void;
  /** Hands watch requests to replica `index`'s glue; false when it is down (they are lost). */
  deliverToReplica(index: number, envelopes: readonly { readonly from: string; readonly msg: unknown }[]): boolean;
};

/**
 * A notice-rewriting hook (./mutants.ts): what replica `replica` really sends instead of
 * `notice`. What it returns is numbered afresh per watch id (`seq` 1, 2, ... in the order
 * returned), as a hub with that bug would number what it sends: the bug is in what the stream
 * says, not a gap in its numbering, which the links make too and the client machine handles.
 */
export type WatchNoticeMutation = (replica: number, to: string, notice: WatchNotice) => readonly WatchNotice[];

class Watcher {
  readonly id: string;
  machine: WatchMachine | null = null;
  record: WatchRecord | null = null;
  watches = 0;
  nextStartAt: number;
  /** The last watch's record, for a resumed re-watch. */
  previous: WatchRecord | null = null;
  readonly attempts = new Map<string, AttemptCheck>();

  constructor(id: string, startAt: number) {
    this.id = id;
    this.nextStartAt = startAt;
  }
}

/** The watchers of one cluster run, their links, and the checker. */
export class WatchSim {
  readonly options: WatchSimOptions;
  readonly history = new CommittedHistory();
  readonly links: WatchLinks;
  readonly records: WatchRecord[] = [];
  readonly #host: WatchHost;
  readonly #prng: Prng;
  readonly #watchers: Watcher[] = [];
  readonly #byId = new Map<string, Watcher>();
  /** `${op}|${path}|${recursive}` already cross-checked against the tree diff. */
  readonly #diffed = new Set<string>();
  readonly #mutation: WatchNoticeMutation | null;
  /** With a mutation: per `${replica}|${watcher}|${watchId}`, the last seq given to what it returned. */
  readonly #mutatedSeqs = new Map<string, number>();
  /** Liveness phase: no cancels, re-watches from the commit. */
  #settling = false;
  #notices = 0;
  readonly #refusals: Record<string, number> = {};

  constructor(options: WatchSimOptions, host: WatchHost, mutation: WatchNoticeMutation | null = null) {
    this.options = options;
    this.#host = host;
    this.#prng = new Prng(options.seed);
    this.links = new WatchLinks(this.#prng.fork(), host, options);
    this.#mutation = mutation;
    for (let i = 0; i < options.count; i++) {
      const watcher = new Watcher(`w${i}`, this.#prng.int(options.startTicksMax + 1));
      this.#watchers.push(watcher);
      this.#byId.set(watcher.id, watcher);
    }
  }

  get watcherIds(): readonly string[] {
    return this.#watchers.map((watcher) => watcher.id);
  }

  isWatcher(id: string): boolean {
    return this.#byId.has(id);
  }

  /** A committed entry applied by some replica (the core's `applied` effect). */
  applied(op: number, before: Tree, ops: readonly TreeOp[], after: Tree): void {
    this.history.record(op, before, ops, after);
  }

  /** What replica `replica`'s glue sends to watcher `to`. */
  sendFromReplica(replica: number, to: string, message: unknown, now: number): void {
    const watchId = isNotice(message) ? message.watchId : null;
    if (watchId === null) {
      this.#report(`replica ${replica} sent watcher ${to} something that is not a watch notice: ${short(canonical(message))}`);
      return;
    }
    const notices = this.#mutation === null ? [message as WatchNotice] : this.#renumber(replica, to, this.#mutation(replica, to, message as WatchNotice));
    const watcher = this.#byId.get(to);
    for (const notice of notices) {
      if (watcher !== undefined) this.#sent(watcher, replica, notice);
      this.links.send(replica, to, WatchLinks.connection(replica, to, notice.watchId), notice, now);
    }
  }

  /** A mutated hub's notices, numbered in the order it sends them (see WatchNoticeMutation). */
  #renumber(replica: number, to: string, notices: readonly WatchNotice[]): WatchNotice[] {
    return notices.map((notice) => {
      const key = `${replica}|${to}|${notice.watchId}`;
      const seq = (this.#mutatedSeqs.get(key) ?? 0) + 1;
      this.#mutatedSeqs.set(key, seq);
      return { ...notice, seq };
    });
  }

  /** Delivers what is due: requests to the replicas, notices to the watchers. */
  deliver(now: number): void {
    const toReplicas = new Map<number, { from: string; msg: unknown; connection: string }[]>();
    for (const message of this.links.deliverDue(now)) {
      if (typeof message.to === 'number') {
        let batch = toReplicas.get(message.to);
        if (batch === undefined) {
          batch = [];
          toReplicas.set(message.to, batch);
        }
        batch.push({ from: message.from as string, msg: message.message, connection: message.connection });
      } else {
        const watcher = this.#byId.get(message.to);
        if (watcher !== undefined) this.#receive(watcher, message.from as number, message.message as WatchNotice);
      }
    }
    for (const [replica, batch] of [...toReplicas].sort((a, b) => a[0] - b[0])) {
      if (!this.#host.deliverToReplica(replica, batch)) for (const envelope of batch) this.links.breakConnection(envelope.connection);
    }
  }

  /** Once per tick, after the replicas and clients: watchers start, cancel, tick their machines. */
  tick(now: number): void {
    for (const watcher of this.#watchers) {
      const machine = watcher.machine;
      if (machine === null) {
        if (now >= watcher.nextStartAt) this.#startWatch(watcher, now);
        continue;
      }
      if (!this.#settling && this.#prng.chance(this.options.cancelProbability)) {
        this.#step(watcher, { type: 'cancel' });
        continue;
      }
      this.#step(watcher, { type: 'tick' });
    }
  }

  /** Liveness phase: no more cancels; a watch that ends is replaced by one from the commit. */
  settle(): void {
    this.#settling = true;
  }

  /** Every watcher cancels its watch and starts no other (the end of a leak check). */
  stop(): void {
    for (const watcher of this.#watchers) {
      this.#step(watcher, { type: 'cancel' });
      watcher.nextStartAt = Number.POSITIVE_INFINITY;
    }
  }

  /** Every watcher runs a watch delivered through `op` or later. */
  caughtUp(op: number): boolean {
    return this.#watchers.every((watcher) => watcher.record !== null && watcher.record.position !== null && watcher.record.position >= op);
  }

  /** Watchers not caught up with `op`, for a liveness report. */
  behind(op: number): string[] {
    return this.#watchers
      .filter((watcher) => !(watcher.record !== null && watcher.record.position !== null && watcher.record.position >= op))
      .map((watcher) => `${watcher.id}: ${watcher.record === null ? `no watch (next at tick ${watcher.nextStartAt})` : `${describeSpec(watcher.record.spec)} at ${watcher.record.position ?? 'no start'}, machine ${watcher.machine?.phase ?? 'none'} attempt ${watcher.machine?.attempt ?? '-'} replica ${watcher.machine?.replica ?? '-'}`}`);
  }

  /** End of run: each watch's delivered ops against the projection of the history, afresh. */
  finalCheck(): void {
    for (const record of this.records) {
      if (record.start === null || record.position === null) continue;
      const expected: number[] = [];
      for (let op = record.start + 1; op <= record.position; op++) {
        if (this.history.changes(op).some((change) => changeMatches(change, record.spec.path, record.spec.recursive))) expected.push(op);
      }
      if (!deepEqual(expected, record.eventOps)) {
        this.#report(`${record.idPrefix} (${describeSpec(record.spec)}) delivered events at ops [${record.eventOps.join(',')}] from ${record.start} through ${record.position}; the committed history changed the path at [${expected.join(',')}]`);
        return;
      }
    }
  }

  stats(): WatchStats {
    const ended: WatchStats['ended'] = { cancelled: 0, compacted: 0, future: 0, lagging: 0, invalid: 0, unavailable: 0 };
    let attempts = 0;
    let batches = 0;
    let events = 0;
    let progress = 0;
    for (const record of this.records) {
      if (record.end !== null) ended[record.end] += 1;
      attempts += record.attempts;
      batches += record.batches;
      events += record.events;
      progress += record.progress;
    }
    return {
      watchers: this.#watchers.length,
      watches: this.records.length,
      attempts,
      batches,
      events,
      progress,
      notices: this.#notices,
      ended,
      refusals: { ...this.#refusals },
      links: { ...this.links.stats },
      diffChecks: this.#diffed.size,
    };
  }

  // ---- watchers --------------------------------------------------------------------------

  #startWatch(watcher: Watcher, now: number): void {
    const spec = this.#drawSpec(watcher);
    watcher.watches += 1;
    const idPrefix = `${watcher.id}.${watcher.watches}`;
    const record: WatchRecord = { watcher: watcher.id, idPrefix, spec, startTick: now, start: null, position: null, eventOps: [], batches: 0, events: 0, progress: 0, attempts: 0, end: null };
    this.records.push(record);
    watcher.record = record;
    watcher.machine = initialWatchMachine({ ...this.options.machine, replicaCount: this.#host.replicaCount }, spec, idPrefix, this.#prng.int(this.#host.replicaCount));
    this.#step(watcher, { type: 'start' });
  }

  #drawSpec(watcher: Watcher): WatchSpec {
    const prng = this.#prng;
    const previous = watcher.previous;
    // An application resuming where it got to (after lagging, or a cancel): same path, fromOp = its last op.
    if (previous !== null && previous.position !== null && (previous.end === 'lagging' || previous.end === 'cancelled') && prng.chance(0.5)) {
      return { ...previous.spec, fromOp: this.#settling ? null : previous.position };
    }
    const component = prng.int(Math.max(1, this.options.components));
    const roll = prng.int(20);
    const path = roll === 0 ? rootPath : roll === 1 ? `/k${component}/z` : roll < 10 ? `/k${component}` : `/k${component}/${prng.pick(['x', 'y'])}`;
    const recursive = prng.chance(0.5);
    const values = prng.chance(0.5);
    let fromOp: number | null = null;
    if (!this.#settling) {
      const roll2 = prng.int(10);
      if (roll2 < 2) fromOp = 0;
      else if (roll2 < 5) fromOp = prng.int(this.history.known + 1);
    }
    return { path, recursive, fromOp, values };
  }

  #step(watcher: Watcher, input: Parameters<typeof watchStep>[1]): void {
    const machine = watcher.machine;
    const record = watcher.record;
    if (machine === null || record === null) return;
    let result: ReturnType<typeof watchStep>;
    try {
      result = watchStep(machine, input);
    } catch (error) {
      this.#report(`${record.idPrefix}: the client machine threw ${error instanceof Error ? error.message : String(error)} on ${short(canonical(input))}`);
      watcher.machine = null;
      return;
    }
    watcher.machine = result.machine;
    for (const output of result.outputs) this.#output(watcher, record, output);
    if (watcher.machine !== null && watcher.record === record && watchPosition(watcher.machine) !== record.position) {
      this.#report(`${record.idPrefix}: the machine's position ${watchPosition(watcher.machine)} differs from what it delivered (${record.position})`);
    }
  }

  #output(watcher: Watcher, record: WatchRecord, output: WatchOutput): void {
    switch (output.type) {
      case 'send': {
        const request = output.request;
        if (request.type === 'watch_subscribe') {
          record.attempts += 1;
          watcher.attempts.set(request.watchId, { watchId: request.watchId, replica: output.replica, spec: record.spec, fromOp: request.fromOp, sent: new Map(), position: null, partial: null, ended: false });
        }
        // A subscribe is never repeated by the links: a replica refuses an id it serves (invalid).
        const connection = WatchLinks.connection(output.replica, watcher.id, request.watchId);
        this.links.send(watcher.id, output.replica, connection, request satisfies WatchRequest, this.#host.now, request.type !== 'watch_subscribe');
        return;
      }
      case 'deliver':
        this.#checkDelivery(record, output.batch);
        return;
      case 'end':
        this.#checkEnd(record, output.error);
        watcher.machine = null;
        watcher.record = null;
        watcher.previous = record;
        watcher.nextStartAt = this.#host.now + 1 + this.#prng.int(this.options.rewatchTicksMax);
        return;
      default:
        assertNever(output, 'watch output');
    }
  }

  /**
   * A notice as the links deliver it (possibly again, or out of order): it must be one its
   * replica sent under that number; the client machine takes it or not.
   */
  #receive(watcher: Watcher, replica: number, notice: WatchNotice): void {
    this.#notices += 1;
    const attempt = watcher.attempts.get(notice.watchId);
    if (attempt === undefined || attempt.replica !== replica || attempt.sent.get(notice.seq) !== notice) {
      this.#report(`watcher ${watcher.id} got ${short(canonical(notice))} from replica ${replica}, which that replica never sent it under seq ${notice.seq}`);
      return;
    }
    const machine = watcher.machine;
    if (machine !== null && notice.watchId.startsWith(`${machine.idPrefix}.`)) this.#step(watcher, { type: 'notice', notice });
  }

  // ---- the hub's stream, per attempt -----------------------------------------------------------

  /** A notice as replica `replica` sends it to `watcher`, in the order sent: the hub's stream, before any link fault. */
  #sent(watcher: Watcher, replica: number, notice: WatchNotice): void {
    const attempt = watcher.attempts.get(notice.watchId);
    if (attempt === undefined) {
      this.#report(`replica ${replica} sent watcher ${watcher.id} a ${notice.type} for watch id ${notice.watchId}, which it never subscribed (isolation between subscribers)`);
      return;
    }
    const where = `${attempt.watchId} (${describeSpec(attempt.spec)}, fromOp ${attempt.fromOp ?? 'null'}) at replica ${attempt.replica}`;
    if (replica !== attempt.replica) return this.#report(`${where}: replica ${replica}, which was never asked, sent a ${notice.type}`);
    const expectedSeq = attempt.sent.size + 1;
    if (notice.seq !== expectedSeq) return this.#report(`${where}: sent ${short(canonical(notice))} numbered ${notice.seq}, not ${expectedSeq} (its notices are numbered 1, 2, 3, ... in the order sent)`);
    attempt.sent.set(notice.seq, notice);
    this.#checkNotice(attempt, where, notice);
  }

  #checkNotice(attempt: AttemptCheck, where: string, notice: WatchNotice): void {
    if (attempt.ended) return this.#report(`${where}: sent ${short(canonical(notice))} after watch_ended`);
    const known = this.history.known;
    switch (notice.type) {
      case 'watch_progress': {
        const through = notice.through;
        if (attempt.partial !== null) return this.#report(`${where}: progress through ${through} in the middle of op ${attempt.partial.op}'s parts (atomic)`);
        if (through > known) return this.#report(`${where}: progress through ${through}, beyond the committed history (through ${known}) (bookmarkable)`);
        if (attempt.position === null) {
          if (attempt.fromOp !== null && through !== attempt.fromOp) return this.#report(`${where}: opened with progress through ${through}, not its fromOp ${attempt.fromOp} (bookmarkable)`);
          attempt.position = through;
          return;
        }
        if (through < attempt.position) return this.#report(`${where}: progress went back from ${attempt.position} to ${through} (bookmarkable)`);
        const missed = this.history.firstMatch(attempt.position, through, attempt.spec.path, attempt.spec.recursive);
        if (missed !== null) return this.#report(`${where}: progress from ${attempt.position} through ${through} skipped op ${missed}, which changed the path (reliable)`);
        attempt.position = through;
        return;
      }
      case 'watch_events': {
        const op = notice.op;
        if (attempt.position === null) return this.#report(`${where}: events of op ${op} before the opening progress`);
        if (op > known) return this.#report(`${where}: events of op ${op}, beyond the committed history (through ${known}) (nothing uncommitted)`);
        if (attempt.partial !== null) {
          if (attempt.partial.op !== op) return this.#report(`${where}: events of op ${op} in the middle of op ${attempt.partial.op}'s parts (atomic)`);
          attempt.partial.events.push(...notice.events);
        } else {
          if (op <= attempt.position) return this.#report(`${where}: events of op ${op}, at or before its position ${attempt.position} (ordered, unique)`);
          const missed = this.history.firstMatch(attempt.position, op - 1, attempt.spec.path, attempt.spec.recursive);
          if (missed !== null) return this.#report(`${where}: went from ${attempt.position} to op ${op}, skipping op ${missed}, which changed the path (reliable)`);
          attempt.partial = { op, events: [...notice.events] };
        }
        if (notice.more) return;
        const events = attempt.partial.events;
        attempt.partial = null;
        attempt.position = op;
        this.#checkEvents(where, op, attempt.spec, events);
        return;
      }
      case 'watch_ended':
        attempt.ended = true;
        this.#refusals[notice.reason] = (this.#refusals[notice.reason] ?? 0) + 1;
        if (notice.reason === 'invalid') this.#report(`${where}: ended invalid (${notice.message}), yet the watcher sent only valid requests`);
        else if (notice.reason === 'compacted') {
          const at = attempt.position ?? attempt.fromOp;
          if (at === null || at >= notice.oldestOp) this.#report(`${where}: ended compacted at position ${at ?? 'null'}, which the replica's history (after ${notice.oldestOp}) covers`);
        } else if (notice.reason === 'future') {
          if (attempt.position !== null || attempt.fromOp === null || attempt.fromOp <= notice.currentOp) {
            this.#report(`${where}: ended future with fromOp ${attempt.fromOp ?? 'null'} and position ${attempt.position ?? 'null'}, not beyond the replica's commit ${notice.currentOp}`);
          }
        }
        return;
      default:
        assertNever(notice, 'watch notice');
    }
  }

  // ---- the application's stream, per watch -------------------------------------------------

  #checkDelivery(record: WatchRecord, batch: WatchBatch): void {
    const where = `${record.idPrefix} (${describeSpec(record.spec)}) delivered ${batch.kind} ${batch.op}`;
    const known = this.history.known;
    if (batch.op > known) return this.#report(`${where} beyond the committed history (through ${known}) (bookmarkable, nothing uncommitted)`);
    switch (batch.kind) {
      case 'start':
        if (record.start !== null) return this.#report(`${where}: a second start (the first was ${record.start})`);
        if (record.spec.fromOp !== null && batch.op !== record.spec.fromOp) return this.#report(`${where}: the start is not its fromOp ${record.spec.fromOp} (bookmarkable)`);
        if (batch.events.length > 0) return this.#report(`${where}: a start with events`);
        record.start = batch.op;
        record.position = batch.op;
        return;
      case 'progress': {
        if (record.position === null) return this.#report(`${where} before its start`);
        if (batch.op < record.position) return this.#report(`${where}: back from ${record.position} (bookmarkable)`);
        const missed = this.history.firstMatch(record.position, batch.op, record.spec.path, record.spec.recursive);
        if (missed !== null) return this.#report(`${where}: from ${record.position}, skipping op ${missed}, which changed the path (reliable, resumable)`);
        record.position = batch.op;
        record.progress += 1;
        return;
      }
      case 'events': {
        if (record.position === null) return this.#report(`${where} before its start`);
        if (batch.op <= record.position) return this.#report(`${where}: at or before its position ${record.position} (ordered, unique)`);
        const missed = this.history.firstMatch(record.position, batch.op - 1, record.spec.path, record.spec.recursive);
        if (missed !== null) return this.#report(`${where}: from ${record.position}, skipping op ${missed}, which changed the path (reliable, resumable)`);
        this.#checkEvents(where, batch.op, record.spec, batch.events);
        record.position = batch.op;
        record.eventOps.push(batch.op);
        record.batches += 1;
        record.events += batch.events.length;
        return;
      }
      default:
        assertNever(batch.kind, 'batch kind');
    }
  }

  #checkEnd(record: WatchRecord, error: WatchError | null): void {
    record.end = error === null ? 'cancelled' : error.code;
    if (error === null) return;
    const where = `${record.idPrefix} (${describeSpec(record.spec)}) ended ${error.code} at position ${record.position ?? 'none'}`;
    switch (error.code) {
      case 'invalid':
        return this.#report(`${where}: ${error.message}; the watcher sent only valid requests`);
      case 'compacted': {
        const at = record.position ?? record.spec.fromOp;
        if (at === null || error.oldestOp === null || at >= error.oldestOp) this.#report(`${where}: the answering replica's history starts after ${error.oldestOp ?? 'null'}: ${error.message}`);
        return;
      }
      case 'future':
        if (record.position !== null || record.spec.fromOp === null || error.currentOp === null || record.spec.fromOp <= error.currentOp) {
          this.#report(`${where}: fromOp ${record.spec.fromOp ?? 'null'} is not beyond the commit ${error.currentOp ?? 'null'}: ${error.message}`);
        }
        return;
      case 'lagging':
      case 'unavailable':
        return;
      default:
        assertNever(error.code, 'watch error code');
    }
  }

  /** A whole batch of op `op` against the committed entry's matching changes (atomic, values, nothing uncommitted). */
  #checkEvents(where: string, op: number, spec: WatchSpec, events: readonly WatchEvent[]): void {
    const expected = this.#expected(op, spec);
    if (expected === null) return;
    if (expected.length === 0) {
      this.#report(`${where}: events of op ${op} ${short(canonical(events), 600)}, an op that changed nothing on the path (nothing uncommitted)`);
      return;
    }
    if (!deepEqual(events, expected)) {
      this.#report(`${where}: events of op ${op} ${short(canonical(events), 600)} differ from the committed entry's ${short(canonical(expected), 600)} (atomic, nothing uncommitted)`);
    }
  }

  /** The events a watch must get for op `op`, or null after reporting a disagreement. */
  #expected(op: number, spec: WatchSpec): WatchEvent[] | null {
    const entry = this.history.entry(op);
    if (entry === undefined) {
      this.#report(`op ${op} is not in the recorded committed history (through ${this.history.known})`);
      return null;
    }
    const matching = this.history.changes(op).filter((change) => changeMatches(change, spec.path, spec.recursive));
    const key = `${op}|${spec.path}|${spec.recursive}`;
    if (!this.#diffed.has(key)) {
      this.#diffed.add(key);
      const diff = treeDiff(entry.before, entry.after, spec.path, spec.recursive);
      const mine = new Map(matching.map((change) => [change.path, change]));
      if (mine.size !== matching.length || !deepEqual(Object.fromEntries(mine), Object.fromEntries(diff))) {
        this.#report(`op ${op}, ${describeSpec(spec)}: entryChanges says ${short(canonical(matching), 600)} but the trees differ by ${short(canonical([...diff.values()]), 600)}`);
        return null;
      }
    }
    const cap = this.options.hub.valueBytesMax;
    return matching.map((change) => {
      if (!spec.values || change.nodeType !== 'blob' || change.kind === 'deleted') return { ...change };
      const found = lookup(entry.after, change.path);
      if (!found.ok || found.node.type !== 'blob') return { ...change, value: null, valueOmitted: true };
      const value = found.node.value;
      return value.byteLength <= cap ? { ...change, value } : { ...change, value: null, valueOmitted: true };
    });
  }

  #report(message: string): void {
    this.#host.report(message);
  }
}

function isNotice(message: unknown): message is WatchNotice {
  if (typeof message !== 'object' || message === null) return false;
  const record = message as Record<string, unknown>;
  return (record['type'] === 'watch_events' || record['type'] === 'watch_progress' || record['type'] === 'watch_ended') && typeof record['watchId'] === 'string';
}

export function describeSpec(spec: WatchSpec): string {
  return `${spec.path}${spec.recursive ? ' -r' : ''}${spec.values ? ' +values' : ''}${spec.fromOp === null ? '' : ` from ${spec.fromOp}`}`;
}

function short(text: string, max = 300): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** The sum of two runs' stats (a VOPR summary over seeds). */
export function addWatchStats(a: WatchStats, b: WatchStats): WatchStats {
  const sum = <K extends string>(x: Readonly<Record<K, number>>, y: Readonly<Record<K, number>>): Record<K, number> => {
    const out = { ...x } as Record<K, number>;
    for (const key of Object.keys(y) as K[]) out[key] = (out[key] ?? 0) + y[key];
    return out;
  };
  return {
    watchers: a.watchers + b.watchers,
    watches: a.watches + b.watches,
    attempts: a.attempts + b.attempts,
    batches: a.batches + b.batches,
    events: a.events + b.events,
    progress: a.progress + b.progress,
    notices: a.notices + b.notices,
    ended: sum(a.ended, b.ended),
    refusals: sum(a.refusals, b.refusals),
    links: sum(a.links, b.links),
    diffChecks: a.diffChecks + b.diffChecks,
  };
}

/** Formats the stats for a VOPR summary line. */
export function formatWatchStats(stats: WatchStats): string {
  const ended = Object.entries(stats.ended)
    .filter(([, n]) => n > 0)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
  const refusals = Object.entries(stats.refusals)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  return (
    `watchers ${stats.watchers} watches ${stats.watches} attempts ${stats.attempts} batches ${stats.batches} events ${stats.events} progress ${stats.progress} ` +
    `notices ${stats.notices} links broken ${stats.links.broken} lost ${stats.links.lost} repeated ${stats.links.duplicated} reordered ${stats.links.reordered}` +
    (ended === '' ? '' : ` ended: ${ended}`) +
    (refusals === '' ? '' : ` hub ended: ${refusals}`)
  );
}
