/**
 * Leases and ephemeral nodes: the replicated part (src/tree/README.md "Leases").
 *
 * A lease belongs to the client that granted it (its client id's host prefix, `ownerOf`) and
 * holds ephemeral nodes. Time is the namespace's lease clock: ticks that the primaries have
 * measured and committed in `lease_clock` entries (src/vr/README.md rule 21). A lease counts
 * time only from the first clock entry whose `through` op covers its latest grant or
 * keep-alive: every tick counted after that was measured after the keep-alive committed, so a
 * lease never expires before its TTL has passed since its last keep-alive committed, whatever
 * primaries come and go; a new primary adds only what it measures itself, so primary changes
 * never reset a lease either.
 *
 * Pure and persistent (Immutable.js): every replica that applies the same entries holds the
 * same table, and the checkpoint encodes it (`leaseTerms` / `leaseTableFromTerms`).
 */

import { Map as ImmutableMap, Set as ImmutableSet } from 'immutable';
import { protocolNumberMax } from '../base/limits.ts';

export type Lease = {
  readonly id: number;
  /** The owning client's host prefix (`ownerOf`). */
  readonly owner: string;
  readonly ttlMs: number;
  readonly ttlTicks: number;
  /** The op of the latest grant or keep-alive. */
  readonly renewedOp: number;
  /** The lease clock value its count started from; null while a renewal awaits its first clock entry. */
  readonly countFrom: number | null;
  /** Its ephemeral nodes, by path. */
  readonly nodes: ImmutableSet<string>;
};

export class LeaseTable {
  /** Ticks committed by lease_clock entries so far. */
  readonly clock: number;
  /** The next lease id (ids are never reused in a namespace). */
  readonly nextId: number;
  readonly leases: ImmutableMap<number, Lease>;
  /** Ephemeral node path to its lease id. */
  readonly ephemeral: ImmutableMap<string, number>;
  /** Live leases per owner (limit `leasesPerClientMax`). */
  readonly owners: ImmutableMap<string, number>;
  /** Ids whose countFrom is null (renewed since the last clock entry that covered them). */
  readonly pending: ImmutableSet<number>;
  /** The smallest clock value at which a counting lease expires (Infinity: none); a hint for the primary. */
  readonly nextDeadline: number;
  /**
   * Leases this table has seen expire, for metrics. Not part of a checkpoint (it starts at 0
   * in a table rebuilt from one), so it counts what this replica applied, like any counter.
   */
  readonly expiredTotal: number;

  constructor(
    clock: number,
    nextId: number,
    leases: ImmutableMap<number, Lease>,
    ephemeral: ImmutableMap<string, number>,
    owners: ImmutableMap<string, number>,
    pending: ImmutableSet<number>,
    nextDeadline: number,
    expiredTotal = 0,
  ) {
    this.clock = clock;
    this.nextId = nextId;
    this.leases = leases;
    this.ephemeral = ephemeral;
    this.owners = owners;
    this.pending = pending;
    this.nextDeadline = nextDeadline;
    this.expiredTotal = expiredTotal;
    Object.freeze(this);
  }

  get size(): number {
    return this.leases.size;
  }

  with(changes: Partial<Pick<LeaseTable, 'clock' | 'nextId' | 'leases' | 'ephemeral' | 'owners' | 'pending' | 'nextDeadline' | 'expiredTotal'>>): LeaseTable {
    return new LeaseTable(
      changes.clock ?? this.clock,
      changes.nextId ?? this.nextId,
      changes.leases ?? this.leases,
      changes.ephemeral ?? this.ephemeral,
      changes.owners ?? this.owners,
      changes.pending ?? this.pending,
      changes.nextDeadline ?? this.nextDeadline,
      changes.expiredTotal ?? this.expiredTotal,
    );
  }
}

const theEmptyLeaseTable = new LeaseTable(0, 1, ImmutableMap(), ImmutableMap(), ImmutableMap(), ImmutableSet(), Number.POSITIVE_INFINITY);

export function emptyLeaseTable(): LeaseTable {
  return theEmptyLeaseTable;
}

/**
 * The owner of a client id: everything before its last `.` (the pool's host prefix, shared by
 * every session of one client library connection or one node's proxy), or the whole id.
 */
export function ownerOf(clientId: string): string {
  const dot = clientId.lastIndexOf('.');
  return dot <= 0 ? clientId : clientId.slice(0, dot);
}

/** TTL in ticks, rounded up: a lease never counts fewer milliseconds than it was granted. */
export function ttlTicksOf(ttlMs: number, tickMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / tickMs));
}

export function grantLease(table: LeaseTable, owner: string, ttlMs: number, ttlTicks: number, op: number): { table: LeaseTable; id: number } {
  const id = table.nextId;
  const lease: Lease = { id, owner, ttlMs, ttlTicks, renewedOp: op, countFrom: null, nodes: ImmutableSet() };
  return {
    id,
    table: table.with({
      nextId: id + 1,
      leases: table.leases.set(id, lease),
      owners: table.owners.set(owner, (table.owners.get(owner) ?? 0) + 1),
      pending: table.pending.add(id),
    }),
  };
}

/**
 * Restarts the count of every lease of `ids` that is alive and `owner`'s, in one pass (a
 * keep-alive carries up to 1,000 ids); `alive[i]` says whether `ids[i]` was.
 */
export function renewLeases(table: LeaseTable, ids: readonly number[], owner: string, op: number): { table: LeaseTable; alive: boolean[] } {
  const alive: boolean[] = [];
  let any = false;
  const leases = table.leases.withMutations((mutable) => {
    for (const id of ids) {
      const lease = mutable.get(id);
      const mine = lease !== undefined && lease.owner === owner;
      alive.push(mine);
      if (!mine) continue;
      any = true;
      if (lease.renewedOp !== op || lease.countFrom !== null) mutable.set(id, { ...lease, renewedOp: op, countFrom: null });
    }
  });
  if (!any) return { table, alive };
  const pending = table.pending.withMutations((mutable) => {
    ids.forEach((id, index) => {
      if (alive[index] === true) mutable.add(id);
    });
  });
  return { table: table.with({ leases, pending }), alive };
}

/** Forgets the lease (its nodes are the caller's to delete first). */
export function dropLease(table: LeaseTable, id: number): LeaseTable {
  const lease = table.leases.get(id);
  if (lease === undefined) return table;
  const remaining = (table.owners.get(lease.owner) ?? 1) - 1;
  let ephemeral = table.ephemeral;
  for (const path of lease.nodes) if (ephemeral.get(path) === id) ephemeral = ephemeral.delete(path);
  return table.with({
    leases: table.leases.delete(id),
    owners: remaining <= 0 ? table.owners.delete(lease.owner) : table.owners.set(lease.owner, remaining),
    pending: table.pending.delete(id),
    ephemeral,
  });
}

export function attachNode(table: LeaseTable, id: number, path: string): LeaseTable {
  const lease = table.leases.get(id);
  if (lease === undefined) return table;
  return table.with({ leases: table.leases.set(id, { ...lease, nodes: lease.nodes.add(path) }), ephemeral: table.ephemeral.set(path, id) });
}

/** The ephemeral node at `path` is gone (deleted, or under a deleted directory). */
export function detachNode(table: LeaseTable, path: string): LeaseTable {
  const id = table.ephemeral.get(path);
  if (id === undefined) return table;
  const lease = table.leases.get(id);
  const leases = lease === undefined ? table.leases : table.leases.set(id, { ...lease, nodes: lease.nodes.delete(path) });
  return table.with({ leases, ephemeral: table.ephemeral.delete(path) });
}

/**
 * A committed lease_clock entry: `elapsedTicks` measured by the primary since its previous
 * clock entry, when its commit number was `through`. Renewals at or before `through` had
 * committed by then, so they count these ticks; later ones wait for the next entry. Returns the
 * table with the clock advanced and the ids that have now expired (in id order), which the
 * caller deletes with their nodes.
 */
export function advanceClock(table: LeaseTable, elapsedTicks: number, through: number): { table: LeaseTable; expired: number[] } {
  const before = table.clock;
  const clock = before + elapsedTicks;
  let leases = table.leases;
  let pending = table.pending;
  for (const id of table.pending) {
    const lease = leases.get(id);
    if (lease === undefined) {
      pending = pending.delete(id);
      continue;
    }
    if (lease.renewedOp <= through) {
      leases = leases.set(id, { ...lease, countFrom: before });
      pending = pending.delete(id);
    }
  }
  const expired: number[] = [];
  let nextDeadline = Number.POSITIVE_INFINITY;
  for (const lease of leases.values()) {
    if (lease.countFrom === null) continue;
    const deadline = lease.countFrom + lease.ttlTicks;
    if (deadline <= clock) expired.push(lease.id);
    else if (deadline < nextDeadline) nextDeadline = deadline;
  }
  expired.sort((a, b) => a - b);
  return { table: table.with({ clock, leases, pending, nextDeadline, expiredTotal: table.expiredTotal + expired.length }), expired };
}

/** Ticks a lease has counted (0 while a renewal waits for its first clock entry). */
export function countedTicks(table: LeaseTable, lease: Lease): number {
  return lease.countFrom === null ? 0 : table.clock - lease.countFrom;
}

// ---- checkpoint ----------------------------------------------------------------------------

/** [id, owner, ttlMs, ttlTicks, renewedOp, countFrom (-1: null), nodes] in id order. */
type LeaseTerm = readonly [number, string, number, number, number, number, readonly string[]];
export type LeaseTerms = readonly [clock: number, nextId: number, leases: readonly LeaseTerm[]];

export function leaseTerms(table: LeaseTable): LeaseTerms {
  const leases = Array.from(table.leases.values())
    .sort((a, b) => a.id - b.id)
    .map((lease): LeaseTerm => [lease.id, lease.owner, lease.ttlMs, lease.ttlTicks, lease.renewedOp, lease.countFrom ?? -1, Array.from(lease.nodes).sort()]);
  return [table.clock, table.nextId, leases];
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= protocolNumberMax;

/** Rebuilds a table from untrusted terms (a peer's image, a file); null with a reason when malformed. */
export function leaseTableFromTerms(value: unknown, appliedOp: number): { ok: true; table: LeaseTable } | { ok: false; reason: string } {
  const bad = (reason: string): { ok: false; reason: string } => ({ ok: false, reason: `lease table: ${reason}` });
  if (!Array.isArray(value) || value.length !== 3) return bad('malformed');
  const [clock, nextId, terms] = value as unknown[];
  if (!isCount(clock) || !isCount(nextId) || nextId < 1 || !Array.isArray(terms)) return bad('malformed header');
  let leases = ImmutableMap<number, Lease>().asMutable();
  let ephemeral = ImmutableMap<string, number>().asMutable();
  let owners = ImmutableMap<string, number>().asMutable();
  let pending = ImmutableSet<number>().asMutable();
  let nextDeadline = Number.POSITIVE_INFINITY;
  for (let i = 0; i < terms.length; i++) {
    const term: unknown = terms[i];
    if (!Array.isArray(term) || term.length !== 7) return bad(`lease ${i} malformed`);
    const [id, owner, ttlMs, ttlTicks, renewedOp, countFrom, nodes] = term as unknown[];
    if (!isCount(id) || id < 1 || id >= nextId || leases.has(id)) return bad(`lease ${i} has a bad or repeated id`);
    if (typeof owner !== 'string' || owner.length === 0 || owner.length > 256) return bad(`lease ${id} has a bad owner`);
    if (!isCount(ttlMs) || !isCount(ttlTicks) || ttlTicks < 1) return bad(`lease ${id} has a bad ttl`);
    if (!isCount(renewedOp) || renewedOp > appliedOp) return bad(`lease ${id} renewed beyond the checkpoint op`);
    if (countFrom !== -1 && (!isCount(countFrom) || countFrom > clock)) return bad(`lease ${id} counts from beyond the clock`);
    if (!Array.isArray(nodes) || !nodes.every((path) => typeof path === 'string')) return bad(`lease ${id} has bad nodes`);
    const paths = nodes as string[];
    for (const path of paths) {
      if (ephemeral.has(path)) return bad(`node ${JSON.stringify(path.slice(0, 80))} is on two leases`);
      ephemeral.set(path, id);
    }
    leases.set(id, { id, owner, ttlMs, ttlTicks, renewedOp, countFrom: countFrom === -1 ? null : countFrom, nodes: ImmutableSet(paths) });
    owners.set(owner, (owners.get(owner) ?? 0) + 1);
    if (countFrom === -1) pending.add(id);
    else nextDeadline = Math.min(nextDeadline, countFrom + ttlTicks);
  }
  leases = leases.asImmutable();
  ephemeral = ephemeral.asImmutable();
  owners = owners.asImmutable();
  pending = pending.asImmutable();
  return { ok: true, table: new LeaseTable(clock, nextId, leases, ephemeral, owners, pending, nextDeadline) };
}
