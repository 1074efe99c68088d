/**
 * haret's public API.
 *
 * - `startNode(options)`: a node in this process (every replica, the client proxy and the
 *   timer service as actors on worker threads) and `node.client(namespace)`, a typed client
 *   with a method for every tree operation; errors are `HaretError` with a stable `code`.
 * - `tree`, `vr`, `client`: the pure core (the versioned tree, the VR replica's transition
 *   function, client-session logic), for tools and simulations.
 *
 * - `connect(addresses)`: the same typed client over TCP to a node serving the client API
 *   (`startNode({ clientApi: { port } })`, docs/protocol.md).
 * - Coordination (src/coord/README.md), on every client: `grantLease` (kept-alive leases),
 *   `lock` / `withLock`, `election`, `barrier`, `semaphore`; `Coordinator` for their counters.
 */
export { startNode, HaretNode, NamespaceClient, HaretError } from './node/index.ts';
export type { ActorReport, NodeStatus, Committed, LogPosition, Value, HaretErrorCode, ServiceErrorCode, NodeOptions, NamespaceOptions, WorkerLayout, ProxyThread } from './node/index.ts';
export { connect, RemoteConnection, type ConnectOptions, type ClientApiOptions } from './net/index.ts';
export { Coordinator, coordinationFor } from './coord/index.ts';
// The coordination layer's types (Coordination, KeptLease, HeldLock, Election, ...), as src/coord exports them.
export type * from './coord/index.ts';
export * as tree from './tree/index.ts';
export * as vr from './vr/index.ts';
export * as client from './client/index.ts';
