/**
 * The cluster's actor on the main thread (`host/cluster`): other nodes' cluster messages
 * (join, state, namespace_created) arrive here over the cluster links like any envelope, and
 * this actor hands them to the node's cluster membership, which it knows only through
 * `ClusterSink` (the shell's Cluster implements it): actors do not import the shell.
 */

import type { Actor, ActorFactory } from '../runtime/actor.ts';
import type { Envelope } from '../runtime/envelope.ts';

/** What the actor needs of the cluster membership. */
export type ClusterSink = {
  /** Other nodes' cluster messages, in arrival order; the cluster validates each. */
  receive(batch: readonly Envelope[]): void;
  /** The membership's summary (members, namespaces, counters), reported in the actor's status. */
  actorStatus(): Readonly<Record<string, unknown>>;
};

export function clusterRelayActor(sink: ClusterSink): ActorFactory {
  return (): Actor => ({
    receive: (batch) => sink.receive(batch),
    status: () => sink.actorStatus(),
  });
}
