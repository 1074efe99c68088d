/**
 * VOPR: the Viewstamped Operation Replicator (after TigerBeetle's), a seeded simulation runner.
 *
 *   npm run vopr -- --seeds N [--from S] [--seed S] [--replicas 1|3|5] [--durable|--diskless] [--byzantine|--no-byzantine] [--no-watchers] [--no-leases] [--ticks-per-wakeup K] [--verbose]
 *
 * Per seed, everything derives from the seed (no clock, no Math.random), so one seed replays
 * a run exactly:
 *   - swarm testing: the seed draws which faults exist and how strong they are (message loss
 *     0–30%, duplication 0–10%, delay spread and distribution, partitions, clogged links,
 *     crashes with restarts), the group's size (1, 3 or 5 replicas, unless --replicas fixes
 *     it), how many client processes and sessions per process, and protocol/client limits
 *     (checkpoint interval, pipeline depth, batch size, log suffix cap, give-up time); some
 *     seeds have none of a fault;
 *   - a Byzantine-shaped injector (./byzantine.ts; about half the seeds, `--byzantine` or
 *     `--no-byzantine` fixes it): forged messages on the wire during the safety phase (huge
 *     views, numbers beyond protocolNumberMax, impossible senders, a prepare far ahead), which
 *     the gate must drop; a forged malformed message that is not dropped is a violation;
 *   - durable seeds: a crash of every replica at once (a power cut), restarts in any order;
 *     unfinished writes are lost at every crash (lost unsynced and torn last writes), and about
 *     half the group-crash seeds damage the storage of at most f replicas (a missing file or a
 *     corrupted record: ./storage.ts `damage`), which then recover with their trusted prefix;
 *     more than f damaged is checked separately (./storage_faults.test.ts: it stops safely);
 *     about half the durable seeds of 3 or 5 replicas also damage the store of a replica that
 *     crashes on its own (`crashDamageProbability` per single crash, on its own stream: the
 *     kind and the record are drawn at each crash), so it restarts recovering while the others
 *     run; never more
 *     than f replicas hold an untrusted store at once (damaged and not yet back in normal
 *     status with their promise stored again, `Cluster.untrusted`): a damage that would make
 *     f + 1, at a single crash or at the group crash, is skipped (traced `storage_damage_skipped`);
 *   - SAFETY phase: faults and a random workload for `safetyTicks`; never more than f replicas
 *     failed at once (crashed, or restarted and still recovering: VRR's failure model);
 *     every replica step is checked by ./checkers.ts;
 *   - LIVENESS phase: heal every partition and clog, restart every crashed replica, stop
 *     message loss and duplication, stop the workload. Within `livenessTicks` ticks every open
 *     call must complete; a call that times out after `livenessGraceTicks` healed ticks is a
 *     liveness violation; then every client issues one probe read (`stat /k0`), which must
 *     complete `done` within the same bound: every session is served by the healed cluster;
 *   - finally the committed logs are checked once more in full, and the client history must
 *     be linearizable against the real tree (./tree_model.ts). A search that exhausts its
 *     budget is reported as `unknown` (a warning, not a violation).
 *   - watches (issue 14, ./watchers.ts; on unless `--no-watchers`): 1 to 5 watchers on random
 *     paths beside the clients, with the seed's hub limits and client timing, through every
 *     fault above; every notice and every delivered batch is checked against the committed
 *     history as it arrives (ordered, unique, atomic, reliable, resumable, bookmarkable,
 *     nothing uncommitted), and in the liveness phase every watcher must catch up with the
 *     highest commit within the same bound. Watchers draw from their own stream (forked after
 *     every other), so a seed runs the same core schedule with and without them.
 *   - leases (README rule 21, ./leases.ts; on unless `--no-leases`): lease holders, lock
 *     contenders and election candidates beside the clients, on session hosts of their own,
 *     through every fault above (partitions split them too); their TTLs and the group's
 *     leaseClockTicks are drawn per seed. Checked from the committed log as it commits: no
 *     lease expires before its TTL has passed since its last renewal was first committed, no
 *     lease_clock entry counts more ticks than passed or covers a renewal committed after its
 *     interval began, a lease's nodes go with it, fenced writes only by the lowest node's
 *     holder with strictly increasing tokens, keep-alive answers true to the log, lease tables
 *     equal across replicas.
 *     In the liveness phase the clients stop; every lease must expire within ttl +
 *     leaseClockTicks + 3 x (viewChangeTimeoutTicks + viewChangeJitterTicks) of its last
 *     renewal or of healing, whichever is later: the run goes on until none is left. They
 *     draw from a stream of their own (like the watchers), so without them (`--no-leases`) a
 *     seed runs exactly as before they existed. Their top-level components are left out of the
 *     linearizability check (expiry deletes nodes with no client op).
 */

import { pathToFileURL } from 'node:url';
import type { ClientConfig } from '../../src/client/config.ts';
import { faultsTolerated, type ReplicaConfig } from '../../src/vr/config.ts';
import { ByzantineInjector, type ForgeryKind } from './byzantine.ts';
import type { Violation } from './checkers.ts';
import { checkerHistory, Cluster, type CallRecord, type StepFunction, type WorkloadOptions } from './cluster.ts';
import { checkHistory } from './linearizability.ts';
import type { NetworkFaults, NetworkStats, NodeId } from './network.ts';
import { Prng } from './prng.ts';
import type { StorageDamageKind } from './storage.ts';
import { makeTreeModel } from './tree_model.ts';
import { addWatchStats, drawWatchSimOptions, formatWatchStats, type WatchNoticeMutation, type WatchStats } from './watchers.ts';
import { addLeaseStats, drawLeaseSimOptions, formatLeaseOptions, formatLeaseStats, leaseComponents, type LeaseSimOptions, type LeaseStats } from './leases.ts';

export type VoprOptions = {
  /** Fixes the group's size; default: drawn per seed from 1, 3, 5. */
  readonly replicaCount?: 1 | 3 | 5;
  /** Overrides the drawn length of the safety phase. */
  readonly safetyTicks?: number;
  /** Bound on the liveness phase (default 3000). */
  readonly livenessTicks?: number;
  /** Trace lines in a report (default 30). */
  readonly traceLines?: number;
  /** Linearizability search budget (model steps). */
  readonly maxExplored?: number;
  /** Keep the noisy `drop_*` traces too (debugging). */
  readonly traceDrops?: boolean;
  /** Force durable replicas on or off (default: drawn per seed, 30% durable). */
  readonly durable?: boolean;
  /** Debugging: called after every tick of both phases with the cluster. */
  readonly inspect?: (cluster: Cluster) => void;
  /** Steps replicas with this instead of the real core (mutation tests, ./mutants.ts). */
  readonly stepFunction?: StepFunction;
  /** Force the forged-message injector on or off (default: drawn per seed, on for about half). */
  readonly byzantine?: boolean;
  /** Watchers and the watch checker (default true; ./watchers.ts). */
  readonly watchers?: boolean;
  /** Rewrites what the hubs send (mutation tests of the watch checker, ./mutants.ts). */
  readonly watchNoticeMutation?: WatchNoticeMutation;
  /** Lease, lock and election clients and the lease checkers (default true; ./leases.ts). */
  readonly leases?: boolean;
  /** Ticks per timer message to the replicas, as a node's `ticksPerWakeup` (default 1). */
  readonly ticksPerWakeup?: number;
};

/** Everything a seed draws. */
export type SeedParams = {
  readonly replicaCount: number;
  readonly clientCount: number;
  /** Sessions each client process may open (its session host's sessionsMax). */
  readonly sessionsPerClient: number;
  readonly safetyTicks: number;
  readonly faults: NetworkFaults;
  /** Per tick, when no partition is active: probability that one starts. */
  readonly partitionProbability: number;
  readonly partitionTicksMax: number;
  /** Per tick: probability that a replica crashes (if fewer than f are failed). */
  readonly crashProbability: number;
  readonly downTicksMax: number;
  /** Per tick: probability that a link is clogged for a while. */
  readonly clogProbability: number;
  readonly clogTicksMax: number;
  /** Probability that a crash or isolation targets the current primary. */
  readonly primaryBias: number;
  readonly replicaConfig: Partial<ReplicaConfig>;
  readonly clientConfig: Partial<ClientConfig>;
  readonly workload: WorkloadOptions;
  /** Replicas persist their log and checkpoints; a restarted one reloads them first. */
  readonly durable: boolean;
  /** Per safety tick: probability that a forged message is put on the wire (0: none). */
  readonly byzantineProbability: number;
  /**
   * Durable seeds only (README rule 18): the safety tick at which every replica crashes at once
   * (a power cut); each restarts after its own drawn delay, so in any order. Null: none.
   */
  readonly groupCrashTick: number | null;
  /**
   * Issue 13: storage damaged at the group crash (at most f replicas, so the group must come
   * back): a missing file or a corrupted record (`at`: where). Empty without a group crash.
   */
  readonly storageDamage: readonly { readonly replica: number; readonly kind: StorageDamageKind; readonly at: number }[];
  /**
   * Issue 13, durable seeds only (0 otherwise): the probability that a replica crashing on its
   * own (not the group crash) finds its store damaged when it restarts ('missing' or 'corrupt'
   * with a drawn record, drawn at the crash from the seed's damage stream), unless that would
   * leave more than f replicas untrusted at once.
   */
  readonly crashDamageProbability: number;
};

/** One storage damage the scheduler applied (or skipped to keep at most f replicas untrusted). */
export type DamageEvent = {
  readonly tick: number;
  readonly replica: number;
  readonly kind: StorageDamageKind;
  readonly at: number;
  /** 'single': a replica crashing on its own; 'group': the group crash. */
  readonly cause: 'single' | 'group';
  readonly applied: boolean;
};

export type SeedReport = {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation: Violation | null;
  readonly params: SeedParams;
  /** Ticks run in total, and when the liveness phase began. */
  readonly ticks: number;
  readonly livenessStartTick: number;
  readonly elapsedMs: number;
  readonly calls: number;
  readonly done: number;
  readonly pending: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly viewChanges: number;
  readonly maxCommitted: number;
  readonly linearizability: 'ok' | 'unknown' | 'violation' | 'skipped';
  /** Why linearizability is unknown, when it is. */
  readonly warning: string | null;
  readonly network: NetworkStats;
  /** Forged messages put on the wire, by kind, and malformed ones that reached a replica (all dropped, or a violation). */
  readonly forged: Readonly<Record<ForgeryKind, number>>;
  readonly forgedDelivered: number;
  /** Storage damage drawn during the run, in order: applied, or skipped for the f bound. */
  readonly damage: readonly DamageEvent[];
  readonly traceTail: readonly string[];
  readonly replay: string;
  /** The watchers' counts (null without watchers). */
  readonly watch: WatchStats | null;
  /** The lease clients' and checkers' counts, and what the seed drew for them (null without them). */
  readonly leases: LeaseStats | null;
  readonly leaseOptions: LeaseSimOptions | null;
};

export const defaultLivenessTicks = 3000;
export const livenessGraceTicks = 600;
/** After the probes, watchers must catch up with the highest commit within this many ticks. */
export const watchLivenessTicks = 1500;

function replayCommand(seed: number, options: VoprOptions): string {
  // A drawn replica count is drawn again from the seed: only a fixed one is part of the command.
  const replicas = options.replicaCount === undefined ? '' : ` --replicas ${options.replicaCount}`;
  const durable = options.durable === undefined ? '' : options.durable ? ' --durable' : ' --diskless';
  const byzantine = options.byzantine === undefined ? '' : options.byzantine ? ' --byzantine' : ' --no-byzantine';
  const watchers = options.watchers === false ? ' --no-watchers' : '';
  const leases = options.leases === false ? ' --no-leases' : '';
  const ticks = options.ticksPerWakeup === undefined ? '' : ` --ticks-per-wakeup ${options.ticksPerWakeup}`;
  return `npm run vopr -- --seed ${seed}${replicas}${durable}${byzantine}${watchers}${leases}${ticks}`;
}

/** Calls in flight at most, over all client processes of a seed (clients x sessions). */
const callsInFlightMax = 6;

/** Swarm testing: which faults a seed has, and how strong. */
export function drawParams(prng: Prng, options: VoprOptions): SeedParams {
  const uniform = (lo: number, hi: number): number => lo + (hi - lo) * prng.float();
  const delayMaxTicks = prng.pick([1, 2, 5, 10, 20]);
  const faults: NetworkFaults = {
    lossProbability: prng.chance(0.6) ? uniform(0, 0.3) : 0,
    duplicateProbability: prng.chance(0.5) ? uniform(0, 0.1) : 0,
    delayMinTicks: 1,
    delayMaxTicks,
    delayDistribution: prng.chance(0.5) ? 'uniform' : 'exponential',
    delayMeanTicks: Math.max(1, delayMaxTicks / 4),
    queueMax: prng.pick([256, 10_000]),
  };
  const viewChangeTimeoutTicks = prng.pick([20, 30, 60]);
  const safetyTicks = prng.range(2000, 3000);
  const clientCount = prng.range(2, 6);
  const partial = {
    clientCount,
    safetyTicks: options.safetyTicks ?? safetyTicks,
    faults,
    partitionProbability: prng.chance(0.5) ? uniform(0.002, 0.02) : 0,
    partitionTicksMax: prng.pick([50, 200, 500]),
    crashProbability: prng.chance(0.5) ? uniform(0.001, 0.01) : 0,
    downTicksMax: prng.pick([20, 100, 400]),
    clogProbability: prng.chance(0.3) ? uniform(0.005, 0.05) : 0,
    clogTicksMax: prng.pick([10, 50, 100]),
    primaryBias: prng.pick([0, 0.5, 0.9]),
    replicaConfig: {
      viewChangeTimeoutTicks,
      viewChangeJitterTicks: prng.pick([5, viewChangeTimeoutTicks]),
      checkpointIntervalOps: prng.pick([4, 16, 64, 1024]),
      pipelineMax: prng.pick([1, 2, 8]),
      batchMax: prng.pick([1, 4, 256]),
      pendingMax: prng.pick([2, 64, 16_384]),
      logSuffixMax: prng.pick([3, 32, 100_000]),
      recoveryRetryTicks: prng.pick([5, 15]),
      stateTransferRetryTicks: prng.pick([5, 15]),
    },
    clientConfig: {
      retryTicks: prng.pick([5, 10]),
      retryTicksMax: prng.pick([40, 80]),
      giveUpTicks: prng.pick([150, 400, 1000]),
    },
    workload: {
      opProbability: uniform(0.03, 0.5),
      components: prng.range(2, 6),
      multiCasProbability: prng.pick([0, 0.1, 0.3]),
      valueBytesMax: prng.pick([1, 3]),
      valueAlphabet: prng.pick([2, 4]),
    },
  };
  // Drawn last (adding them left every earlier draw as it was), and drawn even when an option
  // fixes them, so fixing one leaves the seed's other draws as they are.
  const durable = prng.chance(0.3);
  const replicaCount = prng.pick([1, 3, 5] as const);
  // Several sessions per client process exercise the pool (its waiting queue, shared primary
  // tracking), but calls in flight stay at most `callsInFlightMax` over all clients: each one a
  // pending write may leave in the history multiplies the linearizability search.
  const sessionsPerClient = Math.max(1, Math.min(prng.pick([1, 2, 3]), Math.floor(callsInFlightMax / clientCount)));
  // Drawn after everything else (earlier draws stay as they were); forcing it on keeps the
  // drawn rate, or takes one when the seed drew none.
  const byzantineOn = prng.chance(0.5);
  const byzantineRate = uniform(0.005, 0.05);
  const byzantineProbability = (options.byzantine ?? byzantineOn) ? byzantineRate : 0;
  // Drawn after everything else, and drawn even for diskless seeds (their draws stay as they were).
  const groupCrashOn = prng.chance(0.6);
  const groupCrashAt = prng.float();
  const isDurable = options.durable ?? durable;
  const safety = partial.safetyTicks;
  const groupCrashTick = isDurable && groupCrashOn && safety > 400 ? 100 + Math.floor(groupCrashAt * (safety - 400)) : null;
  // Drawn last (earlier draws stay as they were), and drawn whatever the seed: how many
  // replicas (at most f) find their storage damaged after the group crash, which, and how.
  const finalReplicas = options.replicaCount ?? replicaCount;
  const damageOn = prng.chance(0.5);
  const damageCount = 1 + prng.int(2);
  const damageDraws = Array.from({ length: 2 }, () => ({ replica: prng.int(5), kind: prng.chance(0.5) ? ('missing' as const) : ('corrupt' as const), at: prng.float() }));
  const f = Math.floor((finalReplicas - 1) / 2);
  const storageDamage: { replica: number; kind: StorageDamageKind; at: number }[] = [];
  if (groupCrashTick !== null && damageOn) {
    for (const draw of damageDraws.slice(0, Math.min(damageCount, f))) {
      const replica = draw.replica % finalReplicas;
      if (!storageDamage.some((d) => d.replica === replica)) storageDamage.push({ ...draw, replica });
    }
  }
  // Drawn last (earlier draws stay as they were), and drawn whatever the seed: whether and how
  // often a replica crashing on its own comes back with damaged storage. Only durable groups
  // that can lose a replica (f >= 1) have it.
  const crashDamageOn = prng.chance(0.5);
  const crashDamageRate = uniform(0.2, 1);
  const crashDamageProbability = isDurable && crashDamageOn && f >= 1 ? crashDamageRate : 0;
  return { ...partial, durable: isDurable, replicaCount: finalReplicas, sessionsPerClient, byzantineProbability, groupCrashTick, storageDamage, crashDamageProbability };
}

/** Crashes, restarts, partitions and clogs during the safety phase, drawn from the seed. */
class FaultScheduler {
  readonly #prng: Prng;
  /** Storage damage at single crashes: its own stream, so the fault schedule stays as it was. */
  readonly #damagePrng: Prng;
  readonly #params: SeedParams;
  readonly #cluster: Cluster;
  /** Crashed replica -> tick of its restart. */
  readonly #restartAt = new Map<number, number>();
  #healAt: number | null = null;
  crashes = 0;
  partitions = 0;
  readonly damage: DamageEvent[] = [];
  /** Which side of a random split each watcher is on: its own stream, so the schedule stays as it was. */
  #watchPrng: Prng | null = null;
  /** The same for the lease clients. */
  #leasePrng: Prng | null = null;

  constructor(prng: Prng, damagePrng: Prng, params: SeedParams, cluster: Cluster) {
    this.#prng = prng;
    this.#damagePrng = damagePrng;
    this.#params = params;
    this.#cluster = cluster;
  }

  /** Watchers join random splits, drawn from `prng`. */
  watchSides(prng: Prng): void {
    this.#watchPrng = prng;
  }

  /** Lease clients join random splits, drawn from `prng` (the lease stream). */
  leaseSides(prng: Prng): void {
    this.#leasePrng = prng;
  }

  /** Runs before each safety tick. */
  beforeTick(): void {
    const cluster = this.#cluster;
    const prng = this.#prng;
    const params = this.#params;
    const now = cluster.now;
    for (const [replica, at] of this.#restartAt) {
      if (at <= now) {
        this.#restartAt.delete(replica);
        cluster.restart(replica);
      }
    }
    if (this.#healAt !== null && this.#healAt <= now) {
      this.#healAt = null;
      cluster.heal();
    }
    if (params.groupCrashTick !== null && now === params.groupCrashTick) this.#crashGroup();
    if (prng.chance(params.crashProbability) && cluster.failedCount() + 1 <= faultsTolerated(cluster.config)) {
      const target = this.#target((i) => !cluster.isDown(i));
      if (target !== null) {
        cluster.crash(target);
        this.crashes += 1;
        this.#restartAt.set(target, now + prng.range(1, params.downTicksMax));
        this.#damageAtCrash(target);
      }
    }
    if (this.#healAt === null && prng.chance(params.partitionProbability)) this.#startPartition();
    if (prng.chance(params.clogProbability)) {
      const nodes: NodeId[] = [...Array.from({ length: cluster.replicaCount }, (_, i) => i), ...cluster.clientIds];
      const from = prng.pick(nodes);
      const to = prng.pick(nodes.filter((node) => node !== from));
      cluster.clog(from, to, prng.range(1, params.clogTicksMax));
    }
  }

  /**
   * README rule 18: every replica crashes at once (durable seeds only); each restarts after its
   * own delay (so in any order) with its storage intact, and the group must come back without
   * the recovery protocol (nobody could answer it).
   */
  #crashGroup(): void {
    const cluster = this.#cluster;
    const now = cluster.now;
    cluster.note('group_crash');
    for (let replica = 0; replica < cluster.replicaCount; replica++) {
      if (!cluster.isDown(replica)) {
        cluster.crash(replica);
        this.crashes += 1;
      }
      this.#restartAt.set(replica, now + this.#prng.range(1, Math.max(2, this.#params.downTicksMax)));
    }
    // Issue 13: at most f stores come back damaged (drawn with the seed's params, so the
    // scheduler's own draws stay as they were). A store left untrusted by a single crash's
    // damage still counts: a drawn damage that would make f + 1 untrusted is skipped.
    for (const damage of this.#params.storageDamage) this.#damage(damage.replica, damage.kind, damage.at, 'group');
  }

  /**
   * Issue 13: a replica that crashed on its own (durable seeds) finds its store damaged when it
   * restarts, with the seed's probability. The three draws are made at every single crash of a
   * seed that has the fault, in the same order, whatever is then applied. The store is damaged
   * now: nothing writes it while the replica is down, and a group crash before its restart then
   * sees it untrusted.
   */
  #damageAtCrash(replica: number): void {
    const probability = this.#params.crashDamageProbability;
    if (probability <= 0) return;
    const prng = this.#damagePrng;
    const hit = prng.chance(probability);
    const kind: StorageDamageKind = prng.chance(0.5) ? 'missing' : 'corrupt';
    const at = prng.float();
    if (hit) this.#damage(replica, kind, at, 'single');
  }

  /**
   * Damages a down replica's store unless that would leave more than f replicas untrusted at
   * once (VRR's failure model: the others must be able to answer its recovery, and after a
   * group crash at least f + 1 must resume from their promises).
   */
  #damage(replica: number, kind: StorageDamageKind, at: number, cause: DamageEvent['cause']): void {
    const cluster = this.#cluster;
    let untrusted = 0;
    for (let i = 0; i < cluster.replicaCount; i++) if (i !== replica && cluster.untrusted(i)) untrusted += 1;
    const applied = untrusted + 1 <= faultsTolerated(cluster.config);
    this.damage.push({ tick: cluster.now, replica, kind, at, cause, applied });
    if (applied) cluster.damageStore(replica, kind, at);
    else cluster.note('storage_damage_skipped', { replica, kind, cause, untrusted });
  }

  /** The primary (with the seed's bias) or a random replica satisfying `eligible`. */
  #target(eligible: (replica: number) => boolean): number | null {
    const cluster = this.#cluster;
    const primary = cluster.primaryIndex();
    if (primary !== null && eligible(primary) && this.#prng.chance(this.#params.primaryBias)) return primary;
    const candidates = Array.from({ length: cluster.replicaCount }, (_, i) => i).filter(eligible);
    return candidates.length === 0 ? null : this.#prng.pick(candidates);
  }

  #startPartition(): void {
    const cluster = this.#cluster;
    const prng = this.#prng;
    const replicas = Array.from({ length: cluster.replicaCount }, (_, i) => i);
    const kind = prng.int(3);
    if (kind === 0) {
      const target = this.#target(() => true);
      if (target === null) return;
      cluster.isolate(target);
    } else if (kind === 1) {
      // A random split of replicas and clients into two sides.
      const a: NodeId[] = [];
      const b: NodeId[] = [];
      for (const node of [...replicas, ...cluster.clientIds]) (prng.chance(0.5) ? a : b).push(node);
      if (a.length === 0 || b.length === 0) return;
      const sides = this.#watchPrng;
      if (sides !== null) for (const node of cluster.watch?.watcherIds ?? []) (sides.chance(0.5) ? a : b).push(node);
      const leaseSides = this.#leasePrng;
      if (leaseSides !== null) for (const node of cluster.leases?.clientIds ?? []) (leaseSides.chance(0.5) ? a : b).push(node);
      cluster.partition(a, b);
    } else if (replicas.length > 1) {
      // One or two one-way links between replicas.
      const links = 1 + prng.int(2);
      for (let i = 0; i < links; i++) {
        const from = prng.pick(replicas);
        const to = prng.pick(replicas.filter((replica) => replica !== from));
        cluster.asymmetric(from, to);
      }
    }
    this.partitions += 1;
    this.#healAt = cluster.now + prng.range(10, this.#params.partitionTicksMax);
  }

  /** Liveness phase: everything back. */
  stop(): void {
    this.#cluster.heal();
    this.#healAt = null;
    for (const replica of [...this.#restartAt.keys()].sort((a, b) => a - b)) this.#cluster.restart(replica);
    this.#restartAt.clear();
  }
}

function livenessViolation(cluster: Cluster, message: string): Violation {
  return cluster.checkers.report({ kind: 'liveness', tick: cluster.now, message });
}

function describeCall(record: CallRecord): string {
  return `${record.clientId} call ${record.callId} (${record.op.type}, called at tick ${record.callTick})`;
}

/** The seed's watch stream: the seed moved above 2**32 (the PRNG mixes both halves), which no other stream of a run uses. */
function watchStream(seed: number): Prng {
  return new Prng(seed + 2 ** 40);
}

/** The seed's lease stream: moved further up, clear of the watch stream's. */
function leaseStream(seed: number): Prng {
  return new Prng(seed + 2 ** 41);
}

/** Runs one seed: safety phase, liveness phase, final checks. Never throws on a protocol bug. */
export function runSeed(seed: number, options: VoprOptions = {}): SeedReport {
  const started = performance.now();
  const master = new Prng(seed);
  const params = drawParams(master.fork(), options);
  const faultPrng = master.fork();
  // Watchers draw from a stream of their own, not forked from `master`: every other draw of the
  // seed, and so its core run, is the same with and without them.
  const watchPrng = watchStream(seed);
  const watchers = options.watchers === false ? null : drawWatchSimOptions(watchPrng.fork(), params.workload.components);
  // Lease clients: a stream of their own too, so without them a seed runs exactly as before.
  const leasePrng = leaseStream(seed);
  const leases = options.leases === false ? null : drawLeaseSimOptions(leasePrng.fork(), params.replicaCount);
  const cluster = new Cluster({
    seed: master.next(),
    replicaCount: params.replicaCount,
    clientCount: params.clientCount,
    sessionsPerClient: params.sessionsPerClient,
    replicaConfig: leases === null ? params.replicaConfig : { ...params.replicaConfig, leaseClockTicks: leases.leaseClockTicks },
    clientConfig: params.clientConfig,
    faults: params.faults,
    workload: params.workload,
    durable: params.durable,
    traceDrops: options.traceDrops ?? false,
    traceCapacity: Math.max(400, options.traceLines ?? 30),
    ...(options.stepFunction === undefined ? {} : { stepFunction: options.stepFunction }),
    watchers,
    ...(options.watchNoticeMutation === undefined ? {} : { watchNoticeMutation: options.watchNoticeMutation }),
    leases,
    ...(options.ticksPerWakeup === undefined ? {} : { ticksPerWakeup: options.ticksPerWakeup }),
  });
  // Its own stream, forked after every other: a seed without forgeries runs as before.
  const injector = new ByzantineInjector(master.fork(), cluster, params.byzantineProbability);
  // Storage damage at single crashes: forked after every other stream, so every other draw of
  // a seed stays as it was (a seed without the fault runs exactly as before).
  const scheduler = new FaultScheduler(faultPrng, master.fork(), params, cluster);
  if (cluster.watch !== null) scheduler.watchSides(watchPrng.fork());
  if (cluster.leases !== null) scheduler.leaseSides(leasePrng.fork());
  let viewChanges = 0;
  const countViews = (): number => cluster.replicas.reduce((max, state) => Math.max(max, state.view), 0);

  // ---- safety phase ----
  for (let t = 0; t < params.safetyTicks && !cluster.halted; t++) {
    scheduler.beforeTick();
    injector.beforeTick();
    cluster.tick();
    options.inspect?.(cluster);
  }
  viewChanges = countViews();

  // ---- liveness phase ----
  const livenessStartTick = cluster.now;
  const livenessTicks = options.livenessTicks ?? defaultLivenessTicks;
  const deadline = livenessStartTick + livenessTicks;
  if (!cluster.halted) {
    cluster.note('liveness_phase');
    scheduler.stop();
    cluster.watch?.settle();
    cluster.leases?.settle(cluster.now);
    cluster.workloadEnabled = false;
    cluster.network.setFaults({ ...params.faults, lossProbability: 0, duplicateProbability: 0, delayMaxTicks: Math.min(params.faults.delayMaxTicks, 3) });
    const open = cluster.openCalls();
    cluster.runUntil((c) => {
      options.inspect?.(c);
      return c.openCalls().length === 0;
    }, livenessTicks);
    if (!cluster.halted) {
      const stuck = cluster.openCalls();
      const lateTimeout = cluster.history.find((record) => record.result?.type === 'timeout' && (record.returnTick ?? 0) > livenessStartTick + livenessGraceTicks);
      if (stuck.length > 0) {
        livenessViolation(cluster, `${stuck.length} call(s) still open ${livenessTicks} ticks after healing (of ${open.length} open then), e.g. ${describeCall(stuck[0] as CallRecord)}`);
      } else if (lateTimeout !== undefined) {
        livenessViolation(cluster, `${describeCall(lateTimeout)} timed out at tick ${lateTimeout.returnTick}, ${livenessGraceTicks}+ ticks after the cluster was healed at tick ${livenessStartTick}`);
      }
    }
    if (!cluster.halted) {
      const probes = cluster.clientIds.map((clientId) => cluster.call(clientId, { type: 'stat', path: '/k0' }, 'probe'));
      cluster.runUntil(() => probes.every((probe) => probe.result !== null), Math.max(0, deadline - cluster.now));
      const failed = probes.find((probe) => probe.result?.type !== 'done');
      if (!cluster.halted && failed !== undefined) {
        const primary = cluster.primaryIndex();
        livenessViolation(
          cluster,
          `probe ${describeCall(failed)} ${failed.result === null ? 'got no result' : `got ${failed.result.type}`} by tick ${cluster.now} ` +
            `(healed at ${livenessStartTick}, bound ${livenessTicks}); primary ${primary ?? 'none'}; replicas ${cluster.replicas.map((s) => `${s.status}@${s.view}/op${s.op}/c${s.commit}`).join(' ')}`,
        );
      }
    }
    // Every watcher catches up with the highest commit (progress reaches it), within its own bound.
    const watch = cluster.watch;
    if (!cluster.halted && watch !== null) {
      const target = cluster.checkers.maxCommitted;
      const caughtUp = cluster.runUntil((c) => c.watchersCaughtUp(target), watchLivenessTicks);
      if (!cluster.halted && !caughtUp) {
        livenessViolation(cluster, `watchers not caught up with commit ${target} ${watchLivenessTicks} ticks after the probes (tick ${cluster.now}): ${watch.behind(target).join('; ')}`);
      }
    }
    // Every lease expires by its deadline (the lease sim checks each tick): run until none is left.
    const leaseSim = cluster.leases;
    if (!cluster.halted && leaseSim !== null) cluster.runUntil(() => leaseSim.allExpired(), leaseSim.ticksToLastDeadline(cluster.now));
  }

  // ---- final checks ----
  if (!cluster.halted) cluster.checkers.finalCheck(cluster.replicas, cluster.now);
  if (!cluster.halted) cluster.watch?.finalCheck();
  if (!cluster.halted) cluster.leases?.finalCheck();
  let linearizability: SeedReport['linearizability'] = 'skipped';
  let warning: string | null = null;
  if (!cluster.halted) {
    const history = checkerHistory(cluster.history);
    const model = makeTreeModel({ history: history.map((op) => op.input), limits: cluster.config.treeLimits, excludedComponents: leaseComponents });
    const result = checkHistory(model, history, options.maxExplored === undefined ? {} : { maxExplored: options.maxExplored });
    if (result.linearizable === true) {
      linearizability = 'ok';
    } else if (result.linearizable === 'unknown') {
      linearizability = 'unknown';
      warning = result.reason;
    } else {
      linearizability = 'violation';
      const shown = result.ops.length > 40 ? [...result.ops.slice(0, 40), `... (${result.ops.length - 40} more)`] : result.ops;
      cluster.checkers.report({ kind: 'linearizability', tick: cluster.now, message: `${result.reason}\n    ${shown.join('\n    ')}` });
    }
  }

  const violation = cluster.violations[0] ?? null;
  const done = cluster.history.filter((record) => record.result?.type === 'done').length;
  const pending = cluster.history.filter((record) => record.result === null || record.result.type === 'timeout').length;
  return {
    seed,
    ok: violation === null,
    violation,
    params,
    ticks: cluster.now,
    livenessStartTick,
    elapsedMs: performance.now() - started,
    calls: cluster.history.length,
    done,
    pending,
    crashes: scheduler.crashes,
    partitions: scheduler.partitions,
    viewChanges,
    maxCommitted: cluster.checkers.maxCommitted,
    linearizability,
    warning,
    network: { ...cluster.network.stats },
    forged: { ...cluster.forged },
    forgedDelivered: cluster.forgedDelivered,
    damage: scheduler.damage,
    traceTail: violation === null ? [] : cluster.traceTail(options.traceLines ?? 30),
    replay: replayCommand(seed, options),
    watch: cluster.watch?.stats() ?? null,
    leases: cluster.leases?.stats() ?? null,
    leaseOptions: leases,
  };
}

/** A multi-line description of a failed seed. */
export function formatFailure(report: SeedReport): string {
  const violation = report.violation;
  if (violation === null) return `seed ${report.seed}: ok`;
  const where = violation.replica === undefined ? '' : ` (replica ${violation.replica})`;
  return [
    `seed ${report.seed}: VIOLATION ${violation.kind} at tick ${violation.tick}${where}`,
    `  ${report.params.replicaCount} replica(s)${report.params.durable ? ', durable' : ''}, ${report.params.clientCount} client(s) x ${report.params.sessionsPerClient} session(s)`,
    `  ${violation.message}`,
    `  params: ${formatParams(report.params)}`,
    ...(report.watch === null ? [] : [`  watch: ${formatWatchStats(report.watch)}`]),
    ...(report.leases === null ? [] : [`  leases: ${formatLeaseStats(report.leases)}`]),
    ...(report.leaseOptions === null ? [] : [`  lease options: ${formatLeaseOptions(report.leaseOptions)}`]),
    ...(report.damage.length === 0 ? [] : [`  storage damage: ${formatDamage(report.damage)}`]),
    `  last ${report.traceTail.length} trace lines:`,
    ...report.traceTail.map((line) => `    ${line}`),
    `  replay: ${report.replay}`,
  ].join('\n');
}

/** Storage damage of a run, e.g. `r1:corrupt@0.42 single t812, r2:missing group t1500 (skipped)`. */
export function formatDamage(events: readonly DamageEvent[]): string {
  return events
    .map((d) => `r${d.replica}:${d.kind}${d.kind === 'corrupt' ? `@${d.at.toFixed(2)}` : ''} ${d.cause} t${d.tick}${d.applied ? '' : ' (skipped)'}`)
    .join(', ');
}

export function formatParams(params: SeedParams): string {
  const f = params.faults;
  const pct = (p: number): string => `${(p * 100).toFixed(1)}%`;
  return (
    `loss ${pct(f.lossProbability)} dup ${pct(f.duplicateProbability)} delay 1..${f.delayMaxTicks} ${f.delayDistribution} ` +
    `partition ${pct(params.partitionProbability)}/tick crash ${pct(params.crashProbability)}/tick clog ${pct(params.clogProbability)}/tick ` +
    `replicas ${params.replicaCount} clients ${params.clientCount}x${params.sessionsPerClient} ops ${pct(params.workload.opProbability)}/tick ckpt ${params.replicaConfig.checkpointIntervalOps} ` +
    `pipeline ${params.replicaConfig.pipelineMax} batch ${params.replicaConfig.batchMax} suffix ${params.replicaConfig.logSuffixMax} ` +
    `${params.durable ? 'durable ' : ''}${params.groupCrashTick === null ? '' : `group-crash@${params.groupCrashTick} `}` +
    `${params.storageDamage.map((d) => `damage r${d.replica}:${d.kind} `).join('')}` +
    `${params.crashDamageProbability > 0 ? `crash-damage ${pct(params.crashDamageProbability)} ` : ''}` +
    `${params.byzantineProbability > 0 ? `forged ${pct(params.byzantineProbability)}/tick ` : ''}` +
    `giveUp ${params.clientConfig.giveUpTicks}`
  );
}

export function formatSummary(report: SeedReport): string {
  return (
    `seed ${report.seed}: ${report.ok ? 'ok' : 'VIOLATION'} ${report.elapsedMs.toFixed(0)}ms ticks ${report.ticks} ` +
    `calls ${report.calls} done ${report.done} pending ${report.pending} committed ${report.maxCommitted} views ${report.viewChanges} ` +
    `crashes ${report.crashes} partitions ${report.partitions} forged ${Object.values(report.forged).reduce((a, b) => a + b, 0)} (dropped ${report.forgedDelivered}) lin ${report.linearizability}` +
    (report.damage.length === 0 ? '' : ` damage ${formatDamage(report.damage)}`) +
    (report.watch === null ? '' : `\n  watch: ${formatWatchStats(report.watch)}`) +
    (report.leases === null ? '' : `\n  leases: ${formatLeaseStats(report.leases)}`)
  );
}

// ---- CLI -----------------------------------------------------------------------------------

type CliArgs = { seeds: number[]; options: VoprOptions; verbose: boolean };

function parseArgs(argv: readonly string[]): CliArgs {
  let count = 100;
  let from = 1;
  let single: number | null = null;
  let replicaCount: 1 | 3 | 5 | undefined;
  let verbose = false;
  let durable: boolean | undefined;
  let byzantine: boolean | undefined;
  let watchers: boolean | undefined;
  let leases: boolean | undefined;
  let ticksPerWakeup: number | undefined;
  const integer = (flag: string, value: string | undefined): number => {
    const n = Number(value);
    if (value === undefined || !Number.isSafeInteger(n)) throw new Error(`${flag} needs an integer, got ${String(value)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case '--seeds':
        count = integer(arg, argv[++i]);
        break;
      case '--from':
        from = integer(arg, argv[++i]);
        break;
      case '--seed':
        single = integer(arg, argv[++i]);
        break;
      case '--replicas': {
        const n = integer(arg, argv[++i]);
        if (n !== 1 && n !== 3 && n !== 5) throw new Error('--replicas must be 1, 3 or 5');
        replicaCount = n;
        break;
      }
      case '--durable':
        durable = true;
        break;
      case '--diskless':
        durable = false;
        break;
      case '--byzantine':
        byzantine = true;
        break;
      case '--no-byzantine':
        byzantine = false;
        break;
      case '--no-watchers':
        watchers = false;
        break;
      case '--no-leases':
        leases = false;
        break;
      case '--ticks-per-wakeup': {
        const n = integer(arg, argv[++i]);
        if (n < 1 || n > 100) throw new Error('--ticks-per-wakeup must be 1..100');
        ticksPerWakeup = n;
        break;
      }
      case '--verbose':
        verbose = true;
        break;
      default:
        throw new Error(`unknown argument ${String(arg)} (usage: npm run vopr -- --seeds N [--from S] [--seed S] [--replicas 1|3|5] [--durable|--diskless] [--byzantine|--no-byzantine] [--no-watchers] [--no-leases] [--ticks-per-wakeup K] [--verbose])`);
    }
  }
  const seeds = single !== null ? [single] : Array.from({ length: Math.max(0, count) }, (_, i) => from + i);
  return { seeds, options: { ...(replicaCount === undefined ? {} : { replicaCount }), ...(durable === undefined ? {} : { durable }), ...(byzantine === undefined ? {} : { byzantine }), ...(watchers === undefined ? {} : { watchers }), ...(leases === undefined ? {} : { leases }), ...(ticksPerWakeup === undefined ? {} : { ticksPerWakeup }) }, verbose: verbose || single !== null };
}

function main(argv: readonly string[]): number {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (error) {
    console.error(`vopr: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  let violations = 0;
  let unknown = 0;
  let damagedSeeds = 0;
  let crashDamagedSeeds = 0;
  let crashDamages = 0;
  let skippedDamages = 0;
  let totalMs = 0;
  let watch: WatchStats | null = null;
  let leaseStats: LeaseStats | null = null;
  let slowest = { seed: 0, ms: 0 };
  for (const seed of args.seeds) {
    const report = runSeed(seed, args.options);
    totalMs += report.elapsedMs;
    if (report.damage.some((d) => d.cause === 'group' && d.applied)) damagedSeeds += 1;
    const single = report.damage.filter((d) => d.cause === 'single' && d.applied).length;
    if (single > 0) crashDamagedSeeds += 1;
    crashDamages += single;
    skippedDamages += report.damage.filter((d) => !d.applied).length;
    if (report.elapsedMs > slowest.ms) slowest = { seed, ms: report.elapsedMs };
    if (report.watch !== null) watch = watch === null ? report.watch : addWatchStats(watch, report.watch);
    if (report.leases !== null) leaseStats = leaseStats === null ? report.leases : addLeaseStats(leaseStats, report.leases);
    if (args.verbose) {
      console.log(formatSummary(report));
      console.log(`  ${formatParams(report.params)}`);
    }
    if (report.linearizability === 'unknown') {
      unknown += 1;
      console.log(`seed ${seed}: warning: linearizability unknown: ${report.warning ?? ''}`);
    }
    if (!report.ok) {
      violations += 1;
      console.log(formatFailure(report));
    }
  }
  const n = args.seeds.length;
  if (n > 0) {
    console.log(
      `time: ${(totalMs / 1000).toFixed(1)}s, ${(totalMs / n).toFixed(0)}ms per seed, slowest seed ${slowest.seed} ${slowest.ms.toFixed(0)}ms` +
        (unknown > 0 ? `; ${unknown} seed(s) with linearizability unknown` : '') +
        (damagedSeeds > 0 ? `; ${damagedSeeds} seed(s) with damaged storage at the group crash` : '') +
        (crashDamagedSeeds > 0 ? `; ${crashDamagedSeeds} seed(s) with damaged storage at single crashes (${crashDamages} damages)` : '') +
        (skippedDamages > 0 ? `; ${skippedDamages} damage(s) skipped to keep at most f replicas untrusted` : ''),
    );
  }
  if (watch !== null) console.log(`watch: ${formatWatchStats(watch)}`);
  if (leaseStats !== null) console.log(`leases: ${formatLeaseStats(leaseStats)}`);
  console.log(`vopr: ${n} seeds, ${violations} violations`);
  return violations > 0 ? 1 : 0;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  process.exitCode = main(process.argv.slice(2));
}
