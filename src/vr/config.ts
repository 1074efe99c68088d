/**
 * Configuration of one VR group (a namespace's 2f+1 replicas). Validated once, at start.
 * Every limit the protocol relies on is here (DESIGN.md convention 8). Time is in ticks.
 */

import { defaultTreeLimits, validateTreeLimits, type TreeLimits } from '../base/limits.ts';

export type ReplicaConfig = {
  /** n = 2f + 1 replicas, addressed by index 0..n-1; the primary of view v is v mod n. */
  readonly replicaCount: number;
  /** Requests in one log entry (a batch). */
  readonly batchMax: number;
  /** Estimated bytes of the requests in one log entry. */
  readonly batchBytesMax: number;
  /** Prepared but uncommitted log entries at the primary (the pipeline depth). */
  readonly pipelineMax: number;
  /** Requests the primary holds while the pipeline is full; beyond this it answers `busy`. */
  readonly pendingMax: number;
  /** Primary idle for this long sends `commit` (the heartbeat, VRR §4.1 step 7). */
  readonly commitIntervalTicks: number;
  /** Primary with uncommitted entries and no progress for this long re-sends prepares. */
  readonly prepareResendTicks: number;
  /** Base of the randomised timeouts: a backup silent primary, a stuck view change (VRR §4.2). */
  readonly viewChangeTimeoutTicks: number;
  /** Random extra ticks in [0, jitter) added to each view-change timeout, to avoid duelling. */
  readonly viewChangeJitterTicks: number;
  /** A recovering replica re-sends `recovery` this often until it has its quorum (VRR §4.3). */
  readonly recoveryRetryTicks: number;
  /** A replica waiting for `new_state` asks again (another replica) after this long (VRR §5.2). */
  readonly stateTransferRetryTicks: number;
  /** A checkpoint every this many committed ops (VRR §5.1). */
  readonly checkpointIntervalOps: number;
  /**
   * Committed entries kept for replicas that lag behind globalMinAccept. Past this the log is
   * truncated to the checkpoint anyway, so a replica that is down for good cannot make the log
   * grow without bound; a laggard then catches up from a checkpoint.
   */
  readonly logRetainOps: number;
  /** Entries shipped in one do_view_change / start_view / new_state; beyond it the receiver catches up by state transfer. */
  readonly logSuffixMax: number;
  /** Sessions in the client table; past it the least recently active session expires. */
  readonly clientTableMax: number;
  /** A session idle for this many committed ops expires (checked at each checkpoint). */
  readonly sessionIdleOps: number;
  /** Durable mode: emit persist effects for log entries and checkpoints (PROTOCOL.md "Durability"). */
  readonly durable: boolean;
  /** Limits of the tree, enforced before a request reaches the log. */
  readonly treeLimits: TreeLimits;
  /** Milliseconds per tick (the timer service's period): converts lease TTLs to ticks. */
  readonly tickMs: number;
  /**
   * README rule 21: while leases exist, the primary logs the ticks it measured at least this
   * often (and sooner when a lease is due), so a primary's death loses at most this much of
   * every lease's count.
   */
  readonly leaseClockTicks: number;
  /**
   * README rule 22: the primary answers read-only requests from its committed state after a
   * confirmation round, without logging them. Off: every read is logged, as in VRR §4.1 (for
   * comparison, and for tests of the logged read).
   */
  readonly readsSkipLog: boolean;
};

export const defaultReplicaConfig: ReplicaConfig = {
  replicaCount: 3,
  batchMax: 256,
  batchBytesMax: 4 * 1024 * 1024,
  pipelineMax: 8,
  pendingMax: 16_384,
  commitIntervalTicks: 5,
  prepareResendTicks: 5,
  viewChangeTimeoutTicks: 30,
  viewChangeJitterTicks: 30,
  recoveryRetryTicks: 15,
  stateTransferRetryTicks: 15,
  checkpointIntervalOps: 1024,
  logRetainOps: 8192,
  logSuffixMax: 100_000,
  clientTableMax: 100_000,
  sessionIdleOps: 10_000_000,
  durable: false,
  treeLimits: defaultTreeLimits,
  tickMs: 10,
  leaseClockTicks: 20,
  readsSkipLog: true,
};

/** Ticks in one lease_clock entry at most (README rule 21; validateMessage refuses more from a peer). */
export const leaseClockTicksMax = 1_000_000_000;

export function makeReplicaConfig(overrides: Partial<ReplicaConfig> = {}): ReplicaConfig {
  const config = { ...defaultReplicaConfig, ...overrides };
  const problem = validateReplicaConfig(config);
  if (problem !== null) throw new RangeError(problem);
  return config;
}

/** Returns a precise reason for the first bad field, or null. */
export function validateReplicaConfig(config: ReplicaConfig): string | null {
  const positive: (keyof ReplicaConfig)[] = [
    'replicaCount',
    'batchMax',
    'batchBytesMax',
    'pipelineMax',
    'pendingMax',
    'commitIntervalTicks',
    'prepareResendTicks',
    'viewChangeTimeoutTicks',
    'viewChangeJitterTicks',
    'recoveryRetryTicks',
    'stateTransferRetryTicks',
    'checkpointIntervalOps',
    'logRetainOps',
    'logSuffixMax',
    'clientTableMax',
    'sessionIdleOps',
    'tickMs',
    'leaseClockTicks',
  ];
  for (const key of positive) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) return `config.${key} must be a positive integer`;
  }
  if (typeof config.durable !== 'boolean') return 'config.durable must be a boolean';
  if (typeof config.readsSkipLog !== 'boolean') return 'config.readsSkipLog must be a boolean';
  if (config.replicaCount % 2 !== 1) return 'config.replicaCount must be odd (2f+1)';
  if (config.replicaCount > 31) return 'config.replicaCount must be at most 31';
  if (config.viewChangeTimeoutTicks <= config.commitIntervalTicks * 2) {
    return 'config.viewChangeTimeoutTicks must exceed twice config.commitIntervalTicks, or backups suspect a healthy primary';
  }
  return validateTreeLimits(config.treeLimits);
}

/** f: the number of failures the group tolerates. */
export function faultsTolerated(config: ReplicaConfig): number {
  return (config.replicaCount - 1) / 2;
}

/** f + 1: a quorum, counting the replica itself. */
export function quorumSize(config: ReplicaConfig): number {
  return faultsTolerated(config) + 1;
}

/** VRR §4: the primary of view v is the replica with index v mod n. */
export function primaryOf(view: number, config: Pick<ReplicaConfig, 'replicaCount'>): number {
  return view % config.replicaCount;
}
