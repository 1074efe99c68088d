/**
 * Whether a node is ready (`GET /readyz`, issue 17): every local replica in normal status, and
 * every namespace with a primary, and nothing the node itself reports as a problem (a failed
 * proxy or timer, a stuck namespace, a failing disk: NodeStatus.problems). Not ready comes with
 * one line per thing missing.
 *
 * A namespace's primary is the primary of the highest view a local replica is in normal status
 * in (VRR §4: the primary of view v is replica v mod n). When that replica runs here it must be
 * in normal status in that view and know itself primary; when it runs on another node (a
 * cluster namespace) this node cannot see it, and a local replica in normal status in its view
 * is the evidence there is.
 */

import { primaryOf } from '../vr/config.ts';
import type { ActorReport, NodeStatus } from './node.ts';
import { parseReplicaId } from './replica_ids.ts';
import { replicaId } from './layout.ts';

export type Readiness = {
  readonly ready: boolean;
  /** One line per thing missing. */
  readonly missing: readonly string[];
  /** The namespaces without a primary (each has its line in `missing` too). */
  readonly withoutPrimary: readonly string[];
};

export type ReadinessNamespace = { readonly name: string; readonly replicaCount: number };

export function readiness(status: Pick<NodeStatus, 'actors' | 'workers' | 'problems'>, namespaces: readonly ReadinessNamespace[]): Readiness {
  const missing = [...status.problems];
  for (const worker of status.workers) {
    // A failed worker is among the problems already, with its reason.
    if (worker.state === 'restarting' || worker.state === 'stopped') missing.push(`worker ${worker.name} is ${worker.state}`);
  }
  const names = new Set(namespaces.map((ns) => ns.name));
  const replicas = new Map<string, ActorReport>();
  for (const actor of status.actors) {
    if (parseReplicaId(actor.actor, names) === null) continue;
    replicas.set(actor.actor, actor);
    if (actor.status !== 'normal') missing.push(`replica ${actor.actor} is ${actor.status ?? `not reporting (worker ${actor.state})`}`);
  }
  const withoutPrimary: string[] = [];
  for (const ns of namespaces) {
    const problem = primaryProblem(ns, replicas);
    if (problem === null) continue;
    missing.push(problem);
    withoutPrimary.push(ns.name);
  }
  return { ready: missing.length === 0, missing, withoutPrimary };
}

/** Why `ns` has no primary as this node sees it, or null when it has one. */
function primaryProblem(ns: ReadinessNamespace, replicas: ReadonlyMap<string, ActorReport>): string | null {
  let local = 0;
  let view: number | null = null;
  for (let index = 0; index < ns.replicaCount; index += 1) {
    const actor = replicas.get(replicaId(ns.name, index));
    if (actor === undefined) continue;
    local += 1;
    if (actor.status === 'normal' && actor.view !== null) view = Math.max(view ?? 0, actor.view);
  }
  // A cluster namespace with no replica here: its primary is for the nodes that host it to say.
  if (local === 0) return null;
  if (view === null) return `namespace ${ns.name} has no primary: none of its replicas here is in normal status`;
  const primary = primaryOf(view, { replicaCount: ns.replicaCount });
  const actor = replicas.get(replicaId(ns.name, primary));
  if (actor === undefined) return null;
  if (actor.status === 'normal' && actor.view === view && actor.role === 'primary') return null;
  return `namespace ${ns.name} has no primary: view ${view}'s primary ${actor.actor} is ${actor.status ?? 'not reporting'} in view ${actor.view ?? '?'}`;
}
