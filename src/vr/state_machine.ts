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
import { applyLeaseClock, applyStoreOpTo, type StoreRequest, type StoreState } from '../tree/store.ts';
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
  const clients = machine.clients.edit((table) => {
    const applying: Applying = { store, table, op: entry.op, policy, treeOps, asker: { clientId: '', op: entry.op, limits: policy.treeLimits, tickMs: policy.tickMs } };
    applyRequests(applying, entry.requests, replies);
  });
  return new Machine(store.tree, clients, entry.op, store.leases);
}

/** One entry being applied: what its requests share, made once per entry. */
type Applying = {
  /** The tree and lease table, changed in place by each request in turn. */
  readonly store: StoreState;
  readonly table: ClientTableEditor;
  readonly op: number;
  readonly policy: SessionPolicy;
  readonly treeOps: TreeOp[] | undefined;
  /**
   * Who asks, as the store wants it: one record for the entry, its client id set before each
   * request runs (the store reads it during the call and keeps no reference to it).
   */
  readonly asker: { clientId: string } & Omit<StoreRequest, 'clientId'>;
};

/** Marks a request of `later` (below) that was applied and answered nothing. */
const noReply = 'no reply';

/**
 * The body of `applyEntry`, one pass when the entry holds no read. Replies before the entry's
 * first read go straight to `replies`; from that read on, each request's answer waits in
 * `later` (by position, filled by the write pass, then the read pass) so the reordering does
 * not show in `replies`.
 */
function applyRequests(applying: Applying, requests: readonly Request[], replies: AppliedReply[]): void {
  let firstRead = -1;
  let later: (AppliedReply | typeof noReply | undefined)[] | null = null;
  for (let index = 0; index < requests.length; index++) {
    const request = requests[index] as Request;
    const requestOp = request.op;
    if (requestOp.type === 'tree' && !isWriteOp(requestOp.op)) {
      if (firstRead < 0) {
        firstRead = index;
        later = new Array<AppliedReply | typeof noReply | undefined>(requests.length - index);
      }
      continue;
    }
    const reply = applyRequest(applying, request, false);
    if (later === null) {
      if (reply !== null) replies.push(reply);
    } else {
      later[index - firstRead] = reply ?? noReply;
    }
  }
  if (later === null) return;
  // The reads: every slot the write pass left empty.
  for (let index = firstRead; index < requests.length; index++) {
    if (later[index - firstRead] !== undefined) continue;
    later[index - firstRead] = applyRequest(applying, requests[index] as Request, true) ?? noReply;
  }
  for (const reply of later) if (reply !== noReply && reply !== undefined) replies.push(reply);
}

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

/**
 * Applies one request to the store (in place) and the client table; its answer, or null (no
 * reply). `readOnly`: a tree request whose op cannot change the state (`!isWriteOp`, worked out
 * once by the caller).
 */
function applyRequest(applying: Applying, request: Request, readOnly: boolean): AppliedReply | null {
  const { table, op } = applying;
  const { clientId, requestNum } = request;
  const record = table.get(clientId);
  switch (request.op.type) {
    case 'register': {
      // Registering is idempotent: a known session is continued, never reset.
      if (record === undefined) table.activate(clientId, 0, null, op, op);
      else table.activate(clientId, record.requestNum, record.reply, record.replyOp, op);
      // Capacity: the least recently active sessions go (never this one: it is the newest).
      table.evictBeyond(applying.policy.clientTableMax);
      return { clientId, requestNum, op, body: { type: 'registered', isNew: record === undefined, lastRequestNum: record?.requestNum ?? 0 } };
    }
    case 'lease_clock': {
      // The primary's own entry (README rule 21): no session, no reply.
      const { store } = applying;
      const advanced = applyLeaseClock(store.tree, store.leases, request.op.elapsedTicks, request.op.through, applying.treeOps);
      store.tree = advanced.tree;
      store.leases = advanced.leases;
      return null;
    }
    case 'tree': {
      if (record === undefined) return { clientId, requestNum, op: 0, body: { type: 'session_expired' } };
      // At most once: an old request number is never executed again, and says so (README
      // deviation 16: VRR §4.1 drops it silently).
      if (requestNum < record.requestNum) return { clientId, requestNum, op: 0, body: { type: 'stale_request', lastRequestNum: record.requestNum } };
      if (requestNum === record.requestNum) {
        // A write's retry gets its cached reply.
        if (record.reply !== null) return { clientId, requestNum, op: record.replyOp, body: record.reply };
        // A read's reply was not kept (README deviation 8): its retry runs again, here, which is
        // linearizable (the client saw no answer yet, and this op is within its call). The
        // record keeps its requestNum and replyOp; only the session's activity moves.
        if (!readOnly) return null;
        const outcome = runOp(applying, clientId, request.op.op);
        table.activate(clientId, record.requestNum, record.reply, record.replyOp, op);
        return { clientId, requestNum, op, body: { type: 'tree', outcome } };
      }
      const body: ReplyBody = { type: 'tree', outcome: runOp(applying, clientId, request.op.op) };
      // Only what a retry needs: a write's reply (a retry must not run it twice); of a read,
      // nothing but its number (a retry runs it again).
      table.activate(clientId, requestNum, readOnly ? null : body, op, op);
      return { clientId, requestNum, op, body };
    }
    default:
      return assertNever(request.op, 'request op');
  }
}

function runOp(applying: Applying, clientId: string, treeOp: TreeOp): OpOutcome {
  applying.asker.clientId = clientId;
  return applyStoreOpTo(applying.store, treeOp, applying.asker, applying.treeOps);
}

export const defaultSessionPolicy: SessionPolicy = {
  clientTableMax: 100_000,
  sessionIdleOps: 10_000_000,
  treeLimits: defaultTreeLimits,
  tickMs: 10,
};
