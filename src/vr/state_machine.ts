/**
 * The replicated state machine a replica applies committed entries to (VRR §4.1 step 5):
 * the namespace's tree plus the client table. Deterministic: every replica that applies the
 * same entries from the same machine holds the same machine.
 */

import { assertNever } from '../base/assert.ts';
import { defaultTreeLimits, type TreeLimits } from '../base/limits.ts';
import { isWriteOp } from '../tree/ops.ts';
import { emptyTree, type Tree } from '../tree/tree.ts';
import { emptyLeaseTable, type LeaseTable } from '../tree/leases.ts';
import { applyLeaseClock, applyStoreOp } from '../tree/store.ts';
import { emptyClientTable, type ClientTable, type ClientTableEditor } from './client_table.ts';
import type { LogEntry, ReplyBody, Request } from './messages.ts';
import type { OpOutcome, TreeOp } from '../tree/ops.ts';

/**
 * A class on purpose: immer does not draft class instances, so a step reads the machine (and
 * the tree inside it) without proxies, and never walks it when freezing its result.
 */
export class Machine {
  readonly tree: Tree;
  readonly clients: ClientTable;
  /** The op of the last entry applied. */
  readonly appliedOp: number;
  /** Leases and ephemeral nodes (src/tree/leases.ts). */
  readonly leases: LeaseTable;

  constructor(tree: Tree, clients: ClientTable, appliedOp: number, leases: LeaseTable = emptyLeaseTable()) {
    this.tree = tree;
    this.clients = clients;
    this.appliedOp = appliedOp;
    this.leases = leases;
    Object.freeze(this);
  }
}

/** An answer produced by applying an entry; the primary sends it, backups drop it. */
export type AppliedReply = {
  readonly clientId: string;
  readonly requestNum: number;
  readonly op: number;
  readonly body: ReplyBody;
};

export type SessionPolicy = {
  readonly clientTableMax: number;
  readonly sessionIdleOps: number;
  readonly treeLimits: TreeLimits;
  /** Milliseconds per tick: a lease's TTL in ticks is its ttlMs over this, rounded up. */
  readonly tickMs: number;
};

export function emptyMachine(): Machine {
  return new Machine(emptyTree(), emptyClientTable(), 0);
}

/**
 * Applies one entry: its registrations and writes in request order, then its reads. Every
 * request of an entry was in flight at once (a session has one request in progress, and none
 * of the entry's replies leaves before the entry commits), so any order among them is a valid
 * linearization; reads last means a read committed at op X observes the tree at the end of
 * entry X, the state a watch reports for X (src/watch/README.md): read, then watch from X, and
 * nothing falls between. Every request yields one reply in `replies`, in the order of the
 * requests, except a read retried as a write (a client bug), which yields none. `treeOps`, when
 * given, receives the entry's tree ops in the order they were applied (the watch hub diffs
 * the trees before and after along their paths).
 */
export function applyEntry(machine: Machine, entry: LogEntry, policy: SessionPolicy, replies: AppliedReply[], treeOps?: TreeOp[]): Machine {
  const store: StoreState = { tree: machine.tree, leases: machine.leases };
  const requests = entry.requests;
  // Answers by request position, so the reordering does not show in `replies`.
  const bodies: (AppliedReply | null)[] = new Array<AppliedReply | null>(requests.length).fill(null);
  let readsDeferred = false;
  const apply = (table: ClientTableEditor, index: number): void => {
    const request = requests[index] as Request;
    const applied = applyRequest(store, table, request, entry.op, policy, treeOps);
    if (applied !== null) bodies[index] = { clientId: request.clientId, requestNum: request.requestNum, op: applied.replyOp, body: applied.body };
  };
  const clients = machine.clients.edit((table) => {
    for (let index = 0; index < requests.length; index++) {
      const op = (requests[index] as Request).op;
      if (op.type === 'tree' && !isWriteOp(op.op)) readsDeferred = true;
      else apply(table, index);
    }
    if (!readsDeferred) return;
    for (let index = 0; index < requests.length; index++) {
      const op = (requests[index] as Request).op;
      if (op.type === 'tree' && !isWriteOp(op.op)) apply(table, index);
    }
  });
  for (const body of bodies) if (body !== null) replies.push(body);
  return new Machine(store.tree, clients, entry.op, store.leases);
}

/** The tree and lease table as an entry's requests change them, one after another. */
type StoreState = { tree: Tree; leases: LeaseTable };

/**
 * Sessions are expired at checkpoint ops only, so every replica expires the same ones: those
 * idle for more than `sessionIdleOps`, popped from the least recently active end (the table's
 * order makes that exact, without a scan), then any beyond `clientTableMax`.
 */
export function expireAtCheckpoint(machine: Machine, policy: SessionPolicy): Machine {
  const clients = machine.clients.edit((table) => {
    table.expireIdle(machine.appliedOp, policy.sessionIdleOps);
    table.evictBeyond(policy.clientTableMax);
  });
  return clients === machine.clients ? machine : new Machine(machine.tree, clients, machine.appliedOp, machine.leases);
}

type RequestApplied = { readonly body: ReplyBody; readonly replyOp: number } | null;

/** Applies one request to `store` (in place) and the client table; null: no reply. */
function applyRequest(store: StoreState, table: ClientTableEditor, request: Request, op: number, policy: SessionPolicy, treeOps: TreeOp[] | undefined): RequestApplied {
  const record = table.get(request.clientId);
  switch (request.op.type) {
    case 'register': {
      // Registering is idempotent: a known session is continued, never reset.
      const lastRequestNum = record?.requestNum ?? 0;
      table.activate(request.clientId, record === undefined ? { requestNum: 0, reply: null, replyOp: op, lastActiveOp: op } : { ...record, lastActiveOp: op });
      // Capacity: the least recently active sessions go (never this one: it is the newest).
      table.evictBeyond(policy.clientTableMax);
      return { body: { type: 'registered', isNew: record === undefined, lastRequestNum }, replyOp: op };
    }
    case 'lease_clock': {
      // The primary's own entry (README rule 21): no session, no reply.
      const advanced = applyLeaseClock(store.tree, store.leases, request.op.elapsedTicks, request.op.through, treeOps);
      store.tree = advanced.tree;
      store.leases = advanced.leases;
      return null;
    }
    case 'tree': {
      if (record === undefined) return { body: { type: 'session_expired' }, replyOp: 0 };
      const readOnly = !isWriteOp(request.op.op);
      // At most once: an old request number is never executed again, and says so (README
      // deviation 16: VRR §4.1 drops it silently).
      if (request.requestNum < record.requestNum) return { body: { type: 'stale_request', lastRequestNum: record.requestNum }, replyOp: 0 };
      if (request.requestNum === record.requestNum) {
        // A write's retry gets its cached reply.
        if (record.reply !== null) return { body: record.reply, replyOp: record.replyOp };
        // A read's reply was not kept (README deviation 8): its retry runs again, here, which is
        // linearizable (the client saw no answer yet, and this op is within its call). The
        // record keeps its requestNum and replyOp; only the session's activity moves.
        if (!readOnly) return null;
        const outcome = runOp(store, request.clientId, request.op.op, op, policy, treeOps);
        table.activate(request.clientId, { ...record, lastActiveOp: op });
        return { body: { type: 'tree', outcome }, replyOp: op };
      }
      const body: ReplyBody = { type: 'tree', outcome: runOp(store, request.clientId, request.op.op, op, policy, treeOps) };
      // Only what a retry needs: a write's reply (a retry must not run it twice); of a read,
      // nothing but its number (a retry runs it again).
      table.activate(request.clientId, { requestNum: request.requestNum, reply: readOnly ? null : body, replyOp: op, lastActiveOp: op });
      return { body, replyOp: op };
    }
    default:
      return assertNever(request.op, 'request op');
  }
}

function runOp(store: StoreState, clientId: string, treeOp: TreeOp, op: number, policy: SessionPolicy, treeOps: TreeOp[] | undefined): OpOutcome {
  const applied = applyStoreOp(store.tree, store.leases, treeOp, { clientId, op, limits: policy.treeLimits, tickMs: policy.tickMs }, treeOps);
  store.tree = applied.tree;
  store.leases = applied.leases;
  return applied.outcome;
}

export const defaultSessionPolicy: SessionPolicy = {
  clientTableMax: 100_000,
  sessionIdleOps: 10_000_000,
  treeLimits: defaultTreeLimits,
  tickMs: 10,
};
