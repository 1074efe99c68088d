/**
 * The namespace's store: the tree plus its lease table, and the one function that applies an
 * operation to both (src/tree/README.md "Leases"). Plain tree ops go to `applyOp`; lease ops,
 * ephemeral creates and deletes also keep the lease table in step with the tree, atomically:
 * a failed op (or transaction) changes neither.
 *
 * `changed`, when given, receives the ops as they changed the tree, for the watch hub, which
 * diffs the trees along their paths: a sequential create under the name it made, a revoke or
 * an expiry as one delete per ephemeral node.
 */

import { defaultTreeLimits, type TreeLimits } from '../base/limits.ts';
import { treeErrors, type TreeError } from './errors.ts';
import { advanceClock, attachNode, detachNode, dropLease, grantLease, ownerOf, renewLeases, ttlTicksOf, type LeaseTable } from './leases.ts';
import { lookup, type Tree } from './lookup.ts';
import { subtreeSize, type TreeNode } from './node.ts';
import type { CreateOp, DeleteOp, MultiCasOp, OpOutcome, OpResult, SimpleOp, TreeOp } from './ops.ts';
import { joinPath } from './path.ts';
import { multiCas } from './cas.ts';
import { applyOp, applySimpleOp, type Applied } from './tree.ts';

export type StoreApplied = { readonly tree: Tree; readonly leases: LeaseTable; readonly outcome: OpOutcome };

/**
 * Who asks and when: the requester's client id (its owner, `ownerOf`, is worked out only by
 * the lease paths, not for every op) and the entry's op.
 */
export type StoreRequest = { readonly clientId: string; readonly op: number; readonly limits: TreeLimits; readonly tickMs: number };

export function applyStoreOp(tree: Tree, leases: LeaseTable, op: TreeOp, request: StoreRequest, changed?: TreeOp[]): StoreApplied {
  switch (op.type) {
    case 'lease_grant': {
      const { limits } = request;
      if (leases.size >= limits.leasesMax) return refused(tree, leases, treeErrors.tooLarge('leases', limits.leasesMax));
      const owner = ownerOf(request.clientId);
      if ((leases.owners.get(owner) ?? 0) >= limits.leasesPerClientMax) {
        return refused(tree, leases, treeErrors.tooLarge('leases_per_client', limits.leasesPerClientMax));
      }
      const granted = grantLease(leases, owner, op.ttlMs, ttlTicksOf(op.ttlMs, request.tickMs), request.op);
      return { tree, leases: granted.table, outcome: { type: 'lease', id: granted.id, ttlMs: op.ttlMs, nodes: 0 } };
    }
    case 'lease_keepalive': {
      const renewed = renewLeases(leases, op.ids, ownerOf(request.clientId), request.op);
      return { tree, leases: renewed.table, outcome: { type: 'lease_kept', alive: renewed.alive } };
    }
    case 'lease_revoke': {
      const lease = leases.leases.get(op.id);
      if (lease === undefined) return refused(tree, leases, treeErrors.noSuchLease(op.id));
      if (lease.owner !== ownerOf(request.clientId)) return refused(tree, leases, treeErrors.leaseNotOwned(op.id));
      const ended = endLease(tree, leases, op.id, changed);
      return { tree: ended.tree, leases: ended.leases, outcome: { type: 'lease', id: op.id, ttlMs: lease.ttlMs, nodes: ended.nodes } };
    }
    case 'multi_cas':
      return applyTransaction(tree, leases, op, request, changed);
    case 'create':
    case 'delete': {
      const trail: Step[] = [];
      const applied = applyTracked(tree, leases, op, request, trail, new Map());
      if (applied.outcome.type === 'error') return { tree, leases, outcome: applied.outcome };
      const table = settleTrail(leases, trail);
      pushChanged(changed, trail);
      return { tree: applied.tree, leases: table, outcome: applied.outcome };
    }
    default: {
      const applied = applyPlain(tree, op, request.limits, changed);
      return { tree: applied.tree, leases, outcome: applied.outcome };
    }
  }
}

/** The tree and the lease table as `applyStoreOpTo` changes them, in place. */
export type StoreState = { tree: Tree; leases: LeaseTable };

/**
 * `applyStoreOp` on `store`, in place; returns the outcome. The form the apply path uses (one
 * state for a whole log entry): an op that leaves the lease table alone makes no record beyond
 * its own result.
 */
export function applyStoreOpTo(store: StoreState, op: TreeOp, request: StoreRequest, changed?: TreeOp[]): OpOutcome {
  switch (op.type) {
    case 'lease_grant':
    case 'lease_keepalive':
    case 'lease_revoke':
    case 'multi_cas':
    case 'create':
    case 'delete': {
      const applied = applyStoreOp(store.tree, store.leases, op, request, changed);
      store.tree = applied.tree;
      store.leases = applied.leases;
      return applied.outcome;
    }
    default: {
      const applied = applyPlain(store.tree, op, request.limits, changed);
      store.tree = applied.tree;
      return applied.outcome;
    }
  }
}

/** An op that neither reads nor changes the lease table: the bare tree's. */
function applyPlain(tree: Tree, op: Exclude<SimpleOp, CreateOp | DeleteOp>, limits: TreeLimits, changed: TreeOp[] | undefined): Applied {
  const applied = applyOp(tree, op, limits);
  if (changed !== undefined && applied.tree !== tree) changed.push(op);
  return applied;
}

/**
 * A committed lease_clock entry (src/vr/README.md rule 21): advances the clock and ends every
 * lease whose TTL has now been counted, all their nodes in this one op.
 */
export function applyLeaseClock(tree: Tree, leases: LeaseTable, elapsedTicks: number, through: number, changed?: TreeOp[]): { tree: Tree; leases: LeaseTable; expired: number[] } {
  const advanced = advanceClock(leases, elapsedTicks, through);
  let current = tree;
  let table = advanced.table;
  for (const id of advanced.expired) {
    const ended = endLease(current, table, id, changed);
    current = ended.tree;
    table = ended.leases;
  }
  return { tree: current, leases: table, expired: advanced.expired };
}

function refused(tree: Tree, leases: LeaseTable, error: TreeError): StoreApplied {
  return { tree, leases, outcome: { type: 'error', error } };
}

/** Deletes the lease's nodes (sorted, so every replica deletes in the same order) and forgets it. */
function endLease(tree: Tree, leases: LeaseTable, id: number, changed?: TreeOp[]): { tree: Tree; leases: LeaseTable; nodes: number } {
  const lease = leases.leases.get(id);
  if (lease === undefined) return { tree, leases, nodes: 0 };
  let current = tree;
  let nodes = 0;
  for (const path of Array.from(lease.nodes).sort()) {
    const removed = applySimpleOp(current, { type: 'delete', path }, defaultTreeLimits /* a delete reads no limit */);
    if (removed.outcome.type === 'error') continue;
    current = removed.tree;
    nodes += 1;
    changed?.push({ type: 'delete', path });
  }
  return { tree: current, leases: dropLease(leases, id), nodes };
}

/** One create or delete as it changed the tree: what the lease table must follow. */
type Step =
  | { readonly kind: 'created'; readonly path: string; readonly lease: number | undefined; readonly op: CreateOp }
  | { readonly kind: 'deleted'; readonly path: string; readonly node: TreeNode; readonly op: SimpleOp }
  | { readonly kind: 'other'; readonly op: SimpleOp };

/**
 * Applies one simple op, first checking an ephemeral create's lease (alive, the requester's,
 * room for one more node counting this transaction's earlier creates), and records the step.
 */
function applyTracked(tree: Tree, leases: LeaseTable, op: SimpleOp, request: StoreRequest, trail: Step[], added: Map<number, number>): { tree: Tree; outcome: OpOutcome } {
  if (op.type === 'create' && op.lease !== undefined) {
    const lease = leases.leases.get(op.lease);
    if (lease === undefined) return { tree, outcome: { type: 'error', error: treeErrors.noSuchLease(op.lease) } };
    if (lease.owner !== ownerOf(request.clientId)) return { tree, outcome: { type: 'error', error: treeErrors.leaseNotOwned(op.lease) } };
    const count = lease.nodes.size + (added.get(op.lease) ?? 0);
    if (count >= request.limits.leaseNodesMax) return { tree, outcome: { type: 'error', error: treeErrors.tooLarge('lease_nodes', request.limits.leaseNodesMax) } };
  }
  const before = op.type === 'delete' ? lookup(tree, op.path) : null;
  const applied = applySimpleOp(tree, op, request.limits);
  if (applied.outcome.type === 'error') return applied;
  if (op.type === 'create') {
    const path = applied.outcome.type === 'ok' && applied.outcome.path !== undefined ? applied.outcome.path : op.path;
    trail.push({ kind: 'created', path, lease: op.lease, op });
    if (op.lease !== undefined) added.set(op.lease, (added.get(op.lease) ?? 0) + 1);
  } else if (op.type === 'delete' && before !== null && before.ok) {
    trail.push({ kind: 'deleted', path: op.path, node: before.node, op });
  } else if (applied.tree !== tree) {
    trail.push({ kind: 'other', op });
  }
  return applied;
}

function applyTransaction(tree: Tree, leases: LeaseTable, op: MultiCasOp, request: StoreRequest, changed?: TreeOp[]): StoreApplied {
  const trail: Step[] = [];
  const added = new Map<number, number>();
  const applied = multiCas(tree, op, request.limits, (current, inner) => applyTracked(current, leases, inner, request, trail, added));
  if (applied.outcome.type === 'error') return { tree, leases, outcome: applied.outcome };
  const table = settleTrail(leases, trail);
  if (changed !== undefined && applied.tree !== tree) {
    const sequential = trail.some((step) => step.kind === 'created' && step.op.sequential === true);
    // The hub needs the names made; otherwise the transaction as it was logged.
    changed.push(sequential ? { ...op, ops: op.ops.map((inner, index) => renamed(inner, (applied.outcome as Extract<OpResult, { type: 'txn' }>).results[index])) } : op);
  }
  return { tree: applied.tree, leases: table, outcome: applied.outcome };
}

function renamed(op: SimpleOp, result: OpResult | undefined): SimpleOp {
  if (op.type !== 'create' || op.sequential !== true || result === undefined || result.type !== 'ok' || result.path === undefined) return op;
  return { type: 'create', path: result.path, nodeType: op.nodeType };
}

/** The lease table after the steps, in order: creates attach, deletes detach what they removed. */
function settleTrail(leases: LeaseTable, trail: readonly Step[]): LeaseTable {
  let table = leases;
  for (const step of trail) {
    if (step.kind === 'created') {
      if (step.lease !== undefined) table = attachNode(table, step.lease, step.path);
    } else if (step.kind === 'deleted') {
      if (table.ephemeral.size > 0) table = detachSubtree(table, step.path, step.node);
    }
  }
  return table;
}

/** Detaches every ephemeral node at or under `path` (walking the smaller of the subtree and the ephemeral map). */
function detachSubtree(table: LeaseTable, path: string, node: TreeNode): LeaseTable {
  if (node.type !== 'directory') return detachNode(table, path);
  let current = table;
  if (subtreeSize(node) < table.ephemeral.size) {
    const stack: { path: string; node: TreeNode }[] = [{ path, node }];
    while (stack.length > 0) {
      const top = stack.pop() as { path: string; node: TreeNode };
      if (top.node.type !== 'directory') {
        current = detachNode(current, top.path);
        continue;
      }
      for (const [name, child] of top.node.children) stack.push({ path: joinPath(top.path, name), node: child });
    }
    return current;
  }
  const under = path === '/' ? '/' : `${path}/`;
  for (const ephemeralPath of table.ephemeral.keys()) if (ephemeralPath.startsWith(under)) current = detachNode(current, ephemeralPath);
  return current;
}

function pushChanged(changed: TreeOp[] | undefined, trail: readonly Step[]): void {
  if (changed === undefined) return;
  for (const step of trail) {
    if (step.kind === 'created') changed.push(step.op.sequential === true ? { type: 'create', path: step.path, nodeType: step.op.nodeType } : step.op);
    else changed.push(step.op);
  }
}
