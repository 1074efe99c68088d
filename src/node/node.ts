/**
 * `startNode`: the embedding API (DESIGN.md "The shape in one picture"). A node is this
 * process: the main thread holds the supervisor, the mesh and the API endpoint; each replica,
 * the client proxy and the timer service run as actors on worker threads.
 */

import { ActorSystem, type HostActorSpec, type WorkerReport } from '../../runtime/system.ts';
import { wholeBuffer, type ActorStatus } from '../../runtime/actor.ts';
import type { InjectedFault } from '../../runtime/protocol.ts';
import type { Logger } from '../../runtime/logger.ts';
import { clientApiActor, type ClientApiSink } from '../../actors/client_api.ts';
import { clusterRelayActor, type ClusterSink } from '../../actors/cluster_relay.ts';
import type { ProxyAddNamespace, TimerSubscribe } from '../../actors/messages.ts';
import type { ReplicaInit, ReplicaStatusView } from '../../actors/replica.ts';
import type { TimerInit, TimerResume } from '../../actors/timer.ts';
import type { ProxyInit } from '../../actors/client_proxy.ts';
import { frameBytesFor } from '../api/wire.ts';
import { primaryOf } from '../vr/config.ts';
import { NamespaceClient } from '../client/namespace_client.ts';
import { HaretError } from '../client/errors.ts';
import { coordinationFor } from '../coord/index.ts';
import { AdminServer } from '../net/admin.ts';
import { ClientApiServer } from '../net/server.ts';
import { ClusterLinks } from '../net/cluster_link.ts';
import { formatAddress } from '../net/address.ts';
import { HttpServer } from '../net/http.ts';
import { Registry } from 'prom-client';
import { Endpoint } from './endpoint.ts';
import { MeasuredEndpoint } from './measured_endpoint.ts';
import { RequestMetrics } from './request_metrics.ts';
import { TcpRequests } from './tcp_requests.ts';
import { NodeMetrics, type MetricsCluster } from './metrics.ts';
import { StatusSnapshots } from './status_snapshot.ts';
import { httpBackend } from './http_backend.ts';
import { parseReplicaId, replicaNamespace } from './replica_ids.ts';
import { NamespaceHealth } from './health.ts';
import { resolveNamespace, resolveOptions, servedTreeLimits, unprotectedPorts, type NodeOptions, type ResolvedNamespace, type ResolvedOptions } from './options.ts';
import { buildLayout, clusterReplicaWorker, endpointId, netId, proxyId, replicaId, replicaStorage, restartInit, timerId, type Layout } from './layout.ts';
import { claimNodeDataDir, claimReplicaDirs, startModes } from './data_dir.ts';
import { restoreNamespaces, snapshotNamespace, type Backup } from './backup.ts';
import type { BackupFileTask } from './backup_file_task.ts';
import { Cluster, clusterActorId, remoteThreadOf, type ClusterStatus, type ReplicaStart } from './cluster.ts';
import { loadRecord, type ClusterNamespace, type ClusterRecord } from './cluster_store.ts';
import { Slot } from './slot.ts';
import { randomInt } from 'node:crypto';

/** The piscina task that frames and checksums a backup's file off the main thread. */
const backupFileTask = new URL(`./backup_file_task${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

export type ActorReport = {
  readonly actor: string;
  readonly worker: string;
  /** The worker's supervision state: running, restarting, failed, stopped. */
  readonly state: WorkerReport['state'];
  readonly restarts: number;
  /** Why the supervisor gave up on the worker, if it did. */
  readonly failure: string | null;
  /** When (epoch ms) a failed worker is started afresh after its cool-down; null otherwise. */
  readonly retryAt: number | null;
  /** Replicas: primary or backup; otherwise the actor's kind. */
  readonly role: string | null;
  readonly ns: string | null;
  readonly status: string | null;
  readonly view: number | null;
  readonly op: number | null;
  readonly commit: number | null;
  readonly mailboxDepth: number | null;
  readonly mailboxDropped: number | null;
  /** Replicas: the watches this replica serves (src/watch/hub.ts); null for other actors. */
  readonly watches: number | null;
  /** Replicas: live leases in the namespace as this replica has applied it; null for other actors. */
  readonly leases: number | null;
  /** The actor's own summary (counters), or null while its worker is down. */
  readonly detail: unknown;
};

/** One actor's report from its supervision state and, while it runs, its own summary. */
function actorReport(
  actor: string,
  worker: string,
  supervision: { readonly state: WorkerReport['state']; readonly restarts: number; readonly failure: string | null; readonly retryAt: number | null },
  live: ActorStatus | null,
): ActorReport {
  const view = (live?.status ?? null) as (Partial<ReplicaStatusView> & { role?: string }) | null;
  return {
    actor,
    worker,
    state: supervision.state,
    restarts: supervision.restarts,
    failure: supervision.failure,
    retryAt: supervision.retryAt,
    role: view?.role ?? null,
    ns: view?.ns ?? null,
    status: view?.status ?? null,
    view: view?.view ?? null,
    op: view?.op ?? null,
    commit: view?.commit ?? null,
    mailboxDepth: live?.mailbox.depth ?? null,
    mailboxDropped: live?.mailbox.dropped ?? null,
    watches: view?.watches ?? null,
    leases: view?.leases ?? null,
    detail: live?.status ?? null,
  };
}

export type NodeStatus = {
  readonly actors: readonly ActorReport[];
  readonly workers: readonly WorkerReport[];
  /**
   * False while the supervisor has given up on the proxy, the timer or one of this node's
   * replicas (past its restart limit, until its restart after the cool-down), or while a
   * namespace of this node has more than f replicas recovering: the node is up but not whole,
   * and `problems` says what is missing.
   */
  readonly serving: boolean;
  /**
   * One line per failed actor (e.g. `timer failed: <reason>; restarts after the cool-down`) and
   * per namespace whose replicas cannot recover (more than f of them recovering).
   */
  readonly problems: readonly string[];
};

/** What a failed actor means for the node, in one line. */
function failureProblem(actor: ActorReport, nowMs: number): string {
  const what = actor.actor === proxyId ? 'proxy' : actor.actor === timerId ? 'timer' : `replica ${actor.actor}`;
  const when = actor.retryAt === null ? '' : ` (in ${Math.max(0, Math.ceil((actor.retryAt - nowMs) / 1000))} s)`;
  return `${what} failed: ${actor.failure ?? 'no reason recorded'}; restarts after the cool-down${when}`;
}

/**
 * A namespace of this node with more than f of its replicas recovering (or down: a durable
 * replica whose directory cannot be opened): VRR recovery (§4.3) needs f+1 replicas in normal
 * status to answer, so none of them can finish and the namespace will not serve again by
 * itself. Durable replicas with intact storage never recover (README rule 18): only missing or
 * damaged storage does, so this means more than f replicas lost their data. A view change in
 * progress is not this (its replicas take part).
 */
function stuckNamespaceProblem(ns: string, replicaCount: number, durable: boolean, actors: readonly ActorReport[]): string | null {
  const f = Math.floor((replicaCount - 1) / 2);
  const recovering = actors.filter((actor) => actor.ns === ns && (actor.status === 'recovering' || actor.status === 'stopped')).length;
  if (recovering <= f) return null;
  const why = durable
    ? 'more than f replicas lost their storage (missing, damaged, or a disk that cannot be opened): restore from a backup or fix the disks'
    : 'replicas keep their data in memory only';
  return `namespace ${ns}: ${recovering} of ${replicaCount} replicas are recovering or down, more than f = ${f}; recovery needs ${f + 1} replicas in normal status, so it cannot finish (${why})`;
}

/** A durable replica whose disk fails: it acknowledges nothing until the disk works again. */
function storageProblem(actor: ActorReport): string | null {
  const detail = actor.detail;
  if (typeof detail !== 'object' || detail === null) return null;
  const storage = (detail as { storage?: { state?: unknown } }).storage;
  const down = (detail as { down?: { reason?: unknown } }).down;
  if (down !== undefined) return `replica ${actor.actor} is down: ${String(down.reason)}`;
  if (storage?.state === 'failing') return `replica ${actor.actor}: its disk fails; it acknowledges nothing until the disk works again`;
  return null;
}

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
  /** Which namespaces cannot serve (src/node/health.ts): their callers get `unavailable` at once. */
  readonly #health: NamespaceHealth;
  readonly #clients = new Map<string, NamespaceClient>();
  #stopping: Promise<void> | null = null;

  readonly #clientApi: ClientApiServer | null;
  #admin: AdminServer | null = null;
  #http: HttpServer | null = null;
  #metrics: NodeMetrics | null = null;
  /** The last view each replica reported (status), for the supervisor's log lines about its worker. */
  readonly #lastViews = new Map<string, number>();
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
    this.#health = new NamespaceHealth(
      {
        status: () => this.status(),
        namespaces: () => [...this.options.namespaces, ...this.#clusterNamespaces.values()].map((ns) => ({ name: ns.name, replicaCount: ns.config.replicaCount, durable: ns.config.durable })),
      },
      system.logger,
      { onChange: (ns, reason) => (reason === null ? undefined : endpoint.namespaceUnavailable(ns, reason)) },
    );
    const gate = (ns: string): string | null => this.#health.unavailable(ns);
    endpoint.setNamespaceGate(gate);
    endpoint.setReplicaResolver((ns, index) => (this.namespaces.includes(ns) ? replicaId(ns, index) : undefined));
    endpoint.setWorkerReplicas((worker) => this.#replicasOfWorker(worker));
    clientApi?.setNamespaceGate(gate);
    this.#health.start();
  }

  /** The namespace health monitor: which namespaces cannot serve and why, and its counters. */
  get health(): NamespaceHealth {
    return this.#health;
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
    if (this.#links !== null) throw new Error('the cluster is attached twice');
    this.#links = links;
    this.#cluster = cluster;
  }

  /**
   * Starts this node's replicas of a cluster namespace (one worker each), subscribes them to
   * the timer and tells the proxy and the client API; every later restart of the timer or
   * the proxy starts with what it was told (updateInit).
   */
  async startClusterNamespace(namespace: ClusterNamespace, start: ReplicaStart): Promise<void> {
    const resolved = resolveNamespace({ name: namespace.name, replicas: namespace.nodes.length, ...(this.options.cluster?.namespaceConfig === undefined ? {} : { config: this.options.cluster.namespaceConfig }) }, this.options.durable, this.options.tickMs);
    const replicas = namespace.nodes.map((_, index) => replicaId(namespace.name, index));
    const self = this.options.name;
    for (const [index, node] of namespace.nodes.entries()) {
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
        watch: this.options.watch,
        ...replicaStorage(this.options, namespace.name, index),
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
    if (this.#admin !== null) throw new Error('the admin API is attached twice');
    this.#admin = admin;
  }

  /** Where the HTTP listener (/metrics, /healthz, /readyz, /status.json) listens, or null when the node has none. */
  get httpAddress(): { readonly host: string; readonly port: number } | null {
    return this.#http?.address() ?? null;
  }

  /** The node's Prometheus metrics (what GET /metrics serves), or null when the node serves no HTTP. */
  get metrics(): NodeMetrics | null {
    return this.#metrics;
  }

  /**
   * Called by `startNode`: serves HTTP (src/net/http.ts) with the node's metrics, readiness and
   * status, from its status bounded by `statusTimeoutMs`.
   */
  async serveHttp(options: NonNullable<ResolvedOptions['http']>, registry: Registry, tcp: TcpRequests | null): Promise<void> {
    if (this.#http !== null) throw new Error('the HTTP listener is started twice');
    const snapshots = new StatusSnapshots(() => this.status(), options.statusTimeoutMs);
    const shapes = (): { name: string; replicaCount: number }[] => [...this.options.namespaces, ...this.#clusterNamespaces.values()].map((ns) => ({ name: ns.name, replicaCount: ns.config.replicaCount }));
    const metrics = new NodeMetrics(
      registry,
      snapshots,
      {
        namespaces: shapes,
        unavailable: () => this.#health.marked,
        cluster: () => this.#metricsCluster(),
      },
      tcp,
    );
    this.#http = await HttpServer.start(httpBackend({ name: this.options.name, namespaces: shapes, cluster: () => this.#cluster?.status() ?? null }, snapshots, metrics), options);
    this.#metrics = metrics;
  }

  #metricsCluster(): MetricsCluster | null {
    const cluster = this.#cluster;
    const links = this.#links;
    if (cluster === null || links === null) return null;
    return { members: cluster.status().members, linkStats: links.stats(), peers: links.peers() };
  }

  /**
   * What the supervisor's log lines about these actors add (runtime `describeActors`): for a
   * replica, its namespace, index and the last view it reported; for several (a shared worker),
   * one entry each.
   */
  logFieldsOf(actors: readonly string[]): Readonly<Record<string, unknown>> {
    const names = new Set(this.namespaces);
    const replicas = actors.flatMap((actor) => {
      const replica = parseReplicaId(actor, names);
      return replica === null ? [] : [{ namespace: replica.ns, replica: replica.index, view: this.#lastViews.get(actor) ?? null }];
    });
    if (replicas.length === 0) return {};
    if (replicas.length === 1) return replicas[0] as Record<string, unknown>;
    return { replicas };
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
      const replicaCount = ns.config.replicaCount;
      client = new NamespaceClient(
        namespace,
        (name, op) => this.#endpoint.call(name, op),
        ns.config.treeLimits,
        (name, spec) => this.#endpoint.watch(name, replicaCount, spec),
        coordinationFor,
      );
      this.#clients.set(namespace, client);
    }
    return client;
  }

  /** Every actor with its supervision state and protocol position, and whether the node serves. */
  async status(): Promise<NodeStatus> {
    const workers = await this.#system.status();
    const actors: ActorReport[] = [];
    // An actor of a worker of several has its own supervision too (a crash the worker contained).
    const own = new Map(this.#system.workerActorReports().map((report) => [report.actor, report]));
    for (const worker of workers) {
      const spec = this.#workerActors(worker.name);
      for (const actor of spec) {
        const mine = own.get(actor);
        // A worker that is down is what the actor is; while it runs, the actor's own state says more.
        const supervision = mine === undefined || worker.state !== 'running' ? { ...worker, restarts: worker.restarts + (mine?.restarts ?? 0) } : { ...mine, restarts: worker.restarts + mine.restarts };
        actors.push(actorReport(actor, worker.name, supervision, worker.detail?.actors.find((candidate) => candidate.id === actor) ?? null));
      }
    }
    const live = new Map(this.#system.host.status().map((actor) => [actor.id, actor]));
    for (const report of this.#system.hostActorReports()) {
      actors.push(actorReport(report.actor, 'host', report, live.get(report.actor) ?? null));
      live.delete(report.actor);
    }
    // The main thread's own actors (the API endpoint, the TCP server, the cluster): not
    // supervised (they live and die with the process), reported with their counters.
    for (const [id, status] of live) actors.push(actorReport(id, 'host', { state: 'running', restarts: 0, failure: null, retryAt: null }, status));
    for (const actor of actors) if (actor.view !== null) this.#lastViews.set(actor.actor, actor.view);
    const now = Date.now();
    const problems = actors.filter((actor) => actor.state === 'failed').map((actor) => failureProblem(actor, now));
    for (const actor of actors) {
      const storage = storageProblem(actor);
      if (storage !== null) problems.push(storage);
    }
    for (const ns of [...this.options.namespaces, ...this.#clusterNamespaces.values()]) {
      const stuck = stuckNamespaceProblem(ns.name, ns.config.replicaCount, ns.config.durable, actors);
      if (stuck !== null) problems.push(stuck);
    }
    return { actors, workers, serving: problems.length === 0, problems };
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
      return view === null ? null : primaryOf(view, { replicaCount: placed.nodes.length });
    }
    let best: ActorReport | null = null;
    for (const actor of actors) {
      if (actor.ns !== namespace || actor.role !== 'primary' || actor.status !== 'normal') continue;
      if (best === null || (actor.view ?? 0) > (best.view ?? 0)) best = actor;
    }
    return best === null ? null : Number(best.actor.slice(best.actor.lastIndexOf('/r') + 2));
  }

  /**
   * A backup of a namespace this node hosts replicas of: the committed state of its most
   * up-to-date local replica in normal status, as a checksummed checkpoint file (src/node/backup.ts).
   */
  snapshot(ns: string): Promise<Backup> {
    const resolved = this.options.namespaces.find((candidate) => candidate.name === ns) ?? this.#clusterNamespaces.get(ns);
    if (resolved === undefined) return Promise.reject(new HaretError('unknown_namespace', `no namespace ${ns} on this node`, false));
    const local = Array.from({ length: resolved.config.replicaCount }, (_, index) => replicaId(ns, index)).filter((actor) => this.#system.threadOf(actor)?.startsWith('node:') === false);
    return snapshotNamespace(
      ns,
      local,
      (actor, request, timeoutMs) => this.#system.query(actor, request, timeoutMs),
      (op, payload) => {
        // The image is this call's own (written for it, then cloned across, or handed over on
        // this thread): its buffer is transferred to the pool, not copied.
        const buffer = wholeBuffer(payload);
        const task: BackupFileTask = { op, payload };
        return this.#system.offload.run<Uint8Array>(backupFileTask, 'encodeBackupFile', task, buffer === null ? [] : [buffer]);
      },
    );
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
    /** Makes an actor on the main thread (the proxy with proxyThread host) throw inside its next handler call. */
    crashHostActor: (actor: string): void => this.#system.crashHostActor(actor),
    /**
     * Makes an actor throw inside its next handler call, wherever it runs: a worker of one actor
     * ends (and is restarted); in a worker of several (workerLayout shared or single) only that
     * actor is dropped and re-created, through recovery for a replica.
     */
    crashActor: (actor: string): Promise<void> => this.#system.crashActor(actor),
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
      this.#health.stop();
      await this.#http?.close();
      await this.#admin?.close();
      await this.#clientApi?.close();
      await this.#links?.close();
      this.#endpoint.close();
      await this.#system.stop();
    })();
    return this.#stopping;
  }

  #workerOf(actor: string): string {
    const worker = this.#system.threadOf(actor);
    if (worker === undefined || worker === 'host') throw new RangeError(`no worker hosts ${actor}`);
    return worker;
  }

  /** The replicas a worker hosts, as (namespace, index), from their actor ids (`ns/r<i>`). */
  #replicasOfWorker(worker: string): { ns: string; index: number }[] {
    const replicas: { ns: string; index: number }[] = [];
    for (const actor of this.#system.actorsOf(worker)) {
      const match = /^(.+)\/r(\d+)$/.exec(actor);
      if (match !== null && this.namespaces.includes(match[1] as string)) replicas.push({ ns: match[1] as string, index: Number(match[2]) });
    }
    return replicas;
  }

  #workerActors(worker: string): string[] {
    return this.#system.actorsOf(worker);
  }
}

/**
 * The objects on the main thread that its actors hand envelopes to but that can only be made
 * once the actor system runs (they send through it): the TCP client API server and the
 * cluster. Each actor gets a sink reading its slot; `startNode` binds the slot once the
 * object exists (src/node/slot.ts).
 */
type LateObjects = { readonly clientApi: Slot<ClientApiServer>; readonly cluster: Slot<Cluster>; readonly node: Slot<HaretNode> };

/** `host/net`'s view of the TCP server. Only the server sends as `host/net`, so no answer or watch notice can come before it exists. */
function clientApiSink(slot: Slot<ClientApiServer>, tcp: TcpRequests | null): ClientApiSink {
  return {
    onAnswer: (from, answer) => {
      tcp?.answered(answer);
      slot.current?.onAnswer(from, answer);
    },
    onWatchNotice: (from, notice) => slot.current?.onWatchNotice(from, notice),
    endOfBatch: () => slot.current?.endOfBatch(),
    counters: () => slot.current?.counters ?? {},
  };
}

/**
 * `host/cluster`'s view of the cluster. Its messages come from other nodes through the
 * cluster's own links, so none can come before it exists; a status asked for meanwhile (the
 * admin API listens first) says only the role.
 */
function clusterSink(slot: Slot<Cluster>): ClusterSink {
  return {
    receive: (batch) => slot.current?.receive(batch),
    actorStatus: () => slot.current?.actorStatus() ?? { role: 'cluster' },
  };
}

/** Awaits one start-up step; if it fails, stops what the earlier steps started and rethrows. */
/** Said once at start, at warn level, for each port `unprotectedPorts` names (docs/security.md). */
function warnUnprotectedPorts(resolved: ResolvedOptions, logger: Logger): void {
  for (const { port, host } of unprotectedPorts(resolved)) {
    logger.warn({ port, host }, `the ${port} port listens on ${host}, reachable from other machines, with neither TLS nor a token: anyone who reaches it is served (docs/security.md)`);
  }
}

async function orCleanUp<T>(step: () => Promise<T>, cleanUp: () => Promise<void>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/** The cluster record in the data directory, or null; refuses another node's. */
function ownRecord(resolved: ResolvedOptions): ClusterRecord | null {
  const record = resolved.dataDir === undefined ? null : loadRecord(resolved.dataDir);
  if (record !== null && record.self !== resolved.name) throw new RangeError(`${resolved.dataDir} holds the record of node ${record.self}, not ${resolved.name}`);
  return record;
}

/**
 * Step 1: every actor. The workers (replicas, proxy, timer) and the main thread's actors: the
 * API endpoint, and the relays to the TCP server and the cluster when the node has them. The
 * timer starts paused; the endpoint follows the proxy's supervision events from here on.
 */
function startActors(resolved: ResolvedOptions, layout: Layout, endpoint: Endpoint, late: LateObjects, tcp: TcpRequests | null): Promise<ActorSystem> {
  const hostActors: HostActorSpec[] = [{ id: endpointId, factory: endpoint.factory, init: null }];
  // Replicas route answers to the TCP server's actor like to any client's sender.
  if (resolved.clientApi !== undefined) hostActors.push({ id: netId, factory: clientApiActor(clientApiSink(late.clientApi, tcp)), init: null });
  if (resolved.cluster !== undefined) hostActors.push({ id: clusterActorId, factory: clusterRelayActor(clusterSink(late.cluster)), init: null });
  return ActorSystem.start({
    workers: layout.workers,
    resolveRemote: remoteThreadOf,
    hostActors,
    hostActorSpecs: layout.hostActors,
    codec: resolved.codec,
    transport: resolved.transport,
    ...(resolved.logLevel === undefined ? {} : { logLevel: resolved.logLevel }),
    supervisor: resolved.supervisor,
    controlTimeoutMs: resolved.controlTimeoutMs,
    restartInit,
    onEvent: (event) => endpoint.onSystemEvent(event),
    describeActors: (actors) => late.node.current?.logFieldsOf(actors) ?? {},
  });
}

/** Step 2: the TCP client API, listening; it holds hellos until `ready()` when a record is being restored. */
async function startClientApi(
  resolved: ResolvedOptions,
  listen: NonNullable<ResolvedOptions['clientApi']>,
  system: ActorSystem,
  record: ClusterRecord | null,
  late: LateObjects,
  tcp: TcpRequests | null,
): Promise<ClientApiServer> {
  const server = await ClientApiServer.start(
    {
      nodeName: resolved.name,
      namespaces: resolved.namespaces.map((ns) => ({ name: ns.name, replicas: Array.from({ length: ns.config.replicaCount }, (_, i) => replicaId(ns.name, i)), limits: ns.config.treeLimits })),
      // Frames fit a request of any namespace this node may serve, cluster ones included.
      frameBytesMax: frameBytesFor(servedTreeLimits(resolved)),
      // A node that restores cluster namespaces welcomes clients once it serves them.
      ready: record === null,
      send: (to, request) => {
        tcp?.sent(to, request);
        system.send({ from: netId, to, msg: request });
      },
      // Clients may call while the links start: until the cluster exists, every replica the
      // node serves is its own.
      ...(resolved.cluster === undefined ? {} : { locate: (replica: string) => late.cluster.current?.locate(replica) ?? { reachable: true, clientAddress: null } }),
    },
    listen,
  );
  late.clientApi.bind(server);
  return server;
}

/**
 * Step 3: the cluster links and membership, made once the node's client and admin addresses
 * are known (its member record carries them); a restored record starts this node's replicas
 * recovering.
 */
async function startCluster(
  resolved: ResolvedOptions,
  options: NonNullable<ResolvedOptions['cluster']>,
  node: HaretNode,
  system: ActorSystem,
  record: ClusterRecord | null,
  late: LateObjects,
): Promise<Cluster> {
  // A restart is a newer incarnation: members replace the link of the one before (cluster_link.ts).
  const incarnation = (record?.members.find((member) => member.name === resolved.name)?.incarnation ?? 0) + 1;
  const links = await ClusterLinks.start(
    { nodeName: resolved.name, security: resolved.clusterSecurity, incarnation, ...(options.host === undefined ? {} : { host: options.host }), ...(options.port === undefined ? {} : { port: options.port }) },
    // A link delivers only after its handshake, a later event-loop turn than the one in which
    // the links listen and the cluster is bound below: nothing is dropped here in practice.
    { onEnvelopes: (from, batch) => late.cluster.current?.onLinkEnvelopes(from, batch) },
  );
  const clientAddress = node.clientApiAddress;
  const adminAddress = node.adminApiAddress;
  const cluster = await orCleanUp(
    async () =>
      new Cluster(
        {
          name: resolved.name,
          clusterAddress: formatAddress(links.address()),
          clientAddress: clientAddress === null ? null : formatAddress(clientAddress),
          adminAddress: adminAddress === null ? null : formatAddress(adminAddress),
          incarnation,
        },
        links,
        {
          receive: (batch) => system.receiveRemote(batch),
          send: (envelope) => system.send(envelope),
          isLocal: (actor) => {
            const thread = system.threadOf(actor);
            return thread !== undefined && !thread.startsWith('node:');
          },
          addRemoteRoutes: (entries) => system.addRemoteRoutes(entries),
          setLink: (thread, sink) => system.setLink(thread, sink),
          hasLocalNamespace: (name) => resolved.namespaces.some((ns) => ns.name === name),
          startNamespace: (namespace, start) => node.startClusterNamespace(namespace, start),
        },
        resolved.dataDir ?? null,
        system.logger,
      ),
    () => links.close(),
  );
  late.cluster.bind(cluster);
  // From here the node closes the links when it stops.
  node.attachCluster(links, cluster);
  if (record !== null) await cluster.restore(record);
  return cluster;
}

/** Starts a node; resolves once every actor is running. Options are validated first (RangeError). */
export async function startNode(options: NodeOptions = {}): Promise<HaretNode> {
  const resolved = resolveOptions(options);
  const record = ownRecord(resolved);
  const restarting = resolved.dataDir === undefined ? false : (await claimNodeDataDir(resolved.dataDir, resolved.name)).existed;
  await restoreNamespaces(resolved);
  // Read before the directories are claimed (a claim writes an identity, nothing else).
  const startOf = startModes(resolved, restarting);
  await claimReplicaDirs(resolved);
  const layout = buildLayout(resolved, startOf);
  // Requests are measured only for a node that serves its metrics (HTTP): otherwise nothing is added to the call path.
  const registry = resolved.http === undefined ? null : new Registry();
  const requests = registry === null ? null : new RequestMetrics(registry);
  const endpointArgs = [endpointId, proxyId, layout.proxyWorker, resolved.callDeadlineMs, resolved.callsInFlightMax, resolved.watchBatchesMax] as const;
  const endpoint = requests === null ? new Endpoint(...endpointArgs) : new MeasuredEndpoint(requests, ...endpointArgs);
  const late: LateObjects = { clientApi: new Slot('the TCP client API server'), cluster: new Slot('the cluster'), node: new Slot('the node') };
  // The server forwards requests only to replica ids of the namespaces it serves, cluster ones included.
  const tcp = requests === null || resolved.clientApi === undefined ? null : new TcpRequests(requests, replicaNamespace);
  const system = await startActors(resolved, layout, endpoint, late, tcp);
  warnUnprotectedPorts(resolved, system.logger);
  const listen = resolved.clientApi;
  const clientApi = listen === undefined ? null : await orCleanUp(() => startClientApi(resolved, listen, system, record, late, tcp), () => system.stop());
  const node = new HaretNode(resolved, system, endpoint, clientApi, layout);
  late.node.bind(node);
  const clusterOptions = resolved.cluster;
  const http = resolved.http;
  const cluster = await orCleanUp(async () => {
    if (resolved.adminApi !== undefined) node.attachAdmin(await AdminServer.start(node, resolved.adminApi));
    if (http !== undefined && registry !== null) await node.serveHttp(http, registry, tcp);
    return clusterOptions === undefined ? null : startCluster(resolved, clusterOptions, node, system, record, late);
  }, () => node.stop());
  // Every actor exists now: time may start (see TimerInit.paused).
  const resume: TimerResume = { type: 'resume' };
  system.send({ from: endpointId, to: timerId, msg: resume, control: true });
  // Clients held since their hello are welcomed now, with every namespace the node serves.
  clientApi?.ready();
  if (cluster !== null) {
    const joins = clusterOptions?.join ?? [];
    await orCleanUp(async () => {
      for (const address of joins) await cluster.join(address);
    }, () => node.stop());
  }
  return node;
}
