/**
 * Limits of the tree (DATA_MODEL.md "Limits"). Every one is enforced and reported as
 * `too_large`; static ones (sizes, counts in the request) before the request reaches the log,
 * state-dependent ones (elements per collection, children per directory) when it applies.
 */
export type TreeLimits = {
  /** Bytes in one blob value, queue element or set member. */
  readonly valueBytesMax: number;
  /** UTF-8 bytes in one path. */
  readonly pathBytesMax: number;
  /** Components in one path. */
  readonly pathDepthMax: number;
  /** UTF-8 bytes in one path component. */
  readonly componentBytesMax: number;
  /** Elements in one queue or members in one set. */
  readonly collectionElementsMax: number;
  /** Children in one directory. */
  readonly directoryChildrenMax: number;
  /** Ops in one multi_cas. */
  readonly txnOpsMax: number;
  /** Guards in one multi_cas. */
  readonly txnGuardsMax: number;
  /** Paths plus literal sets in one set_union. */
  readonly unionOperandsMax: number;
  /** Estimated encoded bytes of one request (paths, values, members). */
  readonly requestBytesMax: number;
  /** Entries in one list result. */
  readonly listEntriesMax: number;
  /** Shortest and longest lease TTL a client may ask for, in milliseconds. */
  readonly leaseTtlMinMs: number;
  readonly leaseTtlMaxMs: number;
  /** Live leases in the namespace, and per client (a client id's host prefix). */
  readonly leasesMax: number;
  readonly leasesPerClientMax: number;
  /** Ephemeral nodes attached to one lease. */
  readonly leaseNodesMax: number;
  /** Lease ids in one keep-alive. */
  readonly keepAliveIdsMax: number;
  /** The largest sequential-create counter (10 digits are printed, so at most 9,999,999,999). */
  readonly sequenceMax: number;
};

export const defaultTreeLimits: TreeLimits = {
  valueBytesMax: 1024 * 1024,
  pathBytesMax: 1024,
  pathDepthMax: 64,
  componentBytesMax: 255,
  collectionElementsMax: 1_000_000,
  directoryChildrenMax: 1_000_000,
  txnOpsMax: 128,
  txnGuardsMax: 128,
  unionOperandsMax: 64,
  requestBytesMax: 4 * 1024 * 1024,
  listEntriesMax: 100_000,
  leaseTtlMinMs: 200,
  leaseTtlMaxMs: 24 * 60 * 60 * 1000,
  leasesMax: 100_000,
  leasesPerClientMax: 20_000,
  leaseNodesMax: 1_000,
  keepAliveIdsMax: 1_000,
  sequenceMax: 9_999_999_999,
};

/**
 * Checks a limits object once, at configuration time. Returns a reason or null.
 */
export function validateTreeLimits(limits: TreeLimits): string | null {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) return `limits.${name} must be a positive integer`;
  }
  if (limits.componentBytesMax > limits.pathBytesMax) return 'limits.componentBytesMax must not exceed limits.pathBytesMax';
  if (limits.leaseTtlMinMs > limits.leaseTtlMaxMs) return 'limits.leaseTtlMinMs must not exceed limits.leaseTtlMaxMs';
  if (limits.leasesPerClientMax > limits.leasesMax) return 'limits.leasesPerClientMax must not exceed limits.leasesMax';
  if (limits.sequenceMax > 9_999_999_999) return 'limits.sequenceMax must be at most 9999999999 (ten digits)';
  return null;
}

/**
 * The largest view, op, commit, epoch or request number accepted from outside (a peer, a
 * client, a file). Far beyond any real history (2^48 ops is 9 years at a million ops per
 * second), far inside 2^53, so no arithmetic on an accepted number can lose precision and a
 * forged huge number is malformed input, never a state (issue 12).
 */
export const protocolNumberMax = 2 ** 48;
