/**
 * What keeping many leases alive costs one node, for the recipes benchmark: a node in this
 * process, measured idle (no leases) and then holding `clients x leasesPerClient` leases
 * granted with `grantLease` (the coordination layer keeps them alive, each client's
 * keep-alives batched into `lease_keepalive` ops), over windows of the same length. The
 * embedding API has one NamespaceClient per namespace, so the clients are coordination layers
 * of their own over it (`coordinationFor`, what each NamespaceClient makes for itself): each
 * keeps its leases with its own timer and batches, as separate clients would.
 *
 * Per window: keep-alive ops and lease ids renewed per second (counted at the clients' calls),
 * log entries committed per second (the primary's commit), the process's CPU time over wall
 * time (`process.cpuUsage`: every thread of the process, workers included; 100% = one core),
 * and each thread's event-loop busy share (bench/loop_times.ts).
 */

import type { Coordination, KeptLease } from '../src/client/namespace_client.ts';
import { coordinationFor } from '../src/coord/index.ts';
import { startNode, type HaretNode, type NamespaceClient } from '../src/node/index.ts';
import type { TreeOp } from '../src/tree/ops.ts';
import { busyShare, nodeLoopTimes } from './loop_times.ts';

export type KeepAliveOptions = {
  /** Clients the leases are spread over (each batches its own keep-alives). */
  readonly clients: number;
  readonly leasesPerClient: number;
  readonly ttlMs: number;
  /** Length of the idle window and of the loaded one. */
  readonly windowMs: number;
  /** Wait after the last grant before the loaded window opens. */
  readonly settleMs: number;
};

export type KeepAliveWindow = {
  readonly leases: number;
  readonly seconds: number;
  readonly keepAliveOpsPerSecond: number;
  readonly idsRenewedPerSecond: number;
  /** Leases the service said were gone, in the window's keep-alive answers (counted per id). */
  readonly idsLost: number;
  /** Log entries the primary committed per second. */
  readonly entriesPerSecond: number;
  /** CPU time of the whole process over wall time (1 = one core). */
  readonly cpuShare: number;
  /** Event-loop busy share of each thread (0-1). */
  readonly busy: Record<string, number>;
  /** Live leases the replicas report at the end of the window (the most of any replica). */
  readonly leasesReported: number;
};

export type KeepAliveResult = {
  readonly idle: KeepAliveWindow;
  readonly loaded: KeepAliveWindow;
  /** Time to grant every lease. */
  readonly grantMs: number;
  readonly grantErrors: number;
  /** Leases lost (their `lost` fired) before the end of the loaded window. */
  readonly leasesLost: number;
};

/** Counts the keep-alive ops a client sends and the ids they carry. */
type Counter = { ops: number; ids: number; lost: number };

/** Wraps a client's `execute` and `raw` (every method of it goes through one of the two). */
function countKeepAlives(client: NamespaceClient, counter: Counter): void {
  const execute = client.execute.bind(client);
  const raw = client.raw.bind(client);
  const count = (op: TreeOp): void => {
    if (op.type !== 'lease_keepalive') return;
    counter.ops += 1;
    counter.ids += op.ids.length;
  };
  client.execute = async (op) => {
    count(op);
    const result = await execute(op);
    if (result.type === 'lease_kept') counter.lost += result.alive.filter((alive) => !alive).length;
    return result;
  };
  client.raw = async (op) => {
    count(op);
    return raw(op);
  };
}

async function replicaCounts(node: HaretNode): Promise<{ commit: number; leases: number }> {
  let commit = 0;
  let leases = 0;
  for (const actor of (await node.status()).actors) {
    if (actor.leases !== null) leases = Math.max(leases, actor.leases);
    const detail = actor.detail as { role?: unknown; commit?: unknown } | null;
    if (detail !== null && typeof detail === 'object' && detail.role === 'primary' && typeof detail.commit === 'number') commit = detail.commit;
  }
  return { commit, leases };
}

async function measureWindow(node: HaretNode, counter: Counter, leases: number, windowMs: number): Promise<KeepAliveWindow> {
  const loopsBefore = await nodeLoopTimes(node);
  const countsBefore = await replicaCounts(node);
  const before = { ...counter };
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const after = { ...counter };
  const countsAfter = await replicaCounts(node);
  const busy = busyShare(loopsBefore, await nodeLoopTimes(node));
  const seconds = wallMs / 1000;
  return {
    leases,
    seconds,
    keepAliveOpsPerSecond: (after.ops - before.ops) / seconds,
    idsRenewedPerSecond: (after.ids - before.ids) / seconds,
    idsLost: after.lost - before.lost,
    entriesPerSecond: (countsAfter.commit - countsBefore.commit) / seconds,
    cpuShare: (cpu.user + cpu.system) / 1000 / wallMs,
    busy,
    leasesReported: countsAfter.leases,
  };
}

/** Grants `count` leases through `client`, `parallel` at a time. */
async function grantMany(client: Pick<Coordination, 'grantLease'>, count: number, ttlMs: number, into: KeptLease[]): Promise<number> {
  const parallel = 250;
  let errors = 0;
  for (let start = 0; start < count; start += parallel) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(parallel, count - start) }, () => client.grantLease({ ttlMs })));
    for (const result of batch) {
      if (result.status === 'fulfilled') into.push(result.value);
      else errors += 1;
    }
  }
  return errors;
}

export async function measureKeepAlive(options: KeepAliveOptions): Promise<KeepAliveResult> {
  const node = await startNode({ logLevel: 'silent' });
  const leases: KeptLease[] = [];
  try {
    const db = node.client();
    const counter: Counter = { ops: 0, ids: 0, lost: 0 };
    countKeepAlives(db, counter);
    const clients = Array.from({ length: options.clients }, () => coordinationFor(db));
    // Sessions registered and the threads warm before the idle window.
    await db.create('/bench/keepalive-probe', 'blob');
    const idle = await measureWindow(node, counter, 0, options.windowMs);
    const grantStarted = performance.now();
    const grantErrors = (await Promise.all(clients.map((client) => grantMany(client, options.leasesPerClient, options.ttlMs, leases)))).reduce((a, b) => a + b, 0);
    const grantMs = performance.now() - grantStarted;
    await new Promise((resolve) => setTimeout(resolve, options.settleMs));
    const loaded = await measureWindow(node, counter, leases.length, options.windowMs);
    const leasesLost = leases.filter((lease) => !lease.alive).length;
    return { idle, loaded, grantMs, grantErrors, leasesLost };
  } finally {
    // Revoked before the stop, so that no keep-alive loop outlives the node.
    for (let start = 0; start < leases.length; start += 500) {
      await Promise.allSettled(leases.slice(start, start + 500).map((lease) => lease.revoke()));
    }
    await node.stop();
  }
}
