/**
 * What the node's HTTP listener (src/net/http.ts) answers, from the node's bounded status
 * (src/node/status_snapshot.ts): the metrics exposition, readiness, and `/status.json`, which
 * is what `haret admin status` shows (every actor's report) with the node's health beside it.
 */

import type { HttpBackend } from '../net/http.ts';
import type { NodeMetrics } from './metrics.ts';
import type { NodeStatus } from './node.ts';
import { readiness, type ReadinessNamespace } from './readiness.ts';
import type { StatusSnapshot, StatusSnapshots } from './status_snapshot.ts';

export type HttpNode = {
  readonly name: string;
  namespaces(): readonly ReadinessNamespace[];
};

export function httpBackend(node: HttpNode, snapshots: StatusSnapshots, metrics: NodeMetrics): HttpBackend {
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
      return statusDocument(node.name, snapshot, fresh === null);
    },
  };
}

/** The actors as `haret admin status` lists them (src/net/admin.ts), and the node's health. */
export function statusDocument(name: string, snapshot: StatusSnapshot, stale: boolean): unknown {
  const status: NodeStatus = snapshot.status;
  return {
    node: name,
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
  };
}
