/**
 * The node's Prometheus metrics (issue 17), through prom-client on a registry of the node's own.
 *
 * Two kinds of figures:
 * - the request path (requests, commits, commit latency), observed as requests settle on the
 *   main thread: src/node/request_metrics.ts;
 * - everything else, read at scrape time from the node's status (the control plane: every
 *   worker's report and every actor's own summary), so a scrape costs the data path nothing
 *   but one status call per worker. The status is bounded (src/node/status_snapshot.ts): when
 *   it does not come in time the scrape shows the last one with `haret_status_stale 1`, and a
 *   replica whose worker does not report is shown with `haret_replica_up 0` and none of its
 *   other figures.
 *
 * The counts actors keep (view changes, fsyncs, mailbox drops, loop time ...) start at zero
 * when their worker starts; here they become counters that only grow across worker restarts
 * (`CumulativeCounter`). Leases that expired (rather than being revoked) are not counted: the
 * replica's lease table does not tell the two apart without walking it on every entry.
 */

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ReplicaStatusView } from '../../actors/replica.ts';
import type { ClusterLinkStats, PeerReport } from '../net/cluster_link.ts';
import type { ActorReport, NodeStatus } from './node.ts';
import { parseReplicaId, type ReplicaName } from './replica_ids.ts';
import { readiness } from './readiness.ts';
import type { StatusSnapshot, StatusSnapshots } from './status_snapshot.ts';
import type { TcpRequests } from './tcp_requests.ts';

/** What the metrics read of the node besides its status. */
export type MetricsSource = {
  /** The namespaces this node serves, with their replica counts. */
  namespaces(): readonly { readonly name: string; readonly replicaCount: number }[];
  /** Namespaces the health monitor marks unable to serve (src/node/health.ts). */
  unavailable(): ReadonlyMap<string, string>;
  /** The cluster's members and links, or null for a node without cluster links. */
  cluster(): MetricsCluster | null;
};

export type MetricsCluster = {
  readonly members: readonly { readonly name: string; readonly link: 'self' | 'up' | 'down' }[];
  readonly linkStats: ClusterLinkStats;
  readonly peers: readonly PeerReport[];
};

/** Seconds; view changes take from a few ticks to several timeouts. */
const viewChangeBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const replicaStatuses = ['normal', 'view_change', 'recovering', 'stopped'] as const;
const workerStates = ['running', 'restarting', 'failed', 'stopped'] as const;
const storageStates = ['ok', 'failing', 'lost'] as const;

type ReplicaDetail = Partial<ReplicaStatusView> & { readonly down?: unknown };

/**
 * A counter fed with an actor's own running total: each scrape adds what the total grew by.
 * A total that shrinks, or comes from a new incarnation (the worker restarted), starts over,
 * and all of it is added.
 */
class CumulativeCounter<L extends string> {
  readonly #counter: Counter<L>;
  readonly #last = new Map<string, { raw: number; incarnation: number }>();

  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
    this.#counter = new Counter({ name, help, labelNames: [...labelNames], registers: [registry] });
  }

  update(labels: Record<L, string>, raw: number | undefined, incarnation: number): void {
    if (raw === undefined || !Number.isFinite(raw) || raw < 0) return;
    const key = JSON.stringify(labels);
    const last = this.#last.get(key);
    const grown = last === undefined || last.incarnation !== incarnation || raw < last.raw ? raw : raw - last.raw;
    this.#last.set(key, { raw, incarnation });
    this.#counter.inc(labels as Partial<Record<L, string>>, grown);
  }
}

/** Turns a running total of view-change durations into histogram observations, each once. */
class ViewChangeDurations {
  readonly #histogram: Histogram<'namespace' | 'replica'>;
  readonly #seen = new Map<string, { done: number; incarnation: number }>();

  constructor(registry: Registry) {
    this.#histogram = new Histogram({
      name: 'haret_view_change_duration_seconds',
      help: 'How long view changes took, from a replica leaving normal status to its return, by namespace and replica',
      labelNames: ['namespace', 'replica'],
      buckets: viewChangeBuckets,
      registers: [registry],
    });
  }

  update(labels: { namespace: string; replica: string }, done: number, recentMs: readonly number[], incarnation: number): void {
    const key = `${labels.namespace}\u0000${labels.replica}`;
    const seen = this.#seen.get(key);
    const fresh = seen === undefined || seen.incarnation !== incarnation || done < seen.done ? done : done - seen.done;
    this.#seen.set(key, { done, incarnation });
    const child = this.#histogram.labels(labels);
    // The replica keeps only its latest durations: more than that between two scrapes are lost.
    for (const ms of recentMs.slice(Math.max(0, recentMs.length - fresh))) child.observe(ms / 1000);
  }
}

export class NodeMetrics {
  readonly registry: Registry;
  readonly #snapshots: StatusSnapshots;
  readonly #source: MetricsSource;
  readonly #tcp: TcpRequests | null;
  /** Gauges that describe the present: cleared at each scrape, so a replica that went away leaves no stale series. */
  readonly #gauges: Gauge[] = [];
  /** Loop time of each thread at the previous scrape, for the utilisation between scrapes. */
  readonly #lastLoop = new Map<string, { activeMs: number; idleMs: number; incarnation: number }>();

  // Node and snapshot.
  readonly #serving: Gauge;
  readonly #problems: Gauge;
  readonly #ready: Gauge;
  readonly #stale: Gauge;
  readonly #statusAge: Gauge;
  readonly #statusTimeouts: CumulativeCounter<never>;
  // Replicas.
  readonly #replicaUp: Gauge<'namespace' | 'replica'>;
  readonly #replicaStatus: Gauge<'namespace' | 'replica' | 'status'>;
  readonly #replicaPrimary: Gauge<'namespace' | 'replica'>;
  readonly #replicaFigures: readonly { readonly gauge: Gauge<'namespace' | 'replica'>; readonly read: (detail: ReplicaDetail) => number | undefined }[];
  readonly #replicaCounters: readonly { readonly counter: CumulativeCounter<'namespace' | 'replica'>; readonly read: (detail: ReplicaDetail) => number | undefined }[];
  readonly #storageState: Gauge<'namespace' | 'replica' | 'state'>;
  readonly #viewChangeDurations: ViewChangeDurations;
  // Namespaces.
  readonly #hasPrimary: Gauge<'namespace'>;
  readonly #unavailable: Gauge<'namespace'>;
  // Actors and workers.
  readonly #mailboxDepth: Gauge<'actor' | 'thread'>;
  readonly #mailboxDropped: CumulativeCounter<'actor'>;
  readonly #workerState: Gauge<'worker' | 'state'>;
  readonly #workerRestarts: CumulativeCounter<'worker'>;
  readonly #loopActive: CumulativeCounter<'thread'>;
  readonly #loopIdle: CumulativeCounter<'thread'>;
  readonly #loopUtilization: Gauge<'thread'>;
  readonly #heapUsed: Gauge<'thread'>;
  readonly #envelopesOut: CumulativeCounter<'thread'>;
  readonly #envelopesIn: CumulativeCounter<'thread'>;
  readonly #unroutable: CumulativeCounter<'thread'>;
  // The process and the host thread's actors.
  readonly #cpu: CumulativeCounter<never>;
  readonly #rss: Gauge;
  readonly #embeddedInFlight: Gauge;
  readonly #tcpConnections: CumulativeCounter<never>;
  readonly #tcpWatches: Gauge;
  readonly #tcpWatchesLagging: CumulativeCounter<never>;
  readonly #tcpUntracked: CumulativeCounter<never>;
  // Cluster.
  readonly #memberLink: Gauge<'member'>;
  readonly #linkQueued: Gauge<'peer'>;
  readonly #linkFrames: CumulativeCounter<'direction'>;
  readonly #linkBytes: CumulativeCounter<'direction'>;
  readonly #linkEnvelopes: CumulativeCounter<'direction'>;
  readonly #linkDropped: CumulativeCounter<never>;

  constructor(registry: Registry, snapshots: StatusSnapshots, source: MetricsSource, tcp: TcpRequests | null) {
    this.registry = registry;
    this.#snapshots = snapshots;
    this.#source = source;
    this.#tcp = tcp;
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> => {
      const made = new Gauge<L>({ name, help, labelNames: [...labelNames], registers: [registry] });
      this.#gauges.push(made as Gauge);
      return made;
    };
    const cumulative = <L extends string>(name: string, help: string, labelNames: readonly L[]): CumulativeCounter<L> => new CumulativeCounter<L>(registry, name, help, labelNames);
    const replica = ['namespace', 'replica'] as const;

    this.#serving = gauge('haret_node_serving', '1 while the node serves (no actor failed past its restart limit, no namespace stuck), else 0');
    this.#problems = gauge('haret_node_problems', 'Problems the node reports (haret admin health)');
    this.#ready = gauge('haret_node_ready', '1 when every local replica is in normal status and every namespace has a primary (GET /readyz), else 0');
    this.#stale = gauge('haret_status_stale', '1 when the status did not come within the scrape timeout and the figures below are from an earlier status');
    this.#statusAge = gauge('haret_status_age_seconds', 'Age of the status the figures come from');
    this.#statusTimeouts = cumulative('haret_status_timeouts_total', 'Scrapes whose status did not come within the timeout', []);

    this.#replicaUp = gauge('haret_replica_up', '1 when the replica reported its status in this scrape, 0 when it did not (its worker down, restarting or not answering)', replica);
    this.#replicaStatus = gauge('haret_replica_status', "1 for the replica's VR status (normal, view_change, recovering, stopped), 0 for the others", [...replica, 'status']);
    this.#replicaPrimary = gauge('haret_replica_primary', '1 when the replica is the primary of its view', replica);
    const figure = (name: string, help: string, read: (detail: ReplicaDetail) => number | undefined) => ({ gauge: gauge(name, help, replica), read });
    this.#replicaFigures = [
      figure('haret_replica_view', 'The view number the replica is in', (d) => d.view),
      figure('haret_replica_op', 'The highest op number in the replica log', (d) => d.op),
      figure('haret_replica_commit_op', 'The highest committed op number the replica knows', (d) => d.commit),
      figure('haret_replica_checkpoint_op', 'The op of the replica checkpoint', (d) => d.checkpointOp),
      figure('haret_replica_log_length', 'Log entries beyond the checkpoint (op - checkpoint op)', (d) => (d.op === undefined || d.checkpointOp === undefined ? undefined : d.op - d.checkpointOp)),
      figure('haret_replica_checkpoint_bytes', 'Bytes of the encoded checkpoint image the replica holds', (d) => d.checkpointImageBytes),
      figure('haret_replica_client_sessions', 'Client sessions in the replica client table', (d) => d.clients),
      figure('haret_replica_watches', 'Watches the replica serves', (d) => d.watches),
      figure('haret_replica_watch_history_ops', 'Ops of event history the replica keeps for watch resumption', (d) => d.watchHistoryOps),
      figure('haret_replica_leases', 'Live leases in the namespace as the replica has applied it', (d) => d.leases),
      figure('haret_replica_ephemeral_nodes', 'Ephemeral nodes held by live leases', (d) => d.ephemeralNodes),
      figure('haret_replica_lease_clock_ticks', 'The lease clock (ticks committed) of the replica', (d) => d.leaseClock),
    ];
    const counted = (name: string, help: string, read: (detail: ReplicaDetail) => number | undefined) => ({ counter: cumulative(name, help, replica), read });
    this.#replicaCounters = [
      counted('haret_view_changes_total', 'View changes the replica started or joined', (d) => d.events?.viewChanges),
      counted('haret_views_started_total', 'Views the replica started as the new primary (leader changes)', (d) => d.events?.viewsStarted),
      counted('haret_recoveries_total', 'Recoveries the replica completed (VRR 4.3)', (d) => d.events?.recoveries),
      counted('haret_state_transfers_total', 'State transfers the replica asked for (get_state, VRR 5.2)', (d) => d.events?.stateTransfers),
      counted('haret_entries_applied_total', 'Log entries the replica applied (each a batch prepared together)', (d) => d.events?.entriesApplied),
      counted('haret_requests_applied_total', 'Requests in the log entries the replica applied (divided by entries: the batch size)', (d) => d.events?.requestsApplied),
      counted('haret_lease_expiries_total', 'Leases that expired in entries the replica applied', (d) => d.events?.leaseExpiries),
      counted('haret_watches_lagging_total', 'Watches the replica ended because the watcher fell behind its history', (d) => d.events?.watchesLagging),
      counted('haret_storage_appends_total', 'Log appends (a write and an fdatasync each) of the durable replica', (d) => d.storage?.appends),
      counted('haret_storage_append_seconds_total', 'Seconds the durable replica spent in log appends, fdatasync included (divided by appends: the mean latency)', (d) => (d.storage?.appendMs === undefined ? undefined : d.storage.appendMs / 1000)),
      counted('haret_replica_messages_dropped_total', 'Envelopes the replica dropped as malformed', (d) => d.dropped),
      counted('haret_storage_fsyncs_total', 'fdatasyncs the durable replica issued', (d) => d.storage?.fsyncs),
      counted('haret_storage_bytes_written_total', 'Bytes the durable replica wrote to its log', (d) => d.storage?.bytes),
      counted('haret_storage_records_total', 'Records the durable replica wrote', (d) => d.storage?.records),
      counted('haret_storage_checkpoints_total', 'Checkpoint files the durable replica wrote', (d) => d.storage?.checkpoints),
      counted('haret_storage_faults_total', 'Disk operations of the durable replica that failed (each retried)', (d) => d.storage?.faults),
    ];
    this.#storageState = gauge('haret_storage_state', "1 for the durable replica's disk state (ok, failing, lost), 0 for the others", [...replica, 'state']);
    this.#viewChangeDurations = new ViewChangeDurations(registry);

    this.#hasPrimary = gauge('haret_namespace_has_primary', '1 when the namespace has a primary as this node sees it', ['namespace']);
    this.#unavailable = gauge('haret_namespace_unavailable', '1 while the health monitor marks the namespace unable to serve (callers get unavailable at once)', ['namespace']);

    this.#mailboxDepth = gauge('haret_mailbox_depth', 'Envelopes waiting in the actor mailbox', ['actor', 'thread']);
    this.#mailboxDropped = cumulative('haret_mailbox_dropped_total', 'Envelopes the actor mailbox dropped when full', ['actor']);
    this.#workerState = gauge('haret_worker_state', "1 for the worker's supervision state (running, restarting, failed, stopped), 0 for the others", ['worker', 'state']);
    this.#workerRestarts = cumulative('haret_worker_restarts_total', 'Restarts of the worker by the supervisor', ['worker']);
    this.#loopActive = cumulative('haret_thread_event_loop_active_seconds_total', 'Time the thread event loop was busy', ['thread']);
    this.#loopIdle = cumulative('haret_thread_event_loop_idle_seconds_total', 'Time the thread event loop waited', ['thread']);
    this.#loopUtilization = gauge('haret_thread_event_loop_utilization', 'Share of time the thread event loop was busy since the previous scrape (0..1)', ['thread']);
    this.#heapUsed = gauge('haret_thread_heap_used_bytes', 'V8 heap in use by the thread', ['thread']);
    this.#envelopesOut = cumulative('haret_thread_envelopes_sent_total', 'Envelopes the thread sent to other threads', ['thread']);
    this.#envelopesIn = cumulative('haret_thread_envelopes_received_total', 'Envelopes the thread received from other threads', ['thread']);
    this.#unroutable = cumulative('haret_thread_envelopes_unroutable_total', 'Envelopes the thread could not route (unknown actor, no link)', ['thread']);

    this.#cpu = cumulative('haret_process_cpu_seconds_total', 'CPU time of the process, every thread, user and system', []);
    this.#rss = gauge('haret_process_resident_memory_bytes', 'Resident memory of the process');
    this.#embeddedInFlight = gauge('haret_embedded_calls_in_flight', 'Calls of the embedding API not settled yet');
    this.#tcpConnections = cumulative('haret_tcp_connections_total', 'Connections the TCP client API accepted', []);
    this.#tcpWatches = gauge('haret_tcp_watches_open', 'Watches open through the TCP client API');
    this.#tcpWatchesLagging = cumulative('haret_tcp_watches_lagging_total', 'Watches through the TCP client API ended lagging (their connection fell behind)', []);
    this.#tcpUntracked = cumulative('haret_tcp_requests_untracked_total', 'TCP requests whose answer the metrics never saw (forgotten after 60 s or beyond the bound)', []);

    this.#memberLink = gauge('haret_cluster_member_link_up', '1 when the link to the cluster member is up (the node itself: 1)', ['member']);
    this.#linkQueued = gauge('haret_cluster_link_queued_bytes', 'Bytes waiting to be sent on the link to a peer', ['peer']);
    this.#linkFrames = cumulative('haret_cluster_link_frames_total', 'Frames over the cluster links, by direction (in, out)', ['direction']);
    this.#linkBytes = cumulative('haret_cluster_link_bytes_total', 'Payload bytes of the frames over the cluster links, by direction (in, out)', ['direction']);
    this.#linkEnvelopes = cumulative('haret_cluster_link_envelopes_total', 'Envelopes over the cluster links, by direction (in, out)', ['direction']);
    this.#linkDropped = cumulative('haret_cluster_link_dropped_total', 'Envelopes the cluster links dropped (outbox full)', []);
  }

  /** The exposition: every figure as of now (or of the latest status, marked stale). */
  async scrape(): Promise<{ readonly contentType: string; readonly body: string }> {
    const fresh = await this.#snapshots.fresh();
    this.#update(fresh ?? this.#snapshots.latest, fresh === null);
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  #update(snapshot: StatusSnapshot | null, stale: boolean): void {
    for (const gauge of this.#gauges) gauge.reset();
    this.#stale.set(stale ? 1 : 0);
    this.#statusTimeouts.update({}, this.#snapshots.counters.timeouts, 0);
    this.#updateProcess();
    this.#updateCluster();
    for (const [ns] of this.#source.unavailable()) this.#unavailable.set({ namespace: ns }, 1);
    if (snapshot === null) return;
    const status = snapshot.status;
    this.#statusAge.set((performance.now() - snapshot.takenAtMs) / 1000);
    this.#serving.set(status.serving ? 1 : 0);
    this.#problems.set(status.problems.length);
    const namespaces = this.#source.namespaces();
    const ready = readiness(status, namespaces);
    this.#ready.set(ready.ready ? 1 : 0);
    for (const ns of namespaces) {
      if (!this.#source.unavailable().has(ns.name)) this.#unavailable.set({ namespace: ns.name }, 0);
      this.#hasPrimary.set({ namespace: ns.name }, ready.withoutPrimary.includes(ns.name) ? 0 : 1);
    }
    const names = new Set(namespaces.map((ns) => ns.name));
    for (const actor of status.actors) {
      this.#updateActor(actor);
      const replica = parseReplicaId(actor.actor, names);
      if (replica !== null) this.#updateReplica(replica, actor, stale);
    }
    this.#updateWorkers(status);
  }

  #updateReplica(replica: ReplicaName, actor: ActorReport, stale: boolean): void {
    const labels = { namespace: replica.ns, replica: String(replica.index) };
    const detail = (typeof actor.detail === 'object' && actor.detail !== null ? actor.detail : null) as ReplicaDetail | null;
    // Absent: its worker did not report (down, restarting, or no answer within the control timeout).
    if (detail === null || stale) {
      this.#replicaUp.set(labels, 0);
      return;
    }
    this.#replicaUp.set(labels, 1);
    for (const status of replicaStatuses) this.#replicaStatus.set({ ...labels, status }, detail.status === status ? 1 : 0);
    this.#replicaPrimary.set(labels, actor.role === 'primary' && detail.status === 'normal' ? 1 : 0);
    for (const { gauge, read } of this.#replicaFigures) {
      const value = read(detail);
      if (value !== undefined && Number.isFinite(value)) gauge.set(labels, value);
    }
    for (const { counter, read } of this.#replicaCounters) counter.update(labels, read(detail), actor.restarts);
    if (detail.storage !== undefined) for (const state of storageStates) this.#storageState.set({ ...labels, state }, detail.storage.state === state ? 1 : 0);
    const events = detail.events;
    if (events !== undefined) this.#viewChangeDurations.update(labels, events.viewChangesDone, events.viewChangeMs, actor.restarts);
  }

  #updateActor(actor: ActorReport): void {
    if (actor.mailboxDepth !== null) this.#mailboxDepth.set({ actor: actor.actor, thread: actor.worker }, actor.mailboxDepth);
    if (actor.mailboxDropped !== null) this.#mailboxDropped.update({ actor: actor.actor }, actor.mailboxDropped, actor.restarts);
    const detail = (typeof actor.detail === 'object' && actor.detail !== null ? actor.detail : {}) as Record<string, unknown>;
    if (detail['role'] === 'endpoint' && typeof detail['pending'] === 'number') this.#embeddedInFlight.set(detail['pending']);
    if (detail['role'] === 'client_api') {
      if (typeof detail['connections'] === 'number') this.#tcpConnections.update({}, detail['connections'], 0);
      if (typeof detail['watchesOpen'] === 'number') this.#tcpWatches.set(detail['watchesOpen']);
      if (typeof detail['watchesLagging'] === 'number') this.#tcpWatchesLagging.update({}, detail['watchesLagging'], 0);
    }
  }

  #updateWorkers(status: NodeStatus): void {
    for (const worker of status.workers) {
      const labels = { worker: worker.name };
      for (const state of workerStates) this.#workerState.set({ ...labels, state }, worker.state === state ? 1 : 0);
      this.#workerRestarts.update(labels, worker.restarts, 0);
      const detail = worker.detail;
      if (detail === null) continue;
      const thread = { thread: worker.name };
      this.#updateLoop(worker.name, detail.loop.activeMs, detail.loop.idleMs, worker.restarts);
      this.#heapUsed.set(thread, detail.heapUsedBytes);
      this.#envelopesOut.update(thread, detail.router.envelopesOut, worker.restarts);
      this.#envelopesIn.update(thread, detail.router.envelopesIn, worker.restarts);
      this.#unroutable.update(thread, detail.router.unroutable, worker.restarts);
    }
  }

  #updateLoop(thread: string, activeMs: number, idleMs: number, incarnation: number): void {
    const labels = { thread };
    this.#loopActive.update(labels, activeMs / 1000, incarnation);
    this.#loopIdle.update(labels, idleMs / 1000, incarnation);
    const last = this.#lastLoop.get(thread);
    const since = last === undefined || last.incarnation !== incarnation || activeMs < last.activeMs ? { activeMs: 0, idleMs: 0 } : last;
    const active = activeMs - since.activeMs;
    const total = active + (idleMs - since.idleMs);
    if (total > 0) this.#loopUtilization.set(labels, active / total);
    this.#lastLoop.set(thread, { activeMs, idleMs, incarnation });
  }

  /** The main thread and the process: read here, at no cost to any worker. */
  #updateProcess(): void {
    const loop = performance.eventLoopUtilization();
    this.#updateLoop('host', loop.active, loop.idle, 0);
    const memory = process.memoryUsage();
    this.#heapUsed.set({ thread: 'host' }, memory.heapUsed);
    this.#rss.set(memory.rss);
    const cpu = process.cpuUsage();
    this.#cpu.update({}, (cpu.user + cpu.system) / 1e6, 0);
    if (this.#tcp !== null) this.#tcpUntracked.update({}, this.#tcp.untracked, 0);
  }

  #updateCluster(): void {
    const cluster = this.#source.cluster();
    if (cluster === null) return;
    for (const member of cluster.members) this.#memberLink.set({ member: member.name }, member.link === 'down' ? 0 : 1);
    for (const peer of cluster.peers) if (peer.node !== null) this.#linkQueued.set({ peer: peer.node }, peer.queuedBytes);
    const stats = cluster.linkStats;
    this.#linkFrames.update({ direction: 'in' }, stats.framesIn, 0);
    this.#linkFrames.update({ direction: 'out' }, stats.framesOut, 0);
    this.#linkBytes.update({ direction: 'in' }, stats.bytesIn, 0);
    this.#linkBytes.update({ direction: 'out' }, stats.bytesOut, 0);
    this.#linkEnvelopes.update({ direction: 'in' }, stats.envelopesIn, 0);
    this.#linkEnvelopes.update({ direction: 'out' }, stats.envelopesOut, 0);
    this.#linkDropped.update({}, stats.dropped, 0);
  }
}
