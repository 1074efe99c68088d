/**
 * The state of one replica (VRR §4 "replica state", plus what our choices add).
 *
 * Deeply readonly and changed only inside immer `produce` (DESIGN.md convention 5). The big,
 * growing values (log, tree, client table, pending requests, requests in progress) are
 * persistent structures (Immutable.js Lists, our NameMaps and queues) held as opaque values, so a
 * transition never copies them.
 */

import { List } from 'immutable';
import { NameMap } from '../tree/name_map.ts';
import type { ReplicaConfig } from './config.ts';
import { validateReplicaConfig } from './config.ts';
import { emptyLog, type Log } from './log.ts';
import type { CheckpointImage, DoViewChange, RecoveryResponse, Request } from './messages.ts';
import { makePrng, type Prng } from '../base/prng.ts';
import { emptyMachine, type Machine } from './state_machine.ts';

/** `stopped` until the `start` input arrives. */
export type ReplicaStatus = 'stopped' | 'normal' | 'view_change' | 'recovering';

export type ReplicaState = {
  readonly config: ReplicaConfig;
  /** This replica's index in the configuration. */
  readonly index: number;
  readonly epoch: number;
  readonly status: ReplicaStatus;
  readonly view: number;
  /** The latest view in which this replica's log was known to be that view's log (VRR §4.2). */
  readonly lastNormalView: number;
  readonly op: number;
  readonly commit: number;
  readonly log: Log;
  /** The tree and client table after applying every entry up to `commit`. */
  readonly machine: Machine;
  /** The latest checkpoint (free: the machine is persistent) and, once encoded, its image. */
  readonly checkpoint: { readonly machine: Machine; readonly image: CheckpointImage | null };
  /** RFC 2: every replica holds every entry up to this op. */
  readonly globalMinAccept: number;
  readonly prng: Prng;
  readonly timers: Timers;
  readonly primary: PrimaryState;
  readonly viewChange: ViewChangeState;
  readonly recovery: RecoveryState;
  /** A pending `get_state` (VRR §5.2), or null. */
  readonly stateTransfer: { readonly target: number; readonly ticks: number } | null;
  /**
   * Durable mode: entries up to `op` are stored. `generation` counts suffix replacements, so a
   * `persisted` answer about a replaced suffix is recognised and ignored.
   */
  readonly durable: Durable;
};

/**
 * Durable mode (README rule 18 for the promise). `view` and `lastNormalView` are the latest
 * promise written (a `promise` persist record; -1 before the first), `promiseStored` whether
 * the shell has reported it stored. Each promise record bumps `generation`, so a `persisted`
 * answer of the current generation proves it stored (records are stored in order, and the
 * step's other records carry the generation before).
 */
export type Durable = {
  readonly op: number;
  readonly generation: number;
  readonly view: number;
  readonly lastNormalView: number;
  readonly promiseStored: boolean;
};

export type Timers = {
  /** Ticks since this replica last heard from its primary, or made view-change progress. */
  readonly idleTicks: number;
  /** The current randomised view-change timeout. */
  readonly timeoutTicks: number;
  /** Primary: ticks since it last sent anything to its backups. */
  readonly heartbeatTicks: number;
  /** Primary: ticks since the commit number last advanced while entries were uncommitted. */
  readonly stallTicks: number;
  /** Recovering: ticks since `recovery` was last broadcast. */
  readonly recoveryTicks: number;
};

export type PrimaryState = {
  /** Per replica, the highest op it acknowledged in this view (own entry: own op). */
  readonly acks: readonly number[];
  /** Requests waiting for room in the pipeline. */
  readonly pending: List<Request>;
  /**
   * Client id to the request number that is pending or prepared but not yet committed. A NameMap
   * (src/tree/name_map.ts), not an Immutable.js Map: it is read and written for every request,
   * and Immutable.js re-hashes client ids (longer than its 16-character hash cache threshold,
   * and more of them than its 255-entry cache) on every call.
   */
  readonly inProgress: NameMap<number>;
  /** README rule 21: the ticks this primary measured for the lease clock. */
  readonly leaseClock: LeaseClock;
  /** README rule 22: reads answered without the log. Replaced, never mutated. */
  readonly reads: ReadPath;
};

/** A read-only request waiting at the primary for its commit and its confirmation round. */
export type WaitingRead = {
  readonly request: Request;
  /** The primary's op number when the read arrived: answered once the commit reaches it. */
  readonly readIndex: number;
  /** The first confirmation round started after it arrived. */
  readonly round: number;
};

/**
 * README rule 22. `round`: the latest confirmation round started in this view (0: none yet);
 * `confirmed`: per replica, the highest round it confirmed (own entry unused); `wanted`: a read
 * arrived since `round` started, so the step ends by starting the next; `roundTicks`: ticks
 * since `round` started, to start another when its answers were lost.
 */
export type ReadPath = {
  readonly round: number;
  readonly confirmed: readonly number[];
  readonly wanted: boolean;
  readonly roundTicks: number;
  readonly waiting: List<WaitingRead>;
};

export function freshReadPath(replicaCount: number): ReadPath {
  return { round: 0, confirmed: new Array<number>(replicaCount).fill(0), wanted: false, roundTicks: 0, waiting: List() };
}

/**
 * The current interval of the lease clock at the primary: `ticks` counted since it began, when
 * the commit number was `through`. `entryOp` is the op of the lease_clock entry in flight (0:
 * none, or proposed but not yet cut into an entry while `waiting`). `partial`: the interval
 * began between two ticks (at a takeover, while handling a message), so the ticks up to the
 * last one of the next timer message may have passed before it and are not counted (README
 * rule 21: a message may carry several ticks).
 */
export type LeaseClock = { readonly ticks: number; readonly through: number; readonly waiting: boolean; readonly entryOp: number; readonly partial: boolean };

/** An interval beginning now, between two ticks (a new primary's). */
export function freshLeaseClock(commit: number): LeaseClock {
  return { ticks: 0, through: commit, waiting: false, entryOp: 0, partial: true };
}

export type ViewChangeState = {
  /** Replicas (others) whose start_view_change for `view` arrived. */
  readonly startViewChangeFrom: readonly number[];
  /** True once this replica sent its do_view_change for `view`. */
  readonly sentDoViewChange: boolean;
  /** At the would-be primary: do_view_change messages for `view`, one per replica. */
  readonly doViewChanges: readonly (DoViewChange | null)[];
};

export type RecoveryState = {
  readonly nonce: number;
  readonly responses: readonly (RecoveryResponse | null)[];
};

export function initialReplicaState(config: ReplicaConfig, index: number, seed: number): ReplicaState {
  const problem = validateReplicaConfig(config);
  if (problem !== null) throw new RangeError(problem);
  if (!Number.isSafeInteger(index) || index < 0 || index >= config.replicaCount) {
    throw new RangeError(`replica index must be in 0..${config.replicaCount - 1}`);
  }
  const machine = emptyMachine();
  const none = new Array<null>(config.replicaCount).fill(null);
  return {
    config,
    index,
    epoch: 0,
    status: 'stopped',
    view: 0,
    lastNormalView: 0,
    op: 0,
    commit: 0,
    log: emptyLog(),
    machine,
    checkpoint: { machine, image: null },
    globalMinAccept: 0,
    prng: makePrng(seed ^ Math.imul(index + 1, 0x9e3779b1)),
    timers: { idleTicks: 0, timeoutTicks: config.viewChangeTimeoutTicks, heartbeatTicks: 0, stallTicks: 0, recoveryTicks: 0 },
    primary: { acks: new Array<number>(config.replicaCount).fill(0), pending: List(), inProgress: NameMap.empty<number>(), leaseClock: freshLeaseClock(0), reads: freshReadPath(config.replicaCount) },
    viewChange: { startViewChangeFrom: [], sentDoViewChange: false, doViewChanges: none },
    recovery: { nonce: 0, responses: none },
    stateTransfer: null,
    durable: { op: 0, generation: 0, view: -1, lastNormalView: -1, promiseStored: false },
  };
}
