/** The embedding API: start a node in this process and talk to its namespaces. */
export { startNode, HaretNode, type ActorReport, type NodeStatus } from './node.ts';
export { NamespaceClient, type Committed, type LogPosition, type Value } from '../client/namespace_client.ts';
export { HaretError, type HaretErrorCode, type ServiceErrorCode } from '../client/errors.ts';
export type { NodeOptions, NamespaceOptions, WorkerLayout, ProxyThread } from './options.ts';
