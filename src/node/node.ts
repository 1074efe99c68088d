/**
 * `startNode`: the embedding API (DESIGN.md "The shape in one picture"). A node is this
 * process: the main thread holds the supervisor, the mesh and the API endpoint; each replica,
 * the client proxy and the timer service run as actors on worker threads.
 */

import { ActorSystem, type HostActorSpec, type SystemEvent, type WorkerReport } from '../../runtime/system.ts';
import { frameBytesFor } from '../api/wire.ts';
import { AdminServer } from '../net/admin.ts';
import { ClientApiServer } from '../net/server.ts';
import { primaryOf } from '../vr/config.ts';
import type { ClientAnswer } from '../vr/messages.ts';
import type { ActorStatus } from '../../runtime/actor.ts';
import type { InjectedFault } from '../../runtime/protocol.ts';
import type { ReplicaStatusView } from '../../actors/replica.ts';
import { NamespaceClient } from '../client/namespace_client.ts';
import { Endpoint } from './endpoint.ts';
import { HaretError } from '../client/errors.ts';
import { resolveOptions, servedTreeLimits, type NodeOptions, type ResolvedOptions } from './options.ts';
import { buildLayout, clusterReplicaWorker, endpointId, netId, proxyId, replicaId, restartInit, timerId, type Layout } from './placement.ts';
import { randomInt } from 'node:crypto';
import { ClusterLinks } from '../net/cluster_link.ts';
import { formatAddress } from '../net/address.ts';
import { Cluster, clusterActorId, remoteThreadOf, type ClusterStatus, type ReplicaStart } from './cluster.ts';
import { loadRecord, type ClusterNamespace } from './cluster_store.ts';
import { resolveNamespace, type ResolvedNamespace } from './options.ts';
import type { ReplicaInit } from '../../actors/replica.ts';
import type { ProxyAddNamespace, TimerSubscribe } from '../../actors/messages.ts';
import type { TimerInit } from '../../actors/timer.ts';
import type { ProxyInit } from '../../actors/client_proxy.ts';

export type ActorReport = {
  readonly actor: string;
  readonly worker: string;
  /** The worker's supervision state: running, restarting, failed, stopped. */
  readonly state: WorkerReport['state'];
  readonly restarts: number;
  /** Why the supervisor gave up on the worker, if it did. */
  readonly failure: string | null;
  /** Replicas: primary or backup; otherwise the actor's kind. */
  readonly role: string | null;
  readonly ns: string | null;
  readonly status: string | null;
  readonly view: number | null;
  readonly op: number | null;
  readonly commit: number | null;
  readonly mailboxDepth: number | null;
  readonly mailboxDropped: number | null;
  /** The actor's own summary (counters), or null while its worker is down. */
  readonly detail: unknown;
};

/** One actor's report from its supervision state and, while it runs, its own summary. */
function actorReport(
  actor: string,
  worker: string,
  supervision: { readonly state: WorkerReport['state']; readonly restarts: number; readonly failure: string | null },
  live: ActorStatus | null,
): ActorReport {
  const view = (live?.status ?? null) as (Partial<ReplicaStatusView> & { role?: string }) | null;
  return {
    actor,
    worker,
    state: supervision.state,
    restarts: supervision.restarts,
    failure: supervision.failure,
    role: view?.role ?? null,
    ns: view?.ns ?? null,
    status: view?.status ?? null,
    view: view?.view ?? null,
    op: view?.op ?? null,
    commit: view?.commit ?? null,
    mailboxDepth: live?.mailbox.depth ?? null,
    mailboxDropped: live?.mailbox.dropped ?? null,
    detail: live?.status ?? null,
  };
}

export type NodeStatus = { readonly actors: readonly ActorReport[]; readonly workers: readonly WorkerReport[] };

/** A node's view of its cluster, and the two operations that change it. */
export type ClusterApi = {
  /** Where this node listens for other nodes (host:port). */
  readonly address: string;
  /** Joins the cluster of the node at `address` (its cluster address). */
  join(address: string): Promise<{ readonly node: string }>;
  /** Creates a namespace across the members (replica i on nodes[i mod n]; default: the members by name). */
  createNamespace(name: string, options?: { readonly replicas?: number; readonly nodes?: readonly string[] }): Promise<ClusterNamespace>;
  status(): ClusterStatus;
};

export class HaretNode {
  readonly options: ResolvedOptions;
  readonly #system: ActorSystem;
  readonly #endpoint: Endpoint;
  readonly #clients = new Map<string, NamespaceClient>();
  #stopping: Promise<void> | null = null;

  readonly #clientApi: ClientApiServer | null;
  #admin: AdminServer | null = null;
  #links: ClusterLinks | null = null;
  #cluster: Cluster | null = null;
  /** Namespaces placed across the cluster that this node serves (has replicas of or not). */
  readonly #clusterNamespaces = new Map<string, ResolvedNamespace>();
  #timerInit: TimerInit;
  #proxyInit: ProxyInit;

  /** Use `startNode`. */
  constructor(options: ResolvedOptions, system: ActorSystem, endpoint: Endpoint, clientApi: ClientApiServer | null, layout: Layout) {
    this.options = options;
    this.#system = system;
    this.#endpoint = endpoint;
    this.#clientApi = clientApi;
    this.#timerInit = layout.timerInit;
    this.#proxyInit = layout.proxyInit;
  }

  /** The cluster API, or null for a node without cluster links. */
  get cluster(): ClusterApi | null {
    const cluster = this.#cluster;
    const links = this.#links;
    if (cluster === null || links === null) return null;
    return {
      address: formatAddress(links.address()),
      join: (address) => cluster.join(address),
      createNamespace: (name, options = {}) => cluster.createNamespace(name, options.replicas ?? 3, options.nodes),
      status: () => cluster.status(),
    };
  }

  /** Called by `startNode` once the links listen and the admin API (if any) has its address. */
  attachCluster(links: ClusterLinks, cluster: Cluster): void {
    this.#links = links;
    this.#cluster = cluster;
  }

  /**
   * Starts this node's replicas of a cluster namespace (one worker each), subscribes them to
   * the timer and tells the proxy and the client API; every later restart of the timer or
   * the proxy starts with what it was told (updateInit).
   */
  async startClusterNamespace(namespace: ClusterNamespace, start: ReplicaStart): Promise<void> {
    const resolved = resolveNamespace({ name: namespace.name, replicas: namespace.placement.length, ...(this.options.cluster?.namespaceConfig === undefined ? {} : { config: this.options.cluster.namespaceConfig }) });
    const replicas = namespace.placement.map((_, index) => replicaId(namespace.name, index));
    const self = this.options.name;
    for (const [index, node] of namespace.placement.entries()) {
      if (node !== self) continue;
      const init: ReplicaInit = {
        ns: namespace.name,
        index,
        config: resolved.config,
        replicas,
        defaultProxy: proxyId,
        mode: start,
        nonce: start === 'recovering' ? randomInt(1, 2 ** 31) : 0,
        seed: randomInt(2 ** 31),
      };
      await this.#system.addWorker(clusterReplicaWorker(this.options, init));
      const subscribe: TimerSubscribe = { type: 'subscribe', id: replicaId(namespace.name, index), everyTicks: 1 };
      this.#timerInit = { ...this.#timerInit, subscribers: [...this.#timerInit.subscribers, { id: subscribe.id, everyTicks: 1 }] };
      this.#system.updateInit(timerId, this.#timerInit);
      this.#system.send({ from: endpointId, to: timerId, msg: subscribe, control: true });
    }
    const add: ProxyAddNamespace = { type: 'add_namespace', name: namespace.name, replicas };
    this.#proxyInit = { ...this.#proxyInit, namespaces: { ...this.#proxyInit.namespaces, [namespace.name]: replicas } };
    this.#system.updateInit(proxyId, this.#proxyInit);
    this.#system.send({ from: endpointId, to: proxyId, msg: add, control: true });
    this.#clientApi?.addNamespace({ name: namespace.name, replicas, limits: resolved.config.treeLimits });
    this.#clusterNamespaces.set(namespace.name, resolved);
  }

  /** Where the admin API listens, or null when the node has none. */
  get adminApiAddress(): { readonly host: string; readonly port: number } | null {
    return this.#admin?.address() ?? null;
  }

  /** Called by `startNode` once the admin API listens. */
  attachAdmin(admin: AdminServer): void {
    this.#admin = admin;
  }

  /** Where the TCP client API listens, or null when the node has none. */
  get clientApiAddress(): { readonly host: string; readonly port: number } | null {
    return this.#clientApi?.address() ?? null;
  }

  /** The node's own namespaces, then the cluster's. */
  get namespaces(): string[] {
    return [...this.options.namespaces.map((ns) => ns.name), ...this.#clusterNamespaces.keys()];
  }

  /** The typed client of a namespace; throws HaretError `unknown_namespace` for one this node does not serve. */
  client(namespace = 'default'): NamespaceClient {
    const ns = this.options.namespaces.find((candidate) => candidate.name === namespace) ?? this.#clusterNamespaces.get(namespace);
    if (ns === undefined) throw new HaretError('unknown_namespace', `no namespace ${namespace} on this node`, false);
    let client = this.#clients.get(namespace);
    if (client === undefined) {
      client = new NamespaceClient(namespace, (name, op) => this.#endpoint.call(name, op), ns.config.treeLimits);
      this.#clients.set(namespace, client);
    }
    return client;
  }

  /** Every actor with its supervision state and protocol position. */
  async status(): Promise<NodeStatus> {
    const workers = await this.#system.status();
    const actors: ActorReport[] = [];
    for (const worker of workers) {
      const spec = this.#workerActors(worker.name);
      for (const actor of spec) {
        actors.push(actorReport(actor, worker.name, worker, worker.detail?.actors.find((candidate) => candidate.id === actor) ?? null));
      }
    }
    const live = new Map(this.#system.host.status().map((actor) => [actor.id, actor]));
    for (const report of this.#system.hostActorReports()) {
      actors.push(actorReport(report.actor, 'host', report, live.get(report.actor) ?? null));
      live.delete(report.actor);
    }
    // The main thread's own actors (the API endpoint, the TCP server, the cluster): not
    // supervised (they live and die with the process), reported with their counters.
    for (const [id, status] of live) actors.push(actorReport(id, 'host', { state: 'running', restarts: 0, failure: null }, status));
    return { actors, workers };
  }

  /**
   * The replica index that is a normal-status primary in the highest view, or null. For a
   * cluster namespace whose primary is on another node: the primary of the highest view a
   * normal replica here is in.
   */
  async primaryOf(namespace: string): Promise<number | null> {
    const { actors } = await this.status();
    const placed = this.#cluster?.namespace(namespace);
    if (placed !== undefined) {
      let view: number | null = null;
      for (const actor of actors) if (actor.ns === namespace && actor.status === 'normal' && actor.view !== null) view = Math.max(view ?? 0, actor.view);
      return view === null ? null : primaryOf(view, { replicaCount: placed.placement.length });
    }
    let best: ActorReport | null = null;
    for (const actor of actors) {
      if (actor.ns !== namespace || actor.role !== 'primary' || actor.status !== 'normal') continue;
      if (best === null || (actor.view ?? 0) > (best.view ?? 0)) best = actor;
    }
    return best === null ? null : Number(best.actor.slice(best.actor.lastIndexOf('/r') + 2));
  }

  /** The larger protocol view of one actor (control plane, with a timeout). */
  inspect(actor: string): Promise<unknown> {
    return this.#system.inspect(actor);
  }

  /** Fault injection for tests and chaos drills: acts on the worker hosting `actor`. */
  readonly faults = {
    /** Kills the worker outright (`terminate()`), like a crash. */
    terminate: (actor: string): Promise<void> => this.#system.terminate(this.#workerOf(actor)),
    /** Makes the worker fail from inside an actor's handler: throw, process.exit, or out of memory. */
    inject: (actor: string, fault: InjectedFault): Promise<void> => this.#system.injectFault(this.#workerOf(actor), fault),
    /** Makes an actor on the main thread (the proxy with proxyPlacement host) throw inside its next handler call. */
    crashHostActor: (actor: string): void => this.#system.crashHostActor(actor),
    /** Delivers an arbitrary message to an actor as if a peer sent it (bad-input drills). */
    sendRaw: (to: string, msg: unknown, from = 'host/api'): void => this.#system.send({ from, to, msg }),
  };

  /** Heap bytes per worker after a full GC in each (exact when the process runs with --expose-gc). */
  collectGarbage(): Promise<Record<string, number>> {
    return this.#system.collectGarbage();
  }

  replicaId(namespace: string, index: number): string {
    return replicaId(namespace, index);
  }

  /** Stops every worker and closes every port and timer; pending calls reject with `stopped`. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#admin?.close();
      await this.#clientApi?.close();
      await this.#links?.close();
      this.#endpoint.close();
      await this.#system.stop();
    })();
    return this.#stopping;
  }

  /** Called by the system's event hook. */
  onSystemEvent(event: SystemEvent): void {
    const proxyThread = this.#system.threadOf(proxyId);
    switch (event.type) {
      case 'worker_exited':
        if (!event.exit.requested && event.worker === proxyThread) this.#endpoint.proxyDown();
        return;
      case 'worker_restarted':
        if (event.worker === proxyThread) this.#endpoint.proxyUp();
        return;
      case 'worker_failed':
        if (event.worker === proxyThread) this.#endpoint.proxyFailed();
        return;
      case 'host_actor_crashed':
        if (event.actor === proxyId) this.#endpoint.proxyDown();
        return;
      case 'host_actor_restarted':
        if (event.actor === proxyId) this.#endpoint.proxyUp();
        return;
      case 'host_actor_failed':
        if (event.actor === proxyId) this.#endpoint.proxyFailed();
        return;
      default: {
        const never: never = event;
        void never;
      }
    }
  }

  #workerOf(actor: string): string {
    const worker = this.#system.threadOf(actor);
    if (worker === undefined || worker === 'host') throw new RangeError(`no worker hosts ${actor}`);
    return worker;
  }

  #workerActors(worker: string): string[] {
    return this.#system.actorsOf(worker);
  }
}

/** Starts a node; resolves once every actor is running. Options are validated first (RangeError). */
export async function startNode(options: NodeOptions = {}): Promise<HaretNode> {
  const resolved = resolveOptions(options);
  const endpoint = new Endpoint(endpointId, proxyId, resolved.callDeadlineMs, resolved.callsInFlightMax);
  let node: HaretNode | null = null;
  const layout = buildLayout(resolved);
  // The TCP client API's actor: replicas route answers to it like to any client's sender.
  let clientApi: ClientApiServer | null = null;
  const hostActors: HostActorSpec[] = [{ id: endpointId, factory: endpoint.factory, init: null }];
  if (resolved.clientApi !== undefined) {
    hostActors.push({
      id: netId,
      factory: () => ({
        receive: (batch) => {
          for (const envelope of batch) clientApi?.onAnswer(envelope.from, envelope.msg as ClientAnswer);
        },
        status: () => ({ role: 'client_api', ...clientApi?.counters }),
      }),
      init: null,
    });
  }
  let cluster: Cluster | null = null;
  if (resolved.cluster !== undefined) hostActors.push({
      id: clusterActorId,
      // The cluster is made once the links listen; nothing can reach this actor before that.
      factory: () => ({ receive: (batch) => (cluster as Cluster | null)?.receive(batch), status: () => (cluster as Cluster | null)?.actorStatus() ?? { role: 'cluster' } }),
      init: null,
    });
  const record = resolved.dataDir === undefined ? null : loadRecord(resolved.dataDir);
  if (record !== null && record.self !== resolved.name) throw new RangeError(`${resolved.dataDir} holds the record of node ${record.self}, not ${resolved.name}`);
  const system = await ActorSystem.start({
    workers: layout.workers,
    resolveRemote: remoteThreadOf,
    hostActors,
    hostActorSpecs: layout.hostActors,
    codec: resolved.codec,
    ...(resolved.logLevel === undefined ? {} : { logLevel: resolved.logLevel }),
    supervisor: resolved.supervisor,
    controlTimeoutMs: resolved.controlTimeoutMs,
    restartInit,
    onEvent: (event) => node?.onSystemEvent(event),
  });
  if (resolved.clientApi !== undefined) {
    try {
      clientApi = await ClientApiServer.start(
        {
          nodeName: resolved.name,
          namespaces: resolved.namespaces.map((ns) => ({ name: ns.name, replicas: Array.from({ length: ns.config.replicaCount }, (_, i) => replicaId(ns.name, i)), limits: ns.config.treeLimits })),
          // Frames fit a request of any namespace this node may serve, cluster ones included.
          frameBytesMax: frameBytesFor(servedTreeLimits(resolved)),
          // A node that restores cluster namespaces welcomes clients once it serves them.
          ready: record === null,
          send: (to, request) => system.send({ from: netId, to, msg: request }),
          ...(resolved.cluster === undefined ? {} : { locate: (replica: string) => (cluster as Cluster | null)?.locate(replica) ?? { reachable: true, clientAddress: null } }),
        },
        resolved.clientApi,
      );
    } catch (error) {
      await system.stop();
      throw error;
    }
  }
  node = new HaretNode(resolved, system, endpoint, clientApi, layout);
  const started = node;
  try {
    if (resolved.adminApi !== undefined) node.attachAdmin(await AdminServer.start(node, resolved.adminApi));
    if (resolved.cluster !== undefined) {
      const links = await ClusterLinks.start(
        { nodeName: resolved.name, ...(resolved.cluster.host === undefined ? {} : { host: resolved.cluster.host }), ...(resolved.cluster.port === undefined ? {} : { port: resolved.cluster.port }) },
        { onEnvelopes: (from, batch) => cluster?.onLinkEnvelopes(from, batch) },
      );
      const clientAddress = node.clientApiAddress;
      const adminAddress = node.adminApiAddress;
      cluster = new Cluster(
        {
          name: resolved.name,
          clusterAddress: formatAddress(links.address()),
          clientAddress: clientAddress === null ? null : formatAddress(clientAddress),
          adminAddress: adminAddress === null ? null : formatAddress(adminAddress),
          incarnation: (record?.members.find((member) => member.name === resolved.name)?.incarnation ?? 0) + 1,
        },
        links,
        {
          receive: (batch) => system.receiveRemote(batch),
          send: (envelope) => system.send(envelope),
          isLocal: (actor) => { const thread = system.threadOf(actor); return thread !== undefined && !thread.startsWith('node:'); },
          addRemoteRoutes: (entries) => system.addRemoteRoutes(entries),
          setLink: (thread, sink) => system.setLink(thread, sink),
          hasLocalNamespace: (name) => resolved.namespaces.some((ns) => ns.name === name),
          startNamespace: (namespace, start) => started.startClusterNamespace(namespace, start),
        },
        resolved.dataDir ?? null,
        system.logger,
      );
      node.attachCluster(links, cluster);
      if (record !== null) await cluster.restore(record);
    }
  } catch (error) {
    await node.stop();
    throw error;
  }
  // Every actor exists now: time may start (see TimerInit.paused).
  system.send({ from: endpointId, to: timerId, msg: { type: 'resume' }, control: true });
  // Clients held since their hello are welcomed now, with every namespace the node serves.
  clientApi?.ready();
  for (const address of resolved.cluster?.join ?? []) {
    try {
      await (cluster as Cluster | null)?.join(address);
    } catch (error) {
      await node.stop();
      throw error;
    }
  }
  return node;
}
