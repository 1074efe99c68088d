/**
 * What the node's HTTP listener (src/net/http.ts) answers, from the node's bounded status
 * (src/node/status_snapshot.ts): the metrics exposition, readiness, `/status.json` (what
 * `haret admin status` shows, with the node's health, its namespaces' replicas and its
 * cluster beside it), and the status page with the rolling history of commits it charts
 * (src/node/status_page.ts, src/node/commit_history.ts).
 */

import type { HttpBackend } from '../net/http.ts';
import { CommitHistory, readCommitTotals, type CommitHistoryOptions } from './commit_history.ts';
import type { ClusterStatus } from './cluster.ts';
import type { NodeMetrics } from './metrics.ts';
import type { ActorReport, NodeStatus } from './node.ts';
import { readiness, type ReadinessNamespace } from './readiness.ts';
import { replicaId } from './layout.ts';
import { parseReplicaId } from './replica_ids.ts';
import { statusPage } from './status_page.ts';
import type { StatusSnapshot, StatusSnapshots } from './status_snapshot.ts';

/** What the page shows of the cluster: its members with their links, and where each cluster namespace's replicas run. */
export type HttpCluster = Pick<ClusterStatus, 'members' | 'namespaces'>;

export type HttpNode = {
  readonly name: string;
  namespaces(): readonly ReadinessNamespace[];
  /** The node's cluster, or null (or absent) for a node without cluster links. */
  readonly cluster?: () => HttpCluster | null;
};

export function httpBackend(node: HttpNode, snapshots: StatusSnapshots, metrics: NodeMetrics, historyOptions: CommitHistoryOptions = {}): HttpBackend {
  const history = new CommitHistory(() => readCommitTotals(metrics.registry), historyOptions);
  history.start();
  return {
    metrics: () => metrics.scrape(),
    async readiness() {
      const snapshot = await snapshots.fresh();
      if (snapshot === null) return { ready: false, missing: [`the node's status did not come within ${snapshots.timeoutMs} ms`] };
      const { ready, missing } = readiness(snapshot.status, node.namespaces());
      return { ready, missing };
    },
    async status() {
      const fresh = await snapshots.fresh();
      const snapshot = fresh ?? snapshots.latest;
      if (snapshot === null) throw new Error(`the node's status did not come within ${snapshots.timeoutMs} ms`);
      return statusDocument(node, snapshot, fresh === null);
    },
    page: () => statusPage,
    history: () => Promise.resolve(history.document()),
    close: () => history.stop(),
  };
}

/** One replica of a namespace as the page lists it: its report when it runs here, else where it runs. */
type ReplicaRow =
  | ({ readonly index: number; readonly local: true } & Pick<ActorReport, 'actor' | 'state' | 'restarts' | 'role' | 'status' | 'view' | 'op' | 'commit' | 'watches' | 'leases'>)
  | { readonly index: number; readonly local: false; readonly actor: string; readonly node: string | null };

/** The actors as `haret admin status` lists them (src/net/admin.ts), the node's health, its namespaces' replicas and its cluster. */
export function statusDocument(node: HttpNode, snapshot: StatusSnapshot, stale: boolean): unknown {
  const status: NodeStatus = snapshot.status;
  const cluster = node.cluster?.() ?? null;
  return {
    node: node.name,
    serving: status.serving,
    problems: status.problems,
    // True when the status did not come in time and this is an earlier one, `ageSeconds` old.
    stale,
    ageSeconds: Math.round(performance.now() - snapshot.takenAtMs) / 1000,
    actors: status.actors.map((a) => ({
      actor: a.actor,
      worker: a.worker,
      state: a.state,
      restarts: a.restarts,
      failure: a.failure,
      role: a.role,
      status: a.status,
      view: a.view,
      op: a.op,
      commit: a.commit,
      watches: a.watches,
      leases: a.leases,
    })),
    namespaces: namespaceRows(node.namespaces(), status.actors, cluster),
    cluster: cluster === null ? null : { members: cluster.members.map((m) => ({ name: m.name, link: m.link, clusterAddress: m.clusterAddress, clientAddress: m.clientAddress })) },
  };
}

/** Every namespace with one row per replica index, the local ones from their reports. */
function namespaceRows(namespaces: readonly ReadinessNamespace[], actors: readonly ActorReport[], cluster: HttpCluster | null): unknown[] {
  const names = new Set(namespaces.map((ns) => ns.name));
  const local = new Map<string, ActorReport>();
  for (const actor of actors) if (parseReplicaId(actor.actor, names) !== null) local.set(actor.actor, actor);
  return namespaces.map((ns) => {
    const placement = cluster?.namespaces.find((placed) => placed.name === ns.name)?.nodes ?? null;
    const replicas: ReplicaRow[] = [];
    for (let index = 0; index < ns.replicaCount; index += 1) {
      const actor = replicaId(ns.name, index);
      const report = local.get(actor);
      replicas.push(
        report === undefined
          ? { index, local: false, actor, node: placement?.[index] ?? null }
          : { index, local: true, actor, state: report.state, restarts: report.restarts, role: report.role, status: report.status, view: report.view, op: report.op, commit: report.commit, watches: report.watches, leases: report.leases },
      );
    }
    return { name: ns.name, replicaCount: ns.replicaCount, replicas };
  });
}
