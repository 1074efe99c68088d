/**
 * The replicated state machine a replica applies committed entries to (VRR §4.1 step 5):
 * the namespace's tree plus the client table. Deterministic: every replica that applies the
 * same entries from the same machine holds the same machine.
 */

import { assertNever } from '../tree/assert.ts';
import { defaultTreeLimits, type TreeLimits } from '../tree/limits.ts';
import { applyOp, emptyTree, type Tree } from '../tree/tree.ts';
import { emptyClientTable, expireSessions, type ClientTable } from './client_table.ts';
import type { LogEntry, ReplyBody, Request } from './messages.ts';

/**
 * A class on purpose: immer does not draft class instances, so a step reads the machine (and
 * the tree inside it) without proxies, and never walks it when freezing its result.
 */
export class Machine {
  readonly tree: Tree;
  readonly clients: ClientTable;
  /** The op of the last entry applied. */
  readonly appliedOp: number;

  constructor(tree: Tree, clients: ClientTable, appliedOp: number) {
    this.tree = tree;
    this.clients = clients;
    this.appliedOp = appliedOp;
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

export type SessionPolicy = { readonly clientTableMax: number; readonly sessionIdleOps: number; readonly treeLimits: TreeLimits };

export function emptyMachine(): Machine {
  return new Machine(emptyTree(), emptyClientTable(), 0);
}

export function applyEntry(machine: Machine, entry: LogEntry, policy: SessionPolicy, replies: AppliedReply[]): Machine {
  let { tree, clients } = machine;
  for (const request of entry.requests) {
    const applied = applyRequest(tree, clients, request, entry.op, policy);
    tree = applied.tree;
    clients = applied.clients;
    if (applied.body !== null) {
      replies.push({ clientId: request.clientId, requestNum: request.requestNum, op: applied.replyOp, body: applied.body });
    }
  }
  return new Machine(tree, clients, entry.op);
}

/** Sessions are expired at checkpoint ops only, so every replica expires the same ones. */
export function expireAtCheckpoint(machine: Machine, policy: SessionPolicy): Machine {
  const clients = expireSessions(machine.clients, machine.appliedOp, policy.sessionIdleOps, policy.clientTableMax);
  return clients === machine.clients ? machine : new Machine(machine.tree, clients, machine.appliedOp);
}

type RequestApplied = { tree: Tree; clients: ClientTable; body: ReplyBody | null; replyOp: number };

function applyRequest(tree: Tree, clients: ClientTable, request: Request, op: number, policy: SessionPolicy): RequestApplied {
  const record = clients.get(request.clientId);
  switch (request.op.type) {
    case 'register': {
      // Registering is idempotent: a known session is continued, never reset.
      const lastRequestNum = record?.requestNum ?? 0;
      const next = record === undefined
        ? { requestNum: 0, reply: null, replyOp: op, lastActiveOp: op }
        : { ...record, lastActiveOp: op };
      let table = clients.set(request.clientId, next);
      if (table.size > policy.clientTableMax) {
        table = expireSessions(table, op, policy.sessionIdleOps, policy.clientTableMax);
      }
      return { tree, clients: table, body: { type: 'registered', isNew: record === undefined, lastRequestNum }, replyOp: op };
    }
    case 'tree': {
      if (record === undefined) return { tree, clients, body: { type: 'session_expired' }, replyOp: 0 };
      // At most once: an old request number is never executed again; the latest gets its cached reply.
      if (request.requestNum <= record.requestNum) {
        const cached = request.requestNum === record.requestNum ? record.reply : null;
        return { tree, clients, body: cached, replyOp: record.replyOp };
      }
      const applied = applyOp(tree, request.op.op, policy.treeLimits);
      const body: ReplyBody = { type: 'tree', outcome: applied.outcome };
      const next = clients.set(request.clientId, { requestNum: request.requestNum, reply: body, replyOp: op, lastActiveOp: op });
      return { tree: applied.tree, clients: next, body, replyOp: op };
    }
    default:
      return assertNever(request.op, 'request op');
  }
}

export const defaultSessionPolicy: SessionPolicy = {
  clientTableMax: 100_000,
  sessionIdleOps: 10_000_000,
  treeLimits: defaultTreeLimits,
};
